// net::GossipTransport: gossip's Transport on real sockets. A libuv UDP socket and a TCP
// listener bound to the same address and port (port 0 picks one). Streams carry one
// request frame and one reply frame, each a 4-byte big-endian length followed by the
// frame; a connection is closed after the reply, on an oversized frame, or after its
// timeout. The UDP send queue and the number of connections are bounded; what goes over
// is counted and dropped.
//
// Loop thread only. close() starts closing every handle; their memory is freed in the
// close callbacks, so the loop must run once more afterwards.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <string>

#include "agent/core/timers.h"
#include "agent/gossip/transport.h"

namespace meshos::net {

// "host:port" or "[v6]:port" -> sockaddr.
Status parseSocketAddress(const std::string& address, sockaddr_storage& out);
std::string formatSocketAddress(const sockaddr* addr);

class GossipTransport final : public gossip::Transport {
 public:
  GossipTransport(uv_loop_t* loop, Timers& timers, const Clock& clock);
  ~GossipTransport() override;
  GossipTransport(const GossipTransport&) = delete;
  GossipTransport& operator=(const GossipTransport&) = delete;

  Result<std::string> open(const gossip::TransportOptions& options, gossip::TransportReceiver& receiver) override;
  void send(const std::string& to, Bytes bytes) override;
  void request(const std::string& to, Bytes frame, int64_t timeout_ms,
               std::function<void(Result<Bytes>)> done) override;
  void close() override;
  gossip::TransportCounters counters() const override { return counters_; }
  uint16_t boundPort() const { return bound_port_; }

 private:
  struct Conn;
  struct UdpHandle;
  struct TcpServer;

  void failLater(std::function<void(Result<Bytes>)> done, Status why);
  void finishOutbound(Conn* c, Result<Bytes> reply);
  void onInboundFrame(Conn* c, Bytes frame);
  void closeConn(Conn* c);
  void onConnData(Conn* c, ssize_t nread, const uv_buf_t* buf);
  void accept(uv_stream_t* server);

  uv_loop_t* loop_;
  Timers& timers_;
  const Clock& clock_;
  gossip::TransportOptions options_;
  gossip::TransportReceiver* receiver_ = nullptr;
  UdpHandle* udp_ = nullptr;
  TcpServer* tcp_ = nullptr;
  std::map<Conn*, bool> conns_;
  uint16_t bound_port_ = 0;
  bool opened_ = false, closed_ = false;
  TimerId fail_timer_ = 0;
  std::vector<std::pair<std::function<void(Result<Bytes>)>, Status>> failed_;
  gossip::TransportCounters counters_;
};

}  // namespace meshos::net
