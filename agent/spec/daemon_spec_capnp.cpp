// DaemonSpec's Cap'n Proto form (proto/spec.capnp) and its canonical bytes.
#include "agent/spec/daemon_spec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "agent/spec/spec_tables.h"

namespace meshos::spec {

using namespace detail;

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

void fillSecrets(proto::SecretUses::Builder b, const SecretUses& u) {
  auto env = b.initEnv(static_cast<unsigned>(u.env.size()));
  unsigned i = 0;
  for (const auto& [var, secret] : u.env) {
    env[i].setKey(var);
    env[i++].setValue(secret);
  }
  auto files = b.initFiles(static_cast<unsigned>(u.files.size()));
  for (i = 0; i < files.size(); ++i) files.set(i, u.files[i]);
  auto versions = b.initVersions(static_cast<unsigned>(u.versions.size()));
  i = 0;
  for (const auto& [name, seq] : u.versions) {
    versions[i].setName(name);
    versions[i++].setSeq(seq);
  }
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
  b.setLimitsMode(static_cast<proto::LimitsMode>(s.limits.mode));
  if (s.permissions != Permissions{}) {
    auto p = b.initPermissions();
    p.setForbidStop(!s.permissions.allow_stop);
    p.setForbidRestart(!s.permissions.allow_restart);
    p.setForbidExec(!s.permissions.allow_exec);
    if (s.permissions.allowed_signals) {
      p.setSignalsRestricted(true);
      auto list = p.initAllowedSignals(static_cast<unsigned>(s.permissions.allowed_signals->size()));
      for (unsigned i = 0; i < list.size(); ++i) list.set(i, (*s.permissions.allowed_signals)[i]);
    }
  }
  if (s.update != UpdateStrategy{}) {
    auto u = b.initUpdate();
    u.setMaxUnavailable(s.update.max_unavailable);
    u.setMinReadyMs(s.update.min_ready_ms);
    u.setProgressDeadlineMs(s.update.progress_deadline_ms);
    u.setOnFailure(static_cast<proto::OnUpdateFailure>(s.update.on_failure));
  }
  if (s.supervision != Supervision{}) {
    auto v = b.initSupervision();
    v.setGroup(s.supervision.group);
    v.setStrategy(static_cast<proto::GroupStrategy>(s.supervision.strategy));
    v.setRestartIntensity(s.supervision.restart_intensity);
    v.setRestartWindowMs(s.supervision.restart_window_ms);
    v.setRestartWithDependency(s.supervision.restart_with_dependency);
    v.setCritical(s.supervision.critical);
  }
  if (!s.secrets.empty()) fillSecrets(b.initSecrets(), s.secrets);
  b.setRuntime(static_cast<proto::RuntimeKind>(s.runtime));
  if (s.container != Container{}) {
    auto c = b.initContainer();
    c.setRootfs(s.container.rootfs);
    c.setImage(s.container.image);
    c.setNetwork(static_cast<proto::ContainerNetwork>(s.container.network));
    auto caps = c.initCapabilities(static_cast<unsigned>(s.container.capabilities.size()));
    for (unsigned i = 0; i < caps.size(); ++i) caps.set(i, s.container.capabilities[i]);
    c.setWritableRootfs(s.container.writable_rootfs);
  }
  if (!s.ports.empty()) {
    auto list = b.initPorts(static_cast<unsigned>(s.ports.size()));
    for (unsigned i = 0; i < list.size(); ++i) {
      list[i].setName(s.ports[i].name);
      list[i].setPort(static_cast<uint16_t>(s.ports[i].port));
      list[i].setProtocol(static_cast<proto::PortProtocol>(s.ports[i].protocol));
    }
  }
}

namespace {

Status readContainer(proto::DaemonSpec::Reader r, DaemonSpec& s) {
  auto kind = enumFrom<RuntimeKind>(static_cast<uint16_t>(r.getRuntime()), 2, "runtime");
  if (!kind) return kind.status();
  s.runtime = *kind;
  if (!r.hasContainer()) return Status::ok();
  auto c = r.getContainer();
  auto network = enumFrom<ContainerNetwork>(static_cast<uint16_t>(c.getNetwork()), 2, "container.network");
  if (!network) return network.status();
  if (c.getCapabilities().size() > 64) return Status::invalid("container.capabilities: too many entries");
  s.container.rootfs = text(c.getRootfs());
  s.container.image = text(c.getImage());
  s.container.network = *network;
  for (auto cap : c.getCapabilities()) s.container.capabilities.push_back(text(cap));
  s.container.writable_rootfs = c.getWritableRootfs();
  return Status::ok();
}

// Bounded before anything is copied; validate() checks the names.
Status readSecrets(proto::SecretUses::Reader u, SecretUses& out) {
  if (u.getEnv().size() + u.getFiles().size() + u.getVersions().size() > 3 * kMaxSecretsPerDaemon) {
    return Status::invalid("secrets: too many entries");
  }
  for (auto e : u.getEnv()) out.env[text(e.getKey())] = text(e.getValue());
  for (auto f : u.getFiles()) out.files.push_back(text(f));
  for (auto v : u.getVersions()) out.versions[text(v.getName())] = v.getSeq();
  return Status::ok();
}

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
    auto op = enumFrom<ConstraintOp>(static_cast<uint16_t>(c.getOp()), 3, "constraint op");
    if (!op) return op.status();
    s.placement.constraints.push_back(Constraint{text(c.getLabel()), *op, textList(c.getValues())});
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
  MESHOS_ENUM(s.limits.mode, LimitsMode, getLimitsMode, 2, "limits.limits")
#undef MESHOS_ENUM
  if (r.hasPermissions()) {
    auto p = r.getPermissions();
    s.permissions.allow_stop = !p.getForbidStop();
    s.permissions.allow_restart = !p.getForbidRestart();
    s.permissions.allow_exec = !p.getForbidExec();
    if (p.getSignalsRestricted()) {
      std::vector<int> signals;
      for (int32_t sig : p.getAllowedSignals()) {
        if (sig < 1 || sig > 64) return Status::invalid("permissions.allowed_signals: no signal " + std::to_string(sig));
        signals.push_back(sig);
      }
      s.permissions.allowed_signals = std::move(signals);
    }
  }
  for (auto p : r.getPorts()) {
    auto protocol = enumFrom<PortProtocol>(static_cast<uint16_t>(p.getProtocol()), 2, "ports.protocol");
    if (!protocol) return protocol.status();
    s.ports.push_back(Port{text(p.getName()), p.getPort(), *protocol});
  }
  if (r.hasUpdate()) {
    auto u = r.getUpdate();
    auto f = enumFrom<OnUpdateFailure>(static_cast<uint16_t>(u.getOnFailure()), 2, "update.on_failure");
    if (!f) return f.status();
    s.update = UpdateStrategy{u.getMaxUnavailable(), u.getMinReadyMs(), u.getProgressDeadlineMs(), *f};
  }
  if (r.hasSupervision()) {
    auto v = r.getSupervision();
    auto g = enumFrom<GroupStrategy>(static_cast<uint16_t>(v.getStrategy()), 3, "supervision.strategy");
    if (!g) return g.status();
    s.supervision = Supervision{text(v.getGroup()), *g, v.getRestartIntensity(), v.getRestartWindowMs(),
                                v.getRestartWithDependency(), v.getCritical()};
  }
  if (r.hasSecrets()) MESHOS_RETURN_IF_ERROR(readSecrets(r.getSecrets(), s.secrets));
  MESHOS_RETURN_IF_ERROR(readContainer(r, s));
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

}  // namespace meshos::spec
