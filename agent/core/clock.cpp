#include "agent/core/clock.h"

#include <time.h>

namespace meshos {

namespace {
int64_t readNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

int64_t SystemClock::monotonicNs() const { return readNs(CLOCK_MONOTONIC); }
int64_t SystemClock::wallMs() const { return readNs(CLOCK_REALTIME) / 1'000'000; }

void ManualClock::advanceToNs(int64_t target_ns) {
  int64_t cur = now_ns_.load(std::memory_order_relaxed);
  while (target_ns > cur &&
         !now_ns_.compare_exchange_weak(cur, target_ns, std::memory_order_relaxed)) {
  }
}

}  // namespace meshos
