// The per-host half of the simulated Env: each simulated machine sees the world's virtual
// time through its own clock (whose wall time can be stepped), schedules on its own view of
// the world's timers (all of which die with the agent that set them, and which fire late on
// a slow host), posts to itself through a timer, and runs "blocking" work on its workers
// after a short virtual delay. Everything runs on the simulation thread, in an order fixed
// by the seed.
#pragma once

#include <cstdint>
#include <memory>
#include <set>

#include "agent/core/clock.h"
#include "agent/core/rng.h"
#include "agent/core/timers.h"
#include "agent/core/workers.h"

namespace meshos::sim {

// Monotonic time is the world's; wall time is the world's plus this host's steps.
class HostClock final : public Clock {
 public:
  explicit HostClock(const ManualClock& world) : world_(world) {}
  int64_t monotonicNs() const override { return world_.monotonicNs(); }
  int64_t wallMs() const override { return world_.wallMs() + wall_step_ms_; }
  void stepWallMs(int64_t delta_ms) { wall_step_ms_ += delta_ms; }
  int64_t wallStepMs() const { return wall_step_ms_; }

 private:
  const ManualClock& world_;
  int64_t wall_step_ms_ = 0;
};

// Timers of one agent incarnation over the world's ManualTimers. cancelAll() drops every
// pending one (the agent crashed: its callbacks must never run); a slow host's timers
// fire up to slow_ms late (drawn from the host's Rng).
class HostTimers final : public Timers {
 public:
  HostTimers(ManualTimers& world, Rng& rng) : world_(world), rng_(rng) {}
  ~HostTimers() override { cancelAll(); }
  HostTimers(const HostTimers&) = delete;
  HostTimers& operator=(const HostTimers&) = delete;

  TimerId after(int64_t delay_ms, std::function<void()> fn) override;
  void cancel(TimerId id) override;
  void cancelAll();
  void setSlowMs(int64_t slow_ms) { slow_ms_ = slow_ms; }
  size_t pending() const { return live_.size(); }

 private:
  ManualTimers& world_;
  Rng& rng_;
  std::set<TimerId> live_;
  int64_t slow_ms_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// post() from the simulation thread: the function runs on the next timer turn.
class HostPoster final : public Poster {
 public:
  explicit HostPoster(Timers& timers) : timers_(timers) {}
  void post(std::function<void()> fn) override { timers_.after(0, std::move(fn)); }

 private:
  Timers& timers_;
};

// Work runs delay_ms after it was handed over, then its done, both on the simulation thread.
class HostWorkers final : public Workers {
 public:
  HostWorkers(Timers& timers, int64_t delay_ms) : timers_(timers), delay_ms_(delay_ms) {}
  void run(std::function<void()> work, std::function<void()> done) override;

 private:
  Timers& timers_;
  int64_t delay_ms_;
};

}  // namespace meshos::sim
