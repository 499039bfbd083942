#include "agent/commits/commit_json.h"

#include <set>

#include "agent/core/node_identity.h"

namespace meshos::commits {

using nlohmann::json;

namespace {
json checkToJson(const std::optional<spec::HealthCheck>& c) {
  if (!c) return nullptr;
  json j{{"type", spec::checkTypeName(c->type)},
         {"interval_ms", c->interval_ms},
         {"timeout_ms", c->timeout_ms}};
  if (c->type == spec::CheckType::kExec)
    j["command"] = c->command;
  else {
    j["host"] = c->host;
    j["port"] = c->port;
    if (c->type == spec::CheckType::kHttp) j["path"] = c->path;
  }
  return j;
}
}  // namespace

json daemonSpecToJson(const spec::DaemonSpec& s) {
  json j{{"name", s.name},
         {"kind", spec::kindName(s.kind)},
         {"command", s.command},
         {"env", s.env},
         {"restart", spec::restartPolicyName(s.restart)},
         {"strategy", spec::strategyName(s.placement.strategy)},
         {"cpu_millicores", s.resources.cpu_millicores},
         {"memory_bytes", s.resources.memory_bytes},
         {"capabilities", s.placement.capabilities},
         {"stop_signal", s.stop_signal},
         {"stop_grace_ms", s.stop_grace_ms}};
  if (s.kind == spec::DaemonKind::kService) j["replicas"] = s.replicas;
  if (s.kind == spec::DaemonKind::kCron) j["schedule"] = s.schedule;
  if (!s.workdir.empty()) j["workdir"] = s.workdir;
  json constraints = json::array();
  for (const auto& c : s.placement.constraints) {
    constraints.push_back(
        {{"label", c.label}, {"op", spec::constraintOpName(c.op)}, {"values", c.values}});
  }
  j["constraints"] = constraints;
  json deps = json::array();
  for (const auto& d : s.depends_on) {
    deps.push_back({{"name", d.name}, {"condition", spec::conditionName(d.condition)}});
  }
  j["depends_on"] = deps;
  j["health"] = {{"startup", checkToJson(s.health.startup)},
                 {"liveness", checkToJson(s.health.liveness)},
                 {"readiness", checkToJson(s.health.readiness)}};
  if (!s.ports.empty()) {
    json ports = json::array();
    for (const auto& p : s.ports) ports.push_back({{"name", p.name}, {"port", p.port}, {"protocol", spec::protocolName(p.protocol)}});
    j["ports"] = std::move(ports);
  }
  if (s.permissions != spec::Permissions{}) {
    j["permissions"] = {{"allow_stop", s.permissions.allow_stop},
                        {"allow_restart", s.permissions.allow_restart},
                        {"allow_exec", s.permissions.allow_exec}};
    if (s.permissions.allowed_signals) j["permissions"]["allowed_signals"] = *s.permissions.allowed_signals;
  }
  if (s.supervision != spec::Supervision{}) {
    const auto& v = s.supervision;
    j["supervision"] = {{"group", v.group},
                        {"strategy", spec::groupStrategyName(v.strategy)},
                        {"restart_intensity", v.restart_intensity},
                        {"restart_window_ms", v.restart_window_ms},
                        {"restart_with_dependency", v.restart_with_dependency},
                        {"critical", v.critical}};
  }
  if (!s.secrets.empty()) j["secrets"] = secretUsesToJson(s.secrets);
  if (s.runtime != spec::RuntimeKind::kProcess) {
    j["runtime"] = spec::runtimeKindName(s.runtime);
    j["container"] = {{"rootfs", s.container.rootfs}, {"image", s.container.image},
                      {"network", spec::containerNetworkName(s.container.network)},
                      {"capabilities", s.container.capabilities}, {"writable_rootfs", s.container.writable_rootfs}};
  }
  return j;
}

json secretUsesToJson(const spec::SecretUses& u) {
  json env = json::object();
  for (const auto& [var, secret] : u.env) env[var] = "<secret:" + secret + ">";
  return {{"env", env}, {"files", u.files}, {"versions", u.versions}};
}

json sealedSecretToJson(const SealedSecret& s) {
  json to = json::array();
  for (const auto& c : s.copies) {
    json one{{"kind", secretRecipientName(c.to)}, {"key", publicKeyToBase64(c.key)}, {"sealed_bytes", c.box.size()}};
    if (c.to == SecretRecipient::kNode) one["node_id"] = nodeIdFromPublicKey(c.key);
    to.push_back(std::move(one));
  }
  return {{"name", s.name}, {"sealed_to", to}};
}

json operationToJson(const Operation& op) {
  json j{{"op", operationName(op)}};
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, OpPutDaemon>) {
          j["daemon"] = daemonSpecToJson(x.spec);
        } else if constexpr (std::is_same_v<T, OpScale>) {
          j["daemon"] = x.name;
          j["replicas"] = x.replicas;
        } else if constexpr (std::is_same_v<T, OpSetMaintenance>) {
          j["node"] = x.node;
          j["mode"] = maintenanceModeName(x.mode);
          if (x.mode == MaintenanceMode::kDrain) j["deadline_ms"] = x.deadline_ms;
        } else if constexpr (std::is_same_v<T, OpFreeze>) {
          j["expires_at_ms"] = x.expires_at_ms;
          j["reason"] = x.reason;
        } else if constexpr (std::is_same_v<T, OpThaw>) {
        } else if constexpr (std::is_same_v<T, OpAddAdminKey> ||
                             std::is_same_v<T, OpRemoveAdminKey>) {
          j["key"] = publicKeyToBase64(x.key);
        } else if constexpr (std::is_same_v<T, OpSetThreshold>) {
          j["threshold"] = x.threshold;
        } else if constexpr (std::is_same_v<T, OpPutSecret>) {
          j["secret"] = sealedSecretToJson(x.secret);
        } else if constexpr (std::is_same_v<T, OpRemoveSecret>) {
          j["secret"] = x.name;
        } else {
          j["daemon"] = x.name;
        }
      },
      op);
  return j;
}

std::vector<SignatureCheck> checkSignatures(const DecodedCommit& d, const TrustSet* trust) {
  std::vector<SignatureCheck> out;
  std::set<PublicKey> seen;
  for (const auto& s : d.commit.signatures) {
    SignatureCheck c;
    c.key_id = s.key_id;
    c.verifies = verifySignature(s.key_id, d.signing_bytes, s.signature);
    c.trusted = trust != nullptr && trust->contains(s.key_id);
    c.duplicate = !seen.insert(s.key_id).second;
    out.push_back(c);
  }
  return out;
}

json commitToJson(const DecodedCommit& d, const TrustSet* trust) {
  const Commit& c = d.commit;
  json j{{"hash", toHex(d.hash)},
         {"seq", c.seq},
         {"parent", toHex(c.parent)},
         {"cluster", c.cluster_id},
         {"issued_at_ms", c.issued_at_ms},
         {"issuer", publicKeyToBase64(c.issuer)},
         {"note", c.note}};
  json ops = json::array();
  for (const auto& op : c.operations) ops.push_back(operationToJson(op));
  j["operations"] = ops;
  if (!d.operation_error.isOk()) j["operation_error"] = d.operation_error.message();
  json sigs = json::array();
  size_t valid = 0;
  for (const auto& s : checkSignatures(d, trust)) {
    json sj{
        {"key", publicKeyToBase64(s.key_id)}, {"verifies", s.verifies}, {"duplicate", s.duplicate}};
    if (trust) sj["trusted"] = s.trusted;
    if (s.verifies && s.trusted && !s.duplicate) ++valid;
    sigs.push_back(sj);
  }
  j["signatures"] = sigs;
  if (trust) {
    j["valid_signers"] = valid;
    j["threshold"] = trust->threshold;
    j["meets_threshold"] = valid >= trust->threshold;
  }
  return j;
}

json headToJson(const Head& h) { return {{"seq", h.seq}, {"hash", toHex(h.hash)}}; }

json trustToJson(const TrustSet& t) {
  json admins = json::array();
  for (const auto& k : t.admins) admins.push_back(publicKeyToBase64(k));
  return {{"admins", admins}, {"threshold", t.threshold}};
}

json desiredDaemonsToJson(const DesiredState& s) {
  json out = json::array();
  for (const auto& [name, d] : s.daemons) {
    out.push_back({{"name", name},
                   {"paused", d.paused},
                   {"restart_generation", d.restart_generation},
                   {"kill_relocation_generation", d.kill_relocation_generation},
                   {"updated_seq", d.updated_seq},
                   {"spec", daemonSpecToJson(d.spec)}});
  }
  return out;
}

json commitLogToJson(const CommitLog& log) {
  const DesiredState& s = log.desired();
  json j;
  j["head"] = headToJson(log.head());
  j["trust"] = trustToJson(s.trust);
  j["freeze"] = s.freeze ? json{{"expires_at_ms", s.freeze->expires_at_ms},
                                {"reason", s.freeze->reason},
                                {"seq", s.freeze->seq}}
                         : json(nullptr);
  json maint = json::array();
  for (const auto& [node, m] : s.maintenance) {
    maint.push_back({{"node", node},
                     {"mode", maintenanceModeName(m.mode)},
                     {"deadline_ms", m.deadline_ms},
                     {"seq", m.seq}});
  }
  j["maintenance"] = maint;
  j["daemons"] = desiredDaemonsToJson(s);
  json secrets = json::array();
  for (const auto& [name, sec] : s.secrets) {
    json one = sealedSecretToJson(sec.sealed);
    one["seq"] = sec.seq;
    secrets.push_back(std::move(one));
  }
  j["secrets"] = secrets;
  json pending = json::array();
  for (const auto& p : log.pending()) {
    pending.push_back({{"hash", toHex(p.hash)}, {"seq", p.seq}, {"parent", toHex(p.parent)}});
  }
  j["pending"] = pending;
  json rejected = json::array();
  for (const auto& r : log.recentRejected()) rejected.push_back(json::parse(auditPayload(r)));
  j["rejected"] = rejected;
  const auto& c = log.counters();
  j["counters"] = {{"accepted", c.accepted},
                   {"rejected", c.rejected},
                   {"superseded", c.superseded},
                   {"duplicates", c.duplicates},
                   {"pending_evicted", c.pending_evicted},
                   {"forks_won", c.forks_won},
                   {"refolds", c.refolds}};
  return j;
}

json submitReplyJson(const SubmitResult& r) {
  return {{"outcome", outcomeName(r.outcome)},
          {"reason", reasonName(r.reason)},
          {"message", r.message},
          {"hash", toHex(r.hash)},
          {"seq", r.seq}};
}

json headReplyJson(const CommitLog& log) {
  const auto& s = log.desired();
  return {{"cluster", log.config().cluster_id},
          {"head", headToJson(log.head())},
          {"trust", trustToJson(s.trust)},
          {"frozen_until_ms", s.freeze ? json(s.freeze->expires_at_ms) : json(nullptr)}};
}

json commitsReplyJson(const CommitLog& log, uint64_t from, uint64_t to) {
  json commits = json::array();
  for (const auto& b : log.getCommits(from, to)) commits.push_back(toBase64(b));
  return {{"head", headToJson(log.head())}, {"commits", commits}};
}

}  // namespace meshos::commits
