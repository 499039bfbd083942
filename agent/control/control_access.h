// Who may do what on the control socket. A caller (PeerCred: uid, gid and supplementary
// groups from the kernel) holds the highest role whose list names its user or one of its
// groups; the roles nest (an admin is an operator is a reader). root and the agent's own
// user are always admins: they can read the database and the keys anyway.
//
//   reader:   ping, snapshot, metrics, members, daemons, logs, chains, commits (read),
//             placement, keyring list
//   operator: daemon restart, stop, start, pause, resume, quarantine, trigger, signal;
//             commit submission (the commit's signatures carry the authority)
//   admin:    daemon exec, keyring install/use/remove, join
//
// Every request that changes something also needs a non-empty reason, which is recorded in
// the audit chain. Names are resolved to ids by the shell (control_access_names.h) at
// startup; this is pure and any thread may use it.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "agent/control/control_reply.h"
#include "proto/control.capnp.h"

namespace meshos::control {

enum class Role { kNone = 0, kReader = 1, kOperator = 2, kAdmin = 3 };
std::string_view roleName(Role r);  // "none" | "reader" | "operator" | "admin"

// The users and groups one role list names.
struct Principals {
  bool anyone = false;  // "*": whoever can open the socket
  std::set<uint32_t> uids;
  std::set<uint32_t> gids;
  bool matches(const PeerCred& peer) const;
  bool operator==(const Principals&) const = default;
};

struct AccessPolicy {
  Principals readers;
  Principals operators;
  Principals admins;
  uint32_t agent_uid = 0;  // the agent's own user: always admin
  // The highest role the caller holds; kNone for a caller the kernel did not name.
  Role roleOf(const PeerCred& peer) const;
  bool operator==(const AccessPolicy&) const = default;
};

// What a request needs: the role, and whether it changes something (then a reason is
// required and it is audited before it acts).
struct RequestNeeds {
  Role role = Role::kReader;
  bool mutates = false;
  std::string what;  // "daemon exec", "keyring install": named in a refusal
};
RequestNeeds requestNeeds(proto::Request::Reader request);

// "" when the caller may make the request; otherwise the refusal, naming the missing role:
// "permission denied: daemon exec needs the admin role; uid 1001 has operator (see
// [control] admins)".
std::string refusal(const AccessPolicy& policy, const PeerCred& peer, const RequestNeeds& needs);

}  // namespace meshos::control
