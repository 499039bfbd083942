#include <doctest/doctest.h>

#include <vector>

#include "agent/core/timers.h"

using namespace meshos;

TEST_CASE("manual timers fire in deadline order as the clock advances") {
  ManualClock clock;
  ManualTimers timers(clock);
  std::vector<int> fired;
  timers.after(30, [&] { fired.push_back(30); });
  timers.after(10, [&] { fired.push_back(10); });
  TimerId cancelled = timers.after(20, [&] { fired.push_back(20); });
  timers.cancel(cancelled);
  timers.cancel(9999);  // unknown: no-op
  CHECK(timers.advanceMs(5) == 0);
  CHECK(fired.empty());
  CHECK(timers.advanceMs(100) == 2);
  CHECK(fired == std::vector<int>{10, 30});
  CHECK(clock.monotonicMs() == 105);
}

TEST_CASE("a timer scheduled from a callback runs if due within the advance") {
  ManualClock clock;
  ManualTimers timers(clock);
  int64_t fired_at_ms = -1;
  timers.after(10, [&] { timers.after(10, [&] { fired_at_ms = clock.monotonicMs(); }); });
  timers.advanceMs(25);
  CHECK(fired_at_ms == 20);
}

TEST_CASE("manual clock never goes back") {
  ManualClock clock(1'000'000'000);
  clock.advanceToNs(5);
  CHECK(clock.monotonicNs() == 1'000'000'000);
  clock.advanceMs(2);
  CHECK(clock.monotonicMs() == 1'002);
}

TEST_CASE("manual poster runs posted work and work posted by it") {
  ManualPoster poster;
  int count = 0;
  poster.post([&] {
    ++count;
    poster.post([&] { ++count; });
  });
  CHECK(count == 0);
  CHECK(poster.runPending() == 2);
  CHECK(count == 2);
}
