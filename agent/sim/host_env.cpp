#include "agent/sim/host_env.h"

namespace meshos::sim {

TimerId HostTimers::after(int64_t delay_ms, std::function<void()> fn) {
  if (slow_ms_ > 0) delay_ms += static_cast<int64_t>(rng_.uniform(static_cast<uint64_t>(slow_ms_) + 1));
  // The id is the world's; the callback checks this view is alive and still holds it.
  auto id = std::make_shared<TimerId>(0);
  *id = world_.after(delay_ms, [this, alive = std::weak_ptr<bool>(alive_), id, fn = std::move(fn)] {
    if (alive.expired() || live_.erase(*id) == 0) return;
    fn();
  });
  live_.insert(*id);
  return *id;
}

void HostTimers::cancel(TimerId id) {
  if (live_.erase(id) != 0) world_.cancel(id);
}

void HostTimers::cancelAll() {
  for (TimerId id : live_) world_.cancel(id);
  live_.clear();
}

void HostWorkers::run(std::function<void()> work, std::function<void()> done) {
  timers_.after(delay_ms_, [work = std::move(work), done = std::move(done)] {
    work();
    if (done) done();
  });
}

}  // namespace meshos::sim
