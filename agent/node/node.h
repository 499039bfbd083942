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
#include "agent/gossip/gossip_service.h"
#include "agent/runtime/instance_store.h"
#include "agent/runtime/process_runtime.h"
#include "agent/runtime/supervisor.h"
#include "agent/spec/daemon_spec.h"
#include "chains/chain_store.h"
#include "chains/chain_writer.h"

namespace meshos::node {

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
  void commitOutput(commits::LogOutput& out);
  // The desired set for this node changed: folds it into the state (reconcile then asks
  // the executor to apply it).
  void setLocalDaemons(std::vector<spec::DaemonSpec> specs);
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
  std::string gossip_state_;  // the last body handed to gossip
  bool gossip_left_ = false;
  std::unique_ptr<commits::RocksCommitStore> commit_store_;
  std::unique_ptr<commits::CommitLog> commit_log_;
  nlohmann::json commits_json_;  // the log as JSON, rebuilt only when it changes
  std::unique_ptr<runtime::FileInstanceStore> instance_store_;
  std::unique_ptr<runtime::ProcessRuntime> runtime_;
  std::unique_ptr<runtime::Supervisor> supervisor_;
  std::vector<spec::DaemonSpec> local_specs_;
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
};

}  // namespace meshos::node
