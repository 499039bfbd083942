// EventPump: moves one subscriber's events from the node's EventBus onto a connection
// (an HTTP event stream, a control socket watch), only as fast as the connection drains.
//
// The pump takes events while the connection has fewer than kHighWaterBytes queued, and
// again whenever a write completes; what the peer does not read stays in the subscriber's
// bounded buffer, where the oldest is dropped and counted. So a client that stops reading
// holds at most kHighWaterBytes of socket buffers and the bus capacity, and never slows
// the loop. Loop thread only; stop() before the bus goes (the connection's close does).
#pragma once

#include <functional>
#include <set>
#include <string>

#include "agent/state/event_bus.h"

namespace meshos::net {

class EventPump {
 public:
  static constexpr size_t kHighWaterBytes = 64 * 1024;
  static constexpr size_t kBatch = 64;
  // Turns a batch into bytes for the wire (the missed count first, if any).
  using Format = std::function<std::string(const state::EventBatch&)>;
  using Write = std::function<void(std::string)>;
  using Queued = std::function<size_t()>;

  EventPump(state::EventBus& bus, std::set<std::string> kinds, Format format, Write write, Queued queued);
  ~EventPump() { stop(); }
  EventPump(const EventPump&) = delete;
  EventPump& operator=(const EventPump&) = delete;

  // Writes what the connection has room for. Call after each completed write.
  void pump();
  void stop();

 private:
  state::EventBus* bus_;
  state::EventBus::SubscriberId id_ = 0;
  Format format_;
  Write write_;
  Queued queued_;
  bool pumping_ = false;
};

}  // namespace meshos::net
