// Node, discovery: the endpoint view (where each commit daemon's ready instances are, from
// the members' node states) behind `meshos-inspect endpoints`, /v1/endpoints and DNS.
// Rebuilt only when its inputs move (a member, a node state, the commit log, this node's
// own report), so a DNS query costs a lookup, not a walk over the cluster.
#include "agent/node/node.h"

namespace meshos::node {

void Node::refreshEndpoints() {
  if (!commit_log_) return;
  const auto head = commit_log_->head();
  EndpointsKey key{state_.structural_generation, head.seq, self_report_version_};
  if (endpoints_key_ == key) return;
  endpoints_key_ = key;
  std::vector<discovery::MemberEntry> members;
  members.reserve(state_.members.size());
  for (const auto& [id, m] : state_.members) {
    discovery::MemberEntry e{id, m.name, m.address, m.state, nullptr};
    if (id == identity_.id) {
      e.report = &self_report_;
    } else if (auto it = state_.peer_states.find(id); it != state_.peer_states.end()) {
      e.report = &it->second.report;
    }
    members.push_back(std::move(e));
  }
  std::map<std::string, const spec::DaemonSpec*> daemons;
  for (const auto& [name, d] : commit_log_->desired().daemons) daemons[name] = &d.spec;
  auto view = discovery::buildEndpoints(members, daemons);
  if (view == endpoints_) return;
  endpoints_ = std::move(view);
  dns_.setView(endpoints_);
}

nlohmann::json Node::endpointsJson(const std::string& daemon) {
  refreshEndpoints();
  return discovery::endpointsToJson(endpoints_, daemon);
}

discovery::DnsResult Node::dnsAnswer(ByteView query) {
  refreshEndpoints();
  return dns_.answer(query);
}

// The ready count of each placed daemon went above zero at some wall-clock moment; peers
// list the endpoint as ready since then. Kept while it stays above zero, so the report
// does not change (and is not re-broadcast) while nothing happens.
void Node::noteReadySince(state::NodeReport& report) {
  const int64_t now = env_.clock.wallMs();
  for (auto it = ready_since_ms_.begin(); it != ready_since_ms_.end();) {
    auto d = report.daemons.find(it->first);
    it = (d == report.daemons.end() || d->second.ready == 0) ? ready_since_ms_.erase(it) : std::next(it);
  }
  for (auto& [name, d] : report.daemons) {
    if (d.ready == 0) continue;
    d.ready_since_ms = ready_since_ms_.try_emplace(name, now).first->second;
  }
}

// The ports of each daemon beside what `daemons` and `placement` show of it.
void Node::addPorts(nlohmann::json& list, const char* name_key) const {
  for (auto& d : list) {
    if (!d.is_object() || !d.contains(name_key) || !d[name_key].is_string()) continue;
    const std::string name = d[name_key].get<std::string>();
    const spec::DaemonSpec* spec = nullptr;
    if (commit_log_) {
      auto it = commit_log_->desired().daemons.find(name);
      if (it != commit_log_->desired().daemons.end()) spec = &it->second.spec;
    }
    for (const auto& s : config_specs_) {
      if (spec == nullptr && s.name == name) spec = &s;
    }
    if (spec != nullptr && !spec->ports.empty()) d["ports"] = discovery::portsToJson(spec->ports);
  }
}

}  // namespace meshos::node
