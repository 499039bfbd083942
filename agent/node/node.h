// Node: the agent. Wires the cores (state fold, reconcile, executor) to an Env and a libuv
// loop, serves the control socket, runs the tick and the staged shutdown.
//
// Everything here runs on the loop thread. main() builds the loop, the Env and the config,
// constructs a Node, calls start(), runs the loop until it has no more work, and returns
// the exit status from exitStatus().
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/config/node_config.h"
#include "agent/core/env.h"
#include "agent/core/node_identity.h"
#include "agent/executor/executor.h"
#include "agent/net/control_server.h"
#include "agent/state/snapshot.h"
#include "agent/state/state.h"
#include "agent/commits/commit_log.h"
#include "agent/commits/commit_store.h"
#include "agent/commits/commit_sync.h"
#include "agent/gossip/gossip_service.h"
#include "agent/runtime/instance_store.h"
#include "agent/runtime/process_runtime.h"
#include "agent/runtime/supervisor.h"
#include "agent/spec/daemon_spec.h"
#include "agent/reconcile/local_plan.h"
#include "agent/reconcile/local_rebalancer.h"
#include "agent/state/node_report.h"
#include "placement/placement.h"
#include "probes/inventory_probe.h"
#include "probes/vivaldi.h"
#include "chains/chain_store.h"
#include "chains/chain_writer.h"

namespace meshos::node {

// A desired daemon's generation: the first 8 bytes of the hash of its canonical spec, so a
// changed spec (and only a changed spec) looks new.
uint64_t specGeneration(const spec::DaemonSpec& spec);

// A probe sampled on the tick. A failing probe (error or exception) is recorded as a
// failed sample and skipped; it never stops the tick.
class Probe {
 public:
  virtual ~Probe() = default;
  virtual std::string name() const = 0;
  virtual int64_t intervalMs() const = 0;
  virtual Result<state::ProbeSample> sample(int64_t now_ms) = 0;
};

struct ShutdownStage {
  std::string name;
  int64_t took_ms = 0;
  bool timed_out = false;
  std::string detail;
};

class Node {
 public:
  Node(uv_loop_t* loop, Env& env, config::NodeConfig config, NodeIdentity identity);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Opens the control socket and starts the tick. On error nothing is left running.
  Status start();
  // Begins the staged shutdown (idempotent). done runs when every stage ended.
  void shutdown(std::string why);
  // Installs SIGINT/SIGTERM handlers: the first begins shutdown, the second forces exit.
  void handleSignals();

  void addProbe(std::unique_ptr<Probe> probe);
  // Folds an event into the state (shells call this from their callbacks).
  void handle(const state::Event& event);
  // Runs one tick now (tests and benchmarks; the timer calls it otherwise).
  void tick();

  std::shared_ptr<const state::Snapshot> snapshot() const { return snapshot_; }
  const state::State& state() const { return state_; }
  const std::vector<ShutdownStage>& shutdownReport() const { return shutdown_report_; }
  int exitStatus() const { return exit_status_; }

  // Appends a record to a chain (audit, log, failure). A refused append (queue full,
  // writer closed) is counted by the writer and logged here; it never stops the caller.
  void record(chains::ChainName chain, std::string_view kind, const nlohmann::json& payload);

  // Shutdown stage deadlines.
  static constexpr int64_t kControlStageMs = 1000;
  static constexpr int64_t kExecutorStageMs = 5000;
  static constexpr int64_t kChainsStageMs = 5000;
  static constexpr int64_t kRuntimeStageMs = 1000;
  static constexpr int64_t kGossipStageMs = 2000;

 private:
  class RuntimeDispatcher;
  void scheduleTick();
  void publish();
  void onControl(proto::Request::Reader request, const net::PeerCred& peer,
                 net::ControlResponder reply);
  // Runs work on the libuv thread pool and its result on the loop (RocksDB reads).
  void onWorker(std::function<Result<std::string>()> work,
                std::function<void(Result<std::string>)> done);
  Status openChains();
  Status openRuntime();
  Status openCommits();
  Status openGossip();
  // Publishes this node's state by gossip when it changed.
  void publishNodeState();
  // Carries out what the commit log asked for: audit records, store writes, new state.
  // pushed_by: the gossip address of the peer that pushed these commits (not pushed back).
  void commitOutput(commits::LogOutput& out, const std::string& pushed_by = {});
  // placement and the cluster-wide reconcile (node_placement.cpp)
  void onPeerState(const gossip::NodeStateUpdate& u);
  // planLocal() over this node's view; a changed placed set goes to updateRunSet().
  void planPlacement();
  std::vector<reconcile::PeerView> peerViews() const;  // every member, with its report
  void rebalance();  // live load: this node's moves, when the rebalancer is due
  // The set this node runs (local daemons + placed ones) into the state; reconcile then
  // asks the executor to apply it.
  void updateRunSet();
  state::NodeReport buildReport() const;
  std::map<std::string, reconcile::LocalDaemon> placedInstances() const;
  std::map<std::string, std::string> nodeVars() const;
  nlohmann::json placementJson(const std::string& daemon) const;
  nlohmann::json nodesJson() const;
  // Members as the snapshot has them, with each one's node state, health and estimated RTT.
  nlohmann::json membersJson() const;
  // Restarts the placed daemons a force-restart commit named since the last tick.
  void forceRestarts();
  // Inventory sampling (thread pool) and the network coordinate.
  void startProbes();
  void onInventory(const Result<state::Inventory>& sample);
  // Feeds the RTT of each member's last direct probe ack to Vivaldi.
  void updateCoordinate();
  Status applyDesired();
  // Copies the supervisor's instances into the state (after transitions).
  void refreshInstances();
  void daemonRequest(proto::Request::Reader request, const net::PeerCred& peer,
                     net::ControlResponder reply);
  void chainRequest(proto::Request::Reader request, net::ControlResponder reply);
  void runStage(size_t index);
  // Polls the current stage every 10 ms until it is done or its deadline passed.
  void pollStage();
  void finishShutdown();
  void closeSignals();
  Status startServices();
  int64_t nowMs() const { return env_.clock.monotonicMs(); }

  uv_loop_t* loop_;
  Env& env_;
  config::NodeConfig config_;
  NodeIdentity identity_;
  state::State state_;
  std::unique_ptr<chains::ChainStore> store_;
  std::unique_ptr<chains::ChainWriter> chains_;
  uint64_t chain_write_failures_ = 0;
  std::unique_ptr<gossip::GossipService> gossip_;
  Bytes gossip_state_;  // the last body handed to gossip
  bool gossip_left_ = false;
  std::unique_ptr<commits::RocksCommitStore> commit_store_;
  std::unique_ptr<commits::CommitLog> commit_log_;
  nlohmann::json commits_json_;  // the log as JSON, rebuilt only when it changes
  std::unique_ptr<runtime::FileInstanceStore> instance_store_;
  std::unique_ptr<runtime::ProcessRuntime> runtime_;
  std::unique_ptr<runtime::Supervisor> supervisor_;
  std::vector<spec::DaemonSpec> config_specs_;  // [runtime] local, as written
  std::vector<spec::DaemonSpec> placed_specs_;  // commit daemons placed here, materialised
  std::vector<spec::DaemonSpec> run_specs_;     // what the supervisor is asked to run
  placement::Assigner assigner_;
  std::unique_ptr<reconcile::LocalRebalancer> rebalancer_;
  reconcile::LocalPlan plan_;
  nlohmann::json placement_json_ = nlohmann::json::object();  // plan_ rendered
  state::NodeReport self_report_;
  uint64_t self_report_version_ = 0;  // bumps when a changed report is published
  struct PlanKey {
    uint64_t structural_generation, commit_seq;
    Hash256 commit_hash;
    uint64_t self_report_version;
    bool operator==(const PlanKey&) const = default;
  };
  std::optional<PlanKey> plan_key_;  // the inputs of plan_, unless a deadline is running
  uint64_t bad_node_states_ = 0;
  std::map<std::string, int64_t> report_seen_ms_;  // when each peer's node state last arrived
  std::unique_ptr<probes::InventoryProbe> inventory_;
  std::unique_ptr<probes::VivaldiClient> vivaldi_;
  std::map<std::string, uint64_t> restart_seen_;  // restart generation handled, by daemon
  bool restarts_seeded_ = false;
  std::map<std::string, uint64_t> rtt_fed_;  // per peer: rtt_samples when last fed to Vivaldi
  bool instances_dirty_ = false;
  std::unique_ptr<RuntimeDispatcher> dispatcher_;
  std::unique_ptr<executor::Executor> executor_;
  net::ControlServer control_;
  std::vector<std::unique_ptr<Probe>> probes_;
  std::vector<int64_t> probe_due_ms_;
  std::shared_ptr<const state::Snapshot> snapshot_;
  int64_t lists_built_at_ms_ = -1'000'000'000;
  state::LoopLagMeter lag_;
  int64_t next_tick_due_ns_ = 0;
  TimerId tick_timer_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  int signals_seen_ = 0;
  uv_signal_t* sigint_ = nullptr;
  uv_signal_t* sigterm_ = nullptr;
  std::vector<ShutdownStage> shutdown_report_;
  int64_t stage_started_ms_ = 0;
  size_t stage_index_ = 0;
  int64_t stage_deadline_ms_ = 0;
  std::function<bool()> stage_done_;
  int exit_status_ = 0;

  // commit spreading (node_commits.cpp): CommitSync over the gossip app channels
  // "commits.push" / "commits.get"; peer heads from state_.peer_states.
  void openCommitSync();  // after openGossip(): registers the channels, starts the timer
  void closeCommitSync();  // cancels the timer (shutdown)
  void scheduleCommitSync(int64_t delay_ms);
  void commitSyncStep();  // peers and heads in, requests out
  nlohmann::json commitSyncJson() const;  // commits_json_["sync"]
  std::unique_ptr<commits::CommitSync> commit_sync_;
  TimerId commit_sync_timer_ = 0;
  std::map<std::string, uint64_t> commit_sync_versions_;  // peer-state version read, by node id

  // keyring rotation (node_keyring.cpp): list / install / use / remove through the control
  // socket, persisted to [gossip] keyring, recorded in the audit chain.
  void keyringRequest(proto::Request::Reader request, const net::PeerCred& peer, net::ControlResponder reply);
  uint64_t keyring_changes_ = 0;   // persisted changes
  uint64_t keyring_rejected_ = 0;  // refused requests (bad input, no keyring file, write failure)
};

}  // namespace meshos::node
