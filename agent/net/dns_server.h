// DnsServer: the discovery DNS endpoint ([dns] bind, off by default) on the libuv loop.
// UDP only: each datagram is answered at once by the node (Node::dnsAnswer, sans-IO, bounded
// work per packet) and the reply sent without queueing: when the socket's send buffer is
// full the reply is dropped and counted, as a loaded UDP server must (the client retries).
// Loop thread only; close() before the loop's last run.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/config/node_config.h"
#include "agent/core/bytes.h"
#include "agent/core/status.h"
#include "agent/discovery/dns_answer.h"

namespace meshos::net {

class DnsServer {
 public:
  using Answer = std::function<discovery::DnsResult(ByteView query)>;

  DnsServer(uv_loop_t* loop, Answer answer);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  Status listen(const config::HostPort& address);
  void close();  // idempotent
  const std::string& address() const { return address_; }
  // {"queries", "responses": {"noerror": n, ...}, "unanswered", "send_failed", "left_out"}
  nlohmann::json toJson() const;

 private:
  void onDatagram(ssize_t nread, const uv_buf_t* buf, const sockaddr* from);

  uv_loop_t* loop_;
  Answer answer_;
  uv_udp_t* udp_ = nullptr;  // freed in its close callback
  std::string address_;
  // A recvmmsg batch: libuv gives each datagram of the batch a 64 KiB slot.
  static constexpr size_t kBatch = 16;
  std::vector<char> buffer_ = std::vector<char>(kBatch * 64 * 1024);
  uint64_t queries_ = 0, unanswered_ = 0, send_failed_ = 0, left_out_ = 0;
  std::map<std::string, uint64_t> responses_;  // by rcode name
};

}  // namespace meshos::net
