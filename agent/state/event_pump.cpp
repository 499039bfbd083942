#include "agent/state/event_pump.h"

namespace meshos::state {

EventPump::EventPump(EventBus& bus, std::set<std::string> kinds, Write write, Queued queued)
    : bus_(&bus), write_(std::move(write)), queued_(std::move(queued)) {
  id_ = bus_->subscribe(std::move(kinds), EventBus::kDefaultCapacity, [this] { pump(); });
}

void EventPump::pump() {
  if (bus_ == nullptr || pumping_) return;
  pumping_ = true;
  while (bus_->pending(id_) && queued_() < kHighWaterBytes) {
    write_(bus_->take(id_, kBatch));
  }
  pumping_ = false;
}

void EventPump::stop() {
  if (bus_ == nullptr) return;
  bus_->unsubscribe(id_);
  bus_ = nullptr;
}

}  // namespace meshos::state
