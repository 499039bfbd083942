#include "agent/net/event_pump.h"

namespace meshos::net {

EventPump::EventPump(state::EventBus& bus, std::set<std::string> kinds, Format format, Write write, Queued queued)
    : bus_(&bus), format_(std::move(format)), write_(std::move(write)), queued_(std::move(queued)) {
  id_ = bus_->subscribe(std::move(kinds), state::EventBus::kDefaultCapacity, [this] { pump(); });
}

void EventPump::pump() {
  if (bus_ == nullptr || pumping_) return;
  pumping_ = true;
  while (bus_->pending(id_) && queued_() < kHighWaterBytes) {
    write_(format_(bus_->take(id_, kBatch)));
  }
  pumping_ = false;
}

void EventPump::stop() {
  if (bus_ == nullptr) return;
  bus_->unsubscribe(id_);
  bus_ = nullptr;
}

}  // namespace meshos::net
