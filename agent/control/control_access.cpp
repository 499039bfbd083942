// Roles on the control socket (control_access.h).
#include "agent/control/control_access.h"

namespace meshos::control {

std::string_view roleName(Role r) {
  switch (r) {
    case Role::kNone: return "none";
    case Role::kReader: return "reader";
    case Role::kOperator: return "operator";
    case Role::kAdmin: return "admin";
  }
  return "?";
}

bool Principals::matches(const PeerCred& peer) const {
  if (!peer.known) return false;
  if (anyone || uids.count(peer.uid) > 0 || gids.count(peer.gid) > 0) return true;
  for (uint32_t g : peer.groups) {
    if (gids.count(g) > 0) return true;
  }
  return false;
}

Role AccessPolicy::roleOf(const PeerCred& peer) const {
  if (!peer.known) return Role::kNone;
  if (peer.uid == 0 || peer.uid == agent_uid || admins.matches(peer)) return Role::kAdmin;
  if (operators.matches(peer)) return Role::kOperator;
  if (readers.matches(peer)) return Role::kReader;
  return Role::kNone;
}

namespace {

RequestNeeds daemonNeeds(proto::DaemonControl::Reader c) {
  using Op = proto::DaemonControl::Op;
  switch (c.getOp()) {
    case Op::RESTART: return {Role::kOperator, true, "daemon restart"};
    case Op::PAUSE: return {Role::kOperator, true, "daemon pause"};
    case Op::RESUME: return {Role::kOperator, true, "daemon resume"};
    case Op::QUARANTINE: return {Role::kOperator, true, "daemon quarantine"};
    case Op::STOP: return {Role::kOperator, true, "daemon stop"};
    case Op::START: return {Role::kOperator, true, "daemon start"};
    case Op::TRIGGER: return {Role::kOperator, true, "daemon trigger"};
    case Op::SIGNAL: return {Role::kOperator, true, "daemon signal"};
    case Op::ENABLE: return {Role::kOperator, true, "daemon enable"};
    case Op::DISABLE: return {Role::kOperator, true, "daemon disable"};
    case Op::EXEC: return {Role::kAdmin, true, "daemon exec"};
  }
  // An operation this agent does not know: the handler refuses it; only admins get that far.
  return {Role::kAdmin, true, "daemon operation"};
}

}  // namespace

RequestNeeds requestNeeds(proto::Request::Reader request) {
  switch (request.which()) {
    case proto::Request::DAEMON_CONTROL:
      return daemonNeeds(request.getDaemonControl());
    case proto::Request::SUBMIT_COMMIT:
      return {Role::kOperator, true, "commit submission"};
    case proto::Request::JOIN:
      return {Role::kAdmin, true, "join"};
    case proto::Request::LEAVE:
      return {Role::kAdmin, true, "leave"};
    case proto::Request::FORCE_LEAVE:
      return {Role::kAdmin, true, "force-leave"};
    case proto::Request::RELOAD:
      return {Role::kAdmin, true, "reload"};
    case proto::Request::KEYRING:
      switch (request.getKeyring().which()) {
        case proto::KeyringOp::LIST: return {Role::kReader, false, "keyring list"};
        case proto::KeyringOp::INSTALL: return {Role::kAdmin, true, "keyring install"};
        case proto::KeyringOp::USE: return {Role::kAdmin, true, "keyring use"};
        case proto::KeyringOp::REMOVE: return {Role::kAdmin, true, "keyring remove"};
      }
      return {Role::kAdmin, true, "keyring"};
    default:
      return {Role::kReader, false, "reading"};
  }
}

std::string refusal(const AccessPolicy& policy, const PeerCred& peer, const RequestNeeds& needs) {
  const Role has = policy.roleOf(peer);
  if (has >= needs.role) return "";
  if (!peer.known) return "permission denied: the kernel did not name the caller of this connection";
  const char* list = needs.role == Role::kAdmin ? "admins" : needs.role == Role::kOperator ? "operators" : "readers";
  return "permission denied: " + needs.what + " needs the " + std::string(roleName(needs.role)) + " role; uid " +
         std::to_string(peer.uid) + " has " + (has == Role::kNone ? "no role" : std::string(roleName(has))) +
         " (see [control] " + list + ")";
}

}  // namespace meshos::control
