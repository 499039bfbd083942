// SimHost: one simulated machine running the real agent. It has what a machine keeps when
// its agent dies — its disk (SimDisk: node key, instance journal, the RocksDB database), its
// processes (SimRuntime), its address on the network and its wall clock — and, while an
// agent runs, that agent: a real node::Node over this host's Env (HostTimers, HostPoster,
// HostWorkers, the disk's files), a SimTransport and the instance journal, exactly as
// meshos-agent's net::AgentHost builds it over libuv.
//
// Faults act here: crashAgent() loses the agent's memory (processes and disk stay, the next
// agent re-adopts), crashMachine() loses the processes too, stop() runs the staged
// shutdown, start() brings a new agent up from the disk. Single-threaded.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/config/node_config.h"
#include "agent/control/control_reply.h"
#include "agent/core/crypto.h"
#include "agent/node/node.h"
#include "agent/sim/host_env.h"
#include "agent/sim/sim_disk.h"
#include "agent/sim/sim_runtime.h"
#include "agent/sim/sim_transport.h"
#include "agent/sim/sim_world.h"

namespace meshos::sim {

// What a machine offers placement.
struct HostSetup {
  std::map<std::string, std::string> labels;
  std::vector<std::string> capabilities;
  int64_t cpu_millicores = 4000;
  int64_t memory_bytes = 8LL << 30;
  std::optional<double> load;  // load1 per CPU reported in the inventory (none: 0)
};

// What a host tells the cluster (for invariants and the trace).
struct HostObserver {
  std::function<void(size_t host, chains::ChainName, uint64_t seq, const Hash256&)> on_chain_acked;
  std::function<void(size_t host, const executor::Outcome&)> on_action_outcome;
};

class SimHost {
 public:
  SimHost(SimWorld& world, size_t index, std::string name, std::string address, const SigningKey& key,
          HostSetup setup, config::NodeConfig config, SimRuntimeOptions runtime_options);
  ~SimHost();
  SimHost(const SimHost&) = delete;
  SimHost& operator=(const SimHost&) = delete;

  // A new agent from what the disk holds. An error (the disk is full, say) leaves no agent.
  Status start();
  // The agent's memory is gone at once; processes and disk stay.
  void crashAgent();
  // The machine dies: the agent and every process; the disk stays.
  void crashMachine();
  // The staged shutdown, in virtual time; the agent is gone once it finished.
  void stop();

  bool up() const { return agent_ != nullptr && !stopping_; }
  bool running() const { return agent_ != nullptr; }
  node::Node* node();
  const node::Node* node() const;
  size_t index() const { return index_; }
  const std::string& name() const { return name_; }
  const std::string& id() const { return id_; }
  const std::string& address() const { return address_; }
  const HostSetup& setup() const { return setup_; }
  void setLoad(std::optional<double> load) { setup_.load = load; }
  config::NodeConfig& config() { return config_; }
  SimRuntime& runtime() { return runtime_; }
  const SimRuntime& runtime() const { return runtime_; }
  SimDisk& disk() { return disk_; }
  const SimDisk& disk() const { return disk_; }
  // The machine's node key (public half): what an admin seals its secrets to.
  const PublicKey& publicKey() const { return public_key_; }
  // A daemon of the machine's local daemons file ([runtime] local, as its disk holds it):
  // the machine's own, never placed, so outside the cluster's replica counts.
  bool isLocalDaemon(const std::string& daemon) const;
  HostClock& clock() { return clock_; }
  const HostClock& clock() const { return clock_; }
  // A slow (CPU-starved) host: its timers fire and its packets arrive up to slow_ms late.
  void setSlowMs(int64_t slow_ms);
  int64_t slowMs() const { return slow_ms_; }
  uint64_t starts() const { return starts_; }
  void setObserver(HostObserver o) { observer_ = std::move(o); }

  // A control request, as the control socket would carry it (the caller's credentials are
  // root's unless `as` says otherwise). The reply may come later (chain reads, exec): run
  // the world until answered().
  std::shared_ptr<control::KeptReply> call(const std::function<void(proto::Request::Builder)>& fill,
                                           const std::string& reason = "simulation",
                                           const control::PeerCred* as = nullptr);

 private:
  struct Agent;
  void teardown();

  SimWorld& world_;
  size_t index_;
  std::string name_;
  std::string id_;
  PublicKey public_key_{};
  std::string address_;
  HostSetup setup_;
  config::NodeConfig config_;
  Rng rng_;
  HostClock clock_;
  SimDisk disk_;
  SimRuntime runtime_;
  std::unique_ptr<Agent> agent_;
  bool stopping_ = false;
  int64_t slow_ms_ = 0;
  uint64_t starts_ = 0;
  HostObserver observer_;
  mutable std::string local_text_;  // the local daemons file last read, and its names
  mutable std::set<std::string> local_names_;
};

}  // namespace meshos::sim
