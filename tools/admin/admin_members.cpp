#include "tools/admin/admin_members.h"

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "agent/control/control_client.h"

namespace meshos::admin {

namespace {

struct MembershipOptions {
  std::string socket;
  std::string reason;
  bool json = false;
  std::vector<std::string> addresses;  // join
  std::string name;                    // force-leave
};

int call(const std::string& what, const MembershipOptions& o, const control::RequestFiller& fill) {
  if (o.reason.empty()) {
    std::cerr << "meshos-admin " << what << " changes the agent: --reason is required (it is recorded in the "
              << "agent's audit chain)\n";
    return 2;
  }
  auto reply = control::callAgent(o.socket, [&](proto::Request::Builder r) {
    r.setReason(o.reason);
    fill(r);
  });
  if (!reply) {
    std::cerr << "meshos-admin " << what << ": " << reply.status().toString() << "\n";
    return reply.status().code() == Code::kInvalidArgument ? 2 : 1;
  }
  if (o.json) {
    std::cout << reply->body << "\n";
    return 0;
  }
  auto j = nlohmann::json::parse(reply->body, nullptr, false);
  if (what == "join") {
    std::cout << "joining";
    for (const auto& a : j.value("joining", nlohmann::json::array())) std::cout << " " << a.get<std::string>();
    std::cout << "\n";
  } else if (what == "reload") {
    std::cout << "applied:";
    for (const auto& k : j.value("applied", nlohmann::json::array())) std::cout << " " << k.get<std::string>();
    if (j.value("applied", nlohmann::json::array()).empty()) std::cout << " (nothing changed)";
    std::cout << "\n";
    for (const auto& k : j.value("needs_restart", nlohmann::json::array())) {
      std::cout << "changed, takes effect at the next start: [" << k.get<std::string>() << "]\n";
    }
  } else if (what == "leave") {
    std::cout << j.value("leaving", std::string("?")) << " is leaving the cluster and stopping\n";
  } else {
    std::cout << j.value("left", std::string("?")) << " is marked left on every member\n";
  }
  return 0;
}

void common(CLI::App* sub, MembershipOptions& o) {
  sub->add_option("--socket", o.socket, "the agent's control socket")->required();
  sub->add_option("--reason", o.reason, "why (required; recorded in the agent's audit chain)");
  sub->add_flag("--json", o.json, "print the agent's reply as JSON");
}

}  // namespace

std::function<int()> addMembershipCommands(CLI::App& app) {
  auto o = std::make_shared<MembershipOptions>();
  auto* join = app.add_subcommand("join", "the agent joins a cluster through these members (host:port)");
  join->add_option("address", o->addresses, "gossip address of a member")->required();
  common(join, *o);
  auto* leave = app.add_subcommand("leave", "the agent leaves the cluster gracefully and stops");
  common(leave, *o);
  auto* force = app.add_subcommand("force-leave", "declare a dead member gone: it is marked left everywhere");
  force->add_option("name", o->name, "the dead member's name")->required();
  common(force, *o);
  auto* reload = app.add_subcommand("reload", "the agent reads its config again (as on SIGHUP)");
  common(reload, *o);
  return [o, join, leave, force, reload]() -> int {
    if (reload->parsed()) return call("reload", *o, [](proto::Request::Builder r) { r.setReload(); });
    if (join->parsed()) {
      return call("join", *o, [&](proto::Request::Builder r) {
        auto list = r.initJoin(static_cast<unsigned>(o->addresses.size()));
        for (size_t i = 0; i < o->addresses.size(); ++i) list.set(static_cast<unsigned>(i), o->addresses[i]);
      });
    }
    if (leave->parsed()) return call("leave", *o, [](proto::Request::Builder r) { r.setLeave(); });
    if (force->parsed()) return call("force-leave", *o, [&](proto::Request::Builder r) { r.setForceLeave(o->name); });
    return -1;
  };
}

}  // namespace meshos::admin
