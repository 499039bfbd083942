#include "agent/spec/daemon_spec.h"
#include "agent/spec/interpolate.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <csignal>
#include <kj/exception.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <functional>
#include <limits>
#include <set>
#include <toml++/toml.h>

#include "agent/spec/cron.h"

namespace meshos::spec {

// ---------------------------------------------------------------------------------------
// Names of the enums, both ways.

namespace {

template <class E, size_t N>
using NameTable = std::array<std::pair<E, std::string_view>, N>;

constexpr NameTable<DaemonKind, 3> kKinds = {{{DaemonKind::kService, "service"},
                                             {DaemonKind::kJob, "job"},
                                             {DaemonKind::kCron, "cron"}}};
constexpr NameTable<RestartPolicy, 3> kPolicies = {{{RestartPolicy::kAlways, "always"},
                                                   {RestartPolicy::kOnFailure, "on-failure"},
                                                   {RestartPolicy::kNever, "never"}}};
constexpr NameTable<PlacementStrategy, 3> kStrategies = {
    {{PlacementStrategy::kSpread, "spread"},
     {PlacementStrategy::kBinpack, "binpack"},
     {PlacementStrategy::kNear, "near"}}};
constexpr NameTable<ConstraintOp, 3> kOps = {{{ConstraintOp::kEquals, "equals"},
                                             {ConstraintOp::kIn, "in"},
                                             {ConstraintOp::kNotIn, "not-in"}}};
constexpr NameTable<CheckType, 3> kCheckTypes = {
    {{CheckType::kExec, "exec"}, {CheckType::kTcp, "tcp"}, {CheckType::kHttp, "http"}}};
constexpr NameTable<DependencyCondition, 3> kConditions = {
    {{DependencyCondition::kStarted, "started"},
     {DependencyCondition::kHealthy, "healthy"},
     {DependencyCondition::kReady, "ready"}}};
constexpr NameTable<OnTimeout, 3> kOnTimeouts = {{{OnTimeout::kFail, "fail"},
                                                 {OnTimeout::kWarn, "warn"},
                                                 {OnTimeout::kContinue, "continue"}}};
constexpr NameTable<MissedRunPolicy, 2> kMissed = {
    {{MissedRunPolicy::kSkip, "skip"}, {MissedRunPolicy::kRunOnce, "run-once"}}};

template <class E, size_t N>
std::string_view nameOf(const NameTable<E, N>& t, E e) {
  for (const auto& [v, n] : t) {
    if (v == e) return n;
  }
  return "?";
}

template <class E, size_t N>
std::string choices(const NameTable<E, N>& t) {
  std::string out;
  for (const auto& [v, n] : t) {
    if (!out.empty()) out += " | ";
    out += n;
  }
  return out;
}

template <class E, size_t N>
std::optional<E> parseName(const NameTable<E, N>& t, std::string_view s) {
  for (const auto& [v, n] : t) {
    if (n == s) return v;
  }
  return std::nullopt;
}

// Ranges shared by the TOML parser (which reports the line) and validate().
constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kMaxBytes = int64_t{1} << 50;
struct Range {
  int64_t lo;
  int64_t hi;
};
constexpr Range kReplicas{0, 10'000};
constexpr Range kMillicores{0, 1'000'000'000};
constexpr Range kBytes{0, kMaxBytes};
constexpr Range kPerNode{0, 10'000};
constexpr Range kDelayMs{0, kDayMs};
constexpr Range kPositiveMs{1, kDayMs};
constexpr Range kCrashes{0, 1'000'000};
constexpr Range kWeekMs{0, 7 * kDayMs};
constexpr Range kExitCode{0, 255};
constexpr Range kPort{1, 65'535};
constexpr Range kThreshold{1, 1'000};
constexpr Range kGraceMs{0, 3'600'000};
constexpr Range kOpenFiles{0, int64_t{1} << 30};
constexpr Range kMemoryMax{4'096, kMaxBytes};
constexpr Range kCpuMax{1, 1'000'000'000};
constexpr Range kPidsMax{1, 4'194'304};
constexpr Range kLogBytes{4'096, int64_t{1} << 40};
constexpr Range kKeepFiles{0, 100};
constexpr Range kRetries{0, 1'000};

std::string rangeText(Range r) {
  return "must be in " + std::to_string(r.lo) + ".." + std::to_string(r.hi);
}

bool inRange(int64_t v, Range r) { return v >= r.lo && v <= r.hi; }

}  // namespace

std::string_view kindName(DaemonKind k) { return nameOf(kKinds, k); }
std::string_view restartPolicyName(RestartPolicy p) { return nameOf(kPolicies, p); }
std::string_view strategyName(PlacementStrategy s) { return nameOf(kStrategies, s); }
std::string_view constraintOpName(ConstraintOp o) { return nameOf(kOps, o); }
std::string_view checkTypeName(CheckType t) { return nameOf(kCheckTypes, t); }
std::string_view conditionName(DependencyCondition c) { return nameOf(kConditions, c); }
std::string_view onTimeoutName(OnTimeout o) { return nameOf(kOnTimeouts, o); }
std::string_view missedRunName(MissedRunPolicy m) { return nameOf(kMissed, m); }

// ---------------------------------------------------------------------------------------
// Signals.

namespace {
constexpr std::array<std::pair<std::string_view, int>, 12> kSignals = {{
    {"TERM", SIGTERM}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
    {"HUP", SIGHUP}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH},
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"PWR", SIGPWR}, {"STOP", SIGSTOP},
}};
}  // namespace

Result<int> signalNumber(std::string_view name) {
  if (!name.empty() && std::isdigit(static_cast<unsigned char>(name[0]))) {
    int v = 0;
    auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
    if (ec == std::errc() && p == name.data() + name.size() && v >= 1 && v <= 64) return v;
    return Status::invalid("unknown signal '" + std::string(name) + "'");
  }
  std::string_view n = name;
  if (n.substr(0, 3) == "SIG") n.remove_prefix(3);
  for (const auto& [s, v] : kSignals) {
    if (s == n && v != SIGSTOP) return v;
  }
  return Status::invalid("unknown signal '" + std::string(name) +
                         "' (use SIGTERM, SIGINT, SIGQUIT, SIGKILL, SIGHUP, SIGUSR1, SIGUSR2, "
                         "SIGWINCH, SIGABRT, SIGALRM, SIGPWR or a number)");
}

// ---------------------------------------------------------------------------------------
// validate / validateSet / startOrder.

namespace {

bool validName(std::string_view n) {
  if (n.empty() || n.size() > 63) return false;
  if (!std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

bool hasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

Status checkRange(std::string_view key, int64_t v, Range r) {
  if (inRange(v, r)) return Status::ok();
  return Status::invalid(std::string(key) + ": " + std::to_string(v) + " " + rangeText(r));
}

Status validateCheck(std::string_view which, const HealthCheck& c) {
  std::string p = "health." + std::string(which) + ".";
  switch (c.type) {
    case CheckType::kExec:
      if (c.command.empty() || c.command[0].empty()) {
        return Status::invalid(p + "command: an exec check needs a non-empty command");
      }
      for (const auto& a : c.command) {
        if (hasNul(a)) return Status::invalid(p + "command: NUL byte in an argument");
      }
      break;
    case CheckType::kTcp:
    case CheckType::kHttp:
      MESHOS_RETURN_IF_ERROR(checkRange(p + "port", c.port, kPort));
      if (c.host.empty() || hasNul(c.host)) return Status::invalid(p + "host: must be set");
      if (c.type == CheckType::kHttp && (c.path.empty() || c.path[0] != '/')) {
        return Status::invalid(p + "path: must start with '/'");
      }
      break;
  }
  MESHOS_RETURN_IF_ERROR(checkRange(p + "interval_ms", c.interval_ms, kPositiveMs));
  MESHOS_RETURN_IF_ERROR(checkRange(p + "timeout_ms", c.timeout_ms, kPositiveMs));
  MESHOS_RETURN_IF_ERROR(checkRange(p + "failure_threshold", c.failure_threshold, kThreshold));
  MESHOS_RETURN_IF_ERROR(checkRange(p + "success_threshold", c.success_threshold, kThreshold));
  MESHOS_RETURN_IF_ERROR(checkRange(p + "initial_delay_ms", c.initial_delay_ms, kDelayMs));
  return Status::ok();
}

Status validateInner(const DaemonSpec& s) {
  if (!validName(s.name)) {
    return Status::invalid("name: '" + s.name +
                           "' is not a valid daemon name (1-63 characters: letters, digits, "
                           "'-', '_', '.'; starting with a letter or digit)");
  }
  if (s.command.empty()) return Status::invalid("command: argv is empty");
  if (s.command[0].empty()) return Status::invalid("command: the program (argv[0]) is empty");
  for (const auto& a : s.command) {
    if (hasNul(a)) return Status::invalid("command: NUL byte in an argument");
  }
  for (const auto& [k, v] : s.env) {
    if (k.empty() || k.find('=') != std::string::npos || hasNul(k) || hasNul(v)) {
      return Status::invalid("env: bad variable name '" + k + "'");
    }
  }
  if (hasNul(s.workdir) || (!s.workdir.empty() && s.workdir[0] != '/')) {
    return Status::invalid("workdir: must be an absolute path");
  }
  if (hasNul(s.user)) return Status::invalid("user: NUL byte");
  MESHOS_RETURN_IF_ERROR(checkRange("replicas", s.replicas, kReplicas));
  if (s.kind != DaemonKind::kService && s.replicas != 1) {
    return Status::invalid("replicas: only a service has replicas (kind is " +
                           std::string(kindName(s.kind)) + ")");
  }
  if (s.kind == DaemonKind::kCron) {
    if (s.schedule.empty()) return Status::invalid("schedule: a cron daemon needs a schedule");
    auto c = parseCron(s.schedule);
    if (!c) return c.status().withContext("schedule");
  } else if (!s.schedule.empty()) {
    return Status::invalid("schedule: only a cron daemon has a schedule (kind is " +
                           std::string(kindName(s.kind)) + ")");
  }
  MESHOS_RETURN_IF_ERROR(checkRange("resources.cpu_millicores", s.resources.cpu_millicores,
                                    kMillicores));
  MESHOS_RETURN_IF_ERROR(checkRange("resources.memory_bytes", s.resources.memory_bytes, kBytes));
  if (s.placement.strategy == PlacementStrategy::kNear && s.placement.near.empty()) {
    return Status::invalid("placement.near: strategy near needs a target");
  }
  if (s.placement.strategy != PlacementStrategy::kNear && !s.placement.near.empty()) {
    return Status::invalid("placement.near: a target is only used with strategy near");
  }
  for (const auto& c : s.placement.constraints) {
    if (c.label.empty()) return Status::invalid("placement.constraints: empty label");
    if (c.values.empty()) {
      return Status::invalid("placement.constraints: '" + c.label + "' has no values");
    }
    if (c.op == ConstraintOp::kEquals && c.values.size() != 1) {
      return Status::invalid("placement.constraints: '" + c.label +
                             "' equals takes exactly one value");
    }
  }
  for (const auto& c : s.placement.capabilities) {
    if (c.empty()) return Status::invalid("placement.capabilities: empty capability");
  }
  MESHOS_RETURN_IF_ERROR(checkRange("placement.max_per_node", s.placement.max_per_node, kPerNode));
  MESHOS_RETURN_IF_ERROR(checkRange("backoff.initial_ms", s.backoff.initial_ms, kDelayMs));
  MESHOS_RETURN_IF_ERROR(checkRange("backoff.max_ms", s.backoff.max_ms, kDelayMs));
  if (s.backoff.max_ms < s.backoff.initial_ms) {
    return Status::invalid("backoff.max_ms: " + std::to_string(s.backoff.max_ms) +
                           " is below backoff.initial_ms " + std::to_string(s.backoff.initial_ms));
  }
  if (!(s.backoff.factor >= 1.0 && s.backoff.factor <= 100.0)) {
    return Status::invalid("backoff.factor: " + std::to_string(s.backoff.factor) +
                           " must be in 1.0..100.0");
  }
  if (!(s.backoff.jitter >= 0.0 && s.backoff.jitter <= 1.0)) {
    return Status::invalid("backoff.jitter: " + std::to_string(s.backoff.jitter) +
                           " must be in 0.0..1.0");
  }
  MESHOS_RETURN_IF_ERROR(checkRange("backoff.reset_after_ms", s.backoff.reset_after_ms, kDelayMs));
  MESHOS_RETURN_IF_ERROR(checkRange("crash_loop.max_crashes", s.crash_loop.max_crashes, kCrashes));
  MESHOS_RETURN_IF_ERROR(checkRange("crash_loop.window_ms", s.crash_loop.window_ms, kPositiveMs));
  MESHOS_RETURN_IF_ERROR(checkRange("crash_loop.cooldown_ms", s.crash_loop.cooldown_ms, kWeekMs));
  if (s.success_exit_codes.empty()) {
    return Status::invalid("success_exit_codes: at least one code is needed");
  }
  for (int64_t c : s.success_exit_codes) {
    MESHOS_RETURN_IF_ERROR(checkRange("success_exit_codes", c, kExitCode));
  }
  if (s.health.startup) MESHOS_RETURN_IF_ERROR(validateCheck("startup", *s.health.startup));
  if (s.health.liveness) MESHOS_RETURN_IF_ERROR(validateCheck("liveness", *s.health.liveness));
  if (s.health.readiness) MESHOS_RETURN_IF_ERROR(validateCheck("readiness", *s.health.readiness));
  std::set<std::string> deps;
  for (const auto& d : s.depends_on) {
    if (!validName(d.name)) return Status::invalid("depends_on: bad name '" + d.name + "'");
    if (d.name == s.name) return Status::invalid("depends_on: '" + s.name + "' depends on itself");
    if (!deps.insert(d.name).second) {
      return Status::invalid("depends_on: '" + d.name + "' listed twice");
    }
    MESHOS_RETURN_IF_ERROR(checkRange("depends_on.timeout_ms", d.timeout_ms, kDelayMs));
  }
  auto sig = signalNumber(s.stop_signal);
  if (!sig) return sig.status().withContext("stop_signal");
  MESHOS_RETURN_IF_ERROR(checkRange("stop_grace_ms", s.stop_grace_ms, kGraceMs));
  if (s.limits.open_files) {
    MESHOS_RETURN_IF_ERROR(checkRange("limits.open_files", *s.limits.open_files, kOpenFiles));
  }
  if (s.limits.core_size) {
    MESHOS_RETURN_IF_ERROR(checkRange("limits.core_size", *s.limits.core_size, kBytes));
  }
  if (s.limits.memory_max) {
    MESHOS_RETURN_IF_ERROR(checkRange("limits.memory_max", *s.limits.memory_max, kMemoryMax));
  }
  if (s.limits.cpu_max_millicores) {
    MESHOS_RETURN_IF_ERROR(
        checkRange("limits.cpu_max_millicores", *s.limits.cpu_max_millicores, kCpuMax));
  }
  if (s.limits.pids_max) {
    MESHOS_RETURN_IF_ERROR(checkRange("limits.pids_max", *s.limits.pids_max, kPidsMax));
  }
  MESHOS_RETURN_IF_ERROR(checkRange("logs.max_bytes", s.logs.max_bytes, kLogBytes));
  MESHOS_RETURN_IF_ERROR(checkRange("logs.keep_files", s.logs.keep_files, kKeepFiles));
  MESHOS_RETURN_IF_ERROR(checkRange("job_retries", s.job_retries, kRetries));
  if (s.kind == DaemonKind::kService && s.job_retries != 0) {
    return Status::invalid("job_retries: only jobs and cron daemons retry (use restart for a "
                           "service)");
  }
  return Status::ok();
}

}  // namespace

Status validate(const DaemonSpec& spec) {
  Status s = validateInner(spec);
  if (s) s = checkVariables(spec);
  if (!s) {
    return s.withContext("daemon '" + (spec.name.empty() ? std::string("?") : spec.name) + "'");
  }
  return s;
}

Result<std::vector<std::string>> startOrder(const std::vector<DaemonSpec>& specs) {
  std::map<std::string, const DaemonSpec*> by_name;
  for (const auto& s : specs) by_name[s.name] = &s;
  // Depth-first search in name order; the stack gives the cycle when one closes.
  enum Mark { kNone, kActive, kDone };
  std::map<std::string, Mark> mark;
  std::vector<std::string> order;
  std::vector<std::string> stack;
  std::optional<Status> failure;
  std::function<void(const std::string&)> visit = [&](const std::string& n) {
    if (failure) return;
    Mark& m = mark[n];
    if (m == kDone) return;
    if (m == kActive) {
      auto it = std::find(stack.begin(), stack.end(), n);
      std::string cycle;
      for (; it != stack.end(); ++it) cycle += *it + " -> ";
      cycle += n;
      failure = Status::invalid("dependency cycle: " + cycle);
      return;
    }
    m = kActive;
    stack.push_back(n);
    auto found = by_name.find(n);
    if (found != by_name.end()) {
      std::vector<std::string> deps;
      for (const auto& d : found->second->depends_on) deps.push_back(d.name);
      std::sort(deps.begin(), deps.end());
      for (const auto& d : deps) {
        if (by_name.count(d) != 0) visit(d);
        if (failure) return;
      }
    }
    stack.pop_back();
    mark[n] = kDone;
    order.push_back(n);
  };
  for (const auto& [n, s] : by_name) visit(n);
  if (failure) return *failure;
  return order;
}

Status validateSet(const std::vector<DaemonSpec>& specs) {
  std::set<std::string> names;
  for (const auto& s : specs) {
    MESHOS_RETURN_IF_ERROR(validate(s));
    if (!names.insert(s.name).second) {
      return Status::invalid("daemon '" + s.name + "' is defined twice");
    }
  }
  for (const auto& s : specs) {
    for (const auto& d : s.depends_on) {
      if (names.count(d.name) == 0) {
        return Status::invalid("daemon '" + s.name + "': depends_on: unknown daemon '" + d.name +
                               "'");
      }
    }
  }
  auto order = startOrder(specs);
  if (!order) return order.status();
  return Status::ok();
}

// ---------------------------------------------------------------------------------------
// Canonical form.

DaemonSpec normalized(DaemonSpec s) {
  auto sortUnique = [](auto& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  };
  sortUnique(s.success_exit_codes);
  sortUnique(s.placement.capabilities);
  for (auto& c : s.placement.constraints) sortUnique(c.values);
  std::sort(s.placement.constraints.begin(), s.placement.constraints.end(),
            [](const Constraint& a, const Constraint& b) {
              if (a.label != b.label) return a.label < b.label;
              if (a.op != b.op) return a.op < b.op;
              return a.values < b.values;
            });
  std::sort(s.depends_on.begin(), s.depends_on.end(),
            [](const Dependency& a, const Dependency& b) { return a.name < b.name; });
  if (auto sig = signalNumber(s.stop_signal); sig) {
    for (const auto& [n, v] : kSignals) {
      if (v == *sig) s.stop_signal = "SIG" + std::string(n);
    }
  }
  return s;
}

bool canonicalEqual(const DaemonSpec& a, const DaemonSpec& b) {
  return normalized(a) == normalized(b);
}

// ---------------------------------------------------------------------------------------
// Cap'n Proto.

namespace {

void textList(capnp::List<capnp::Text>::Builder out, const std::vector<std::string>& in) {
  for (size_t i = 0; i < in.size(); ++i) out.set(static_cast<unsigned>(i), in[i]);
}

std::vector<std::string> textList(capnp::List<capnp::Text>::Reader in) {
  std::vector<std::string> out;
  out.reserve(in.size());
  for (auto t : in) out.emplace_back(t.cStr(), t.size());
  return out;
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

void checkToCapnp(proto::HealthCheck::Builder b, const HealthCheck& c) {
  b.setType(static_cast<proto::CheckType>(c.type));
  textList(b.initCommand(static_cast<unsigned>(c.command.size())), c.command);
  b.setHost(c.host);
  b.setPort(c.port);
  b.setPath(c.path);
  b.setIntervalMs(c.interval_ms);
  b.setTimeoutMs(c.timeout_ms);
  b.setFailureThreshold(c.failure_threshold);
  b.setSuccessThreshold(c.success_threshold);
  b.setInitialDelayMs(c.initial_delay_ms);
}

template <class E>
Result<E> enumFrom(uint16_t raw, uint16_t count, std::string_view what) {
  if (raw >= count) {
    return Status::invalid(std::string(what) + ": unknown enum value " + std::to_string(raw));
  }
  return static_cast<E>(raw);
}

Result<HealthCheck> checkFromCapnp(proto::HealthCheck::Reader r) {
  HealthCheck c;
  auto t = enumFrom<CheckType>(static_cast<uint16_t>(r.getType()), 3, "health check type");
  if (!t) return t.status();
  c.type = *t;
  c.command = textList(r.getCommand());
  c.host = text(r.getHost());
  c.port = r.getPort();
  c.path = text(r.getPath());
  c.interval_ms = r.getIntervalMs();
  c.timeout_ms = r.getTimeoutMs();
  c.failure_threshold = r.getFailureThreshold();
  c.success_threshold = r.getSuccessThreshold();
  c.initial_delay_ms = r.getInitialDelayMs();
  return c;
}

int64_t optOrUnset(const std::optional<int64_t>& v) { return v ? *v : -1; }
std::optional<int64_t> unsetOrOpt(int64_t v) {
  return v == -1 ? std::nullopt : std::optional<int64_t>(v);
}

}  // namespace

void toCapnp(proto::DaemonSpec::Builder b, const DaemonSpec& s) {
  b.setName(s.name);
  b.setKind(static_cast<proto::DaemonKind>(s.kind));
  textList(b.initCommand(static_cast<unsigned>(s.command.size())), s.command);
  auto env = b.initEnv(static_cast<unsigned>(s.env.size()));
  unsigned i = 0;
  for (const auto& [k, v] : s.env) {
    env[i].setKey(k);
    env[i].setValue(v);
    ++i;
  }
  b.setWorkdir(s.workdir);
  b.setUser(s.user);
  b.setReplicas(s.replicas);
  b.setSchedule(s.schedule);
  b.setCpuMillicores(s.resources.cpu_millicores);
  b.setMemoryBytes(s.resources.memory_bytes);
  b.setStrategy(static_cast<proto::PlacementStrategy>(s.placement.strategy));
  b.setNear(s.placement.near);
  auto cons = b.initConstraints(static_cast<unsigned>(s.placement.constraints.size()));
  for (unsigned j = 0; j < cons.size(); ++j) {
    const auto& c = s.placement.constraints[j];
    cons[j].setLabel(c.label);
    cons[j].setOp(static_cast<proto::ConstraintOp>(c.op));
    textList(cons[j].initValues(static_cast<unsigned>(c.values.size())), c.values);
  }
  textList(b.initCapabilities(static_cast<unsigned>(s.placement.capabilities.size())),
           s.placement.capabilities);
  b.setMaxPerNode(s.placement.max_per_node);
  b.setRestart(static_cast<proto::RestartPolicy>(s.restart));
  b.setBackoffInitialMs(s.backoff.initial_ms);
  b.setBackoffFactor(s.backoff.factor);
  b.setBackoffMaxMs(s.backoff.max_ms);
  b.setBackoffJitter(s.backoff.jitter);
  b.setBackoffResetAfterMs(s.backoff.reset_after_ms);
  b.setCrashLoopMaxCrashes(s.crash_loop.max_crashes);
  b.setCrashLoopWindowMs(s.crash_loop.window_ms);
  b.setCrashLoopCooldownMs(s.crash_loop.cooldown_ms);
  auto codes = b.initSuccessExitCodes(static_cast<unsigned>(s.success_exit_codes.size()));
  for (unsigned j = 0; j < codes.size(); ++j) codes.set(j, s.success_exit_codes[j]);
  if (s.health.startup) checkToCapnp(b.initStartup(), *s.health.startup);
  if (s.health.liveness) checkToCapnp(b.initLiveness(), *s.health.liveness);
  if (s.health.readiness) checkToCapnp(b.initReadiness(), *s.health.readiness);
  auto deps = b.initDependsOn(static_cast<unsigned>(s.depends_on.size()));
  for (unsigned j = 0; j < deps.size(); ++j) {
    const auto& d = s.depends_on[j];
    deps[j].setName(d.name);
    deps[j].setCondition(static_cast<proto::DependencyCondition>(d.condition));
    deps[j].setTimeoutMs(d.timeout_ms);
    deps[j].setOnTimeout(static_cast<proto::OnTimeout>(d.on_timeout));
  }
  b.setStopSignal(s.stop_signal);
  b.setStopGraceMs(s.stop_grace_ms);
  b.setOpenFiles(optOrUnset(s.limits.open_files));
  b.setCoreSize(optOrUnset(s.limits.core_size));
  b.setMemoryMax(optOrUnset(s.limits.memory_max));
  b.setCpuMaxMillicores(optOrUnset(s.limits.cpu_max_millicores));
  b.setPidsMax(optOrUnset(s.limits.pids_max));
  b.setLogMaxBytes(s.logs.max_bytes);
  b.setLogKeepFiles(s.logs.keep_files);
  b.setJobRetries(s.job_retries);
  b.setMissedRuns(static_cast<proto::MissedRunPolicy>(s.missed_runs));
}

namespace {

Result<DaemonSpec> fromCapnpInner(proto::DaemonSpec::Reader r) {
  DaemonSpec s;
  s.name = text(r.getName());
#define MESHOS_ENUM(field, Type, getter, count, what)                                  \
  {                                                                                    \
    auto e = enumFrom<Type>(static_cast<uint16_t>(r.getter()), count, what);           \
    if (!e) return e.status();                                                         \
    field = *e;                                                                        \
  }
  MESHOS_ENUM(s.kind, DaemonKind, getKind, 3, "kind")
  s.command = textList(r.getCommand());
  for (auto e : r.getEnv()) s.env[text(e.getKey())] = text(e.getValue());
  s.workdir = text(r.getWorkdir());
  s.user = text(r.getUser());
  s.replicas = r.getReplicas();
  s.schedule = text(r.getSchedule());
  s.resources.cpu_millicores = r.getCpuMillicores();
  s.resources.memory_bytes = r.getMemoryBytes();
  MESHOS_ENUM(s.placement.strategy, PlacementStrategy, getStrategy, 3, "placement.strategy")
  s.placement.near = text(r.getNear());
  for (auto c : r.getConstraints()) {
    Constraint k;
    k.label = text(c.getLabel());
    auto op = enumFrom<ConstraintOp>(static_cast<uint16_t>(c.getOp()), 3, "constraint op");
    if (!op) return op.status();
    k.op = *op;
    k.values = textList(c.getValues());
    s.placement.constraints.push_back(std::move(k));
  }
  s.placement.capabilities = textList(r.getCapabilities());
  s.placement.max_per_node = r.getMaxPerNode();
  MESHOS_ENUM(s.restart, RestartPolicy, getRestart, 3, "restart")
  s.backoff.initial_ms = r.getBackoffInitialMs();
  s.backoff.factor = r.getBackoffFactor();
  s.backoff.max_ms = r.getBackoffMaxMs();
  s.backoff.jitter = r.getBackoffJitter();
  s.backoff.reset_after_ms = r.getBackoffResetAfterMs();
  s.crash_loop.max_crashes = r.getCrashLoopMaxCrashes();
  s.crash_loop.window_ms = r.getCrashLoopWindowMs();
  s.crash_loop.cooldown_ms = r.getCrashLoopCooldownMs();
  s.success_exit_codes.clear();
  for (int64_t c : r.getSuccessExitCodes()) s.success_exit_codes.push_back(c);
  if (r.hasStartup()) {
    auto c = checkFromCapnp(r.getStartup());
    if (!c) return c.status();
    s.health.startup = *c;
  }
  if (r.hasLiveness()) {
    auto c = checkFromCapnp(r.getLiveness());
    if (!c) return c.status();
    s.health.liveness = *c;
  }
  if (r.hasReadiness()) {
    auto c = checkFromCapnp(r.getReadiness());
    if (!c) return c.status();
    s.health.readiness = *c;
  }
  for (auto d : r.getDependsOn()) {
    Dependency dep;
    dep.name = text(d.getName());
    auto c = enumFrom<DependencyCondition>(static_cast<uint16_t>(d.getCondition()), 3,
                                           "depends_on.condition");
    if (!c) return c.status();
    dep.condition = *c;
    dep.timeout_ms = d.getTimeoutMs();
    auto o = enumFrom<OnTimeout>(static_cast<uint16_t>(d.getOnTimeout()), 3,
                                 "depends_on.on_timeout");
    if (!o) return o.status();
    dep.on_timeout = *o;
    s.depends_on.push_back(std::move(dep));
  }
  s.stop_signal = text(r.getStopSignal());
  s.stop_grace_ms = r.getStopGraceMs();
  s.limits.open_files = unsetOrOpt(r.getOpenFiles());
  s.limits.core_size = unsetOrOpt(r.getCoreSize());
  s.limits.memory_max = unsetOrOpt(r.getMemoryMax());
  s.limits.cpu_max_millicores = unsetOrOpt(r.getCpuMaxMillicores());
  s.limits.pids_max = unsetOrOpt(r.getPidsMax());
  s.logs.max_bytes = r.getLogMaxBytes();
  s.logs.keep_files = r.getLogKeepFiles();
  s.job_retries = r.getJobRetries();
  MESHOS_ENUM(s.missed_runs, MissedRunPolicy, getMissedRuns, 2, "missed_runs")
#undef MESHOS_ENUM
  MESHOS_RETURN_IF_ERROR(validate(s));
  return s;
}

}  // namespace

Result<DaemonSpec> fromCapnp(proto::DaemonSpec::Reader reader) {
  try {
    return fromCapnpInner(reader);
  } catch (const kj::Exception& e) {
    return Status::corruption("daemon spec: " + std::string(e.getDescription().cStr()));
  }
}

Bytes canonicalBytes(const DaemonSpec& spec) {
  capnp::MallocMessageBuilder msg;
  toCapnp(msg.initRoot<proto::DaemonSpec>(), normalized(spec));
  auto words = capnp::canonicalize(msg.getRoot<proto::DaemonSpec>().asReader());
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

Result<DaemonSpec> fromBytes(ByteView bytes) {
  if (bytes.size() % sizeof(capnp::word) != 0 || bytes.empty()) {
    return Status::corruption("daemon spec: byte length " + std::to_string(bytes.size()) +
                              " is not a whole number of words");
  }
  try {
    // Copy into aligned words; canonical form is a single flat segment without a table.
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), bytes.data(), bytes.size());
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = 1 << 20;
    opts.nestingLimit = 16;
    kj::ArrayPtr<const capnp::word> segments[1] = {words.asPtr()};
    capnp::SegmentArrayMessageReader reader(kj::arrayPtr(segments, 1), opts);
    return fromCapnp(reader.getRoot<proto::DaemonSpec>());
  } catch (const kj::Exception& e) {
    return Status::corruption("daemon spec: " + std::string(e.getDescription().cStr()));
  }
}

// ---------------------------------------------------------------------------------------
// TOML.

namespace {

// Reads one TOML table strictly: each accessor records the key as known; finish() reports
// the first unknown key. Errors carry "<source>:<line>: <path><key>: ...".
class TableReader {
 public:
  TableReader(const toml::table& t, std::string_view source, std::string path, Status* err)
      : t_(t), source_(source), path_(std::move(path)), err_(err) {}

  bool failed() const { return !err_->isOk(); }

  void fail(const toml::source_region& where, std::string_view key, const std::string& msg) {
    if (failed()) return;
    *err_ = Status::invalid(std::string(source_) + ":" + std::to_string(where.begin.line) + ": " +
                            path_ + std::string(key) + ": " + msg);
  }
  void failHere(std::string_view key, const std::string& msg) {
    const toml::node* n = t_.get(key);
    fail(n != nullptr ? n->source() : t_.source(), key, msg);
  }

  const toml::node* get(std::string_view key) {
    known_.insert(std::string(key));
    return t_.get(key);
  }

  void str(std::string_view key, std::string& out) {
    const toml::node* n = get(key);
    if (n == nullptr || failed()) return;
    if (!n->is_string()) return fail(n->source(), key, "expected a string");
    out = n->as_string()->get();
  }
  void integer(std::string_view key, int64_t& out, Range r) {
    const toml::node* n = get(key);
    if (n == nullptr || failed()) return;
    if (!n->is_integer()) return fail(n->source(), key, "expected an integer");
    int64_t v = n->as_integer()->get();
    if (!inRange(v, r)) return fail(n->source(), key, std::to_string(v) + " " + rangeText(r));
    out = v;
  }
  void optInteger(std::string_view key, std::optional<int64_t>& out, Range r) {
    if (t_.get(key) == nullptr) {
      known_.insert(std::string(key));
      return;
    }
    int64_t v = 0;
    integer(key, v, r);
    if (!failed()) out = v;
  }
  void real(std::string_view key, double& out, double lo, double hi) {
    const toml::node* n = get(key);
    if (n == nullptr || failed()) return;
    double v = 0;
    if (n->is_floating_point()) v = n->as_floating_point()->get();
    else if (n->is_integer()) v = static_cast<double>(n->as_integer()->get());
    else return fail(n->source(), key, "expected a number");
    if (!(v >= lo && v <= hi)) {
      return fail(n->source(), key,
                  std::to_string(v) + " must be in " + std::to_string(lo) + ".." +
                      std::to_string(hi));
    }
    out = v;
  }
  void strings(std::string_view key, std::vector<std::string>& out) {
    const toml::node* n = get(key);
    if (n == nullptr || failed()) return;
    if (!n->is_array()) return fail(n->source(), key, "expected an array of strings");
    std::vector<std::string> v;
    for (const auto& e : *n->as_array()) {
      if (!e.is_string()) return fail(e.source(), key, "expected an array of strings");
      v.push_back(e.as_string()->get());
    }
    out = std::move(v);
  }
  void integers(std::string_view key, std::vector<int64_t>& out, Range r) {
    const toml::node* n = get(key);
    if (n == nullptr || failed()) return;
    if (!n->is_array()) return fail(n->source(), key, "expected an array of integers");
    std::vector<int64_t> v;
    for (const auto& e : *n->as_array()) {
      if (!e.is_integer()) return fail(e.source(), key, "expected an array of integers");
      int64_t x = e.as_integer()->get();
      if (!inRange(x, r)) return fail(e.source(), key, std::to_string(x) + " " + rangeText(r));
      v.push_back(x);
    }
    out = std::move(v);
  }
  template <class E, size_t N>
  void enumeration(std::string_view key, E& out, const NameTable<E, N>& names) {
    const toml::node* n = get(key);
    if (n == nullptr || failed()) return;
    if (!n->is_string()) return fail(n->source(), key, "expected one of " + choices(names));
    auto v = parseName(names, n->as_string()->get());
    if (!v) {
      return fail(n->source(), key,
                  "'" + std::string(n->as_string()->get()) + "' is not one of " + choices(names));
    }
    out = *v;
  }
  // A sub-table; nullptr if absent (or wrong type, which fails).
  const toml::table* table(std::string_view key) {
    const toml::node* n = get(key);
    if (n == nullptr || failed()) return nullptr;
    if (!n->is_table()) {
      fail(n->source(), key, "expected a table");
      return nullptr;
    }
    return n->as_table();
  }
  std::string childPath(std::string_view key) const { return path_ + std::string(key) + "."; }

  void finish() {
    if (failed()) return;
    for (const auto& [k, v] : t_) {
      if (known_.count(std::string(k.str())) == 0) {
        fail(k.source(), k.str(), "unknown key");
        return;
      }
    }
  }

 private:
  const toml::table& t_;
  std::string_view source_;
  std::string path_;
  Status* err_;
  std::set<std::string> known_;
};

void readCheck(const toml::table& t, std::string_view source, const std::string& path,
               HealthCheck& c, Status* err) {
  TableReader r(t, source, path, err);
  if (t.get("type") == nullptr) {
    r.failHere("type", "missing (exec | tcp | http)");
    return;
  }
  r.enumeration("type", c.type, kCheckTypes);
  r.strings("command", c.command);
  r.str("host", c.host);
  r.integer("port", c.port, kPort);
  r.str("path", c.path);
  r.integer("interval_ms", c.interval_ms, kPositiveMs);
  r.integer("timeout_ms", c.timeout_ms, kPositiveMs);
  r.integer("failure_threshold", c.failure_threshold, kThreshold);
  r.integer("success_threshold", c.success_threshold, kThreshold);
  r.integer("initial_delay_ms", c.initial_delay_ms, kDelayMs);
  r.finish();
}

void readDaemon(const toml::table& t, std::string_view source, DaemonSpec& s, Status* err) {
  std::string who = "daemon: ";
  if (const toml::node* n = t.get("name"); n != nullptr && n->is_string()) {
    who = "daemon '" + std::string(n->as_string()->get()) + "': ";
  }
  TableReader r(t, source, who, err);
  r.str("name", s.name);
  r.enumeration("kind", s.kind, kKinds);
  r.strings("command", s.command);
  if (const toml::table* env = r.table("env")) {
    for (const auto& [k, v] : *env) {
      if (!v.is_string()) {
        r.fail(v.source(), "env." + std::string(k.str()), "expected a string");
        return;
      }
      s.env[std::string(k.str())] = v.as_string()->get();
    }
  }
  r.str("workdir", s.workdir);
  r.str("user", s.user);
  r.integer("replicas", s.replicas, kReplicas);
  r.str("schedule", s.schedule);
  r.integers("success_exit_codes", s.success_exit_codes, kExitCode);
  r.str("stop_signal", s.stop_signal);
  r.integer("stop_grace_ms", s.stop_grace_ms, kGraceMs);
  r.integer("job_retries", s.job_retries, kRetries);
  r.enumeration("missed_runs", s.missed_runs, kMissed);
  r.enumeration("restart", s.restart, kPolicies);
  if (const toml::table* x = r.table("resources")) {
    TableReader q(*x, source, r.childPath("resources"), err);
    q.integer("cpu_millicores", s.resources.cpu_millicores, kMillicores);
    q.integer("memory_bytes", s.resources.memory_bytes, kBytes);
    q.finish();
  }
  if (const toml::table* x = r.table("placement")) {
    TableReader q(*x, source, r.childPath("placement"), err);
    q.enumeration("strategy", s.placement.strategy, kStrategies);
    q.str("near", s.placement.near);
    q.strings("capabilities", s.placement.capabilities);
    q.integer("max_per_node", s.placement.max_per_node, kPerNode);
    const toml::node* cons = q.get("constraints");
    if (cons != nullptr && !q.failed()) {
      if (!cons->is_array()) {
        q.fail(cons->source(), "constraints", "expected an array of tables");
      } else {
        for (const auto& e : *cons->as_array()) {
          if (!e.is_table()) {
            q.fail(e.source(), "constraints", "expected a table {label = ..., equals = ...}");
            break;
          }
          TableReader c(*e.as_table(), source, r.childPath("placement") + "constraints.", err);
          Constraint k;
          c.str("label", k.label);
          int ops = 0;
          if (e.as_table()->get("equals") != nullptr) {
            std::string v;
            c.str("equals", v);
            k.op = ConstraintOp::kEquals;
            k.values = {v};
            ++ops;
          }
          if (e.as_table()->get("in") != nullptr) {
            c.strings("in", k.values);
            k.op = ConstraintOp::kIn;
            ++ops;
          }
          if (e.as_table()->get("not_in") != nullptr) {
            c.strings("not_in", k.values);
            k.op = ConstraintOp::kNotIn;
            ++ops;
          }
          if (ops != 1 && !c.failed()) {
            c.fail(e.source(), "", "a constraint needs exactly one of equals, in, not_in");
          }
          if (k.label.empty() && !c.failed()) c.fail(e.source(), "label", "missing");
          c.finish();
          if (c.failed()) break;
          s.placement.constraints.push_back(std::move(k));
        }
      }
    }
    q.finish();
  }
  if (const toml::table* x = r.table("backoff")) {
    TableReader q(*x, source, r.childPath("backoff"), err);
    q.integer("initial_ms", s.backoff.initial_ms, kDelayMs);
    q.real("factor", s.backoff.factor, 1.0, 100.0);
    q.integer("max_ms", s.backoff.max_ms, kDelayMs);
    q.real("jitter", s.backoff.jitter, 0.0, 1.0);
    q.integer("reset_after_ms", s.backoff.reset_after_ms, kDelayMs);
    q.finish();
  }
  if (const toml::table* x = r.table("crash_loop")) {
    TableReader q(*x, source, r.childPath("crash_loop"), err);
    q.integer("max_crashes", s.crash_loop.max_crashes, kCrashes);
    q.integer("window_ms", s.crash_loop.window_ms, kPositiveMs);
    q.integer("cooldown_ms", s.crash_loop.cooldown_ms, kWeekMs);
    q.finish();
  }
  if (const toml::table* x = r.table("health")) {
    TableReader q(*x, source, r.childPath("health"), err);
    for (std::string_view which : {"startup", "liveness", "readiness"}) {
      if (const toml::table* c = q.table(which)) {
        HealthCheck hc;
        readCheck(*c, source, q.childPath(which), hc, err);
        if (which == "startup") s.health.startup = hc;
        else if (which == "liveness") s.health.liveness = hc;
        else s.health.readiness = hc;
      }
    }
    q.finish();
  }
  if (const toml::table* x = r.table("limits")) {
    TableReader q(*x, source, r.childPath("limits"), err);
    q.optInteger("open_files", s.limits.open_files, kOpenFiles);
    q.optInteger("core_size", s.limits.core_size, kBytes);
    q.optInteger("memory_max", s.limits.memory_max, kMemoryMax);
    q.optInteger("cpu_max_millicores", s.limits.cpu_max_millicores, kCpuMax);
    q.optInteger("pids_max", s.limits.pids_max, kPidsMax);
    q.finish();
  }
  if (const toml::table* x = r.table("logs")) {
    TableReader q(*x, source, r.childPath("logs"), err);
    q.integer("max_bytes", s.logs.max_bytes, kLogBytes);
    q.integer("keep_files", s.logs.keep_files, kKeepFiles);
    q.finish();
  }
  const toml::node* deps = r.get("depends_on");
  if (deps != nullptr && !r.failed()) {
    if (!deps->is_array()) {
      r.fail(deps->source(), "depends_on", "expected an array of names or tables");
    } else {
      for (const auto& e : *deps->as_array()) {
        Dependency d;
        if (e.is_string()) {
          d.name = e.as_string()->get();
        } else if (e.is_table()) {
          TableReader q(*e.as_table(), source, r.childPath("depends_on"), err);
          if (e.as_table()->get("name") == nullptr) q.fail(e.source(), "name", "missing");
          q.str("name", d.name);
          q.enumeration("condition", d.condition, kConditions);
          q.integer("timeout_ms", d.timeout_ms, kDelayMs);
          q.enumeration("on_timeout", d.on_timeout, kOnTimeouts);
          q.finish();
        } else {
          r.fail(e.source(), "depends_on", "expected a name or a table {name = ...}");
        }
        if (r.failed()) break;
        s.depends_on.push_back(std::move(d));
      }
    }
  }
  r.finish();
}

}  // namespace

Result<std::vector<DaemonSpec>> parseDaemonsToml(std::string_view text,
                                                 std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return Status::invalid(std::string(source_name) + ":" +
                           std::to_string(e.source().begin.line) + ": " +
                           std::string(e.description()));
  }
  Status err;
  for (const auto& [k, v] : root) {
    if (k.str() != "daemon") {
      return Status::invalid(std::string(source_name) + ":" + std::to_string(k.source().begin.line) +
                             ": " + std::string(k.str()) +
                             ": unknown key (a daemons file holds [[daemon]] tables)");
    }
  }
  std::vector<DaemonSpec> specs;
  const toml::node* list = root.get("daemon");
  if (list == nullptr) return specs;
  if (!list->is_array_of_tables()) {
    return Status::invalid(std::string(source_name) + ":" +
                           std::to_string(list->source().begin.line) +
                           ": daemon: expected [[daemon]] tables");
  }
  for (const auto& node : *list->as_array()) {
    const toml::table& t = *node.as_table();
    DaemonSpec s;
    readDaemon(t, source_name, s, &err);
    if (!err) return err;
    const std::string where =
        std::string(source_name) + ":" + std::to_string(t.source().begin.line);
    if (t.get("name") == nullptr) return Status::invalid(where + ": name: missing");
    if (t.get("command") == nullptr) {
      return Status::invalid(where + ": daemon '" + s.name + "': command: missing");
    }
    Status v = validate(s);
    if (!v) return v.withContext(where);
    specs.push_back(std::move(s));
  }
  Status set = validateSet(specs);
  if (!set) return set.withContext(source_name);
  return specs;
}

}  // namespace meshos::spec
