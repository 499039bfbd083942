// sim::MeshCluster: the whole agent's cluster-wide loop, N nodes in one process. Each node
// runs, on top of a GossipCluster node (the real gossip::Membership), what the real agent
// does every tick: fold the commit log (the real commits::CommitLog) into LocalInputs with
// this node's view of the members and their decoded NodeReports, call the real
// reconcile::planLocal() (and through it placement::assign()), hand plan.run to a
// simulated runtime (SimRuntime), and disseminate a NodeReport of what runs here.
//
// Commits: MeshCluster::commit() signs with the cluster's admin key and gives the commit
// to every up node directly (commit spreading is tested in tests/sim/commits); a node that
// was down gets the commits it missed when it restarts (as its fetch from a peer would).
//
// Everything is driven by the GossipCluster's ManualTimers and drawn from one seed, so the
// same seed gives the same run. Ground-truth queries (actual(), check*()) read the
// simulated runtimes, not what nodes report, so tests can judge the protocol.
// Single-threaded; the test or tool that builds the cluster owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/commits/commit_log.h"
#include "agent/core/crypto.h"
#include "agent/reconcile/local_plan.h"
#include "agent/reconcile/local_rebalancer.h"
#include "agent/sim/gossip_cluster.h"
#include "agent/sim/sim_runtime.h"
#include "agent/state/node_report.h"
#include "placement/placement.h"

namespace meshos::sim {

struct MeshOptions {
  ClusterOptions cluster;
  int64_t tick_ms = 500;            // [node] tick_interval_ms
  int64_t ready_delay_ms = 500;     // an instance is ready this long after it starts ...
  int64_t ready_jitter_ms = 100;    // ... ± this (uniform, from the node's Rng)
  int64_t stop_grace_ms = 300;      // a stopped instance is gone after this
  int64_t handoff_deadline_ms = 60'000;
  std::string cluster_id = "sim";
  // Rebalancing on live load, as [placement] configures it in the agent (abandon_after_ms:
  // the agent uses handoff_deadline_ms / 2). Nodes without a load (NodeSetup::load) report
  // no inventory and are left alone.
  reconcile::LocalRebalanceOptions rebalance;
};

// What a node offers placement.
struct NodeSetup {
  std::map<std::string, std::string> labels;
  std::vector<std::string> capabilities;  // sorted
  int64_t cpu_millicores = 4000;
  int64_t memory_bytes = 8LL << 30;
  std::optional<double> load;  // live load reported in the inventory (load1 per CPU); none: no inventory
};

class MeshCluster;

class MeshNode {
 public:
  MeshNode(MeshCluster& cluster, SimNode& sim, NodeSetup setup, Rng rng);

  SimNode& sim() { return sim_; }
  const SimNode& sim() const { return sim_; }
  const std::string& name() const { return sim_.name(); }
  const std::string& id() const { return sim_.id(); }
  bool up() const { return sim_.up(); }
  const NodeSetup& setup() const { return setup_; }
  commits::CommitLog& log() { return log_; }
  const commits::CommitLog& log() const { return log_; }
  const SimRuntime& runtime() const { return runtime_; }
  const reconcile::LocalPlan& plan() const { return plan_; }
  const state::NodeReport& report() const { return report_; }  // last published
  uint64_t ticks() const { return ticks_; }
  uint64_t publishes() const { return publishes_; }
  uint64_t decodeErrors() const { return decode_errors_; }    // peer reports that did not decode
  uint64_t publishErrors() const { return publish_errors_; }  // own reports gossip refused
  size_t membersKnown() const { return members_known_; }
  const reconcile::LocalRebalancer& rebalancer() const { return rebalancer_; }
  void setLoad(std::optional<double> load) { setup_.load = load; }  // published on the next tick

 private:
  friend class MeshCluster;
  void start();     // after sim_.start(): publish a first report, schedule the first tick
  void crash();     // with sim_.crash(): every instance gone, ticks stop
  void tick();
  void publish(int64_t now_ms);
  void submit(const Bytes& commit);
  std::optional<state::NodeReport> decodeCached(const gossip::NodeStateUpdate& st);

  MeshCluster& cluster_;
  SimNode& sim_;
  NodeSetup setup_;
  Rng rng_;
  commits::CommitLog log_;
  size_t commits_seen_ = 0;  // how many of the cluster's commits this node was given
  SimRuntime runtime_;
  placement::Assigner assigner_;
  reconcile::LocalRebalancer rebalancer_;
  reconcile::LocalPlan plan_;
  state::NodeReport report_;
  bool published_ = false;
  size_t members_known_ = 0;  // last tick's LocalInputs::members_known
  uint64_t generation_ = 0;  // bumps on crash/restart so stale tick timers are ignored
  uint64_t ticks_ = 0, publishes_ = 0, decode_errors_ = 0, publish_errors_ = 0;
  struct CachedReport {
    Bytes body;
    std::optional<state::NodeReport> report;
  };
  std::map<std::string, std::vector<CachedReport>> decoded_;  // origin -> last few bodies
};

// Ground truth about one daemon, over the up nodes' simulated runtimes.
struct DaemonActual {
  std::map<std::string, uint32_t> running_on;  // node name -> running instances
  std::map<std::string, uint32_t> ready_on;    // node name -> ready instances
  uint32_t running = 0;
  uint32_t ready = 0;
};

class MeshCluster {
 public:
  MeshCluster(uint64_t seed, MeshOptions options);
  ~MeshCluster();
  MeshCluster(const MeshCluster&) = delete;
  MeshCluster& operator=(const MeshCluster&) = delete;

  MeshNode& addNode(NodeSetup setup = {});
  // Starts every node, joins each to the first `seeds` nodes.
  void startAll(size_t seeds = 3);

  // Builds the next commit on the cluster's chain, signs it with the admin key and gives it
  // to every up node. The commit's outcome on the first up node (or an error).
  Result<commits::SubmitResult> commit(std::vector<commits::Operation> ops, std::string note = "");

  void crash(size_t i);
  // Restarts node i (same address), rejoins it through up nodes, hands it the commits it missed.
  void restart(size_t i);
  void partition(size_t split) { gossip_.partition(split); }
  void heal() { gossip_.heal(); }

  Status runFor(int64_t duration_ms, const std::function<Status()>& invariant = {}, int64_t check_every_ms = 500) {
    return gossip_.runFor(duration_ms, invariant, check_every_ms);
  }
  bool runUntil(const std::function<bool()>& pred, int64_t max_ms, int64_t check_every_ms = 100) {
    return gossip_.runUntil(pred, max_ms, check_every_ms);
  }

  int64_t nowMs() const { return gossip_.nowMs(); }
  uint64_t seed() const { return gossip_.seed(); }
  size_t size() const { return nodes_.size(); }
  MeshNode& node(size_t i) { return *nodes_[i]; }
  const MeshNode& node(size_t i) const { return *nodes_[i]; }
  std::optional<size_t> indexOf(const std::string& name) const;
  GossipCluster& gossip() { return gossip_; }
  const MeshOptions& options() const { return options_; }
  // The desired state every node folds to once it has every commit.
  const commits::DesiredState& desired() const { return reference_.desired(); }

  // ---- ground truth ----
  std::map<std::string, DaemonActual> actual() const;
  // Every instance sits on an up node that meets its daemon's label constraints and
  // capabilities, and no node holds more than max_per_node of one daemon.
  Status checkFeasible() const;
  // Every desired daemon (paused: none) runs exactly `replicas` instances, all ready, on
  // distinct nodes (when replicas <= feasible up nodes), and no removed daemon runs.
  // at_least: `replicas` ready instances on distinct nodes, extras allowed (a relocation
  // or an over-replication not yet wound down).
  Status checkAtReplicas(bool at_least = false) const;
  // Every up node's CPU and memory reservations fit its capacity.
  Status checkResources() const;
  // Every up node computed the same assignment (its last plan's decisions).
  Status checkSameAssignment() const;
  // Does node `n` satisfy the labels and capabilities of `spec` (an oracle written apart
  // from placement/, to judge it)?
  static bool labelsFit(const spec::DaemonSpec& spec, const NodeSetup& n);
  // One line per daemon: wanted, where it runs (ready count), for failure messages.
  std::string describe() const;

 private:
  friend class MeshNode;

  MeshOptions options_;
  GossipCluster gossip_;
  Rng rng_;
  SigningKey admin_;
  commits::CommitLogConfig log_config_;
  commits::CommitLog reference_;  // the admin's copy: what the next commit builds on
  std::vector<Bytes> commits_;    // every accepted commit, in order
  std::vector<std::unique_ptr<MeshNode>> nodes_;
  std::vector<std::string> seed_addresses_;
};

}  // namespace meshos::sim
