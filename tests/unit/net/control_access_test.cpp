// Roles on the control socket: what each request needs, the role a caller holds (by uid,
// primary or supplementary group, "*", root and the agent's own user), the refusal text,
// and the [control] lists resolved against this host's user database.
#include <doctest/doctest.h>

#include <capnp/message.h>

#include "agent/control/control_access.h"
#include "agent/net/control_access_names.h"

using namespace meshos;
using namespace meshos::control;

namespace {

PeerCred caller(uint32_t uid, uint32_t gid, std::vector<gid_t> groups = {}) {
  PeerCred p;
  p.pid = 42;
  p.uid = uid;
  p.gid = gid;
  p.groups = std::move(groups);
  p.known = true;
  return p;
}

template <typename Fill>
RequestNeeds needsOf(Fill fill) {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<proto::Request>();
  fill(r);
  return requestNeeds(r.asReader());
}

}  // namespace

TEST_CASE("requests: reads need a reader, daemon operations an operator, exec, keys and join an admin") {
  using Op = proto::DaemonControl::Op;
  auto daemon = [](Op op) {
    return needsOf([op](proto::Request::Builder r) { r.initDaemonControl().setOp(op); });
  };
  CHECK(needsOf([](proto::Request::Builder r) { r.setSnapshot(); }).role == Role::kReader);
  CHECK(!needsOf([](proto::Request::Builder r) { r.setSnapshot(); }).mutates);
  CHECK(needsOf([](proto::Request::Builder r) { r.initKeyring().setList(); }).role == Role::kReader);
  for (Op op : {Op::RESTART, Op::STOP, Op::START, Op::PAUSE, Op::RESUME, Op::QUARANTINE, Op::TRIGGER, Op::SIGNAL}) {
    CHECK(daemon(op).role == Role::kOperator);
    CHECK(daemon(op).mutates);
  }
  CHECK(daemon(Op::EXEC).role == Role::kAdmin);
  CHECK(daemon(Op::EXEC).what == "daemon exec");
  CHECK(needsOf([](proto::Request::Builder r) { r.initKeyring().setInstall(capnp::Data::Reader()); }).role == Role::kAdmin);
  CHECK(needsOf([](proto::Request::Builder r) { r.initJoin(0); }).role == Role::kAdmin);
  CHECK(needsOf([](proto::Request::Builder r) { r.setSubmitCommit(capnp::Data::Reader()); }).role == Role::kOperator);
}

TEST_CASE("roles: by user, primary group, supplementary group, anyone; root and the agent's user are admins") {
  AccessPolicy p;
  p.agent_uid = 999;
  p.readers.anyone = true;
  p.operators.uids = {1001};
  p.admins.gids = {50};
  CHECK(p.roleOf(caller(0, 0)) == Role::kAdmin);
  CHECK(p.roleOf(caller(999, 999)) == Role::kAdmin);
  CHECK(p.roleOf(caller(1001, 1001)) == Role::kOperator);
  CHECK(p.roleOf(caller(1002, 50)) == Role::kAdmin);
  CHECK(p.roleOf(caller(1003, 1003, {7, 50})) == Role::kAdmin);
  CHECK(p.roleOf(caller(1004, 1004)) == Role::kReader);
  PeerCred unknown;  // the kernel did not say: not even a reader, and never root
  CHECK(p.roleOf(unknown) == Role::kNone);
  p.readers.anyone = false;
  CHECK(p.roleOf(caller(1004, 1004)) == Role::kNone);

  RequestNeeds exec{Role::kAdmin, true, "daemon exec"};
  CHECK(refusal(p, caller(1001, 1001), exec) ==
        "permission denied: daemon exec needs the admin role; uid 1001 has operator (see [control] admins)");
  CHECK(refusal(p, caller(1004, 1004), RequestNeeds{Role::kReader, false, "reading"}) ==
        "permission denied: reading needs the reader role; uid 1004 has no role (see [control] readers)");
  CHECK(refusal(p, caller(1003, 1, {50}), exec).empty());
  CHECK(refusal(p, unknown, exec) == "permission denied: the kernel did not name the caller of this connection");
}

TEST_CASE("[control] lists resolve names and ids; an unknown name is an error naming it") {
  config::ControlSection s;
  s.readers = {"*"};
  s.operators = {"root", "1234"};
  s.admins = {"%root", "%4321"};
  auto p = resolveControlAccess(s, 77);
  REQUIRE_MESSAGE(p.isOk(), p.status().toString());
  CHECK(p->readers.anyone);
  CHECK(p->operators.uids == std::set<uint32_t>{0, 1234});
  CHECK(p->admins.gids == std::set<uint32_t>{0, 4321});
  CHECK(p->agent_uid == 77);
  s.admins = {"%no-such-group-meshos"};
  auto bad = resolveControlAccess(s, 77);
  REQUIRE(!bad.isOk());
  CHECK(bad.status().message() == "[control] admins: no group \"no-such-group-meshos\" on this host");
}
