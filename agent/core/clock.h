// Clock: where time comes from. Cores never read a clock; shells pass `now` in.
//
// SystemClock reads the OS clocks; ManualClock is moved by hand in tests and in the
// simulator, so a run is repeatable. Both are resources owned by whoever builds the Env
// (main() or a test) and may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace meshos {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic nanoseconds from an arbitrary origin; never goes back.
  virtual int64_t monotonicNs() const = 0;
  // Wall-clock milliseconds since the Unix epoch; for records shown to humans.
  virtual int64_t wallMs() const = 0;

  int64_t monotonicMs() const { return monotonicNs() / 1'000'000; }
};

class SystemClock final : public Clock {
 public:
  int64_t monotonicNs() const override;
  int64_t wallMs() const override;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ns = 0, int64_t wall_start_ms = 1'700'000'000'000)
      : now_ns_(start_ns), wall_start_ms_(wall_start_ms), start_ns_(start_ns) {}

  int64_t monotonicNs() const override { return now_ns_.load(std::memory_order_relaxed); }
  int64_t wallMs() const override {
    return wall_start_ms_ + wall_step_ms_.load(std::memory_order_relaxed) +
           (monotonicNs() - start_ns_) / 1'000'000;
  }
  // Steps the wall clock (forward or back, as NTP or an operator would); monotonic time
  // does not move.
  void stepWallMs(int64_t delta_ms) { wall_step_ms_.fetch_add(delta_ms, std::memory_order_relaxed); }
  // Moves time forward; a target in the past is ignored (time never goes back).
  void advanceToNs(int64_t target_ns);
  void advanceMs(int64_t delta_ms) { advanceToNs(monotonicNs() + delta_ms * 1'000'000); }

 private:
  std::atomic<int64_t> now_ns_;
  int64_t wall_start_ms_;
  int64_t start_ns_;
  std::atomic<int64_t> wall_step_ms_{0};
};

}  // namespace meshos
