// CronSchedule: a parsed standard 5-field cron expression and its next fire time.
//
// Fields: minute (0-59) hour (0-23) day-of-month (1-31) month (1-12 or JAN-DEC)
// day-of-week (0-7 or SUN-SAT, 0 and 7 both Sunday). Each field is `*`, a number or name, a
// range `a-b`, a step `*/n` or `a-b/n` or `a/n`, or a comma list of those. As in Vixie cron,
// when both day fields are restricted a day matches if either matches. The macros @yearly
// (@annually), @monthly, @weekly, @daily (@midnight) and @hourly are accepted.
// Times are UTC. A value type; pure functions; any thread.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/core/status.h"

namespace meshos::spec {

struct CronSchedule {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;  // bit 1..31
  std::bitset<13> months;         // bit 1..12
  std::bitset<7> days_of_week;    // bit 0 = Sunday
  bool dom_restricted = false;    // the field was not `*`
  bool dow_restricted = false;
  std::string text;  // the expression as written

  // The first whole minute strictly after unix_ms that matches (UTC), in Unix milliseconds.
  // -1 if nothing matches within the next 8 years (e.g. "0 0 30 2 *").
  int64_t nextAfter(int64_t unix_ms) const;
  bool matches(int64_t unix_ms) const;
};

// The error names the field and what is wrong ("day-of-month: 32 out of range 1-31").
Result<CronSchedule> parseCron(std::string_view expression);

}  // namespace meshos::spec
