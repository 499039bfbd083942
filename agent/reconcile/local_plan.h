// planLocal(): the cluster-wide half of reconcile. From the desired state (the commit log's
// fold), this node's view of the cluster (members and the node state each disseminates)
// and what runs here, it decides which commit daemons this node runs now. Pure and
// level-triggered: no clock (time comes in), no I/O; the same inputs give the same plan,
// and the plan of one tick is the next tick's `previous`.
//
// Rules (DESIGN.md section 7):
//   - every node computes placement::assign() over the members it sees alive, from the
//     labels, capabilities, capacity, maintenance and coordinates in their node states;
//   - this node runs what is assigned to it (one instance per assignment slot);
//   - make-before-break: an instance that is no longer assigned here keeps running until
//     the nodes now assigned report `wanted` ready instances, or handoff_deadline_ms passed;
//   - kill-relocation pins a daemon where it runs (it stays, and counts toward replicas);
//   - maintenance: drain makes this node infeasible; when nothing commit-placed runs here
//     any more, the node reports in-maintenance; exit returns it to active;
//   - a node that sees fewer than half the members it knew (isolated) keeps what it runs
//     and starts nothing new; a freeze likewise holds the local set as it is (thaw ends it);
//   - views must agree before anything starts: each node publishes a digest of its
//     placement view (viewDigest(): the members it sees alive and what placement reads of
//     their node states), and starts a new instance only while more than half the members
//     it knows publish the digest it computes itself. Two nodes that see the cluster
//     differently (a join not yet gossiped, a suspicion not yet spread) would otherwise
//     both take the same slot; with the rule at most one view acts at a time, and a
//     minority that sees things its own way waits. Stopping is not gated (it is
//     make-before-break);
//   - a paused daemon keeps its assignment (so it does not move) but runs nowhere;
//   - rebalancing: the moves each alive node publishes about its own instances (node
//     state `moves`, proposed by its LocalRebalancer on live load) overlay the assignment,
//     applied in (source id, daemon) order, each only where its target is feasible;
//   - a spec is materialised for this node with spec::interpolate() (${node.host}, ...).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/commits/desired_state.h"
#include "agent/reconcile/wall_deadlines.h"
#include "agent/spec/daemon_spec.h"
#include "agent/state/event.h"
#include "agent/state/node_report.h"
#include "placement/placement.h"
#include "placement/rebalancer.h"

namespace meshos::reconcile {

// The capability only the nodes that can open a secret have (placement's view of it).
inline std::string secretCapability(const std::string& secret) { return "secret:" + secret; }

// A daemon that uses a secret sealed to nodes may be placed only where it can be opened:
// the request requires secretCapability(name), and the views of the nodes it is sealed to
// (the node id follows from the key each copy names) have it. A secret sealed to the
// cluster key restricts nothing. Every node reads the same commit log, so every node
// derives the same eligibility.
void requireSecretHolders(const commits::DesiredState& desired, std::vector<placement::NodeView>& views,
                          std::vector<placement::DaemonRequest>& requests);

struct PeerView {
  std::string id;
  std::string name;
  state::MemberState state = state::MemberState::kAlive;
  std::optional<state::NodeReport> report;  // none yet: not placeable (capacity unknown)
};

struct LocalDaemon {  // a commit daemon as it runs on this node
  uint32_t running = 0;
  uint32_t ready = 0;
};

struct Handoff {  // an instance kept here until its new holders are ready
  int64_t since_ms = 0;
};

struct LocalInputs {
  std::string self_id;
  int64_t now_ms = 0;   // monotonic
  int64_t wall_ms = 0;  // for the freeze expiry and the drain deadline
  // Holds those deadlines on the monotonic clock from their first sight (the node's; see
  // wall_deadlines.h). nullptr: compared with wall_ms as they are.
  WallDeadlines* deadlines = nullptr;
  const commits::DesiredState* desired = nullptr;
  std::vector<PeerView> nodes;  // every member known, self included
  std::map<std::string, LocalDaemon> local;  // commit daemons running here, by name
  state::Maintenance maintenance = state::Maintenance::kActive;  // this node's, last published
  uint64_t maintenance_seq = 0;
  size_t members_known = 0;  // most members (self included) seen alive at once, for isolation
  std::map<std::string, Handoff> handoffs;  // previous plan's
  int64_t handoff_deadline_ms = 60'000;
  // ${node.host}, ${node.name}, ${node.id}, ${node.label.KEY}: see spec::interpolate().
  std::map<std::string, std::string> vars;
  // Start only while a majority agrees on the view (see above); tests of other rules may
  // turn it off.
  bool require_view_agreement = true;
};

struct DaemonDecision {
  std::string daemon;
  uint32_t wanted = 0;
  std::vector<std::string> assigned;   // node names, best first
  std::vector<std::string> running_on; // node names reporting it running (self: actual)
  std::vector<std::string> ready_on;
  uint32_t here = 0;                   // instances this node runs after the plan
  bool infeasible = false;
  bool paused = false;
  std::string why;                     // for this node: "assigned", "handoff until ...", ...
  std::map<std::string, std::string> excluded;  // node name -> reason (the first kExcludedShown)
  size_t excluded_count = 0;                    // every node excluded
};
inline constexpr size_t kExcludedShown = 8;

struct LocalPlan {
  std::vector<spec::DaemonSpec> run;  // commit daemons to run here (replicas = count here)
  std::vector<DaemonDecision> decisions;  // by daemon name
  std::map<std::string, Handoff> handoffs;
  state::Maintenance maintenance = state::Maintenance::kActive;
  uint64_t maintenance_seq = 0;
  bool isolated = false;
  bool frozen = false;
  size_t alive = 0;
  uint64_t view_digest = 0;  // this node's view (published in its node state)
  size_t agreeing = 0;       // members (self included) alive and publishing the same digest
  bool agreed = false;       // agreeing is a majority of the members known: may start

  std::vector<placement::Move> moves;  // published moves applied to the assignment
  // The placement inputs this plan was computed from (placement::explain() reads them).
  std::vector<placement::NodeView> views;
  std::vector<placement::DaemonRequest> requests;
};

// The nodes placement sees, from the peers' reports.
std::vector<placement::NodeView> nodeViews(const std::vector<PeerView>& nodes);

// The digest of a placement view: the ids of the members seen alive, in order, each with
// what placement reads of its node state (labels, capabilities, capacity, moves; not the
// network coordinate, which drifts all the time). Nonzero.
uint64_t viewDigest(const std::vector<PeerView>& nodes);

LocalPlan planLocal(const LocalInputs& in, placement::Assigner& assigner);

nlohmann::json localPlanToJson(const LocalPlan& plan);

}  // namespace meshos::reconcile
