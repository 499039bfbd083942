#include "agent/state/event_bus.h"

#include <algorithm>
#include <sstream>

namespace meshos::state {

Result<std::set<std::string>> parseEventKinds(const std::string& csv) {
  std::set<std::string> kinds;
  std::stringstream in(csv);
  std::string k;
  while (std::getline(in, k, ',')) {
    if (k.empty()) continue;
    if (eventKinds().count(k) == 0) {
      return Status::invalid("unknown event kind \"" + k + "\" (kinds: members, daemons, commits, records)");
    }
    kinds.insert(k);
  }
  return kinds;
}

EventBus::SubscriberId EventBus::subscribe(std::set<std::string> kinds, size_t capacity,
                                           std::function<void()> wake) {
  Subscriber s;
  s.kinds = std::move(kinds);
  s.capacity = std::max<size_t>(capacity, 1);
  s.wake = std::move(wake);
  const SubscriberId id = next_id_++;
  subscribers_.emplace(id, std::move(s));
  return id;
}

void EventBus::unsubscribe(SubscriberId id) { subscribers_.erase(id); }

void EventBus::publish(const std::string& kind, int64_t wall_ms, const nlohmann::json& data) {
  const uint64_t seq = next_seq_++;
  ++counters_.published;
  std::shared_ptr<const BusEvent> event;
  // Wakes run after the loop: a wake may unsubscribe (its connection closed).
  std::vector<std::function<void()>> wakes;
  for (auto& [id, s] : subscribers_) {
    if (!s.kinds.empty() && s.kinds.count(kind) == 0) continue;
    if (!event) {
      auto e = std::make_shared<BusEvent>();
      e->seq = seq;
      e->kind = kind;
      e->json = nlohmann::json{{"seq", seq}, {"kind", kind}, {"wall_ms", wall_ms}, {"data", data}}.dump();
      event = std::move(e);
    }
    if (s.buffer.size() >= s.capacity) {
      s.buffer.pop_front();
      ++s.missed;
      ++counters_.missed;
    }
    const bool was_empty = s.buffer.empty() && s.missed == 0;
    s.buffer.push_back(event);
    if (was_empty && s.wake) wakes.push_back(s.wake);
  }
  for (auto& w : wakes) w();
}

EventBatch EventBus::take(SubscriberId id, size_t max) {
  EventBatch b;
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return b;
  Subscriber& s = it->second;
  b.missed = s.missed;
  s.missed = 0;
  const size_t n = std::min(max, s.buffer.size());
  b.events.assign(s.buffer.begin(), s.buffer.begin() + static_cast<long>(n));
  s.buffer.erase(s.buffer.begin(), s.buffer.begin() + static_cast<long>(n));
  return b;
}

bool EventBus::pending(SubscriberId id) const {
  auto it = subscribers_.find(id);
  return it != subscribers_.end() && (!it->second.buffer.empty() || it->second.missed > 0);
}

bool EventBus::wants(const std::string& kind) const {
  for (const auto& [id, s] : subscribers_) {
    if (s.kinds.empty() || s.kinds.count(kind) != 0) return true;
  }
  return false;
}

nlohmann::json EventBus::toJson() const {
  return {{"published", counters_.published}, {"missed", counters_.missed}, {"subscribers", subscribers_.size()}};
}

}  // namespace meshos::state
