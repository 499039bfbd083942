// EventPump: moves one subscriber's events from the node's EventBus onto a connection
// (an HTTP event stream, a control socket watch), only as fast as the connection drains.
// Sans-IO: the connection says how to write a batch and how much it has queued.
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

namespace meshos::state {

class EventPump {
 public:
  static constexpr size_t kHighWaterBytes = 64 * 1024;
  static constexpr size_t kBatch = 64;
  // Puts a batch on the wire (the missed count first, if any).
  using Write = std::function<void(const EventBatch&)>;
  using Queued = std::function<size_t()>;

  EventPump(EventBus& bus, std::set<std::string> kinds, Write write, Queued queued);
  ~EventPump() { stop(); }
  EventPump(const EventPump&) = delete;
  EventPump& operator=(const EventPump&) = delete;

  // Writes what the connection has room for. Call after each completed write.
  void pump();
  void stop();

 private:
  EventBus* bus_;
  EventBus::SubscriberId id_ = 0;
  Write write_;
  Queued queued_;
  bool pumping_ = false;
};

}  // namespace meshos::state
