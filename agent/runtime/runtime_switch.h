// RuntimeSwitch: the node's one Runtime, in front of the process runtime and the OCI
// container runtime. An instance goes to the runtime its spec names (`runtime`), and
// every later call about it follows it there.
#pragma once

#include <map>
#include <string>

#include "agent/runtime/runtime.h"

namespace meshos::runtime {

class RuntimeSwitch final : public Runtime {
 public:
  RuntimeSwitch(Runtime& processes, Runtime& containers) : processes_(processes), containers_(containers) {}

  void setExitCallback(ExitCallback cb) override;
  void setSecretOpener(SecretOpener opener) override;
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
  void stopRecorded(const InstanceRecord& record) override;
  void check(const std::string& instance, const spec::HealthCheck& check,
             std::function<void(bool ok, std::string detail)> done) override;

 private:
  Runtime& forSpec(const spec::DaemonSpec& spec) {
    return spec.runtime == spec::RuntimeKind::kOci ? containers_ : processes_;
  }
  // The runtime holding the instance; the process runtime (which answers NotFound) when none.
  Runtime& owner(const std::string& instance) const;

  Runtime& processes_;
  Runtime& containers_;
  std::map<std::string, Runtime*> owners_;
};

}  // namespace meshos::runtime
