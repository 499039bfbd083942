#include "agent/discovery/endpoints.h"

#include <algorithm>

namespace meshos::discovery {

std::string hostOf(const std::string& address) {
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    return close == std::string::npos ? address : address.substr(1, close - 1);
  }
  auto colon = address.rfind(':');
  if (colon == std::string::npos || address.find(':') != colon) return address;  // bare v6 or no port
  return address.substr(0, colon);
}

namespace {
// A dead or departed member's last report says what it ran, not what runs now.
bool current(state::MemberState s) { return s == state::MemberState::kAlive || s == state::MemberState::kSuspect; }
}  // namespace

EndpointView buildEndpoints(const std::vector<MemberEntry>& members,
                            const std::map<std::string, const spec::DaemonSpec*>& daemons) {
  EndpointView view;
  for (const auto& [name, spec] : daemons) view.daemons[name] = ServiceEndpoints{name, spec->ports, {}};
  for (const auto& m : members) {
    if (!current(m.state)) continue;
    const std::string host = hostOf(m.address);
    view.nodes.push_back({m.name, host});
    if (m.report == nullptr) continue;
    for (const auto& [name, d] : m.report->daemons) {
      auto it = view.daemons.find(name);
      if (it == view.daemons.end() || d.ready == 0) continue;
      it->second.ready.push_back(Endpoint{m.name, m.id, host, d.ready, d.running, d.ready_since_ms, d.generation});
    }
  }
  std::sort(view.nodes.begin(), view.nodes.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& [name, s] : view.daemons) {
    std::sort(s.ready.begin(), s.ready.end(), [](const auto& a, const auto& b) { return a.node < b.node; });
  }
  return view;
}

nlohmann::json portsToJson(const std::vector<spec::Port>& ports) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : ports) {
    out.push_back({{"name", p.name}, {"port", p.port}, {"protocol", spec::protocolName(p.protocol)}});
  }
  return out;
}

nlohmann::json endpointsToJson(const EndpointView& view, const std::string& daemon) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, s] : view.daemons) {
    if (!daemon.empty() && name != daemon) continue;
    for (const auto& e : s.ready) {
      list.push_back({{"daemon", name}, {"node", e.node}, {"node_id", e.node_id}, {"address", e.host},
                      {"ports", portsToJson(s.ports)}, {"ready", e.ready}, {"running", e.running},
                      {"ready_since_ms", e.ready_since_ms}, {"generation", e.generation}});
    }
  }
  return {{"endpoints", std::move(list)}};
}

}  // namespace meshos::discovery
