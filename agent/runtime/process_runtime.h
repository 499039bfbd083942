// ProcessRuntime: the Runtime for plain host processes, on libuv.
//
// Each instance runs in its own session and process group (uv_spawn DETACHED). Its limits
// (memory_max, cpu_max_millicores, pids_max) are enforced with cgroups: the layout (cgroup v2,
// or the v1 memory, cpu and pids hierarchies) is read from /proc at init (cgroups.h,
// cgroup_layout.h); an instance gets <hierarchy>/<cgroup_parent>/<instance> in the unified
// hierarchy (always, when there is one with controllers or cgroup_root is cgroup2) and in
// the v1 hierarchy of each limit it sets. A limit that cannot be applied fails the start
// (spec limits = "enforce") or becomes a warning in status() ("best-effort"). The process
// is placed in its groups before it execs the daemon: a /bin/sh shim waits on a pipe until
// the agent has written its pid to each cgroup.procs. stdout and stderr go straight to
// <data_dir>/runtime/logs/<instance>.log (O_APPEND), so a daemon keeps logging while the
// agent restarts; a periodic check rotates a file past its size by copy-and-truncate,
// keeping N rotated files (<instance>.log.1 ... .N). rlimits (open files, core size) are set
// by the shim or with prlimit right after the spawn.
//
// When the main process ends, whatever is left of its group (and cgroup) is killed, and the
// agent, as child subreaper, reaps those orphans: no zombies, no stray grandchildren.
// Each running instance is recorded in an InstanceStore (pid, pgid, /proc start time) so a
// new agent can adopt() it: pidfd_open, start time compared (a recycled pid is never
// mistaken), exit watched by polling the pidfd.
//
// A resource owned by the Supervisor's owner; loop thread only. close() before destruction;
// running processes are left running (for re-adoption), their handles closed.
#pragma once

#include <uv.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "agent/core/clock.h"
#include "agent/net/uv_loop.h"
#include "agent/runtime/cgroup_layout.h"
#include "agent/runtime/instance_store.h"
#include "agent/runtime/runtime.h"

namespace meshos::runtime {

struct RuntimeOptions {
  std::string data_dir;                        // logs and workdirs under <data_dir>/runtime
  std::string cgroup_root = "/sys/fs/cgroup";  // "" disables cgroups
  std::string cgroup_parent = "meshos";        // [runtime] cgroup_parent; may be nested "a/b"
  int64_t log_check_interval_ms = 1000;        // how often log sizes are checked
  bool subreaper = true;                       // PR_SET_CHILD_SUBREAPER on the agent
  std::string secrets_dir;                     // secret_files: <secrets_dir>/<instance>/<name>
};

class ProcessRuntime final : public Runtime {
 public:
  ProcessRuntime(uv_loop_t* loop, Clock& clock, InstanceStore& store, RuntimeOptions options);
  ~ProcessRuntime() override;
  ProcessRuntime(const ProcessRuntime&) = delete;
  ProcessRuntime& operator=(const ProcessRuntime&) = delete;

  // Detects cgroups, creates directories, starts the log check timer.
  Status init();
  // Closes every handle; processes keep running (and stay recorded for re-adoption).
  void close();

  // Some controller (memory, cpu or pids) or a unified hierarchy was found.
  bool cgroupsEnabled() const { return cgroups_enabled_; }
  const CgroupLayout& cgroupLayout() const { return cgroup_layout_; }
  // "memory v1 at /sys/fs/cgroup/memory, cpu v1 at ..., pids unavailable (why)".
  const std::string& cgroupStatus() const { return cgroup_status_; }

  void setExitCallback(ExitCallback cb) override { exit_cb_ = std::move(cb); }
  void setSecretOpener(SecretOpener opener) override { open_secret_ = std::move(opener); }
  Status create(const std::string& instance, const spec::DaemonSpec& spec) override;
  Status start(const std::string& instance) override;
  Status stop(const std::string& instance, int64_t grace_ms = -1) override;
  Status remove(const std::string& instance) override;
  Status signal(const std::string& instance, int sig) override;
  Result<ProcessStatus> status(const std::string& instance) const override;
  Result<LogChunk> logs(const std::string& instance, const LogQuery& q) const override;
  Status exec(const std::string& instance, std::vector<std::string> argv, int64_t timeout_ms,
              size_t max_output, std::function<void(Result<ExecResult>)> done) override;
  Result<ResourceStats> stats(const std::string& instance) const override;
  Result<probes::CommandContext> commandContext(const std::string& instance) const override;
  Status adopt(const InstanceRecord& record, const spec::DaemonSpec& spec) override;
  std::vector<std::string> instances() const override;
  void check(const std::string& instance, const spec::HealthCheck& check,
             std::function<void(bool ok, std::string detail)> done) override;
  void stopRecorded(const InstanceRecord& record) override;

  InstanceStore& store() { return store_; }
  // Checks the log files now (the timer does it every log_check_interval_ms).
  void rotateLogsNow();
  size_t orphansPending() const { return orphans_.size(); }

 private:
  struct Proc;
  struct Handle;
  void onExit(const std::string& instance, ExitInfo info);
  // A kill at the memory limit (the group's oom_kill count) named in info.
  void noteMemoryLimitKills(const Proc& p, ExitInfo& info) const;
  void killGroup(Proc& p, int sig);
  void reapOrphans();
  void armLogCheck();
 public:
  // Reaps exited grandchildren of running daemons (the log timer does it every interval).
  void reapStrays();
 private:
  // The instance's groups and limits; InvalidArgument when an enforced limit cannot be applied.
  Status setupCgroup(Proc& p);
  // secret_env: "VAR=value" entries given to this process only (and wiped by the caller).
  Status spawn(Proc& p, const std::string& instance, int log_fd, int& gate_fd,
               const std::vector<std::string>& secret_env);
  // process_secrets.cpp: the instance's secrets opened, its files written; the
  // environment entries returned.
  struct LaunchSecrets;
  Result<std::unique_ptr<LaunchSecrets>> openSecrets(const Proc& p);
  void removeSecretFiles(const std::string& instance);
  // After the spawn: the shim (waiting on gate_fd) is placed in its groups, then released.
  Status placeSpawned(Proc& p, int gate_fd);
  // A spawned process that must not run: killed, its exit not reported; returns why.
  Status abortStart(Proc& p, Status why);
  static void onSpawnedExit(uv_process_t* proc, int64_t status, int sig);
  // adopt(): a recorded instance that is gone (or a job whose shim recorded its exit).
  Status adoptGone(const InstanceRecord& rec, const spec::DaemonSpec& spec, const std::string& exit_file,
                   const std::string& why);
  void watchAdopted(const std::string& instance, int pidfd);
  static void onAdoptedExit(uv_poll_t* handle, int status, int events);
  // env (base + spec), uid/gid (spec.user, as root), cwd (spec.workdir or the default).
  Status fillEnvironment(Proc& p, const std::string& instance, const spec::DaemonSpec& spec) const;
  std::string defaultWorkdir(const std::string& daemon) const;
  // <data_dir>/runtime/exit/<instance> for a job or cron run, "" for a service.
  std::string exitFileFor(const std::string& instance, const spec::DaemonSpec& spec) const;
  void removeCgroup(const std::string& path);

  uv_loop_t* loop_;
  Clock& clock_;
  InstanceStore& store_;
  RuntimeOptions options_;
  UvTimers timers_;
  ExitCallback exit_cb_;
  SecretOpener open_secret_;
  std::map<std::string, std::unique_ptr<Proc>> procs_;
  bool cgroups_enabled_ = false;
  std::string cgroup_status_ = "cgroups not checked";
  CgroupLayout cgroup_layout_;
  TimerId log_timer_ = 0;
  TimerId reap_timer_ = 0;
  std::set<std::string> workdirs_made_;  // default workdirs known to exist (bounded)
  std::map<int, int64_t> orphans_;  // pid → give-up deadline (monotonic ms)
  std::map<std::string, int64_t> cgroups_to_remove_;  // path → give-up deadline
  bool closed_ = false;
};

// cgroup_parent: a relative path of [A-Za-z0-9._-] segments, none "." or ".."; else
// InvalidArgument with the reason.
Status validateCgroupParent(std::string_view parent);

// An instance's secret_files (docs/SECRETS.md), for both host runtimes: each opened and
// written to <secrets_dir>/<instance>/<name>, 0400 and the directory 0500, owned by uid
// and gid when given. Returns the directory; an error names the secret or the file.
Result<std::string> writeSecretFiles(const std::string& secrets_dir, const Runtime::SecretOpener& opener,
                                     const std::string& instance, const spec::DaemonSpec& spec,
                                     std::optional<uint32_t> uid, std::optional<uint32_t> gid);
// Removes them (when the instance's process has ended).
void removeSecretFilesOf(const std::string& secrets_dir, const std::string& instance);

// /proc/<pid>/stat field 22 (start time in clock ticks since boot); -1 if no such process.
int64_t processStartTicks(int pid);

}  // namespace meshos::runtime
