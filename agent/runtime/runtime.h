// Runtime: how a node starts, watches and stops the processes of its daemon instances.
//
// An instance is one running copy of a DaemonSpec, named "<daemon>#<n>" (replica n of a
// service, or execution n of a job). The Runtime knows processes, not policy: it creates an
// instance from a spec, starts it, signals it, stops it (signal → grace → SIGKILL of the
// whole group), reports every exit through the exit callback, and answers status / logs /
// exec / stats. Restart policy, health and dependencies live in the Supervisor above it.
// The interface has no fields so the simulator can provide its own. All calls are made on
// the loop thread that owns the Runtime; callbacks run there too, never inside the call
// that caused them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/sealed_secret.h"
#include "agent/core/status.h"
#include "agent/spec/daemon_spec.h"
#include "probes/command_context.h"

namespace meshos::runtime {

enum class ProcessState { kCreated, kRunning, kStopping, kExited };
std::string_view processStateName(ProcessState s);

struct ExitInfo {
  bool code_known = true;  // false for a re-adopted process (not our child) or one lost
  int exit_code = -1;      // when it exited normally
  int term_signal = 0;     // when a signal ended it
  bool stopped_by_us = false;  // the exit follows a stop() (or kill of the group)
  bool memory_limit_kill = false;  // the kernel killed it at its memory_max
  std::string detail;      // "exited 3", "killed by SIGKILL", "killed at memory limit (...)"
};

struct ProcessStatus {
  std::string instance;
  std::string daemon;
  ProcessState state = ProcessState::kCreated;
  int pid = 0;
  int pgid = 0;
  int64_t start_ticks = 0;     // /proc/<pid>/stat field 22
  int64_t started_wall_ms = 0;
  bool adopted = false;        // re-adopted after an agent restart: exit code will be unknown
  bool cgroup = false;         // in cgroups of its own
  std::string cgroup_path;     // the first of them
  std::vector<std::string> limit_warnings;  // best-effort: "memory_max not applied: <why>"
  std::string log_path;
  std::optional<ExitInfo> exit;
};

struct ResourceStats {
  int64_t cpu_user_ms = 0;
  int64_t cpu_system_ms = 0;
  int64_t rss_bytes = 0;
  int64_t open_fds = 0;
  int64_t processes = 0;             // in the group (cgroup.procs when a cgroup is used)
  int64_t cgroup_memory_bytes = -1;  // memory.current, -1 without a cgroup
  int64_t cgroup_cpu_usage_us = -1;  // cpu.stat usage_usec, -1 without a cgroup
};

struct LogQuery {
  int64_t tail_lines = -1;  // >= 0: the last N lines (from the current and rotated files)
  int64_t offset = 0;       // otherwise: bytes of the current file from this offset (follow)
  int64_t max_bytes = 1 << 20;
};

struct LogChunk {
  std::string data;
  int64_t next_offset = 0;  // pass back as offset to follow
  bool rotated = false;     // the file was rotated since `offset`; data starts at 0
};

struct ExecResult {
  int exit_code = -1;
  int term_signal = 0;
  std::string output;  // stdout and stderr, interleaved, at most max_output bytes
  bool truncated = false;
  bool timed_out = false;
};

// What the runtime persists per running instance so a new agent can re-adopt it.
struct InstanceRecord {
  std::string instance;
  std::string daemon;
  std::string spec_hash;  // hex BLAKE2b of the spec's canonical bytes
  int pid = 0;
  int pgid = 0;
  int64_t start_ticks = 0;
  int64_t started_wall_ms = 0;
  std::string cgroup_path;
  std::string log_path;
  std::string runtime;  // "" for a host process, "oci" for a container
};

class Runtime {
 public:
  using ExitCallback = std::function<void(const std::string& instance, const ExitInfo&)>;
  // Opens a sealed secret by name with this node's keys (docs/SECRETS.md).
  using SecretOpener = std::function<Result<SecretValue>(const std::string& secret)>;
  virtual ~Runtime() = default;

  virtual void setExitCallback(ExitCallback cb) = 0;
  // Used by start() for a spec with secrets: each value goes to the process alone (its
  // environment, or a 0400 file in its own directory outside the data directory), never
  // to a record, a log or status(), and is wiped once handed over. A secret that does not
  // open here fails the start with InvalidArgument naming it. Without an opener, every
  // secret fails so.
  virtual void setSecretOpener(SecretOpener opener) = 0;
  // Checks the spec can run here (binary found and executable, user exists, workdir) and
  // records it. Nothing is started. AlreadyExists if the instance exists.
  virtual Status create(const std::string& instance, const spec::DaemonSpec& spec) = 0;
  // InvalidArgument: the spec asks for what this host cannot do (an enforced limit that
  // cannot be applied, a secret this node cannot open); starting it again will not help.
  virtual Status start(const std::string& instance) = 0;
  // Sends the spec's stop signal to the group, SIGKILL after grace_ms (spec's when < 0).
  // The exit callback reports the end. OK (no-op) if not running.
  virtual Status stop(const std::string& instance, int64_t grace_ms = -1) = 0;
  // Forgets an exited or created instance (its logs stay on disk).
  virtual Status remove(const std::string& instance) = 0;
  // Sends a signal to the whole group (SIGSTOP / SIGCONT for pause / resume).
  virtual Status signal(const std::string& instance, int sig) = 0;
  virtual Result<ProcessStatus> status(const std::string& instance) const = 0;
  virtual Result<LogChunk> logs(const std::string& instance, const LogQuery& q) const = 0;
  // Runs argv in the instance's environment (env, workdir, user); output bounded.
  virtual Status exec(const std::string& instance, std::vector<std::string> argv,
                      int64_t timeout_ms, size_t max_output,
                      std::function<void(Result<ExecResult>)> done) = 0;
  virtual Result<ResourceStats> stats(const std::string& instance) const = 0;
  // Where a command "in the daemon's environment" runs (exec checks, operator exec): the
  // instance's environment, working directory (its default one when the spec has none)
  // and user. NotFound for an unknown instance.
  virtual Result<probes::CommandContext> commandContext(const std::string& instance) const = 0;
  // Re-adopts an instance recorded by a previous agent. OK: running and watched now.
  // NotFound: it is gone (or its pid was recycled); the record is dropped.
  virtual Status adopt(const InstanceRecord& record, const spec::DaemonSpec& spec) = 0;
  virtual std::vector<std::string> instances() const = 0;
  // Ends a process a previous agent recorded that nobody wants any more (its daemon was
  // removed, or changed kind): SIGTERM to its group, if the pid still runs the process
  // recorded (start time checked). Not adopted, not watched.
  virtual void stopRecorded(const InstanceRecord& record) = 0;
  // One attempt of a health check against the instance: an exec check runs in the
  // instance's environment (commandContext(); for a container, inside it), a TCP or HTTP
  // check connects to its address. done(ok, detail) runs later on the loop thread, never
  // inside the call; an unknown instance fails through done too.
  virtual void check(const std::string& instance, const spec::HealthCheck& check,
                     std::function<void(bool ok, std::string detail)> done) = 0;
};

}  // namespace meshos::runtime

namespace meshos::runtime {
// Hex BLAKE2b-256 of spec::canonicalBytes(spec): "the same spec" across agent restarts.
std::string specHash(const spec::DaemonSpec& spec);
}  // namespace meshos::runtime
