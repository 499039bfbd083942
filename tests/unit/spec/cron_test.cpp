#include "agent/spec/cron.h"

#include <doctest/doctest.h>

using meshos::spec::parseCron;

namespace {
// 2024-01-01 00:00:00 UTC (a Monday).
constexpr int64_t kJan1 = 1'704'067'200'000;
constexpr int64_t kMin = 60'000;
constexpr int64_t kHour = 60 * kMin;
constexpr int64_t kDay = 24 * kHour;
}  // namespace

TEST_CASE("cron: every minute fires on the next whole minute") {
  auto c = parseCron("* * * * *");
  REQUIRE(c);
  CHECK(c->nextAfter(kJan1) == kJan1 + kMin);
  CHECK(c->nextAfter(kJan1 + 1) == kJan1 + kMin);
  CHECK(c->nextAfter(kJan1 + kMin - 1) == kJan1 + kMin);
}

TEST_CASE("cron: steps, ranges and lists") {
  auto c = parseCron("*/15 9-17 * * MON-FRI");
  REQUIRE(c);
  // Monday 00:00 → Monday 09:00.
  CHECK(c->nextAfter(kJan1) == kJan1 + 9 * kHour);
  CHECK(c->nextAfter(kJan1 + 9 * kHour) == kJan1 + 9 * kHour + 15 * kMin);
  // Monday 17:45 → Tuesday 09:00.
  CHECK(c->nextAfter(kJan1 + 17 * kHour + 45 * kMin) == kJan1 + kDay + 9 * kHour);
  // Friday 2024-01-05 17:45 → Monday 2024-01-08 09:00.
  CHECK(c->nextAfter(kJan1 + 4 * kDay + 17 * kHour + 45 * kMin) == kJan1 + 7 * kDay + 9 * kHour);

  auto l = parseCron("5,10,50 0 * * *");
  REQUIRE(l);
  CHECK(l->nextAfter(kJan1) == kJan1 + 5 * kMin);
  CHECK(l->nextAfter(kJan1 + 10 * kMin) == kJan1 + 50 * kMin);
  CHECK(l->nextAfter(kJan1 + 50 * kMin) == kJan1 + kDay + 5 * kMin);

  auto s = parseCron("10-30/10 * * * *");
  REQUIRE(s);
  CHECK(s->nextAfter(kJan1 + 10 * kMin) == kJan1 + 20 * kMin);
  CHECK(s->nextAfter(kJan1 + 30 * kMin) == kJan1 + kHour + 10 * kMin);
}

TEST_CASE("cron: month names, Sunday as 0 or 7, and the day-field OR rule") {
  auto c = parseCron("0 0 1 mar *");
  REQUIRE(c);
  // 2024-03-01 is day 60 of 2024 (leap year).
  CHECK(c->nextAfter(kJan1) == kJan1 + 60 * kDay);
  auto sun7 = parseCron("0 12 * * 7");
  auto sun0 = parseCron("0 12 * * SUN");
  REQUIRE(sun7);
  REQUIRE(sun0);
  // First Sunday of 2024 is Jan 7.
  CHECK(sun7->nextAfter(kJan1) == kJan1 + 6 * kDay + 12 * kHour);
  CHECK(sun0->nextAfter(kJan1) == sun7->nextAfter(kJan1));
  // Day 15 or any Sunday: the first match after Jan 1 is Sunday Jan 7.
  auto either = parseCron("0 0 15 * 0");
  REQUIRE(either);
  CHECK(either->nextAfter(kJan1) == kJan1 + 6 * kDay);
  CHECK(either->nextAfter(kJan1 + 13 * kDay) == kJan1 + 14 * kDay);  // Jan 15 (a Monday)
}

TEST_CASE("cron: leap day and impossible dates") {
  auto feb29 = parseCron("0 0 29 2 *");
  REQUIRE(feb29);
  // After 2024-03-01 the next Feb 29 is in 2028.
  const int64_t mar1_2024 = kJan1 + 60 * kDay;
  const int64_t feb29_2028 = kJan1 + (366 + 365 + 365 + 365 + 31 + 28) * kDay;
  CHECK(feb29->nextAfter(mar1_2024) == feb29_2028);
  auto never = parseCron("0 0 30 2 *");
  REQUIRE(never);
  CHECK(never->nextAfter(kJan1) == -1);
}

TEST_CASE("cron: macros") {
  auto h = parseCron("@hourly");
  REQUIRE(h);
  CHECK(h->nextAfter(kJan1) == kJan1 + kHour);
  auto d = parseCron("@daily");
  REQUIRE(d);
  CHECK(d->nextAfter(kJan1) == kJan1 + kDay);
  CHECK(parseCron("@weekly"));
  CHECK(parseCron("@monthly"));
  CHECK(parseCron("@yearly"));
  CHECK(!parseCron("@fortnightly"));
}

TEST_CASE("cron: bad expressions name the field") {
  auto r = parseCron("* * *");
  REQUIRE(!r);
  CHECK(r.status().message().find("expected 5 fields") != std::string::npos);
  auto m = parseCron("60 * * * *");
  REQUIRE(!m);
  CHECK(m.status().message().find("minute") != std::string::npos);
  auto d = parseCron("0 0 32 * *");
  REQUIRE(!d);
  CHECK(d.status().message().find("day-of-month") != std::string::npos);
  CHECK(!parseCron("0 0 * FOO *"));
  CHECK(!parseCron("*/0 * * * *"));
  CHECK(!parseCron("30-10 * * * *"));
  CHECK(!parseCron("1,,2 * * * *"));
  CHECK(!parseCron("a * * * *"));
  CHECK(!parseCron(""));
}
