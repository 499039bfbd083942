#include "agent/sim/sim_host.h"

#include <capnp/message.h>

#include "agent/core/node_identity.h"
#include "agent/runtime/instance_store.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::sim {

namespace {

// How long a worker's "blocking" job takes, and a chain sync, in virtual time.
constexpr int64_t kWorkerDelayMs = 2;
constexpr int64_t kChainSyncDelayMs = 1;

chains::ChainStoreOptions databaseOptions(rocksdb::Env* env) {
  chains::ChainStoreOptions o;
  o.env = env;
  o.simulated = true;
  o.write_buffer_bytes = 64 << 20;  // never flushed in a run: no background work
  return o;
}

}  // namespace

// One agent incarnation: everything that dies with it.
struct SimHost::Agent {
  Agent(SimHost& host)
      : rng(host.rng_.fork()),
        timers(host.world_.timers, rng),
        poster(timers),
        workers(timers, kWorkerDelayMs),
        env{host.clock_, timers, poster, rng, workers, host.disk_.files()},
        transport(host.world_.network, host.clock_, host.address_) {}
  Rng rng;
  HostTimers timers;
  HostPoster poster;
  HostWorkers workers;
  Env env;
  SimTransport transport;
  std::unique_ptr<runtime::FileInstanceStore> instances;
  std::unique_ptr<node::Node> node;
};

SimHost::SimHost(SimWorld& world, size_t index, std::string name, std::string address, const SigningKey& key,
                 HostSetup setup, config::NodeConfig config, SimRuntimeOptions runtime_options)
    : world_(world),
      index_(index),
      name_(std::move(name)),
      id_(nodeIdFromPublicKey(key.public_key)),
      public_key_(key.public_key),
      address_(std::move(address)),
      setup_(std::move(setup)),
      config_(std::move(config)),
      rng_(world.rng.fork()),
      clock_(world.clock),
      runtime_(world.timers, clock_, rng_.fork(), runtime_options) {
  // The machine was installed with its key: the agent finds it on its disk.
  (void)disk_.files().makeDirs(config_.node.data_dir);
  (void)disk_.files().writeAtomically(config_.node.data_dir / "node.key", keyFileText(key), 0600);
  runtime_.on_trace = [this](const char* what, const std::string& instance, int pid) {
    world_.trace.mix(std::string_view(what));
    world_.trace.mix(static_cast<uint64_t>(index_) << 32 | static_cast<uint32_t>(pid));
    world_.trace.mix(instance);
  };
}

SimHost::~SimHost() { teardown(); }

bool SimHost::isLocalDaemon(const std::string& daemon) const {
  if (!config_.runtime.local) return false;
  auto text = disk_.memFiles().read(*config_.runtime.local);
  if (!text) return false;
  if (*text != local_text_) {
    local_text_ = *text;
    local_names_.clear();
    auto specs = spec::parseDaemonsToml(*text, config_.runtime.local->string());
    if (specs)
      for (const auto& s : *specs) local_names_.insert(s.name);
  }
  return local_names_.count(daemon) != 0;
}

node::Node* SimHost::node() { return agent_ ? agent_->node.get() : nullptr; }
const node::Node* SimHost::node() const { return agent_ ? agent_->node.get() : nullptr; }

void SimHost::setSlowMs(int64_t slow_ms) {
  slow_ms_ = slow_ms;
  world_.network.setProcessingDelay(Network::hostOf(address_), slow_ms);
  if (agent_) agent_->timers.setSlowMs(slow_ms);
}

Status SimHost::start() {
  if (agent_) return Status::exists(name_ + ": an agent is already running");
  stopping_ = false;
  auto agent = std::make_unique<Agent>(*this);
  agent->timers.setSlowMs(slow_ms_);
  auto identity = loadOrCreateNodeIdentity(disk_.files(), config_.node.data_dir);
  if (!identity) return identity.status();
  auto instances = runtime::FileInstanceStore::open(disk_.files(), (config_.node.data_dir / "runtime" / "instances").string());
  if (!instances) return instances.status().withContext("runtime instance records");
  agent->instances = std::move(*instances);
  runtime_.attachAgent(agent->instances.get());
  node::NodeServices services{agent->env, agent->transport, world_.identities, runtime_, *agent->instances};
  services.database = databaseOptions(disk_.databaseEnv());
  services.chain_writes_on_loop = true;
  services.runtime_capabilities = {"runtime:oci"};  // the simulated runtime runs containers too
  services.chain_sync_delay_ms = kChainSyncDelayMs;
  services.sample_inventory = [this]() -> Result<state::Inventory> {
    state::Inventory inv;
    inv.cpu_count = static_cast<uint32_t>(std::max<int64_t>(1, setup_.cpu_millicores / 1000));
    inv.load1 = setup_.load.value_or(0.0) * inv.cpu_count;
    inv.memory_total_bytes = setup_.memory_bytes;
    return inv;
  };
  agent->node = std::make_unique<node::Node>(std::move(services), config_, std::move(*identity));
  node::NodeObserver o;
  o.on_chain_acked = [this](chains::ChainName c, uint64_t seq, const Hash256& h) {
    world_.trace.mix(static_cast<uint64_t>(index_) << 40 | static_cast<uint64_t>(c) << 32 | (seq & 0xffffffff));
    if (observer_.on_chain_acked) observer_.on_chain_acked(index_, c, seq, h);
  };
  o.on_action_outcome = [this](const executor::Outcome& out) {
    if (observer_.on_action_outcome) observer_.on_action_outcome(index_, out);
  };
  agent->node->setObserver(std::move(o));
  agent->node->onShutdownComplete([this] {
    // Not from inside the node's own call: the teardown destroys it.
    world_.timers.after(0, [this] {
      if (stopping_) teardown();
    });
  });
  agent_ = std::move(agent);
  ++starts_;
  world_.trace.mix(std::string_view("start"));
  world_.trace.mix(static_cast<uint64_t>(index_));
  Status s = agent_->node->start();
  if (!s) teardown();
  return s;
}

void SimHost::teardown() {
  if (!agent_) return;
  runtime_.detachAgent();
  agent_->timers.cancelAll();
  agent_->node.reset();
  agent_->transport.close();
  agent_.reset();
  stopping_ = false;
}

void SimHost::crashAgent() {
  if (!agent_) return;
  world_.trace.mix(std::string_view("crash-agent"));
  world_.trace.mix(static_cast<uint64_t>(index_));
  teardown();
}

void SimHost::crashMachine() {
  world_.trace.mix(std::string_view("crash-machine"));
  world_.trace.mix(static_cast<uint64_t>(index_));
  teardown();
  runtime_.crashMachine();
}

void SimHost::stop() {
  if (!agent_ || stopping_) return;
  stopping_ = true;
  agent_->node->shutdown("simulation: stop");
}

std::shared_ptr<control::KeptReply> SimHost::call(const std::function<void(proto::Request::Builder)>& fill,
                                                  const std::string& reason, const control::PeerCred* as) {
  auto kept = std::make_shared<control::KeptReply>();
  if (!agent_) {
    control::ControlResponder(kept, 0).error(Status::unavailable(name_ + ": no agent running"));
    return kept;
  }
  capnp::MallocMessageBuilder message;
  auto request = message.initRoot<proto::Request>();
  request.setReason(reason);
  fill(request);
  control::PeerCred self;  // root, as the simulated operator
  self.pid = 1;
  self.known = true;
  agent_->node->control(request.asReader(), as != nullptr ? *as : self, control::ControlResponder(kept, 0));
  return kept;
}

}  // namespace meshos::sim
