// EventBus: what changed on this node, for whoever follows it (`meshos-inspect watch` on
// the control socket, /v1/events over HTTP, the status page).
//
// Each subscriber has its own bounded buffer. Publishing never waits for a subscriber: a
// full buffer drops its oldest event and counts it, and the subscriber is told how many it
// missed before its next event. So a subscriber that reads nothing costs the publisher one
// push per event, and never memory beyond its capacity. An event is serialised once, and
// only when somebody subscribes to its kind.
//
// Sans-IO, loop thread only. A subscriber's `wake` runs (inside publish) when its buffer
// goes from empty to non-empty; the transport then takes() events as its socket drains.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/core/status.h"

namespace meshos::state {

// The kinds an event may have; watch --kinds takes these.
inline const std::set<std::string>& eventKinds() {
  static const std::set<std::string> kinds = {"members", "daemons", "commits", "records"};
  return kinds;
}

// Parses "members,daemons": every name must be a known kind; empty means every kind.
Result<std::set<std::string>> parseEventKinds(const std::string& csv);

struct BusEvent {
  uint64_t seq = 0;
  std::string kind;
  std::string json;  // {"seq":..,"kind":..,"wall_ms":..,"data":{..}}
};

struct EventBatch {
  uint64_t missed = 0;  // dropped from this subscriber's buffer before these events
  std::vector<std::shared_ptr<const BusEvent>> events;
};

struct EventBusCounters {
  uint64_t published = 0;
  uint64_t missed = 0;
};

class EventBus {
 public:
  using SubscriberId = uint64_t;
  static constexpr size_t kDefaultCapacity = 1024;

  SubscriberId subscribe(std::set<std::string> kinds, size_t capacity, std::function<void()> wake);
  void unsubscribe(SubscriberId id);
  // Publishes to every subscriber of kind (none: only the sequence number moves).
  void publish(const std::string& kind, int64_t wall_ms, const nlohmann::json& data);
  // Up to max events from the subscriber's buffer, oldest first, with what it missed.
  EventBatch take(SubscriberId id, size_t max);
  bool pending(SubscriberId id) const;
  // Whether a publish of kind would reach anybody (lets a hot path skip building it).
  bool wants(const std::string& kind) const;

  size_t subscribers() const { return subscribers_.size(); }
  const EventBusCounters& counters() const { return counters_; }
  nlohmann::json toJson() const;

 private:
  struct Subscriber {
    std::set<std::string> kinds;  // empty: every kind
    size_t capacity = kDefaultCapacity;
    std::function<void()> wake;
    std::deque<std::shared_ptr<const BusEvent>> buffer;
    uint64_t missed = 0;
  };
  uint64_t next_seq_ = 1;
  SubscriberId next_id_ = 1;
  std::map<SubscriberId, Subscriber> subscribers_;
  EventBusCounters counters_;
};

}  // namespace meshos::state
