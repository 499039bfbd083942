// sim::AgentCluster: N simulated machines, each running the real agent (node::Node with its
// gossip, CommitSync, placement, Supervisor, executor and chains), on one virtual clock
// and one simulated network, every random choice drawn from one seed. Nothing here
// re-implements what a node does: the cluster starts hosts, submits signed commits
// through a node's control socket (as meshos-admin does; the agents spread them), breaks
// things (sim_faults.h) and judges the outcome from ground truth — the simulated
// processes, disks and the admin's own commit chain — never from what nodes report.
//
// Single-threaded; the test or tool that builds the cluster owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/commits/commit_log.h"
#include "agent/core/crypto.h"
#include "agent/sim/sim_host.h"
#include "agent/sim/sim_world.h"

namespace meshos::sim {

struct AgentClusterOptions {
  LinkProfile link;                  // every link, unless a fault changes it
  std::string cluster_id = "sim";
  size_t seeds = 3;                  // each node's [gossip] seeds: the first `seeds` hosts
  int64_t start_spread_ms = 1000;    // startAll(): each host starts at a random time in this
  SimRuntimeOptions runtime;
  // Adjusts a node's config after the cluster filled it in (index, config).
  std::function<void(size_t, config::NodeConfig&)> configure;
  uint16_t port = 7946;
};

// Ground truth about one placed daemon, over the live simulated processes (a machine's local
// daemons are its own: not counted).
struct DaemonActual {
  std::map<std::string, uint32_t> running_on;  // host name -> live processes
  std::map<std::string, uint32_t> ready_on;    // host name -> those past their readiness delay
  uint32_t running = 0;
  uint32_t ready = 0;
};

class AgentCluster {
 public:
  AgentCluster(uint64_t seed, AgentClusterOptions options = {});
  ~AgentCluster();
  AgentCluster(const AgentCluster&) = delete;
  AgentCluster& operator=(const AgentCluster&) = delete;

  // Adds host n<index> at 10.0.<a>.<b>:port; not started.
  SimHost& addHost(HostSetup setup = {});
  void addHosts(size_t n) {
    for (size_t i = 0; i < n; ++i) addHost();
  }
  // Starts every host's agent at a random time within start_spread_ms (run the clock to see
  // it). A start that fails is retried every second (as systemd would restart it).
  void startAll();
  // Starts host i's agent now (retried every second until it starts, if it fails).
  void start(size_t i);

  // Builds the next commit on the admin's chain, signs it with the admin key and submits
  // it to host `via` (default: an up host chosen by the seed) through its control socket.
  // The agents spread it. The node's answer ("accepted" / "pending"), or an error. A node
  // may refuse (its disk is full: it cannot audit the request); like meshos-admin's user,
  // the admin then tries the other up hosts, and when every one refuses keeps the commit
  // and submits it again, in order, at each invariant check until one takes it.
  Result<std::string> commit(std::vector<commits::Operation> ops, std::string note = "",
                             std::optional<size_t> via = std::nullopt);
  // The pieces of commit(), for forks: a signed commit on the admin's current head (not yet
  // the admin's), the admin taking one (its fork choice decides between two of the same
  // seq), and handing one to a host's control socket.
  Bytes buildCommit(std::vector<commits::Operation> ops, std::string note) const;
  commits::SubmitResult adopt(const Bytes& commit);
  Result<std::string> submitTo(size_t host, const Bytes& commit);
  // The desired state of the admin's chain: what every node folds to once it has every commit.
  const commits::DesiredState& desired() const { return reference_.desired(); }
  commits::Head head() const { return reference_.head(); }
  const SigningKey& adminKey() const { return admin_; }

  // ---- faults (each one traced) ----
  void crashAgent(size_t i);
  void crashMachine(size_t i);
  void stopAgent(size_t i);
  // Cuts every link between hosts of different groups (both ways, or only from group 0 to
  // the others when one_way); hosts in no group form one more group.
  void partition(const std::vector<std::vector<size_t>>& groups, bool one_way = false);
  // Hosts [0, split) against [split, N).
  void partitionAt(size_t split);
  void heal();
  // The default link (loss, duplication, reordering...).
  void setLink(const LinkProfile& link);
  void setDiskFull(size_t i, bool full);
  void stepWallClock(size_t i, int64_t delta_ms);
  void setSlow(size_t i, int64_t slow_ms);
  // A daemon's process dies on its own (exit 1).
  void killProcess(size_t i, int pid);
  // A caller who may not asks host i for a change (stop, exec, join, a gossip key; `pick`
  // chooses): a local user with no role, or root without a reason. Served, it is an
  // invariant failure at the next check.
  void hostileCall(size_t i, uint64_t pick);

  // ---- time ----
  // Runs duration_ms of virtual time; every check_every_ms the invariants (always) and
  // `extra` (if any) are checked; the first failure stops the run and is returned, naming
  // the seed and the time.
  Status runFor(int64_t duration_ms, const std::function<Status()>& extra = {}, int64_t check_every_ms = 100);
  // Runs until pred() holds (checked every check_every_ms, with the invariants) or max_ms
  // passes. An invariant failure is returned as an error; a pred that never held as
  // kDeadlineExceeded.
  Status runUntil(const std::function<bool()>& pred, int64_t max_ms, int64_t check_every_ms = 100);

  int64_t nowMs() const { return world_.nowMs(); }
  uint64_t seed() const { return world_.seed; }
  size_t size() const { return hosts_.size(); }
  SimHost& host(size_t i) { return *hosts_[i]; }
  const SimHost& host(size_t i) const { return *hosts_[i]; }
  std::optional<size_t> indexOf(const std::string& name) const;
  SimWorld& world() { return world_; }
  const AgentClusterOptions& options() const { return options_; }
  uint64_t traceHash() const { return world_.trace.value(); }
  Rng forkRng() { return world_.rng.fork(); }

  // ---- ground truth ----
  std::map<std::string, DaemonActual> actual() const;
  // Hosts whose instances may be over the count for now: the agent is down, or cut off
  // from the largest group, or slow, or seen not alive by an up host of the largest group
  // — or was so within the last kStrandedGraceMs (what it kept running meanwhile is wound
  // down make-before-break once the cluster sees it again).
  std::set<size_t> strandedHosts() const;
  // The invariants checked on every step (see docs/SIMULATION.md, "Invariants"). Also
  // collects the figures the summary prints.
  Status checkInvariants();
  // One membership and one commit head on every up host, equal to the admin's head.
  Status checkConverged() const;
  // Every host's agent is up.
  Status checkAllUp() const;
  // Every instance sits on an up host that meets its daemon's constraints, within
  // max_per_node.
  Status checkFeasible() const;
  // Every desired daemon (paused: none) runs exactly `replicas` instances, all ready, on
  // distinct hosts (when that many feasible hosts are up), and no removed daemon runs.
  // at_least: `replicas` ready instances on distinct hosts, extras allowed.
  Status checkAtReplicas(bool at_least = false) const;
  // Every up host's CPU and memory reservations fit its capacity.
  Status checkResources() const;
  // Every up node computed the same assignment in its last plan.
  Status checkSameAssignment() const;
  // Runs `chain verify` on every running node's database (the full chains, signatures
  // included) and checks every acknowledged record is still there.
  Status checkChains() const;
  static bool labelsFit(const spec::DaemonSpec& spec, const HostSetup& h);
  // Where each daemon runs (host(running/ready)), for failure messages.
  std::string describe() const;
  // "seed S (replay: MESHOS_SEED=S ...) at t=... ms: what", with describe().
  std::string failure(const std::string& what) const;

  struct Figures {
    uint64_t invariant_checks = 0, agent_starts = 0, failed_starts = 0, commits = 0, actions_ended = 0,
             chain_records_acked = 0;
    uint64_t rollout_checks = 0;  // rollout checks that found a node replacing an instance
    uint64_t rollout_down_seen = 0;  // checks that found instances down for a replacement (ground truth)
    std::map<std::string, uint64_t> faults;  // by kind
    std::string last_fault;
    int64_t last_fault_ms = 0;
  };
  const Figures& figures() const { return figures_; }
  // The fault plan reports here, so quiescence is judged from the last change.
  void noteFault(const std::string& kind, const std::string& detail);
  bool anyFaultActive() const;
  void setFaultActive(const std::string& key, bool active);

 private:
  void scheduleStart(size_t i, int64_t delay_ms);
  void onAgentStarted(size_t i);
  Status checkReplicaBound();
  Status checkExecutors() const;
  Status checkProcesses() const;
  // Rollouts: at most max_unavailable nodes replace an instance of a daemon at once.
  Status checkRollouts();
  // The same from ground truth, on the hosts in good standing, at every check.
  Status checkRolloutReady();
  Status checkAckedSurvived(size_t i) const;
  std::vector<size_t> largestGroup() const;
  std::set<size_t> strandedNow() const;

  AgentClusterOptions options_;
  SimWorld world_;
  SigningKey admin_;
  commits::CommitLogConfig log_config_;
  commits::CommitLog reference_;  // the admin's copy: what the next commit builds on
  std::deque<Bytes> undelivered_;  // the admin's commits no host has taken yet, in order
  Result<std::string> deliverCommits(std::optional<size_t> via);
  std::vector<std::unique_ptr<SimHost>> hosts_;
  std::vector<std::string> seed_addresses_;
  std::vector<std::vector<size_t>> groups_;  // the current partition (empty: none)
  // Per host and chain: the last record acknowledged (seq, hash), the ground truth of
  // "what was promised durable".
  std::vector<std::map<chains::ChainName, std::pair<uint64_t, Hash256>>> acked_;
  std::vector<int64_t> agent_started_ms_;
  std::vector<bool> check_acked_;  // a new agent: check its predecessor's acked records
  mutable std::vector<int64_t> last_stranded_ms_;  // when each host was last stranded
  std::vector<bool> start_pending_;
  std::set<std::string> active_faults_;
  // A hostile request that was served, or a change carried out while frozen: the invariant
  // failure at the next check.
  std::string violation_;
  int64_t quiet_since_ms_ = 0;
  int64_t last_commit_ms_ = -1'000'000;  // the admin's last commit: convergence waits for it to spread
  // (time, replicas each daemon is wanted at by the up nodes): the replica bound's window.
  std::deque<std::pair<int64_t, std::map<std::string, uint32_t>>> wanted_history_;
  Figures figures_;
};

}  // namespace meshos::sim
