#include "agent/node/node.h"

#include <spdlog/spdlog.h>

#include <charconv>

#include "agent/reconcile/reconcile.h"
#include "chains/chain_json.h"
#include "chains/chain_recover.h"

namespace meshos::node {

namespace {

// The chains state-area key of this node's gossip incarnation (a decimal number).
constexpr const char* kIncarnationKey = "gossip.incarnation";

executor::Options executorOptions(const config::NodeConfig& c) {
  executor::Options eo;
  eo.queue_capacity = static_cast<size_t>(c.executor.queue_capacity);
  eo.action_deadline_ms = c.executor.action_deadline_ms;
  eo.max_attempts = static_cast<uint32_t>(c.executor.max_attempts);
  eo.retry_initial_ms = c.executor.retry_initial_ms;
  eo.retry_max_ms = c.executor.retry_max_ms;
  return eo;
}

nlohmann::json outcomeJson(const executor::Outcome& o) {
  return {{"action", state::actionKindName(o.action.kind)},
          {"cause", state::actionCauseName(o.action.cause)},
          {"daemon", o.action.daemon},
          {"instance", o.action.instance},
          {"generation", o.action.generation},
          {"reason", o.action.reason},
          {"disposition", executor::dispositionName(o.disposition)},
          {"attempts", o.attempts}};
}

}  // namespace

// Carries executor actions out on the supervisor: an apply hands it the desired set; a
// start or stop is one the supervisor asked for.
class Node::RuntimeDispatcher final : public executor::Dispatcher {
 public:
  explicit RuntimeDispatcher(Node& node) : node_(node) {}
  void dispatch(executor::ActionId id, const state::Action& a) override {
    Status s;
    if (a.kind == state::ActionKind::kApply) {
      s = node_.applyDesired();
      if (s) state::fold(node_.state_, state::DesiredApplied{a.generation});
    } else if (node_.supervisor_) {
      s = node_.supervisor_->perform(a);
      node_.instances_dirty_ = true;
    } else {
      s = Status::unavailable("the runtime is not running");
    }
    node_.executor_->complete(id, s, node_.nowMs());
  }

 private:
  Node& node_;
};

uint64_t specGeneration(const spec::DaemonSpec& spec) {
  Hash256 h = blake2b256(spec::canonicalBytes(spec));
  return readBigEndian64(ByteView(h.data(), 8)) >> 1;
}

Node::Node(NodeServices services, config::NodeConfig config, NodeIdentity identity)
    : env_(services.env),
      services_(std::move(services)),
      config_(std::move(config)),
      identity_(std::move(identity)),
      dns_(discovery::DnsOptions{config_.gossip.cluster, static_cast<uint32_t>(config_.dns.ttl_s)}) {
  state_.node_id = identity_.id;
  state_.node_name = config_.node.name;
  state_.started_ms = nowMs();
  state_.now_ms = state_.started_ms;
  dispatcher_ = std::make_unique<RuntimeDispatcher>(*this);
  executor_ = std::make_unique<executor::Executor>(executorOptions(config_), *dispatcher_);
  executor_->onOutcome([this](const executor::Outcome& o) {
    nlohmann::json payload = outcomeJson(o);
    if (o.disposition == executor::Disposition::kSucceeded) {
      record(chains::ChainName::kLog, "action", payload);
    } else {
      payload["error"] = o.error;
      spdlog::warn("action {} {} {} after {} attempt(s): {}", state::actionKindName(o.action.kind),
                   o.action.instance, executor::dispositionName(o.disposition), o.attempts, o.error);
      record(chains::ChainName::kFailure, "action", payload);
    }
    if (observer_.on_action_outcome) observer_.on_action_outcome(o);
  });
}

Node::~Node() {
  *self_ = nullptr;
  for (TimerId t : {tick_timer_, stage_timer_, commit_sync_timer_, actions_timer_}) {
    if (t != 0) env_.timers.cancel(t);
  }
  if (inventory_) inventory_->stop();
  if (gossip_) gossip_->close();
  supervisor_.reset();
  services_.runtime.setSecretOpener(nullptr);  // the runtime outlives this node
}

// ---------------------------------------------------------------- start

Status Node::start() {
  MESHOS_DCHECK_THREAD(loop_thread_);
  Status s = startServices();
  if (!s) abortStart();
  return s;
}

Status Node::startServices() {
  MESHOS_RETURN_IF_ERROR(openChains());
  if (Status fence = store_->writeFence(); !fence) noteStorageFailure(fence, "opening the chains database");
  MESHOS_RETURN_IF_ERROR(openCommits());
  MESHOS_RETURN_IF_ERROR(openRuntime());
  loadRollouts();
  MESHOS_RETURN_IF_ERROR(openGossip());
  openCommitSync();
  updateRunSet();  // ${node.host} is known now
  startProbes();   // after the last step that can fail: nothing to undo
  started_ = true;
  record(chains::ChainName::kAudit, "agent.start",
         {{"version", MESHOS_VERSION}, {"node", config_.node.name}, {"id", identity_.id},
          {"config", config_.source.string()}, {"key_created", identity_.created}});
  next_tick_due_ns_ = env_.clock.monotonicNs();
  publish();
  scheduleTick();
  spdlog::info("meshos-agent {} node {} ({}) started", MESHOS_VERSION, config_.node.name, identity_.id);
  return Status::ok();
}

// A failed start leaves nothing running: daemons keep running for the next agent, the
// chains flush what was appended.
void Node::abortStart() {
  closeCommitSync();
  if (gossip_) gossip_->close();
  supervisor_.reset();
  if (chains_) (void)chains_->close(kChainsStageMs);
}

// A damaged database stops the start with one line that names it and what to run.
Status Node::damagedStore(Status s) const {
  if (!chains::looksDamaged(s)) return s;
  return Status::corruption("the chain database " + (config_.node.data_dir / "db").string() + " is damaged (" +
                            s.message() + "); " + chains::recoveryHint(config_.node.data_dir));
}

Status Node::openChains() {
  chains::ChainStoreOptions so = services_.database;
  auto store = chains::ChainStore::open(config_.node.data_dir, so);
  if (!store) return damagedStore(store.status().withContext("opening the chains database"));
  store_ = std::move(*store);
  chains::ChainWriterOptions o;
  o.checkpoint_every = static_cast<uint64_t>(config_.chains.checkpoint_every);
  o.max_records = {static_cast<uint64_t>(config_.chains.max_records_audit),
                   static_cast<uint64_t>(config_.chains.max_records_log),
                   static_cast<uint64_t>(config_.chains.max_records_failure)};
  if (services_.chain_writes_on_loop) {
    o.loop_timers = &env_.timers;
    o.loop_sync_delay_ms = services_.chain_sync_delay_ms;
  }
  chains::ChainWriter::Callbacks cb;
  cb.on_acked = [this](const chains::AckEvent& ev) { onChainAcked(ev); };
  cb.on_write_failed = [this](const chains::WriteFailure& f) { onChainWriteFailed(f); };
  auto writer = chains::ChainWriter::create(*store_, identity_.key, env_.clock, env_.poster, o, cb);
  if (!writer) return damagedStore(writer.status().withContext("reading the chain heads"));
  chains_ = std::move(*writer);
  return Status::ok();
}

// onChainAcked(), onChainWriteFailed(), auditRefusal(), storageJson(): node_storage.cpp

void Node::record(chains::ChainName chain, std::string_view kind, const nlohmann::json& payload) {
  if (!chains_ || chains_->closed()) return;
  auto t = chains_->append(chain, kind, payload.dump());
  if (!t) {
    spdlog::warn("{} record {} not appended: {}", chains::chainNameString(chain), kind,
                 t.status().toString());
    return;
  }
  // Every record would be copied into an event: only when somebody follows records.
  if (events_.wants("records")) {
    publishEvent("records", {{"chain", chains::chainNameString(chain)}, {"kind", kind}, {"payload", payload}});
  }
}

void Node::publishEvent(const std::string& kind, const nlohmann::json& data) {
  events_.publish(kind, env_.clock.wallMs(), data);
}

Result<std::vector<spec::DaemonSpec>> Node::loadLocalDaemons(const std::optional<std::filesystem::path>& file) const {
  if (!file) return std::vector<spec::DaemonSpec>{};
  const auto& path = *file;
  auto text = env_.fs.read(path);
  if (!text) return Status::invalid(path.string() + ": cannot read the local daemons file (runtime.local): " +
                                    text.status().message());
  auto specs = spec::parseDaemonsToml(*text, path.string());
  if (!specs) return specs.status();
  MESHOS_RETURN_IF_ERROR(spec::validateSet(*specs).withContext(path.string()));
  return specs;
}

Status Node::openRuntime() {
  auto local = loadLocalDaemons(config_.runtime.local);
  if (!local) return local.status();
  runtime::SupervisorCallbacks cb;
  cb.on_transition = [this](const runtime::TransitionEvent& e) {
    instances_dirty_ = true;
    record(chains::ChainName::kLog, "daemon.transition",
           {{"daemon", e.daemon}, {"instance", e.instance},
            {"from", runtime::instanceStateName(e.from)}, {"to", runtime::instanceStateName(e.to)},
            {"reason", e.reason}});
  };
  cb.on_failure = [this](const runtime::FailureEvent& e) {
    instances_dirty_ = true;
    record(chains::ChainName::kFailure, "daemon." + e.kind,
           {{"daemon", e.daemon}, {"instance", e.instance}, {"message", e.message}});
  };
  MESHOS_RETURN_IF_ERROR(loadClusterSecretKey());
  services_.runtime.setSecretOpener([this](const std::string& name) { return openSecret(name); });
  supervisor_ = std::make_unique<runtime::Supervisor>(env_.clock, env_.timers, env_.rng, services_.runtime,
                                                      services_.instances, cb);
  // Its starts and stops go through the executor; run them on the next loop turn, not a tick
  // later (a callback must not call back into the supervisor).
  supervisor_->routeActions([this] { scheduleActions(); });
  MESHOS_RETURN_IF_ERROR(supervisor_->recover().withContext("re-adopting daemons"));
  config_specs_ = std::move(*local);
  updateRunSet();
  refreshInstances();
  return Status::ok();
}

Status Node::applyDesired() {
  if (!supervisor_) return Status::unavailable("the runtime is not running");
  // Until the view has settled, what the previous agent left and this set does not name
  // waits: a restarted agent that has heard no peer yet places from a view of itself alone.
  Status s = supervisor_->apply(run_specs_, viewSettled(nowMs()));
  instances_dirty_ = true;
  refreshInstances();
  return s;
}

void Node::refreshInstances() {
  if (!supervisor_ || !instances_dirty_) return;
  instances_dirty_ = false;
  std::map<std::string, state::Instance> now;
  for (const auto& i : supervisor_->snapshot()) {
    state::Instance inst;
    inst.id = i.instance;
    inst.daemon = i.daemon;
    inst.state = i.state;
    inst.pid = i.pid;
    inst.restarts = static_cast<uint32_t>(i.restarts);
    inst.health = i.liveness == "failing" ? "unhealthy" : i.ready ? "ready" : "";
    auto it = state_.instances.find(inst.id);
    inst.generation = it != state_.instances.end() ? it->second.generation : 0;
    inst.since_ms = nowMs();
    if (it != state_.instances.end() && it->second.state == inst.state) inst.since_ms = it->second.since_ms;
    now.emplace(inst.id, inst);
  }
  std::vector<std::string> gone;
  for (const auto& [id, inst] : state_.instances) {
    if (now.count(id) == 0) gone.push_back(id);
  }
  for (const auto& id : gone) {
    state::Instance inst = state_.instances.at(id);
    state::fold(state_, state::DaemonSignal{inst, true});
    publishEvent("daemons", {{"instance", id}, {"daemon", inst.daemon}, {"state", "removed"}});
  }
  for (auto& [id, inst] : now) {
    auto was = state_.instances.find(id);
    if (was == state_.instances.end() || was->second.state != inst.state || was->second.health != inst.health ||
        was->second.pid != inst.pid) {
      publishEvent("daemons", {{"instance", id}, {"daemon", inst.daemon}, {"state", state::instanceStateName(inst.state)},
                               {"health", inst.health}, {"pid", inst.pid}, {"restarts", inst.restarts}});
    }
    state::fold(state_, state::DaemonSignal{inst, false});
  }
}

// openCommits() and commitOutput(): node_commits.cpp

gossip::GossipServiceOptions Node::gossipOptions(const gossip::Keyring& keyring) {
  gossip::GossipServiceOptions go;
  go.name = config_.node.name;
  go.id = identity_.id;
  go.public_key.assign(identity_.key.public_key.begin(), identity_.key.public_key.end());
  go.bind = config_.gossip.bind.toString();
  if (config_.gossip.advertise) go.advertise = config_.gossip.advertise->toString();
  for (const auto& s : config_.gossip.seeds) go.seeds.push_back(s.toString());
  const auto& g = config_.gossip;
  go.gossip.cluster_id = g.cluster;
  go.gossip.probe_interval_ms = g.probe_interval_ms;
  go.gossip.probe_timeout_ms = g.probe_timeout_ms;
  go.gossip.indirect_checks = static_cast<int>(g.indirect_checks);
  go.gossip.gossip_interval_ms = g.gossip_interval_ms;
  go.gossip.gossip_nodes = static_cast<int>(g.gossip_nodes);
  go.gossip.suspicion_mult = static_cast<int>(g.suspicion_mult);
  go.gossip.retransmit_mult = static_cast<int>(g.retransmit_mult);
  go.gossip.push_pull_interval_ms = g.push_pull_interval_ms;
  go.gossip.max_packet_bytes = static_cast<size_t>(g.max_packet_bytes);
  go.keyring = keyring;
  // The incarnation lives in the database's state area (a synced write, at start and on
  // each refutation).
  go.load_incarnation = [this]() -> Result<std::optional<uint64_t>> {
    auto stored = store_->getState(kIncarnationKey);
    if (!stored) return stored.status();
    if (!*stored) return std::optional<uint64_t>();
    uint64_t v = 0;
    const std::string& text = **stored;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return Status::corruption(std::string("state ") + kIncarnationKey + ": not a number: '" + text + "'");
    }
    return std::optional<uint64_t>(v);
  };
  go.store_incarnation = [this](uint64_t incarnation) -> Status {
    Status s = store_->putState(kIncarnationKey, std::to_string(incarnation));
    if (!s) noteStorageFailure(s, "storing the gossip incarnation");
    return s;
  };
  return go;
}

Status Node::openGossip() {
  gossip::Keyring keyring;
  if (config_.gossip.keyring) {
    auto ring = gossip::loadKeyring(env_.fs, *config_.gossip.keyring);
    if (!ring) return Status::invalid(ring.status().message()).withContext("gossip.keyring");
    keyring = std::move(*ring);
  }
  gossip::GossipServiceOptions go = gossipOptions(keyring);
  if (Status v = go.gossip.validate(); !v) return Status::invalid(v.message()).withContext("[gossip]");
  gossip_ = std::make_unique<gossip::GossipService>(env_, services_.transport, services_.identities, std::move(go));
  gossip_->onMemberEvent([this](const gossip::MemberEvent& e) { onMemberEvent(e); });
  gossip_->onNodeState([this](const gossip::NodeStateUpdate& u) { onPeerState(u); });
  MESHOS_RETURN_IF_ERROR(gossip_->start().withContext("gossip"));
  // This node is a member too: the members table shows the whole cluster, self included.
  auto self = gossip_->localMember();
  state::fold(state_, state::MembershipChanged{{self.id, self.name, self.address, state::MemberState::kAlive,
                                                self.incarnation, nowMs(), 0}});
  spdlog::info("gossip on {} (cluster {}, {})", gossip_->advertiseAddress(), config_.gossip.cluster,
               keyring.empty() ? "plaintext" : "encrypted");
  return Status::ok();
}

void Node::onMemberEvent(const gossip::MemberEvent& e) {
  const auto& m = e.member;
  state::Member member{m.id, m.name, m.address, static_cast<state::MemberState>(static_cast<int>(m.state)),
                       m.incarnation, m.last_heard_ms, m.rtt_us < 0 ? -1.0 : static_cast<double>(m.rtt_us) / 1000.0};
  state::fold(state_, state::MembershipChanged{member});
  publishEvent("members", {{"event", gossip::memberEventKindName(e.kind)}, {"id", m.id}, {"name", m.name},
                           {"address", m.address}, {"state", state::memberStateName(member.state)},
                           {"incarnation", m.incarnation}});
  snapshot_stale_ = true;  // `members` and `snapshot` show what gossip knows now, not at the next tick
  if (commit_sync_) scheduleCommitSync(0);  // a peer to fetch from, or one fewer
  if (e.kind == gossip::MemberEventKind::kUpdate) return;  // address/metadata churn: no record
  nlohmann::json payload = {{"event", gossip::memberEventKindName(e.kind)}, {"id", m.id},
                            {"name", m.name}, {"address", m.address}, {"incarnation", m.incarnation}};
  if (!e.detail.empty()) payload["detail"] = e.detail;
  record(e.kind == gossip::MemberEventKind::kNameConflict ? chains::ChainName::kFailure : chains::ChainName::kLog,
         "member", payload);
}

// ---------------------------------------------------------------- the tick

void Node::addProbe(std::unique_ptr<Probe> probe) {
  probes_.push_back(std::move(probe));
  probe_due_ms_.push_back(0);
}

void Node::addSnapshotSection(std::string name, std::function<nlohmann::json()> fn) {
  extra_sections_.emplace_back(std::move(name), std::move(fn));
}

void Node::handle(const state::Event& event) {
  state::fold(state_, event);
  snapshot_stale_ = true;
}

void Node::scheduleTick() {
  const int64_t interval_ns = config_.node.tick_interval_ms * 1'000'000;
  next_tick_due_ns_ += interval_ns;
  int64_t now_ns = env_.clock.monotonicNs();
  if (next_tick_due_ns_ < now_ns) next_tick_due_ns_ = now_ns;  // fell behind: do not burst
  int64_t delay_ms = (next_tick_due_ns_ - now_ns + 999'999) / 1'000'000;
  tick_timer_ = env_.timers.after(delay_ms, [this] {
    tick_timer_ = 0;
    lag_.record((env_.clock.monotonicNs() - next_tick_due_ns_) / 1000);
    tick();
    if (!stopping_) scheduleTick();
  });
}

void Node::tick() {
  MESHOS_DCHECK_THREAD(loop_thread_);
  const int64_t now = nowMs();
  state::fold(state_, state::Tick{now});
  for (size_t i = 0; i < probes_.size(); ++i) {
    if (now < probe_due_ms_[i]) continue;
    probe_due_ms_[i] = now + probes_[i]->intervalMs();
    state::ProbeSample sample;
    try {
      auto r = probes_[i]->sample(now);
      if (r) {
        sample = std::move(*r);
      } else {
        sample = {probes_[i]->name(), now, false, r.status().toString(), {}};
      }
    } catch (const std::exception& e) {
      sample = {probes_[i]->name(), now, false, std::string("probe threw: ") + e.what(), {}};
    }
    if (!sample.ok) spdlog::warn("probe {} failed: {}", sample.probe, sample.error);
    state::fold(state_, sample);
  }
  refreshInstances();
  retryStorageWrites();
  updateCoordinate();
  planPlacement();
  adoptLeftovers(now);
  publishNodeState();
  runActions(now);
  refreshInstances();
  snapshot_stale_ = true;
}

void Node::runActions(int64_t now) {
  // A freeze holds changes at the executor; what keeps the running set and operators pass.
  executor_->holdChanges(plan_.frozen);
  for (const auto& action : reconcile::reconcile(state_)) executor_->offer(action, now);
  if (supervisor_) {
    for (const auto& action : supervisor_->pendingActions()) executor_->offer(action, now);
  }
  executor_->poll(now);
}

void Node::scheduleActions() {
  if (actions_timer_ != 0 || stopping_) return;
  actions_timer_ = env_.timers.after(0, [this] {
    actions_timer_ = 0;
    runActions(nowMs());
    refreshInstances();
    snapshot_stale_ = true;
  });
}

std::shared_ptr<const state::Snapshot> Node::snapshot() {
  currentSnapshot();
  return snapshot_;
}

const state::Snapshot& Node::currentSnapshot() {
  if (snapshot_stale_ || !snapshot_) publish();
  return *snapshot_;
}

// After a restart the instances a previous agent left wait in the supervisor until an apply
// adopts them (still wanted, same spec) or stops them. An apply comes with the first change
// of the run set; when the set does not change (a daemon moved away while the agent was
// down), it is asked for once placement's view has settled, or after kAdoptionWaitMs. An
// apply before then adopts what it names and leaves the rest waiting (the simulator found an
// agent that restarted and, knowing only itself, stopped the instance its peers counted on).
void Node::adoptLeftovers(int64_t now) {
  if (!supervisor_ || supervisor_->awaitingAdoption() == 0) return;
  if (state_.desired_set_generation != state_.applied_set_generation) return;  // an apply is coming
  if (!viewSettled(now)) return;
  state::fold(state_, state::DesiredReapply{"instances left by the previous agent"});
}

// Placement has a view worth acting on: a majority agrees with it and it knows a member
// besides itself (a node alone agrees with itself). Or the agent has waited long enough (a
// cluster of one waits that long before it stops leftovers nobody wants).
bool Node::viewSettled(int64_t now) const {
  return (plan_.agreed && state_.members.size() > 1) || now - state_.started_ms >= kAdoptionWaitMs;
}

nlohmann::json Node::gossipJson() const {
  const auto& c = gossip_->counters();
  const auto sc = gossip_->shellCounters();
  return {{"address", gossip_->advertiseAddress()}, {"incarnation", gossip_->incarnation()},
          {"local_health", gossip_->localHealth()}, {"packets_in", c.packets_in},
          {"packets_out", c.packets_out}, {"bytes_in", c.bytes_in}, {"bytes_out", c.bytes_out},
          {"probes", c.probes}, {"probe_failures", c.probe_failures},
          {"suspicions", c.suspicions}, {"refutations", c.refutations},
          {"false_suspicions_refuted", c.false_suspicions_refuted}, {"dead_declared", c.dead_declared},
          {"push_pulls", c.push_pulls}, {"name_conflicts", c.name_conflicts},
          {"dropped", {{"truncated", c.drop_truncated}, {"bad_version", c.drop_bad_version},
                       {"wrong_cluster_or_key", c.drop_wrong_cluster_or_key},
                       {"plaintext", c.drop_plaintext}, {"encrypted", c.drop_encrypted},
                       {"oversized", c.drop_oversized}, {"decode", c.drop_decode},
                       {"stale", c.drop_stale}}},
          {"udp_send_errors", sc.udp_send_errors}, {"tcp_rejected", sc.tcp_rejected},
          {"keyring_changes", keyring_changes_}, {"keyring_rejected", keyring_rejected_}};
}

void Node::publish() {
  state::SnapshotInputs in;
  in.version = MESHOS_VERSION;
  in.cluster = config_.gossip.cluster;
  in.wall_ms = env_.clock.wallMs();
  in.loop_lag = lag_.summary();
  in.sections["executor"] = executor_->toJson();
  if (commit_log_) {
    in.sections["commits"] = commits_json_;
    if (commit_sync_) in.sections["commits"]["sync"] = commitSyncJson();
  }
  // Rendered when the plan changes, not every tick; members with their node state are
  // rendered on request (membersJson()).
  in.sections["placement"] = placement_json_;
  in.sections["placement"]["refused_node_states"] = bad_node_states_;
  if (rebalancer_) in.sections["placement"]["rebalance"] = rebalancer_->toJson();
  if (gossip_) in.sections["gossip"] = gossipJson();
  if (supervisor_) {
    in.sections["runtime"] = {{"instances", state_.instances.size()},
                              {"desired_generation", state_.desired_set_generation},
                              {"applied_generation", state_.applied_set_generation}};
  }
  if (chains_) {
    auto j = chains::summariesToJson(*chains_);
    nlohmann::json by_name = nlohmann::json::object();
    for (auto& c : j["chains"]) by_name[c["chain"].get<std::string>()] = c;
    by_name["write_failures"] = chain_write_failures_;
    in.sections["chains"] = by_name;
  }
  in.sections["storage"] = storageJson();
  in.sections["events"] = events_.toJson();
  for (const auto& [name, fn] : extra_sections_) {
    nlohmann::json extra = fn();
    if (in.sections.count(name) && in.sections[name].is_object() && extra.is_object()) {
      in.sections[name].update(extra);
    } else {
      in.sections[name] = std::move(extra);
    }
  }
  snapshot_ = state::makeSnapshot(state_, std::move(in), snapshot_, lists_built_at_ms_);
  snapshot_stale_ = false;
}

}  // namespace meshos::node
