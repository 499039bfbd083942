// Node: the agent. One object holds a node's whole behaviour: it folds gossip, commits,
// probe samples, runtime signals and control requests into its State, ticks (probes,
// planLocal, reconcile, the executor, a new snapshot), records what it decided in the
// hash chains, and runs the staged shutdown.
//
// It owns no I/O. Everything it touches comes in through NodeServices: time, timers,
// randomness, blocking work and files (Env), the gossip Transport, the process Runtime and
// its instance records, where the database lives, and how inventory is sampled. The libuv
// shell (agent/net: net::AgentHost, built by meshos-agent's main) hands it real sockets,
// processes and disks; the simulator (agent/sim: sim::SimHost) hands it a simulated
// network, runtime and in-memory disk, so the same Node runs in both.
//
// Everything here runs on the loop thread (asserted in debug builds).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/commits/commit_log.h"
#include "agent/commits/commit_store.h"
#include "agent/commits/commit_sync.h"
#include "agent/config/node_config.h"
#include "agent/control/control_access.h"
#include "agent/control/control_reply.h"
#include "agent/core/env.h"
#include "agent/core/node_identity.h"
#include "agent/core/thread_check.h"
#include "agent/discovery/dns_answer.h"
#include "agent/discovery/endpoints.h"
#include "agent/executor/executor.h"
#include "agent/gossip/gossip_service.h"
#include "agent/reconcile/local_plan.h"
#include "agent/reconcile/local_rebalancer.h"
#include "agent/reconcile/rollout.h"
#include "agent/reconcile/rollout_record.h"
#include "agent/core/sealed_secret.h"
#include "agent/runtime/instance_store.h"
#include "agent/runtime/supervisor.h"
#include "agent/spec/daemon_spec.h"
#include "agent/state/event_bus.h"
#include "agent/state/event_pump.h"
#include "agent/state/node_report.h"
#include "agent/state/snapshot.h"
#include "agent/state/state.h"
#include "chains/chain_store.h"
#include "chains/chain_writer.h"
#include "placement/placement.h"
#include "probes/inventory_probe.h"
#include "probes/vivaldi.h"

namespace meshos::node {

// What a Node is given. Every reference outlives the Node.
struct NodeServices {
  Env& env;                                 // clock, timers, poster, rng, workers, files
  gossip::Transport& transport;             // gossip datagrams and streams
  gossip::MemberIdentityPool& identities;   // shared member identities (one per process)
  runtime::Runtime& runtime;                // the daemons' processes, ready to use
  runtime::InstanceStore& instances;        // instance records, for re-adoption
  chains::ChainStoreOptions database;       // where and how the chains database opens
  // Chain writes on a writer thread (the agent) or on the loop (the simulator).
  bool chain_writes_on_loop = false;
  int64_t chain_sync_delay_ms = 1;          // on the loop: how long a sync takes
  // Samples the inventory (runs on env.workers); an error is a failed sample.
  std::function<Result<state::Inventory>()> sample_inventory;
  // Capabilities the runtime gives this node ("runtime:oci" where containers can run),
  // gossiped with the detected ones; placement puts a container daemon only there.
  std::vector<std::string> runtime_capabilities;
  // Stops accepting control requests (the first shutdown stage); may be empty.
  std::function<void()> close_control;
  // Who may do what on the control socket ([control] readers, operators, admins, resolved
  // to ids by the shell). The default: anyone may read, root and the agent's user do all.
  control::AccessPolicy access = defaultAccess();
  // Reads the config file again (reload); empty where there is none (the simulator).
  std::function<Result<config::NodeConfig>()> read_config;
  static control::AccessPolicy defaultAccess() {
    control::AccessPolicy a;
    a.readers.anyone = true;
    return a;
  }
};

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

// What a Node tells whoever watches it closely (the simulator's invariants, tests). Each
// hook runs on the loop thread, after the fact.
struct NodeObserver {
  // A chain record is durable (after its batch's sync returned).
  std::function<void(chains::ChainName, uint64_t seq, const Hash256& hash)> on_chain_acked;
  // An executor action ended (succeeded, failed, abandoned, dropped).
  std::function<void(const executor::Outcome&)> on_action_outcome;
};

class Node {
 public:
  Node(NodeServices services, config::NodeConfig config, NodeIdentity identity);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Opens the database, the commit log, the supervisor (re-adopting what a previous agent
  // left running) and gossip, then starts the tick. On error nothing is left running.
  Status start();
  // Begins the staged shutdown (idempotent). onShutdownComplete's function runs at the end.
  void shutdown(std::string why);
  void onShutdownComplete(std::function<void()> fn) { on_shutdown_complete_ = std::move(fn); }
  bool stopping() const { return stopping_; }
  bool finished() const { return finished_; }

  // A control request (the control socket's, or the simulator's).
  void control(proto::Request::Reader request, const control::PeerCred& peer, control::ControlResponder reply);

  void addProbe(std::unique_ptr<Probe> probe);
  // Adds a section to every snapshot (the control server's counters, say).
  void addSnapshotSection(std::string name, std::function<nlohmann::json()> fn);
  // Control requests refused by role, missing reason or a daemon's permissions.
  uint64_t accessRefusals() const { return access_refusals_; }
  void setObserver(NodeObserver observer) { observer_ = std::move(observer); }
  // Folds an event into the state (shells call this from their callbacks).
  void handle(const state::Event& event);
  // Runs one tick now (tests and benchmarks; the timer calls it otherwise).
  void tick();

  // Everything the node knows, as of now: rebuilt on demand when the state moved since the
  // last one was asked for (nobody pays for a snapshot that nobody reads).
  std::shared_ptr<const state::Snapshot> snapshot();
  const state::State& state() const { return state_; }
  const std::vector<ShutdownStage>& shutdownReport() const { return shutdown_report_; }
  int exitStatus() const { return exit_status_; }
  const std::string& id() const { return identity_.id; }
  const config::NodeConfig& config() const { return config_; }
  // For the simulator's checks (ground truth about this node's own view).
  const commits::CommitLog* commitLog() const { return commit_log_.get(); }
  const commits::CommitStore* commitStore() const { return commit_store_.get(); }
  bool storageFailing() const { return storage_failure_.has_value(); }
  const gossip::GossipService* gossip() const { return gossip_.get(); }
  const reconcile::LocalPlan& plan() const { return plan_; }
  const chains::ChainWriter* chains() const { return chains_.get(); }
  chains::ChainStore* database() const { return store_.get(); }
  const executor::Executor& executor() const { return *executor_; }
  const runtime::Supervisor* supervisor() const { return supervisor_.get(); }
  const reconcile::LocalRebalancer* rebalancer() const { return rebalancer_.get(); }
  // The version this node is replacing its instance of `daemon` by, until the new one is
  // ready (rollouts; for the simulator's checks).
  std::optional<uint64_t> updatingTo(const std::string& daemon) const {
    auto it = rollouts_.find(daemon);
    if (it == rollouts_.end() || it->second.updated_ms < 0) return std::nullopt;
    return it->second.version;
  }
  // Reads the config again and applies what can change at run time (node_reload.cpp):
  // what was applied and which changed sections need a restart, or why nothing changed.
  Result<nlohmann::json> reload(const std::string& why);
  // What changed, for watchers (watch on the control socket, /v1/events).
  state::EventBus& events() { return events_; }
  // A read-only request from HTTP (node_http.cpp): /v1/... and /metrics. Never audited
  // (it changes nothing) and served to anyone who reaches the HTTP port, so it serves
  // only what a reader may see.
  void httpRead(const std::string& path, const std::map<std::string, std::string>& query,
                std::function<void(Result<control::ControlReply>)> done);

  // Discovery (node_discovery.cpp): the ready instances of commit daemons ({"endpoints":
  // [...]}, one daemon or all), and the answer to a DNS query about them ([dns] bind).
  nlohmann::json endpointsJson(const std::string& daemon);
  // A daemon's rollout as this node sees it (order, who is done, halted or not); null for
  // a daemon not in the commit log.
  nlohmann::json rolloutJson(const std::string& daemon) const;
  discovery::DnsResult dnsAnswer(ByteView query);

  // Appends a record to a chain (audit, log, failure). A refused append (queue full,
  // writer closed) is counted by the writer and logged here; it never stops the caller.
  void record(chains::ChainName chain, std::string_view kind, const nlohmann::json& payload);
  // Storage faults (node_storage.cpp).
  void onChainWriteFailed(const chains::WriteFailure& f);
  void onChainAcked(const chains::AckEvent& ev);
  // A write to the database failed: the node runs degraded until a chain write succeeds.
  Status damagedStore(Status s) const;  // adds the recovery hint to a damaged store's error
  void noteStorageFailure(const Status& s, std::string_view what);
  // Stores accepted commits; what fails waits in unstored_commits_.
  void storeCommits(commits::StoreWrites writes);
  void retryStorageWrites();  // each tick, once writes work again
  // Why a request that must be audited is refused now, or ok.
  Status auditRefusal() const;
  nlohmann::json storageJson() const;

  // Shutdown stage deadlines.
  static constexpr int64_t kControlStageMs = 1000;
  static constexpr int64_t kExecutorStageMs = 5000;
  static constexpr int64_t kChainsStageMs = 5000;
  static constexpr int64_t kRuntimeStageMs = 1000;
  static constexpr int64_t kGossipStageMs = 2000;
  // The longest a restarted agent waits for an agreed placement view before it adopts or
  // stops what its predecessor left (see adoptLeftovers()).
  static constexpr int64_t kAdoptionWaitMs = 30'000;

 private:
  class RuntimeDispatcher;
  int64_t nowMs() const { return env_.clock.monotonicMs(); }
  void scheduleTick();
  // Offers what reconcile and the supervisor ask for to the executor, and runs it.
  void runActions(int64_t now);
  void scheduleActions();
  void publish();
  const state::Snapshot& currentSnapshot();
  nlohmann::json gossipJson() const;
  Status startServices();
  void abortStart();  // undoes what startServices() opened
  Status openChains();
  // node_secrets.cpp: the cluster key, and a secret opened for a daemon starting here.
  Status loadClusterSecretKey();
  Result<SecretValue> openSecret(const std::string& name) const;
  Status openRuntime();
  Status openCommits();
  Status openGossip();
  gossip::GossipServiceOptions gossipOptions(const gossip::Keyring& keyring);
  void onMemberEvent(const gossip::MemberEvent& e);
  // The [[daemon]] tables of a [runtime] local file (none without one).
  Result<std::vector<spec::DaemonSpec>> loadLocalDaemons(const std::optional<std::filesystem::path>& file) const;

  // control (node_control.cpp)
  // The caller's role and the request's reason; a refusal is audited and returned.
  Status accessRefusal(proto::Request::Reader request, const control::PeerCred& peer,
                       const control::RequestNeeds& needs);
  void daemonRequest(proto::Request::Reader request, const control::PeerCred& peer, control::ControlResponder reply);
  void daemonLogs(proto::Request::Reader request, control::ControlResponder reply);
  void daemonExec(proto::Request::Reader request, nlohmann::json audit, control::ControlResponder reply);
  void chainRequest(proto::Request::Reader request, control::ControlResponder reply);
  // A chain read (verify, tail, show) on the workers; done runs on the loop.
  void chainRead(proto::Request::Which which, chains::ChainName name, uint64_t from, uint64_t count,
                 std::function<void(Result<std::string>)> done);
  nlohmann::json daemonsJson();
  void publishEvent(const std::string& kind, const nlohmann::json& data);
  void joinRequest(proto::Request::Reader request, control::ControlResponder reply);
  void watchRequest(proto::Request::Reader request, control::ControlResponder reply);
  void keyringRequest(proto::Request::Reader request, const control::PeerCred& peer, control::ControlResponder reply);
  nlohmann::json snapshotJsonWithMembers();

  // shutdown (node_shutdown.cpp)
  void runStage(size_t index);
  // Polls the current stage every 10 ms until it is done or its deadline passed.
  void pollStage();
  void finishShutdown();

  // commits and their spreading (node_commits.cpp)
  // Carries out what the commit log asked for: audit records, store writes, new state.
  // pushed_by: the gossip address of the peer that pushed these commits (not pushed back).
  void commitOutput(commits::LogOutput& out, const std::string& pushed_by = {});
  void openCommitSync();  // after openGossip(): registers the channels, starts the timer
  void closeCommitSync();  // cancels the timer (shutdown)
  void scheduleCommitSync(int64_t delay_ms);
  void commitSyncStep();  // peers and heads in, requests out
  nlohmann::json commitSyncJson() const;  // commits_json_["sync"]

  // placement and the cluster-wide reconcile (node_placement.cpp, node_report.cpp)
  void onPeerState(const gossip::NodeStateUpdate& u);
  // planLocal() over this node's view; a changed placed set goes to updateRunSet().
  void planPlacement();
  reconcile::LocalInputs placementInputs() const;
  void adoptPlan(reconcile::LocalPlan plan);
  std::vector<reconcile::PeerView> peerViews() const;  // every member, with its report
  void rebalance();  // live load: this node's moves, when the rebalancer is due
  // The set this node runs (local daemons + placed ones) into the state; reconcile then
  // asks the executor to apply it.
  void updateRunSet();
  // Why this node is unhealthy for placement (a critical daemon quarantined), or "".
  std::string criticalQuarantine() const;
  state::NodeReport buildReport() const;
  // Publishes this node's state by gossip when it changed.
  void publishNodeState();
  std::map<std::string, reconcile::LocalDaemon> placedInstances() const;
  std::map<std::string, std::string> nodeVars() const;
  nlohmann::json placementJson(const std::string& daemon) const;
  void daemonViewRequest(proto::Request::Reader request, control::ControlResponder reply);
  // rollouts (node_rollout.cpp)
  // A placed commit daemon as this node runs it: what is stored (version, materialised spec,
  // the one before for a rollback, a version that failed here), and the step in progress.
  struct RolloutRun : reconcile::RolloutRecord {
    int64_t updated_ms = -1;  // monotonic: when this node moved to version, until ready
    std::set<int> old_pids;   // the processes of the version it moved from
  };
  reconcile::RolloutInputs rolloutInputs(const std::string& daemon, const spec::DaemonSpec& commit_spec) const;
  std::vector<spec::DaemonSpec> gateRollouts(std::vector<spec::DaemonSpec> placed);
  static spec::DaemonSpec withReplicas(spec::DaemonSpec s, int64_t replicas);
  void checkProgress(const std::string& daemon, const spec::DaemonSpec& commit_spec, RolloutRun& run);
  bool rollbackDue(const std::string& daemon, const spec::DaemonSpec& commit_spec, RolloutRun& run);
  void loadRollouts();
  // An instance of the daemon is here: managed, or left by the previous agent to adopt.
  bool runsHere(const std::string& daemon) const;
  bool viewSettled(int64_t now) const;
  void saveRollout(const std::string& daemon, const RolloutRun& run);
  void forgetRollout(const std::string& daemon);
  // discovery (node_discovery.cpp)
  void refreshEndpoints();
  void noteReadySince(state::NodeReport& report);
  void addPorts(nlohmann::json& list, const char* name_key) const;
  nlohmann::json nodesJson() const;
  // Members as the snapshot has them, with each one's node state, health and estimated RTT.
  nlohmann::json membersJson();
  // Restarts the placed daemons a force-restart commit named since the last tick.
  void forceRestarts();
  // Inventory sampling (on the workers) and the network coordinate.
  void startProbes();
  void startInventory();  // (re)starts the inventory probe at [probes] inventory_interval_ms
  void onInventory(const Result<state::Inventory>& sample);
  // Feeds the RTT of each member's last direct probe ack to Vivaldi.
  void updateCoordinate();
  Status applyDesired();
  void adoptLeftovers(int64_t now);
  // Copies the supervisor's instances into the state (after transitions).
  void refreshInstances();

  Env& env_;
  NodeServices services_;
  config::NodeConfig config_;
  NodeIdentity identity_;
  ThreadChecker loop_thread_;
  state::State state_;
  NodeObserver observer_;
  std::unique_ptr<chains::ChainStore> store_;
  std::unique_ptr<chains::ChainWriter> chains_;
  uint64_t chain_write_failures_ = 0;
  // Set while the chain database refuses writes (disk full, an I/O error): from a failed
  // write to the next acknowledged one. The node runs on, degraded, and refuses what it
  // would have to audit.
  struct StorageFailure {
    std::string error;
    int64_t since_ms = 0;
    int64_t reported_ms = 0;  // the last time the log said so
  };
  static constexpr int64_t kStorageReportEveryMs = 60'000;
  std::optional<StorageFailure> storage_failure_;
  uint64_t audit_refusals_ = 0;
  uint64_t access_refusals_ = 0;  // control requests refused by role, reason or permissions
  // Accepted commits not yet stored (the store refused them): kept, in order, until a
  // write succeeds. Acknowledged chain records need no such list: the writer retries them.
  commits::StoreWrites unstored_commits_;
  std::unique_ptr<gossip::GossipService> gossip_;
  Bytes gossip_state_;  // the last body handed to gossip
  bool gossip_left_ = false;
  std::unique_ptr<commits::CommitStore> commit_store_;
  std::unique_ptr<commits::CommitLog> commit_log_;
  nlohmann::json commits_json_;  // the log as JSON, rebuilt only when it changes
  std::unique_ptr<runtime::Supervisor> supervisor_;
  std::optional<ClusterSecretKey> cluster_secret_key_;  // [secrets] cluster_key_file
  std::vector<spec::DaemonSpec> config_specs_;  // [runtime] local, as written
  std::vector<spec::DaemonSpec> placed_specs_;  // commit daemons placed here, materialised
  std::vector<spec::DaemonSpec> run_specs_;     // what the supervisor is asked to run
  placement::Assigner assigner_;
  std::unique_ptr<reconcile::LocalRebalancer> rebalancer_;
  reconcile::LocalPlan plan_;
  reconcile::WallDeadlines wall_deadlines_;  // freeze and drain deadlines, held on the monotonic clock
  nlohmann::json placement_json_ = nlohmann::json::object();  // plan_ rendered
  state::NodeReport self_report_;
  uint64_t self_report_version_ = 0;  // bumps when a changed report is published
  int64_t report_published_ms_ = 0;
  struct PlanKey {
    uint64_t structural_generation, commit_seq;
    Hash256 commit_hash;
    uint64_t self_report_version;
    bool operator==(const PlanKey&) const = default;
  };
  std::optional<PlanKey> plan_key_;  // the inputs of plan_, unless a deadline is running
  struct EndpointsKey {
    uint64_t structural_generation, commit_seq, self_report_version;
    bool operator==(const EndpointsKey&) const = default;
  };
  std::optional<EndpointsKey> endpoints_key_;  // the inputs of endpoints_
  discovery::EndpointView endpoints_;
  discovery::DnsResponder dns_;
  std::map<std::string, int64_t> ready_since_ms_;  // placed daemon -> wall ms its ready count left 0
  std::map<std::string, RolloutRun> rollouts_;  // by daemon: placed here
  std::map<std::string, reconcile::RolloutRecord> rollout_saved_;  // by daemon: the record last stored
  bool rollout_pending_ = false;  // a rollout waits on time (min ready, progress deadline)
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
  std::vector<std::unique_ptr<Probe>> probes_;
  std::vector<int64_t> probe_due_ms_;
  std::vector<std::pair<std::string, std::function<nlohmann::json()>>> extra_sections_;
  state::EventBus events_;
  std::shared_ptr<const state::Snapshot> snapshot_;
  bool snapshot_stale_ = true;
  int64_t lists_built_at_ms_ = -1'000'000'000;
  state::LoopLagMeter lag_;
  int64_t next_tick_due_ns_ = 0;
  TimerId tick_timer_ = 0;
  TimerId actions_timer_ = 0;  // runs the supervisor's asked starts and stops (scheduleActions)
  bool started_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  std::function<void()> on_shutdown_complete_;
  std::vector<ShutdownStage> shutdown_report_;
  int64_t stage_started_ms_ = 0;
  size_t stage_index_ = 0;
  int64_t stage_deadline_ms_ = 0;
  std::function<bool()> stage_done_;
  TimerId stage_timer_ = 0;
  int exit_status_ = 0;
  std::unique_ptr<commits::CommitSync> commit_sync_;
  TimerId commit_sync_timer_ = 0;
  uint64_t commit_sync_peers_generation_ = UINT64_MAX;  // state generation the peers were read at
  std::map<std::string, uint64_t> commit_sync_versions_;  // peer-state version read, by node id
  uint64_t keyring_changes_ = 0;   // persisted changes
  uint64_t keyring_rejected_ = 0;  // refused requests (bad input, no keyring file, write failure)
  // Shared with callbacks that may outlive this object (replies from workers).
  std::shared_ptr<Node*> self_ = std::make_shared<Node*>(this);
};

}  // namespace meshos::node
