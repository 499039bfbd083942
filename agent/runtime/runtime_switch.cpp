#include "agent/runtime/runtime_switch.h"

namespace meshos::runtime {

Runtime& RuntimeSwitch::owner(const std::string& instance) const {
  auto it = owners_.find(instance);
  return it == owners_.end() ? processes_ : *it->second;
}

void RuntimeSwitch::setExitCallback(ExitCallback cb) {
  processes_.setExitCallback(cb);
  containers_.setExitCallback(std::move(cb));
}

void RuntimeSwitch::setSecretOpener(SecretOpener opener) {
  processes_.setSecretOpener(opener);
  containers_.setSecretOpener(std::move(opener));
}

Status RuntimeSwitch::create(const std::string& instance, const spec::DaemonSpec& spec) {
  if (owners_.count(instance) != 0) return Status::exists("instance " + instance + " exists");
  Runtime& rt = forSpec(spec);
  MESHOS_RETURN_IF_ERROR(rt.create(instance, spec));
  owners_[instance] = &rt;
  return Status::ok();
}

Status RuntimeSwitch::adopt(const InstanceRecord& record, const spec::DaemonSpec& spec) {
  if (owners_.count(record.instance) != 0) return Status::exists("instance " + record.instance + " exists");
  Runtime& rt = forSpec(spec);
  MESHOS_RETURN_IF_ERROR(rt.adopt(record, spec));
  owners_[record.instance] = &rt;
  return Status::ok();
}

Status RuntimeSwitch::remove(const std::string& instance) {
  MESHOS_RETURN_IF_ERROR(owner(instance).remove(instance));
  owners_.erase(instance);
  return Status::ok();
}

void RuntimeSwitch::stopRecorded(const InstanceRecord& record) {
  (record.runtime == "oci" ? containers_ : processes_).stopRecorded(record);
}

std::vector<std::string> RuntimeSwitch::instances() const {
  std::vector<std::string> out;
  for (const auto& [name, rt] : owners_) out.push_back(name);
  return out;
}

Status RuntimeSwitch::start(const std::string& instance) { return owner(instance).start(instance); }
Status RuntimeSwitch::stop(const std::string& instance, int64_t grace_ms) { return owner(instance).stop(instance, grace_ms); }
Status RuntimeSwitch::signal(const std::string& instance, int sig) { return owner(instance).signal(instance, sig); }
Result<ProcessStatus> RuntimeSwitch::status(const std::string& instance) const { return owner(instance).status(instance); }
Result<LogChunk> RuntimeSwitch::logs(const std::string& instance, const LogQuery& q) const {
  return owner(instance).logs(instance, q);
}
Status RuntimeSwitch::exec(const std::string& instance, std::vector<std::string> argv, int64_t timeout_ms,
                           size_t max_output, std::function<void(Result<ExecResult>)> done) {
  return owner(instance).exec(instance, std::move(argv), timeout_ms, max_output, std::move(done));
}
Result<ResourceStats> RuntimeSwitch::stats(const std::string& instance) const { return owner(instance).stats(instance); }
Result<probes::CommandContext> RuntimeSwitch::commandContext(const std::string& instance) const {
  return owner(instance).commandContext(instance);
}
void RuntimeSwitch::check(const std::string& instance, const spec::HealthCheck& check,
                          std::function<void(bool ok, std::string detail)> done) {
  owner(instance).check(instance, check, std::move(done));
}

}  // namespace meshos::runtime
