#include "agent/spec/cron.h"

#include <array>
#include <cctype>
#include <charconv>
#include <vector>

namespace meshos::spec {
namespace {

struct FieldDef {
  const char* name;
  int lo;
  int hi;
  const char* const* names;  // names[i] is value lo_name + i, or nullptr
  int names_base;
};

const char* const kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", nullptr};
const char* const kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", nullptr};

const FieldDef kFields[5] = {
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0},
    {"month", 1, 12, kMonthNames, 1},
    {"day-of-week", 0, 7, kDayNames, 0},
};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

Result<int> parseValue(const FieldDef& f, std::string_view tok) {
  if (tok.empty()) return Status::invalid(std::string(f.name) + ": empty value");
  if (std::isdigit(static_cast<unsigned char>(tok[0]))) {
    int v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (ec != std::errc() || p != tok.data() + tok.size()) {
      return Status::invalid(std::string(f.name) + ": '" + std::string(tok) + "' is not a number");
    }
    if (v < f.lo || v > f.hi) {
      return Status::invalid(std::string(f.name) + ": " + std::to_string(v) + " out of range " +
                             std::to_string(f.lo) + "-" + std::to_string(f.hi));
    }
    return v;
  }
  if (f.names != nullptr && tok.size() == 3) {
    std::string up;
    for (char c : tok) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (int i = 0; f.names[i] != nullptr; ++i) {
      if (up == f.names[i]) return f.names_base + i;
    }
  }
  return Status::invalid(std::string(f.name) + ": unknown value '" + std::string(tok) + "'");
}

// Parses one field into `bits` (indexed by value). Sets *restricted when not `*`.
template <size_t N>
Status parseField(const FieldDef& f, std::string_view text, std::bitset<N>& bits,
                  bool* restricted) {
  if (restricted != nullptr) *restricted = !(text == "*" || text == "?");
  for (std::string_view item : split(text, ',')) {
    if (item.empty()) return Status::invalid(std::string(f.name) + ": empty list item");
    int step = 1;
    std::string_view range = item;
    size_t slash = item.find('/');
    bool has_step = slash != std::string_view::npos;
    if (has_step) {
      range = item.substr(0, slash);
      std::string_view st = item.substr(slash + 1);
      auto [p, ec] = std::from_chars(st.data(), st.data() + st.size(), step);
      if (st.empty() || ec != std::errc() || p != st.data() + st.size() || step <= 0 ||
          step > f.hi) {
        return Status::invalid(std::string(f.name) + ": bad step '" + std::string(st) + "'");
      }
    }
    int lo = 0;
    int hi = 0;
    if (range == "*" || range == "?") {
      lo = f.lo;
      hi = f.hi;
    } else {
      size_t dash = range.find('-');
      if (dash != std::string_view::npos) {
        auto a = parseValue(f, range.substr(0, dash));
        if (!a) return a.status();
        auto b = parseValue(f, range.substr(dash + 1));
        if (!b) return b.status();
        lo = *a;
        hi = *b;
        if (lo > hi) {
          return Status::invalid(std::string(f.name) + ": range '" + std::string(range) +
                                 "' runs backwards");
        }
      } else {
        auto a = parseValue(f, range);
        if (!a) return a.status();
        lo = *a;
        hi = has_step ? f.hi : *a;  // "a/n" means a, a+n, ... up to the maximum
      }
    }
    for (int v = lo; v <= hi; v += step) {
      bits.set(static_cast<size_t>(v));  // v <= f.hi < N
    }
  }
  return Status::ok();
}

// Days since 1970-01-01 → civil date (proleptic Gregorian), and back.
void civilFromDays(int64_t z, int& y, int& m, int& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int>(yoe + era * 400 + (m <= 2 ? 1 : 0));
}

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

Result<CronSchedule> parseCron(std::string_view expression) {
  std::string_view e = expression;
  while (!e.empty() && std::isspace(static_cast<unsigned char>(e.front()))) e.remove_prefix(1);
  while (!e.empty() && std::isspace(static_cast<unsigned char>(e.back()))) e.remove_suffix(1);
  std::string expanded(e);
  if (!e.empty() && e[0] == '@') {
    if (e == "@yearly" || e == "@annually") expanded = "0 0 1 1 *";
    else if (e == "@monthly") expanded = "0 0 1 * *";
    else if (e == "@weekly") expanded = "0 0 * * 0";
    else if (e == "@daily" || e == "@midnight") expanded = "0 0 * * *";
    else if (e == "@hourly") expanded = "0 * * * *";
    else return Status::invalid("cron: unknown macro '" + std::string(e) + "'");
  }
  std::vector<std::string_view> fields;
  std::string_view rest = expanded;
  while (!rest.empty()) {
    size_t i = 0;
    while (i < rest.size() && std::isspace(static_cast<unsigned char>(rest[i]))) ++i;
    rest.remove_prefix(i);
    if (rest.empty()) break;
    size_t j = 0;
    while (j < rest.size() && !std::isspace(static_cast<unsigned char>(rest[j]))) ++j;
    fields.push_back(rest.substr(0, j));
    rest.remove_prefix(j);
  }
  if (fields.size() != 5) {
    return Status::invalid("cron: expected 5 fields (minute hour day-of-month month "
                           "day-of-week), got " + std::to_string(fields.size()) + " in '" +
                           std::string(expression) + "'");
  }
  CronSchedule s;
  s.text = std::string(e);
  std::bitset<8> dow8;
  Status st = parseField(kFields[0], fields[0], s.minutes, nullptr);
  if (st) st = parseField(kFields[1], fields[1], s.hours, nullptr);
  if (st) st = parseField(kFields[2], fields[2], s.days_of_month, &s.dom_restricted);
  if (st) st = parseField(kFields[3], fields[3], s.months, nullptr);
  if (st) st = parseField(kFields[4], fields[4], dow8, &s.dow_restricted);
  if (!st) return st.withContext("cron '" + std::string(expression) + "'");
  for (size_t i = 0; i < 7; ++i) s.days_of_week[i] = dow8[i];
  if (dow8[7]) s.days_of_week[0] = true;
  return s;
}

bool CronSchedule::matches(int64_t unix_ms) const {
  const int64_t minute = floorDiv(unix_ms, 60'000);
  const int64_t day = floorDiv(minute, 1440);
  const int mod = static_cast<int>(minute - day * 1440);
  int y = 0, m = 0, d = 0;
  civilFromDays(day, y, m, d);
  const int wd = static_cast<int>(((day % 7) + 7 + 4) % 7);  // 1970-01-01 was a Thursday
  if (!months[static_cast<size_t>(m)]) return false;
  const bool dom_ok = days_of_month[static_cast<size_t>(d)];
  const bool dow_ok = days_of_week[static_cast<size_t>(wd)];
  bool day_ok = false;
  if (dom_restricted && dow_restricted) day_ok = dom_ok || dow_ok;
  else if (dom_restricted) day_ok = dom_ok;
  else if (dow_restricted) day_ok = dow_ok;
  else day_ok = true;
  return day_ok && hours[static_cast<size_t>(mod / 60)] && minutes[static_cast<size_t>(mod % 60)];
}

int64_t CronSchedule::nextAfter(int64_t unix_ms) const {
  int64_t minute = floorDiv(unix_ms, 60'000) + 1;  // strictly after
  int64_t day = floorDiv(minute, 1440);
  int start_mod = static_cast<int>(minute - day * 1440);
  const int64_t last_day = day + 366 * 8 + 2;
  for (; day <= last_day; ++day, start_mod = 0) {
    int y = 0, m = 0, d = 0;
    civilFromDays(day, y, m, d);
    const int wd = static_cast<int>(((day % 7) + 7 + 4) % 7);
    if (!months[static_cast<size_t>(m)]) continue;
    const bool dom_ok = days_of_month[static_cast<size_t>(d)];
    const bool dow_ok = days_of_week[static_cast<size_t>(wd)];
    bool day_ok = true;
    if (dom_restricted && dow_restricted) day_ok = dom_ok || dow_ok;
    else if (dom_restricted) day_ok = dom_ok;
    else if (dow_restricted) day_ok = dow_ok;
    if (!day_ok) continue;
    for (int mod = start_mod; mod < 1440; ++mod) {
      if (!hours[static_cast<size_t>(mod / 60)]) {
        mod = (mod / 60) * 60 + 59;  // skip the rest of this hour
        continue;
      }
      if (minutes[static_cast<size_t>(mod % 60)]) return (day * 1440 + mod) * 60'000;
    }
  }
  return -1;
}

}  // namespace meshos::spec
