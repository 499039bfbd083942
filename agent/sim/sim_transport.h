// SimTransport: gossip's Transport on the simulated network (sim::Network). A node's
// datagrams and streams go through the world's links, with their latency, loss,
// duplication, reordering and partitions; the network owns no sockets and no threads.
// One per agent incarnation: when the agent crashes its transport is destroyed, its address
// stops answering, and nothing of it is called back.
#pragma once

#include <memory>
#include <string>

#include "agent/core/clock.h"
#include "agent/gossip/transport.h"
#include "agent/sim/network.h"

namespace meshos::sim {

class SimTransport final : public gossip::Transport, private Endpoint {
 public:
  // address: where this host sits on the network ("10.0.0.1:7946").
  SimTransport(Network& network, const Clock& clock, std::string address)
      : network_(network), clock_(clock), address_(std::move(address)) {}
  ~SimTransport() override { close(); }

  Result<std::string> open(const gossip::TransportOptions& options, gossip::TransportReceiver& receiver) override;
  void send(const std::string& to, Bytes bytes) override;
  void request(const std::string& to, Bytes frame, int64_t timeout_ms,
               std::function<void(Result<Bytes>)> done) override;
  void close() override;
  gossip::TransportCounters counters() const override { return counters_; }

 private:
  void onDatagram(const std::string& from, Bytes bytes) override;
  Result<Bytes> onStream(const std::string& from, Bytes request) override;

  Network& network_;
  const Clock& clock_;
  std::string address_;
  gossip::TransportOptions options_;
  gossip::TransportReceiver* receiver_ = nullptr;
  bool open_ = false;
  gossip::TransportCounters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace meshos::sim
