// OciRuntime: the Runtime for OCI containers, through the command line that runc and crun
// share (docs/RUNTIME.md "Containers").
//
// An instance is a container named after it. create() checks the spec can run here (a
// root filesystem, a user it knows); start() unpacks its image when it has one and it is
// not in the store yet (oci_images.h), writes the bundle, <data_dir>/runtime/oci/
// bundles/<instance>/config.json (ociConfig(): the spec's command, env, user, limits,
// network, capabilities), and runs `<oci> run --detach`, asynchronously: start() returns
// at once with the instance running, its pid known when the OCI runtime has created it
// (tens of milliseconds); a container that could not be created is reported as an exit
// whose detail is the OCI runtime's error. The container's stdout and stderr are the
// instance's log file, as for a process, rotated the same way.
//
// Once the OCI runtime has detached, the container's init is a child of the agent (its
// child subreaper): its exit is watched through a pidfd and its status read with
// waitid(), so the exit code is known. Then `<oci> delete --force` removes what is left.
// A stop sends the spec's stop signal to the init, SIGKILL after the grace; a pause
// (SIGSTOP / SIGCONT through signal()) freezes and thaws the whole container. secret_files
// are written as for a process (outside the data directory, 0400, owned by the container's
// user) and mounted read-only at /run/secrets. exec and exec health checks run inside
// with `<oci> exec`; TCP and HTTP checks reach the host network.
// A new agent re-adopts a container its predecessor recorded when `<oci> state` says it
// runs with the recorded pid and the pid's start time matches (its exit code is then
// unknown, as for any re-adopted process).
//
// Loop thread only. close() before destruction; containers keep running.
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
#include "agent/runtime/oci_commands.h"
#include "agent/runtime/oci_images.h"
#include "agent/runtime/runtime.h"

namespace meshos::runtime {

struct OciRuntimeOptions {
  std::string data_dir;                        // bundles, state, logs under <data_dir>/runtime
  std::string oci = "runc";                    // [runtime] oci: a name in PATH or a path
  std::string cgroup_root = "/sys/fs/cgroup";  // where stats and memory-limit kills are read
  std::string cgroup_parent = "meshos";
  int64_t log_check_interval_ms = 1000;
  std::string secrets_dir;  // secret_files: <secrets_dir>/<instance>/, mounted read-only
};

class OciRuntime final : public Runtime {
 public:
  OciRuntime(uv_loop_t* loop, Clock& clock, InstanceStore& store, OciRuntimeOptions options);
  ~OciRuntime() override;
  OciRuntime(const OciRuntime&) = delete;
  OciRuntime& operator=(const OciRuntime&) = delete;

  // Finds the OCI runtime binary and makes the directories. Unavailable (with the reason)
  // when there is no OCI runtime: the agent runs on, and container daemons fail to create.
  Status init();
  void close();
  bool available() const { return available_; }
  const std::string& statusText() const { return status_text_; }

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

  // Checks the log files now (the timer does it every log_check_interval_ms).
  void rotateLogsNow();
  // Images unpacked into the store since init (each image once).
  size_t imageUnpacks() const { return images_ ? images_->unpacks() : 0; }

 private:
  struct Box;
  Status prepare(Box& b) const;  // the bundle: user, config.json
  // After the root filesystem is there: prepared, then run once no delete of the name runs.
  void proceed(const std::string& instance);
  void failStart(const std::string& instance, const std::string& why);
  void launch(const std::string& instance);
  void onLaunched(const std::string& instance, const OciCommandResult& r);
  void watch(Box& b);
  static void onPidfd(uv_poll_t* handle, int status, int events);
  void onExit(const std::string& instance, ExitInfo info);
  void sendSignal(Box& b, int sig);
  void pauseContainer(Box& b, bool pause);  // `<oci> pause` / `resume`: the cgroup freezer
  void beginStop(Box& b, int64_t grace_ms);
  void deleteContainer(const std::string& instance);
  void armLogCheck();
  std::vector<std::string> execArgv(const Box& b, const std::vector<std::string>& argv) const;

  uv_loop_t* loop_;
  Clock& clock_;
  InstanceStore& store_;
  OciRuntimeOptions options_;
  UvTimers timers_;
  OciCommands cli_;
  std::unique_ptr<OciImages> images_;
  CgroupLayout cgroup_layout_;
  ExitCallback exit_cb_;
  SecretOpener open_secret_;
  std::map<std::string, std::unique_ptr<Box>> boxes_;
  std::set<std::string> deleting_;  // containers whose `delete` runs now
  TimerId log_timer_ = 0;
  // Callbacks of OCI runtime commands still running when this runtime is gone do nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool available_ = false;
  std::string status_text_ = "oci runtime not checked";
  bool closed_ = false;
};

}  // namespace meshos::runtime
