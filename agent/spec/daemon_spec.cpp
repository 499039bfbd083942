// DaemonSpec: enum names, signals, validation (one spec, and a set), the canonical form.
#include "agent/spec/daemon_spec.h"

#include "agent/core/sealed_secret.h"

#include <csignal>

#include <algorithm>
#include <array>
#include <charconv>
#include <functional>
#include <limits>
#include <set>

#include "agent/spec/cron.h"
#include "agent/spec/interpolate.h"
#include "agent/spec/spec_tables.h"

namespace meshos::spec {

using namespace detail;

std::string_view kindName(DaemonKind k) { return nameOf(kKinds, k); }
std::string_view restartPolicyName(RestartPolicy p) { return nameOf(kPolicies, p); }
std::string_view strategyName(PlacementStrategy s) { return nameOf(kStrategies, s); }
std::string_view constraintOpName(ConstraintOp o) { return nameOf(kOps, o); }
std::string_view checkTypeName(CheckType t) { return nameOf(kCheckTypes, t); }
std::string_view conditionName(DependencyCondition c) { return nameOf(kConditions, c); }
std::string_view onTimeoutName(OnTimeout o) { return nameOf(kOnTimeouts, o); }
std::string_view missedRunName(MissedRunPolicy m) { return nameOf(kMissed, m); }
std::string_view limitsModeName(LimitsMode m) { return nameOf(kLimitsModes, m); }
std::string_view protocolName(PortProtocol p) { return nameOf(kProtocols, p); }
std::string_view onUpdateFailureName(OnUpdateFailure f) { return nameOf(kOnUpdateFailure, f); }
std::string_view groupStrategyName(GroupStrategy g) { return nameOf(kGroupStrategies, g); }
std::string_view runtimeKindName(RuntimeKind k) { return nameOf(kRuntimeKinds, k); }
std::string_view containerNetworkName(ContainerNetwork n) { return nameOf(kContainerNetworks, n); }

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

std::string permissionRefusal(const DaemonSpec& spec, std::string_view op, int signal) {
  const Permissions& p = spec.permissions;
  auto refused = [&](std::string_view key) {
    return "daemon " + spec.name + " does not allow " + std::string(op) + " ([daemon.permissions] " +
           std::string(key) + ")";
  };
  if ((op == "stop" || op == "quarantine" || op == "pause" || op == "disable") && !p.allow_stop) {
    return refused("allow_stop = false");
  }
  if (op == "restart" && !p.allow_restart) return refused("allow_restart = false");
  if (op == "exec" && !p.allow_exec) return refused("allow_exec = false");
  if (op == "signal" && p.allowed_signals &&
      std::find(p.allowed_signals->begin(), p.allowed_signals->end(), signal) == p.allowed_signals->end()) {
    return "daemon " + spec.name + " does not allow signal " + std::to_string(signal) +
           " (not in [daemon.permissions] allowed_signals)";
  }
  return "";
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

// A spec from a commit is rendered as JSON (snapshots, `meshos-admin show`), which takes
// UTF-8 only; TOML guarantees it, Cap'n Proto Text does not.
bool allTextUtf8(const DaemonSpec& s) {
  bool ok = isWireText(s.name) && isWireText(s.workdir) && isWireText(s.user) && isWireText(s.schedule) && isWireText(s.stop_signal) &&
            isWireText(s.placement.near) && isWireText(s.container.rootfs) && isWireText(s.container.image);
  for (const auto& c : s.container.capabilities) ok = ok && isWireText(c);
  for (const auto& a : s.command) ok = ok && isWireText(a);
  for (const auto& [k, v] : s.env) ok = ok && isWireText(k) && isWireText(v);
  for (const auto& [k, v] : s.secrets.env) ok = ok && isWireText(k);  // the names are checked as names
  for (const auto& c : s.placement.constraints) {
    ok = ok && isWireText(c.label);
    for (const auto& v : c.values) ok = ok && isWireText(v);
  }
  for (const auto& c : s.placement.capabilities) ok = ok && isWireText(c);
  for (const auto* check : {&s.health.startup, &s.health.liveness, &s.health.readiness}) {
    if (!check->has_value()) continue;
    ok = ok && isWireText((*check)->host) && isWireText((*check)->path);
    for (const auto& a : (*check)->command) ok = ok && isWireText(a);
  }
  for (const auto& d : s.depends_on) ok = ok && isWireText(d.name);
  return ok;
}

Status checkRange(std::string_view key, int64_t v, Range r) {
  if (inRange(v, r)) return Status::ok();
  return Status::invalid(std::string(key) + ": " + config::boundsText(r, v));
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

// A port name is an SRV label (`_http._tcp`): RFC 6335 service names, lower case.
bool validPortName(std::string_view n) {
  if (n.empty() || n.size() > 15 || n.front() == '-' || n.back() == '-') return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

Status validatePortsAndUpdate(const DaemonSpec& s) {
  std::set<std::string> names;
  std::set<std::pair<int64_t, PortProtocol>> numbers;
  for (const auto& p : s.ports) {
    if (!validPortName(p.name)) {
      return Status::invalid("ports: '" + p.name + "' is not a port name (1-15 of a-z, 0-9, '-'; not starting or ending with '-')");
    }
    MESHOS_RETURN_IF_ERROR(checkRange("ports." + p.name, p.port, kPort));
    if (!names.insert(p.name).second) return Status::invalid("ports: '" + p.name + "' named twice");
    if (!numbers.insert({p.port, p.protocol}).second) {
      return Status::invalid("ports: " + std::to_string(p.port) + "/" + std::string(protocolName(p.protocol)) + " declared twice");
    }
  }
  if (!s.ports.empty() && s.placement.max_per_node > 1) {
    return Status::invalid("placement.max_per_node: a daemon with ports runs at most one instance per node (two would share port " +
                           std::to_string(s.ports.front().port) + ")");
  }
  if (!s.ports.empty() && s.kind != DaemonKind::kService) return Status::invalid("ports: only a service has ports");
  MESHOS_RETURN_IF_ERROR(checkRange("update.max_unavailable", s.update.max_unavailable, kMaxUnavailable));
  MESHOS_RETURN_IF_ERROR(checkRange("update.min_ready_ms", s.update.min_ready_ms, kDelayMs));
  MESHOS_RETURN_IF_ERROR(checkRange("update.progress_deadline_ms", s.update.progress_deadline_ms, kPositiveMs));
  return Status::ok();
}

Status validateLimits(const Limits& l) {
  auto optional = [](const char* key, const std::optional<int64_t>& v, Range r) {
    return v ? checkRange(key, *v, r) : Status::ok();
  };
  MESHOS_RETURN_IF_ERROR(optional("limits.open_files", l.open_files, kOpenFiles));
  MESHOS_RETURN_IF_ERROR(optional("limits.core_size", l.core_size, kBytes));
  MESHOS_RETURN_IF_ERROR(optional("limits.memory_max", l.memory_max, kMemoryMax));
  MESHOS_RETURN_IF_ERROR(optional("limits.cpu_max_millicores", l.cpu_max_millicores, kCpuMax));
  return optional("limits.pids_max", l.pids_max, kPidsMax);
}

Status validateSupervision(const DaemonSpec& s) {
  const Supervision& v = s.supervision;
  MESHOS_RETURN_IF_ERROR(checkRange("supervision.restart_intensity", v.restart_intensity, kIntensity));
  MESHOS_RETURN_IF_ERROR(checkRange("supervision.restart_window_ms", v.restart_window_ms, kWindowMs));
  const bool any = v != Supervision{};
  if (any && s.kind != DaemonKind::kService) return Status::invalid("supervision: only a service is supervised in a group");
  if (v.group.empty()) {
    if (v.strategy != GroupStrategy::kOneForOne) return Status::invalid("supervision.strategy: needs a group");
    if (v.restart_intensity != 0) return Status::invalid("supervision.restart_intensity: needs a group");
    return Status::ok();
  }
  if (!validName(v.group)) {
    return Status::invalid("supervision.group: '" + v.group +
                           "' is not a valid group name (1-63 characters: letters, digits, '-', '_', '.')");
  }
  return Status::ok();
}

// A capability by its kernel name: "CAP_" and upper-case letters, digits and '_' (the
// runtime checks it is one the kernel defines).
bool capabilityShaped(const std::string& c) {
  if (c.size() < 5 || c.size() > 40 || c.rfind("CAP_", 0) != 0) return false;
  return std::all_of(c.begin() + 4, c.end(), [](char ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'; });
}

Status validateContainer(const DaemonSpec& s) {
  const Container& c = s.container;
  if (s.runtime == RuntimeKind::kProcess) {
    if (c != Container{}) return Status::invalid("container: needs runtime = \"oci\"");
    return Status::ok();
  }
  if (c.rootfs.empty() == c.image.empty()) {
    return Status::invalid("container: runtime = \"oci\" needs exactly one of rootfs and image");
  }
  if (!c.rootfs.empty() && (c.rootfs[0] != '/' || hasNul(c.rootfs))) {
    return Status::invalid("container.rootfs: must be an absolute path, got '" + c.rootfs + "'");
  }
  if (!c.image.empty()) {
    const size_t colon = c.image.rfind(':');
    if (c.image[0] != '/' || hasNul(c.image) || colon == std::string::npos || colon + 1 == c.image.size() ||
        c.image.find('/', colon) != std::string::npos) {
      return Status::invalid("container.image: expected \"<absolute path of an OCI image layout>:<tag>\", got '" +
                             c.image + "'");
    }
  }
  if (!s.secrets.env.empty()) {
    return Status::invalid("env: a container (runtime = \"oci\") gets secrets as files only (secret_files, "
                           "read-only at /run/secrets): a variable's value would be written to its bundle");
  }
  for (const auto* check : {&s.health.startup, &s.health.liveness, &s.health.readiness}) {
    if (c.network == ContainerNetwork::kNone && check->has_value() && (*check)->type != CheckType::kExec) {
      return Status::invalid("health: a tcp or http check cannot reach a container with network = \"none\" (use an exec check)");
    }
  }
  for (const std::string& cap : c.capabilities) {
    if (!capabilityShaped(cap)) return Status::invalid("container.capabilities: '" + cap + "' is not a capability name (CAP_...)");
  }
  return Status::ok();
}

Status validateSecretUses(const DaemonSpec& s) {
  const SecretUses& u = s.secrets;
  for (const auto& [var, secret] : u.env) {
    if (var.empty() || var.find('=') != std::string::npos || hasNul(var)) {
      return Status::invalid("env: bad variable name '" + var + "'");
    }
    if (s.env.count(var)) return Status::invalid("env." + var + ": both a value and a secret");
    MESHOS_RETURN_IF_ERROR(validateSecretName(secret).withContext("env." + var + ".secret"));
  }
  for (const auto& f : u.files) MESHOS_RETURN_IF_ERROR(validateSecretName(f).withContext("secret_files"));
  for (const auto& [name, seq] : u.versions) MESHOS_RETURN_IF_ERROR(validateSecretName(name).withContext("secret versions"));
  if (u.names().size() > kMaxSecretsPerDaemon || u.versions.size() > kMaxSecretsPerDaemon) {
    return Status::invalid("secrets: more than " + std::to_string(kMaxSecretsPerDaemon) + " secrets in one daemon");
  }
  return Status::ok();
}

// The members of a group state one strategy and one intensity: a group restarts as a whole.
Status validateGroups(const std::vector<DaemonSpec>& specs) {
  std::map<std::string, const DaemonSpec*> first;
  for (const auto& s : specs) {
    const Supervision& v = s.supervision;
    if (v.group.empty()) continue;
    auto [it, fresh] = first.emplace(v.group, &s);
    if (fresh) continue;
    const Supervision& w = it->second->supervision;
    if (v.strategy != w.strategy || v.restart_intensity != w.restart_intensity ||
        v.restart_window_ms != w.restart_window_ms) {
      return Status::invalid("group '" + v.group + "': '" + it->second->name + "' and '" + s.name +
                             "' state different strategies or restart intensities (" +
                             std::string(groupStrategyName(w.strategy)) + " " + std::to_string(w.restart_intensity) + "/" +
                             std::to_string(w.restart_window_ms) + " ms against " +
                             std::string(groupStrategyName(v.strategy)) + " " + std::to_string(v.restart_intensity) + "/" +
                             std::to_string(v.restart_window_ms) + " ms)");
    }
  }
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
  MESHOS_RETURN_IF_ERROR(validateLimits(s.limits));
  MESHOS_RETURN_IF_ERROR(checkRange("logs.max_bytes", s.logs.max_bytes, kLogBytes));
  MESHOS_RETURN_IF_ERROR(checkRange("logs.keep_files", s.logs.keep_files, kKeepFiles));
  MESHOS_RETURN_IF_ERROR(checkRange("job_retries", s.job_retries, kRetries));
  if (s.kind == DaemonKind::kService && s.job_retries != 0) {
    return Status::invalid("job_retries: only jobs and cron daemons retry (use restart for a "
                           "service)");
  }
  MESHOS_RETURN_IF_ERROR(validateSupervision(s));
  MESHOS_RETURN_IF_ERROR(validateContainer(s));
  MESHOS_RETURN_IF_ERROR(validateSecretUses(s));
  return validatePortsAndUpdate(s);
}

}  // namespace

Status validate(const DaemonSpec& spec) {
  // UTF-8 first, so that every message of validateInner() quotes only UTF-8.
  Status s = allTextUtf8(spec)
                 ? validateInner(spec)
                 : Status::invalid("a text value (name, argument, variable, path, label) is not UTF-8 or holds a NUL");
  if (s) s = checkVariables(spec);
  if (!s) {
    const bool quotable = !spec.name.empty() && isWireText(spec.name);
    return s.withContext("daemon '" + (quotable ? spec.name : std::string("?")) + "'");
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
  // Two daemons on one port would fail on any node that runs both; placement does not
  // keep them apart, so a set must not hold them.
  std::map<std::pair<int64_t, PortProtocol>, std::string> owners;
  for (const auto& s : specs) {
    for (const auto& p : s.ports) {
      auto [it, fresh] = owners.emplace(std::pair{p.port, p.protocol}, s.name);
      if (!fresh) {
        return Status::invalid("port " + std::to_string(p.port) + "/" + std::string(protocolName(p.protocol)) +
                               " is declared by both '" + it->second + "' and '" + s.name + "'");
      }
    }
  }
  MESHOS_RETURN_IF_ERROR(validateGroups(specs));
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
  std::sort(s.ports.begin(), s.ports.end(), [](const Port& a, const Port& b) { return a.name < b.name; });
  sortUnique(s.secrets.files);
  sortUnique(s.container.capabilities);
  if (auto sig = signalNumber(s.stop_signal); sig) {
    for (const auto& [n, v] : kSignals) {
      if (v == *sig) s.stop_signal = "SIG" + std::string(n);
    }
  }
  return s;
}

std::vector<std::string> SecretUses::names() const {
  std::set<std::string> all(files.begin(), files.end());
  for (const auto& [var, secret] : env) all.insert(secret);
  return {all.begin(), all.end()};
}

bool canonicalEqual(const DaemonSpec& a, const DaemonSpec& b) {
  return normalized(a) == normalized(b);
}

}  // namespace meshos::spec
