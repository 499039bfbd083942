// Endpoints: where the ready instances of every commit daemon are, as this node knows it
// from the members' node states (DESIGN.md section 5). A node reports, per daemon, how many
// instances it runs, how many are ready and since when; the endpoint is the node's address
// with the daemon's declared ports. Members that are dead or have left are not endpoints:
// their last report is stale. Every agent computes the same view from the same gossip, so
// `meshos-inspect endpoints` and DNS answer alike on every node. Pure values; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/spec/daemon_spec.h"
#include "agent/state/event.h"
#include "agent/state/node_report.h"

namespace meshos::discovery {

// One member as the view needs it; report may be null (no node state heard yet).
struct MemberEntry {
  std::string id;
  std::string name;
  std::string address;  // its gossip address, "host:port" or "[v6]:port"
  state::MemberState state = state::MemberState::kAlive;
  const state::NodeReport* report = nullptr;
};

struct Endpoint {
  std::string node;     // member name
  std::string node_id;
  std::string host;     // the node's address without the port
  uint32_t ready = 0;   // ready instances there (a daemon with ports: at most 1)
  uint32_t running = 0;
  int64_t ready_since_ms = 0;  // wall clock, as that node reported it
  uint64_t generation = 0;     // the commit entry it runs
  bool operator==(const Endpoint&) const = default;
};

struct ServiceEndpoints {
  std::string daemon;
  std::vector<spec::Port> ports;
  std::vector<Endpoint> ready;  // sorted by node name
  bool operator==(const ServiceEndpoints&) const = default;
};

struct NodeAddress {
  std::string name;
  std::string host;
  bool operator==(const NodeAddress&) const = default;
};

struct EndpointView {
  std::map<std::string, ServiceEndpoints> daemons;  // every commit daemon, by name
  std::vector<NodeAddress> nodes;                   // members alive or suspect, by name
  bool operator==(const EndpointView&) const = default;
};

// "127.0.1.2:7946" -> "127.0.1.2"; "[::1]:7946" -> "::1"; no port: as it is.
std::string hostOf(const std::string& address);

// daemons: the commit's daemons by name (their ports).
EndpointView buildEndpoints(const std::vector<MemberEntry>& members,
                            const std::map<std::string, const spec::DaemonSpec*>& daemons);

// {"endpoints": [{daemon, node, address, ports: [{name, port, protocol}], ready, ready_since_ms}]},
// every daemon, or only `daemon` when it is not empty.
nlohmann::json endpointsToJson(const EndpointView& view, const std::string& daemon);
nlohmann::json portsToJson(const std::vector<spec::Port>& ports);

}  // namespace meshos::discovery
