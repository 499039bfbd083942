#include "agent/commits/desired_state.h"

#include <utility>

namespace meshos::commits {

namespace {

constexpr size_t kMaxNodeNameBytes = 253;
constexpr size_t kMaxDaemons = 10'000;

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The versions a daemon's spec carries: the commit that last sealed each secret it uses.
Status stampSecretVersions(const DesiredState& s, spec::DaemonSpec& spec) {
  spec.secrets.versions.clear();
  for (const auto& name : spec.secrets.names()) {
    auto it = s.secrets.find(name);
    if (it == s.secrets.end()) {
      return Status::invalid("daemon " + quoted(std::as_const(spec.name)) + " uses secret " + quoted(name) +
                             ", which no commit has sealed (put-secret first)");
    }
    spec.secrets.versions[name] = it->second.seq;
  }
  return Status::ok();
}

Status applySecretOp(DesiredState& s, const Operation& op, const Commit& c) {
  if (auto* x = std::get_if<OpPutSecret>(&op)) {
    MESHOS_RETURN_IF_ERROR(validateSealedSecret(x->secret));
    if (!s.secrets.count(x->secret.name) && s.secrets.size() >= kMaxSecrets) return Status::invalid("too many secrets");
    s.secrets[x->secret.name] = DesiredSecret{x->secret, c.seq};
    // A rotation: every daemon using it changes, so its instances are replaced.
    for (auto& [name, d] : s.daemons) {
      if (!d.spec.secrets.versions.count(x->secret.name)) continue;
      d.spec.secrets.versions[x->secret.name] = c.seq;
      d.updated_seq = c.seq;
    }
    return Status::ok();
  }
  const auto& name = std::get<OpRemoveSecret>(op).name;
  if (!s.secrets.count(name)) return Status::invalid("no secret " + quoted(name));
  for (const auto& [daemon, d] : s.daemons) {
    if (d.spec.secrets.versions.count(name)) {
      return Status::invalid("secret " + quoted(name) + " is used by daemon " + quoted(daemon));
    }
  }
  s.secrets.erase(name);
  return Status::ok();
}

Status putDaemon(DesiredState& s, const OpPutDaemon& x, const Commit& c) {
  MESHOS_RETURN_IF_ERROR(spec::validate(x.spec));
  spec::DaemonSpec next = spec::normalized(x.spec);
  MESHOS_RETURN_IF_ERROR(stampSecretVersions(s, next));
  auto it = s.daemons.find(x.spec.name);
  if (it == s.daemons.end()) {
    if (s.daemons.size() >= kMaxDaemons) return Status::invalid("too many daemons");
    it = s.daemons.emplace(x.spec.name, DesiredDaemon{}).first;
  }
  it->second.spec = std::move(next);
  it->second.updated_seq = c.seq;
  return Status::ok();
}

Status applyOne(DesiredState& s, const Operation& op, const Commit& c) {
  auto find = [&](const std::string& name) -> Result<DesiredDaemon*> {
    auto it = s.daemons.find(name);
    if (it == s.daemons.end()) return Status::invalid("no daemon " + quoted(name));
    return &it->second;
  };
  if (auto* x = std::get_if<OpPutDaemon>(&op)) return putDaemon(s, *x, c);
  if (std::holds_alternative<OpPutSecret>(op) || std::holds_alternative<OpRemoveSecret>(op)) {
    return applySecretOp(s, op, c);
  }
  if (auto* x = std::get_if<OpRemoveDaemon>(&op)) {
    if (s.daemons.erase(x->name) == 0) return Status::invalid("no daemon " + quoted(x->name));
    return Status::ok();
  }
  if (auto* x = std::get_if<OpScale>(&op)) {
    auto d = find(x->name);
    if (!d) return d.status();
    if ((*d)->spec.kind != spec::DaemonKind::kService) {
      return Status::invalid("daemon " + quoted(x->name) + " is a " +
                             std::string(spec::kindName((*d)->spec.kind)) +
                             "; only services have replicas");
    }
    spec::DaemonSpec next = (*d)->spec;
    next.replicas = x->replicas;
    MESHOS_RETURN_IF_ERROR(spec::validate(next));
    (*d)->spec = std::move(next);
    (*d)->updated_seq = c.seq;
    return Status::ok();
  }
  if (auto* x = std::get_if<OpPauseDaemon>(&op)) {
    auto d = find(x->name);
    if (!d) return d.status();
    (*d)->paused = true;
    (*d)->updated_seq = c.seq;
    return Status::ok();
  }
  if (auto* x = std::get_if<OpResumeDaemon>(&op)) {
    auto d = find(x->name);
    if (!d) return d.status();
    (*d)->paused = false;
    (*d)->updated_seq = c.seq;
    return Status::ok();
  }
  if (auto* x = std::get_if<OpForceRestart>(&op)) {
    auto d = find(x->name);
    if (!d) return d.status();
    (*d)->restart_generation = c.seq;
    (*d)->updated_seq = c.seq;
    return Status::ok();
  }
  if (auto* x = std::get_if<OpKillRelocation>(&op)) {
    auto d = find(x->name);
    if (!d) return d.status();
    (*d)->kill_relocation_generation = c.seq;
    (*d)->updated_seq = c.seq;
    return Status::ok();
  }
  if (auto* x = std::get_if<OpSetMaintenance>(&op)) {
    if (x->node.empty() || x->node.size() > kMaxNodeNameBytes) {
      return Status::invalid("node name must be 1.." + std::to_string(kMaxNodeNameBytes) +
                             " bytes");
    }
    if (x->mode == MaintenanceMode::kActive) {
      s.maintenance.erase(x->node);
      return Status::ok();
    }
    if (x->deadline_ms <= c.issued_at_ms) {
      return Status::invalid("drain deadline " + std::to_string(x->deadline_ms) +
                             " is not after the commit's issue time " +
                             std::to_string(c.issued_at_ms));
    }
    s.maintenance[x->node] = NodeMaintenance{x->mode, x->deadline_ms, c.seq};
    return Status::ok();
  }
  if (auto* x = std::get_if<OpFreeze>(&op)) {
    if (x->expires_at_ms <= c.issued_at_ms) {
      return Status::invalid("freeze expiry " + std::to_string(x->expires_at_ms) +
                             " is not after the commit's issue time " +
                             std::to_string(c.issued_at_ms));
    }
    s.freeze = FreezeState{x->expires_at_ms, x->reason, c.seq};
    return Status::ok();
  }
  if (std::holds_alternative<OpThaw>(op)) {
    s.freeze.reset();
    return Status::ok();
  }
  if (auto* x = std::get_if<OpAddAdminKey>(&op)) {
    if (s.trust.contains(x->key)) {
      return Status::invalid("admin key " + publicKeyToBase64(x->key) + " is already trusted");
    }
    s.trust.admins.insert(x->key);
    return Status::ok();
  }
  if (auto* x = std::get_if<OpRemoveAdminKey>(&op)) {
    if (s.trust.admins.erase(x->key) == 0) {
      return Status::invalid("admin key " + publicKeyToBase64(x->key) + " is not trusted");
    }
    return Status::ok();
  }
  if (auto* x = std::get_if<OpSetThreshold>(&op)) {
    if (x->threshold == 0) return Status::invalid("threshold must be at least 1");
    s.trust.threshold = x->threshold;
    return Status::ok();
  }
  return Status::internal("unhandled operation");
}

}  // namespace

Status TrustSet::validate() const {
  if (admins.empty()) return Status::invalid("the trust set has no admin keys");
  if (admins.size() > kMaxAdminKeys) {
    return Status::invalid("more than " + std::to_string(kMaxAdminKeys) + " admin keys");
  }
  if (threshold < 1 || threshold > admins.size()) {
    return Status::invalid("threshold " + std::to_string(threshold) + " must be in 1.." +
                           std::to_string(admins.size()) + " (the number of admin keys)");
  }
  return Status::ok();
}

Result<TrustSet> trustFromConfig(const std::vector<std::string>& admins_base64, int64_t threshold) {
  TrustSet t;
  for (size_t i = 0; i < admins_base64.size(); ++i) {
    auto k = publicKeyFromBase64(admins_base64[i]);
    if (!k) return k.status().withContext("trust.admins[" + std::to_string(i) + "]");
    if (!t.admins.insert(*k).second) {
      return Status::invalid("trust.admins[" + std::to_string(i) + "]: duplicate key");
    }
  }
  if (threshold < 1 || threshold > static_cast<int64_t>(kMaxAdminKeys)) {
    return Status::invalid("trust.threshold must be in 1.." + std::to_string(kMaxAdminKeys));
  }
  t.threshold = static_cast<uint32_t>(threshold);
  MESHOS_RETURN_IF_ERROR(t.validate().withContext("trust"));
  return t;
}

Result<DesiredState> applyCommitOps(const DesiredState& state, const Commit& commit,
                                    const Hash256& hash) {
  if (commit.operations.empty()) return Status::invalid("a commit needs at least one operation");
  DesiredState next = state;
  for (size_t i = 0; i < commit.operations.size(); ++i) {
    const Operation& op = commit.operations[i];
    Status st = applyOne(next, op, commit);
    if (!st) {
      return st.withContext("operation " + std::to_string(i + 1) + " (" +
                            std::string(operationName(op)) + ")");
    }
  }
  Status trust = next.trust.validate();
  if (!trust) return trust.withContext("after this commit");
  std::vector<spec::DaemonSpec> specs;
  specs.reserve(next.daemons.size());
  for (const auto& [name, d] : next.daemons) specs.push_back(d.spec);
  Status set = spec::validateSet(specs);
  if (!set) return set.withContext("the desired daemon set after this commit");
  next.seq = commit.seq;
  next.hash = hash;
  return next;
}

}  // namespace meshos::commits
