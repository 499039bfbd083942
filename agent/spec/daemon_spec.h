// DaemonSpec: what a node is asked to run, as a plain value.
//
// One DaemonSpec describes one daemon (a long-running service, a run-to-completion job or a
// cron schedule): its command, environment, resources, placement constraints, restart and
// crash-loop policy, health checks, dependencies, stop behaviour, limits and log rotation.
// The same value comes from a local `[[daemon]]` file (parseDaemonsToml), from an admin
// commit (fromCapnp) and is handed to placement and to the runtime's Supervisor. It is a
// value type: copy it freely; every function here is pure and may run on any thread.
//
// The TOML shape is documented in docs/RUNTIME.md; the wire/disk shape is proto/spec.capnp.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/bytes.h"
#include "agent/core/status.h"
#include "proto/spec.capnp.h"

namespace meshos::spec {

enum class DaemonKind { kService, kJob, kCron };
enum class RestartPolicy { kAlways, kOnFailure, kNever };
enum class PlacementStrategy { kSpread, kBinpack, kNear };
enum class ConstraintOp { kEquals, kIn, kNotIn };
enum class CheckType { kExec, kTcp, kHttp };
enum class DependencyCondition { kStarted, kHealthy, kReady };
enum class OnTimeout { kFail, kWarn, kContinue };
enum class MissedRunPolicy { kSkip, kRunOnce };
enum class LimitsMode { kEnforce, kBestEffort };
enum class PortProtocol { kTcp, kUdp };
enum class OnUpdateFailure { kPause, kRollback };
enum class GroupStrategy { kOneForOne, kOneForAll, kRestForOne };
enum class RuntimeKind { kProcess, kOci };
enum class ContainerNetwork { kHost, kNone };

std::string_view kindName(DaemonKind k);            // "service" | "job" | "cron"
std::string_view restartPolicyName(RestartPolicy p);  // "always" | "on-failure" | "never"
std::string_view strategyName(PlacementStrategy s);   // "spread" | "binpack" | "near"
std::string_view constraintOpName(ConstraintOp o);    // "equals" | "in" | "not-in"
std::string_view checkTypeName(CheckType t);          // "exec" | "tcp" | "http"
std::string_view conditionName(DependencyCondition c);  // "started" | "healthy" | "ready"
std::string_view onTimeoutName(OnTimeout o);          // "fail" | "warn" | "continue"
std::string_view missedRunName(MissedRunPolicy m);    // "skip" | "run-once"
std::string_view limitsModeName(LimitsMode m);        // "enforce" | "best-effort"
std::string_view protocolName(PortProtocol p);        // "tcp" | "udp"
std::string_view onUpdateFailureName(OnUpdateFailure f);  // "pause" | "rollback"
std::string_view groupStrategyName(GroupStrategy g);  // "one-for-one" | "one-for-all" | "rest-for-one"
std::string_view runtimeKindName(RuntimeKind k);      // "process" | "oci"
std::string_view containerNetworkName(ContainerNetwork n);  // "host" | "none"

struct Resources {
  int64_t cpu_millicores = 0;  // reserved for placement; 0 = none requested
  int64_t memory_bytes = 0;
  bool operator==(const Resources&) const = default;
};

// A node label must (equals: be value; in: be one of values; not-in: be none of values or absent).
struct Constraint {
  std::string label;
  ConstraintOp op = ConstraintOp::kEquals;
  std::vector<std::string> values;  // exactly one for equals
  bool operator==(const Constraint&) const = default;
};

struct Placement {
  PlacementStrategy strategy = PlacementStrategy::kSpread;
  std::string near;  // target (node name or label=value) for strategy near
  std::vector<Constraint> constraints;
  std::vector<std::string> capabilities;  // required node capabilities
  int64_t max_per_node = 0;                // 0 = no limit
  bool operator==(const Placement&) const = default;
};

struct Backoff {
  int64_t initial_ms = 100;
  double factor = 2.0;
  int64_t max_ms = 30'000;
  double jitter = 0.2;            // fraction: delay * (1 ± jitter)
  int64_t reset_after_ms = 60'000;  // a run this long resets the backoff
  bool operator==(const Backoff&) const = default;
};

struct CrashLoop {
  int64_t max_crashes = 5;  // this many crashes within window → quarantined; 0 disables
  int64_t window_ms = 60'000;
  int64_t cooldown_ms = 300'000;
  bool operator==(const CrashLoop&) const = default;
};

struct HealthCheck {
  CheckType type = CheckType::kExec;
  std::vector<std::string> command;  // exec
  std::string host = "127.0.0.1";    // tcp, http
  int64_t port = 0;                  // tcp, http
  std::string path = "/";            // http
  int64_t interval_ms = 10'000;
  int64_t timeout_ms = 1'000;
  int64_t failure_threshold = 3;
  int64_t success_threshold = 1;
  int64_t initial_delay_ms = 0;
  bool operator==(const HealthCheck&) const = default;
};

struct HealthChecks {
  std::optional<HealthCheck> startup;
  std::optional<HealthCheck> liveness;
  std::optional<HealthCheck> readiness;
  bool operator==(const HealthChecks&) const = default;
};

struct Dependency {
  std::string name;
  DependencyCondition condition = DependencyCondition::kStarted;
  int64_t timeout_ms = 30'000;
  OnTimeout on_timeout = OnTimeout::kFail;
  bool operator==(const Dependency&) const = default;
};

// Unset (nullopt) means "inherit / no limit".
struct Limits {
  std::optional<int64_t> open_files;          // RLIMIT_NOFILE
  std::optional<int64_t> core_size;           // RLIMIT_CORE, bytes
  std::optional<int64_t> memory_max;          // cgroup memory.max, bytes
  std::optional<int64_t> cpu_max_millicores;  // cgroup cpu.max (quota per 100 ms period)
  std::optional<int64_t> pids_max;            // cgroup pids.max
  // enforce: a limit this host cannot apply fails the instance's start; best-effort: it
  // runs without that limit, with a warning.
  LimitsMode mode = LimitsMode::kEnforce;
  bool operator==(const Limits&) const = default;
};

// What operators may do to this daemon through the control socket ([daemon.permissions]),
// beyond what their role allows. Admins are bound by it too: a daemon that must not be
// stopped by hand is not, by anybody; a new commit or daemons file changes it.
struct Permissions {
  bool allow_stop = true;      // stop, quarantine, pause
  bool allow_restart = true;
  bool allow_exec = true;      // daemon exec (admins only in any case)
  // Signals `daemon signal` may send (numbers); absent: any.
  std::optional<std::vector<int>> allowed_signals;
  bool operator==(const Permissions&) const = default;
};

// A port the daemon listens on, by name: `${port.NAME}` in its command, environment and
// checks; endpoints and DNS SRV records (`_NAME._tcp.<daemon>.service.<cluster>.`) give
// it to other daemons. A daemon with ports runs at most one instance per node.
struct Port {
  std::string name;  // a DNS label: 1-15 of [a-z0-9-], not starting or ending with '-'
  int64_t port = 0;  // 1..65535
  PortProtocol protocol = PortProtocol::kTcp;
  bool operator==(const Port&) const = default;
};

// How a changed spec replaces running instances ([daemon.update], docs/PLACEMENT.md): node
// by node in an order every node derives alike, at most max_unavailable instances not
// ready on the new version at a time.
struct UpdateStrategy {
  int64_t max_unavailable = 1;         // 1 .. 10000
  int64_t min_ready_ms = 0;            // an instance counts as updated once ready this long
  int64_t progress_deadline_ms = 600'000;  // a new instance not ready by then fails the rollout
  OnUpdateFailure on_failure = OnUpdateFailure::kPause;  // stop there, or return to the old spec
  bool operator==(const UpdateStrategy&) const = default;
};

// Supervision beyond one instance ([daemon.supervision], docs/RUNTIME.md): the daemons of
// one group restart together as their strategy says (the order is their dependency order),
// and a group that restarts too often is quarantined whole.
struct Supervision {
  std::string group;  // "" = none; every member states the same strategy and intensity
  GroupStrategy strategy = GroupStrategy::kOneForOne;
  int64_t restart_intensity = 0;        // 0: no limit; more failures in the window quarantine the group
  int64_t restart_window_ms = 60'000;
  bool restart_with_dependency = false;  // restarted when a daemon it depends on restarts
  // While quarantined (its own crash loop, or its group's intensity), the node reports
  // itself unhealthy and placement puts nothing on it.
  bool critical = false;
  bool operator==(const Supervision&) const = default;
};

// Sealed secrets the daemon reads (docs/SECRETS.md): `env.VAR = { secret = "db" }` puts a
// secret's value in a variable, `secret_files = ["db"]` writes it to $MESHOS_SECRETS_DIR/db
// (mode 0400). A spec names secrets; their values never enter it.
struct SecretUses {
  std::map<std::string, std::string> env;  // variable -> secret name
  std::vector<std::string> files;          // secret names (sorted by normalized())
  // Set by the desired-state fold, never by an admin: the commit that last sealed each
  // secret used, so that a rotation changes the spec and its instances are replaced (a
  // rolling update, like any other change).
  std::map<std::string, uint64_t> versions;

  bool empty() const { return env.empty() && files.empty() && versions.empty(); }
  std::vector<std::string> names() const;  // every secret used, sorted, once
  bool operator==(const SecretUses&) const = default;
};
inline constexpr size_t kMaxSecretsPerDaemon = 32;

// What a daemon with `runtime = "oci"` runs in ([daemon.container], docs/RUNTIME.md
// "Containers"): a root filesystem given as a directory or unpacked from an OCI image
// layout, the host's network or none, the capabilities it keeps (none by default).
struct Container {
  std::string rootfs;  // an absolute directory on the host
  std::string image;   // "<absolute path of an OCI image layout>:<tag>"
  ContainerNetwork network = ContainerNetwork::kHost;
  std::vector<std::string> capabilities;  // "CAP_NET_BIND_SERVICE", ... (sorted by normalized())
  bool writable_rootfs = false;
  bool operator==(const Container&) const = default;
};

struct LogRotation {
  int64_t max_bytes = 10 * 1024 * 1024;  // rotate a log file past this size
  int64_t keep_files = 3;                // rotated files kept besides the current one
  bool operator==(const LogRotation&) const = default;
};

struct DaemonSpec {
  std::string name;
  DaemonKind kind = DaemonKind::kService;
  std::vector<std::string> command;  // argv; command[0] is a path or a name looked up in PATH
  std::map<std::string, std::string> env;
  std::string workdir;  // empty = the runtime's per-daemon directory
  std::string user;     // empty = the agent's user; honoured only when the agent is root
  int64_t replicas = 1;  // services
  std::string schedule;  // cron: standard 5-field expression (or @hourly, @daily, ...)
  Resources resources;
  Placement placement;
  RestartPolicy restart = RestartPolicy::kOnFailure;
  Backoff backoff;
  CrashLoop crash_loop;
  std::vector<int64_t> success_exit_codes = {0};
  HealthChecks health;
  std::vector<Dependency> depends_on;
  std::string stop_signal = "SIGTERM";
  int64_t stop_grace_ms = 10'000;
  Limits limits;
  LogRotation logs;
  int64_t job_retries = 0;  // jobs and cron runs: extra attempts after a failure
  MissedRunPolicy missed_runs = MissedRunPolicy::kSkip;  // cron
  Permissions permissions;
  std::vector<Port> ports;  // sorted by name (normalized)
  UpdateStrategy update;
  Supervision supervision;
  SecretUses secrets;
  RuntimeKind runtime = RuntimeKind::kProcess;
  Container container;  // runtime = "oci" only

  // Field-by-field equality (defaulted); use canonicalEqual() to ignore ordering noise.
  bool operator==(const DaemonSpec&) const = default;
};

// Parses a file of `[[daemon]]` tables. Strict: an unknown key, a wrong type or an
// out-of-range value is an error naming the key and its line ("local.toml:12: ...").
// Every spec is validated and the set is checked with validateSet(); on any error nothing
// is returned.
Result<std::vector<DaemonSpec>> parseDaemonsToml(std::string_view text,
                                                 std::string_view source_name);

// One spec on its own: name, argv, kind-specific fields, ranges, cron expression...
Status validate(const DaemonSpec& spec);
// A set of specs one node runs: duplicate names, unknown dependencies, dependency cycles
// (the error names the cycle: "a -> b -> a").
Status validateSet(const std::vector<DaemonSpec>& specs);

// Start order for a valid set: dependencies before dependents, ties broken by name.
// Returns an error naming the cycle if there is one.
Result<std::vector<std::string>> startOrder(const std::vector<DaemonSpec>& specs);

// Sorts and de-duplicates what has no meaning in its order (success codes, capabilities,
// constraint values), so two specs that mean the same thing compare equal.
DaemonSpec normalized(DaemonSpec spec);
bool canonicalEqual(const DaemonSpec& a, const DaemonSpec& b);

// Cap'n Proto round trip. fromCapnp validates enums and the result (validate()).
void toCapnp(proto::DaemonSpec::Builder builder, const DaemonSpec& spec);
Result<DaemonSpec> fromCapnp(proto::DaemonSpec::Reader reader);
// Canonical Cap'n Proto bytes of normalized(spec): stable input for hashes and signatures.
Bytes canonicalBytes(const DaemonSpec& spec);
// Decodes bytes produced by canonicalBytes() (or any single-segment/flat message).
Result<DaemonSpec> fromBytes(ByteView bytes);

// Signal names accepted for stop_signal ("SIGTERM", "TERM", "15"); the number or an error.
Result<int> signalNumber(std::string_view name);

// "" when the permissions allow the operation on the daemon ("stop", "quarantine", "pause",
// "restart", "exec", "signal" with its number; others are always allowed), else the
// refusal: "daemon web does not allow stop ([daemon.permissions] allow_stop = false)".
std::string permissionRefusal(const DaemonSpec& spec, std::string_view op, int signal = 0);

}  // namespace meshos::spec
