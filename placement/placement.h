// Placement: which nodes run each daemon of the desired state. Sans-IO and pure: every node
// computes the assignment from its own view (membership, labels, capabilities, capacity,
// maintenance, coordinates) and, when two nodes have the same view, they compute the same
// assignment. Inputs change rarely; live load never enters assign() (Rebalancer does that,
// with hysteresis and a cooldown).
//
// For each daemon, in dependency order and then by name:
//   feasibility  alive, active (not draining / in maintenance), required capabilities,
//                label constraints (equals / in / not-in), resources left after the
//                reservations of daemons already assigned (cpu, memory; a node with 0
//                capacity offers none), max instances per node, and co-location with
//                every dependency (a dependent runs only where its dependencies run);
//   ranking      the daemon's PlacementScorer (spread, binpack, near), ties broken by
//                rendezvous hashing on (daemon, node id), so the choice is stable;
//   choice       the top `replicas` feasible nodes. Fewer feasible nodes than replicas:
//                placed as far as possible and reported infeasible.
// Pinned nodes (kill-relocation) keep their instance when feasible apart from resources.
// Scores are compared at float precision; the hashes are 64-bit and platform-independent.
// The rules, the reasons and the strategies are written down in docs/PLACEMENT.md; live
// load moves work only through the Rebalancer (placement/rebalancer.h).
//
// Values only; any thread. The Assigner caches its last answer: a call with the same inputs
// (same fingerprint) returns it without recomputing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/core/status.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::placement {

struct Coordinate {
  std::vector<double> vec;
  double height = 0;
  double adjustment = 0;
};
// Estimated RTT in ms between two coordinates (Vivaldi, as Serf computes it: coordinates in
// seconds; euclidean distance + both heights, + both adjustments unless that makes it <= 0).
// Coordinates of different dimensions give +infinity.
double estimateRttMs(const Coordinate& a, const Coordinate& b);

struct NodeView {
  std::string id;    // node id (unique, stable); the rendezvous hash uses it
  std::string name;
  bool alive = true;   // membership says alive (not suspect, dead or left)
  bool active = true;  // maintenance state "active" (not draining, not in maintenance)
  std::string unhealthy;  // not "": a critical daemon is quarantined there (why); nothing is placed
  std::map<std::string, std::string> labels;
  std::vector<std::string> capabilities;  // sorted
  int64_t cpu_millicores = 0;             // capacity
  int64_t memory_bytes = 0;
  std::optional<Coordinate> coordinate;
  bool operator==(const NodeView&) const = default;
};

struct DaemonRequest {
  std::string name;
  uint32_t replicas = 1;
  spec::Resources resources;
  spec::Placement placement;          // strategy, near, constraints, capabilities, max_per_node
  std::vector<std::string> depends_on;
  // Nodes that must keep an instance (kill-relocation pins it where it runs); they count
  // toward replicas when feasible apart from resources.
  std::vector<std::string> pinned;  // node ids
  bool operator==(const DaemonRequest&) const = default;
};
// Bound on the instances of one daemon (the spec's own limit): more replicas are treated as
// this many.
inline constexpr uint32_t kMaxReplicas = 10'000;
DaemonRequest requestFromSpec(const spec::DaemonSpec& spec);

struct ScoredNode {
  std::string node;  // id
  double score = 0;  // higher is better
  uint64_t tie = 0;  // rendezvous hash
};

struct DaemonAssignment {
  std::vector<std::string> nodes;           // chosen node ids, best first; a node appears
                                            // more than once only when max_per_node allows
  uint32_t wanted = 0;
  bool infeasible = false;                  // fewer placements than wanted
  std::vector<ScoredNode> feasible;         // every feasible node, ranked (explain())
  std::map<std::string, std::string> excluded;  // node id -> why ("suspect", "draining",
                                                // "label zone=b not in [a]", "cpu: 200m left, 500m asked", ...)
  // Every excluded node, also when `excluded` holds only the first kExcludedSample of them
  // (infeasible daemons in views too large for full detail: see Detail).
  uint32_t excluded_count = 0;
  bool detailed = false;  // feasible/excluded were filled
};

// Each daemon's assignment by name, in name order: one vector (a pass fills it in order, a
// walk reads it in order), looked up by binary search. Used like the map it replaces (find,
// at, count, iteration over [name, assignment]); the names must not be changed in place.
class DaemonTable {
 public:
  using value_type = std::pair<std::string, DaemonAssignment>;
  using iterator = std::vector<value_type>::iterator;
  using const_iterator = std::vector<value_type>::const_iterator;

  iterator begin() { return items_.begin(); }
  iterator end() { return items_.end(); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  void reserve(size_t n) { items_.reserve(n); }

  iterator find(std::string_view name);
  const_iterator find(std::string_view name) const;
  size_t count(std::string_view name) const { return find(name) == end() ? 0 : 1; }
  // std::out_of_range when no daemon has that name.
  DaemonAssignment& at(std::string_view name);
  const DaemonAssignment& at(std::string_view name) const;
  // Adds `name` unless present (then `a` is dropped), like map::emplace; in order, so adding
  // in ascending order (as a pass does) is an append.
  std::pair<iterator, bool> emplace(std::string name, DaemonAssignment a);

 private:
  std::vector<value_type> items_;
};

struct Assignment {
  DaemonTable daemons;  // by daemon name
  // Nodes each daemon runs on, inverted: node id -> daemon -> count. Built from `daemons` on
  // each call (a pass does not build it: reconcile never reads it, and at 10,000 daemons it
  // costs as much as a tenth of the pass).
  std::map<std::string, std::map<std::string, uint32_t>> byNode() const;
};

// Strategy interface: higher score is better; reservations are those made so far in this
// assignment pass.
struct NodeLoad {
  int64_t cpu_reserved = 0;
  int64_t memory_reserved = 0;
  uint32_t instances = 0;
};
class PlacementScorer {
 public:
  virtual ~PlacementScorer() = default;
  virtual double score(const DaemonRequest& d, const NodeView& node, const NodeLoad& load,
                       const std::vector<NodeView>& all) const = 0;
};
// The built-in scorers (stateless; they live for the whole program). What each computes is
// below (utilizationStep, nearScore). A built-in score depends on the daemon only through
// whether it reserves anything (spread) and its near target, and on the node only through
// its view and load, which is what lets a pass cache scores per node.
const PlacementScorer& scorerFor(spec::PlacementStrategy strategy);

// Pure: same nodes and daemons (in any order) -> same Assignment.
// Detail: DaemonAssignment::feasible and ::excluded cost one entry per node and daemon, too
// much at 10,000 daemons x 1,000 nodes. kAll fills them for every daemon. kInfeasible fills
// them only for infeasible daemons (the snapshot and the failure chain need those), with
// `excluded` cut to the first kExcludedSample nodes (by id) and excluded_count the total.
// kAuto is kAll when nodes x daemons <= kAutoDetailPairs, kInfeasible otherwise.
// explain() gives the full detail for one daemon.
enum class Detail { kAuto, kInfeasible, kAll };
inline constexpr size_t kAutoDetailPairs = 1 << 16;
inline constexpr size_t kExcludedSample = 16;
struct AssignOptions {
  Detail detail = Detail::kAuto;
};
Assignment assign(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons);
Assignment assign(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons,
                  const AssignOptions& options);
// The decision for one daemon with every feasible node ranked and every excluded node's
// reason (meshos-inspect placement DAEMON). NotFound when no daemon has that name.
Result<DaemonAssignment> explain(const std::vector<NodeView>& nodes,
                                 const std::vector<DaemonRequest>& daemons, const std::string& daemon);

// 64-bit fingerprint of the inputs, independent of the order of nodes and daemons (the
// Assigner's cache key). Not cryptographic. Coordinates count only when some daemon uses
// strategy near (nothing else reads them), so their drift does not defeat the cache.
uint64_t fingerprint(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons);

// Mean reserved fraction over the dimensions (cpu, memory) the node declares a capacity for;
// 0 when it declares none.
double utilization(const NodeView& node, const NodeLoad& load);
// Utilization rounded down to steps of 1/kUtilizationSteps (5%): spread prefers the lowest
// step, binpack the highest, and nodes within one step tie, so the rendezvous hash decides
// among them (small reservation changes move nothing; equal loads give pure hashing).
inline constexpr int kUtilizationSteps = 20;
double utilizationStep(const NodeView& node, const NodeLoad& load);
// spread: -utilizationStep for a daemon that reserves cpu or memory; 0 for one that reserves
// nothing (it adds no load, so it is spread by the rendezvous hash alone: otherwise every
// such daemon would pile onto the least-loaded node).
// binpack: +utilizationStep, for every daemon.
// Score of a node for strategy near: minus the estimated RTT in ms to the target (a node name
// or id, or "label=value": the nearest alive node carrying it). A node that is a target
// itself scores 0. Nodes without coordinates, or with coordinates of another dimension,
// score -kUnknownRttMs; when no target has coordinates every node scores 0.
inline constexpr double kUnknownRttMs = 1e9;
std::vector<Coordinate> nearTargets(const std::string& near, const std::vector<NodeView>& all);
bool isNearTarget(const NodeView& node, const std::string& near);
double nearScore(const NodeView& node, const std::string& near, const std::vector<Coordinate>& targets);

class Assigner {
 public:
  // Recomputes only when the inputs differ from the last call's.
  const Assignment& assign(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons);
  uint64_t recomputes() const { return recomputes_; }

 private:
  std::optional<uint64_t> fingerprint_;
  Assignment last_;
  uint64_t recomputes_ = 0;
};

}  // namespace meshos::placement
