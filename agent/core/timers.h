// Timers and Poster: how shells schedule work on the loop thread.
//
// Timers::after() runs a callback on the loop thread once a delay has passed; cancel() stops
// it if it has not run. A callback never runs inside the call that scheduled it.
// Poster::post() is the one entry point other threads may call: it hands a function to the
// loop thread (RocksDB writer, thread pool results).
//
// ManualTimers and ManualPoster are the test/simulator versions: nothing runs until the test
// advances the ManualClock through ManualTimers::advanceTo*() or calls runPending().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "agent/core/clock.h"

namespace meshos {

using TimerId = uint64_t;

class Timers {
 public:
  virtual ~Timers() = default;
  virtual TimerId after(int64_t delay_ms, std::function<void()> fn) = 0;
  // Cancelling an unknown or already-fired timer is a no-op.
  virtual void cancel(TimerId id) = 0;
};

class Poster {
 public:
  virtual ~Poster() = default;
  // Thread-safe. The function runs later on the loop thread.
  virtual void post(std::function<void()> fn) = 0;
};

class ManualTimers final : public Timers {
 public:
  explicit ManualTimers(ManualClock& clock) : clock_(clock) {}

  TimerId after(int64_t delay_ms, std::function<void()> fn) override;
  void cancel(TimerId id) override;

  // Runs every timer due up to target (in deadline order, moving the clock to each
  // deadline first), then moves the clock to target. Timers scheduled by callbacks run too
  // if they fall due before target. Returns how many callbacks ran.
  size_t advanceToNs(int64_t target_ns);
  size_t advanceMs(int64_t delta_ms) {
    return advanceToNs(clock_.monotonicNs() + delta_ms * 1'000'000);
  }
  size_t pending() const { return queue_.size(); }
  // Deadline of the earliest pending timer, or -1.
  int64_t nextDeadlineNs() const { return queue_.empty() ? -1 : queue_.begin()->first.first; }

 private:
  ManualClock& clock_;
  TimerId next_id_ = 1;
  // (deadline, id) keeps same-deadline timers in scheduling order.
  std::map<std::pair<int64_t, TimerId>, std::function<void()>> queue_;
  std::map<TimerId, int64_t> deadline_by_id_;
};

class ManualPoster final : public Poster {
 public:
  void post(std::function<void()> fn) override;
  // Runs everything posted so far (and anything those functions post). Returns the count.
  size_t runPending();

 private:
  std::mutex mu_;
  std::vector<std::function<void()>> pending_;
};

}  // namespace meshos
