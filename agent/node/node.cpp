#include "agent/node/node.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/commits/commit_control.h"
#include "agent/commits/commit_json.h"
#include "agent/reconcile/reconcile.h"
#include "chains/chain_json.h"

namespace meshos::node {

namespace {

// The chains state-area key of this node's gossip incarnation (a decimal number).
constexpr const char* kIncarnationKey = "gossip.incarnation";

struct Stage {
  const char* name;
  int64_t deadline_ms;
};

// Shutdown order: stop taking commands, let the executor finish, make the chains durable
// (with a final signed checkpoint), close the loop's handles.
constexpr Stage kStages[] = {
    {"control socket", Node::kControlStageMs},
    {"gossip leave", Node::kGossipStageMs},
    {"executor", Node::kExecutorStageMs},
    {"runtime", Node::kRuntimeStageMs},
    {"chains", Node::kChainsStageMs},
    {"loop", 1000},
};

// Read-only requests that monitoring polls; they are not worth an audit record each.
bool isPolling(proto::Request::Which w) {
  return w == proto::Request::PING || w == proto::Request::METRICS;
}

}  // namespace

// Carries executor actions out on the supervisor. Apply hands it the desired set; the
// instance-level kinds arrive with placement (relocation) and are refused until then.
class Node::RuntimeDispatcher final : public executor::Dispatcher {
 public:
  explicit RuntimeDispatcher(Node& node) : node_(node) {}
  void dispatch(executor::ActionId id, const state::Action& a) override {
    Status s;
    if (a.kind != state::ActionKind::kApply) {
      s = Status::notImplemented(std::string(state::actionKindName(a.kind)) +
                                 " actions come with placement (issue 7)");
    } else {
      s = node_.applyDesired();
      if (s) state::fold(node_.state_, state::DesiredApplied{a.generation});
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

namespace {

Result<std::vector<spec::DaemonSpec>> loadLocalDaemons(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return Status::invalid(path.string() + ": cannot read the local daemons file (runtime.local)");
  std::stringstream buf;
  buf << in.rdbuf();
  auto specs = spec::parseDaemonsToml(buf.str(), path.string());
  if (!specs) return specs.status();
  MESHOS_RETURN_IF_ERROR(spec::validateSet(*specs).withContext(path.string()));
  return specs;
}

}  // namespace

Node::Node(uv_loop_t* loop, Env& env, config::NodeConfig config, NodeIdentity identity)
    : loop_(loop),
      env_(env),
      config_(std::move(config)),
      identity_(std::move(identity)),
      control_(loop, [this](proto::Request::Reader r, const net::PeerCred& p,
                            net::ControlResponder reply) { onControl(r, p, std::move(reply)); }) {
  state_.node_id = identity_.id;
  state_.node_name = config_.node.name;
  state_.started_ms = nowMs();
  state_.now_ms = state_.started_ms;
  dispatcher_ = std::make_unique<RuntimeDispatcher>(*this);
  executor::Options eo;
  eo.queue_capacity = static_cast<size_t>(config_.executor.queue_capacity);
  eo.action_deadline_ms = config_.executor.action_deadline_ms;
  eo.max_attempts = static_cast<uint32_t>(config_.executor.max_attempts);
  eo.retry_initial_ms = config_.executor.retry_initial_ms;
  eo.retry_max_ms = config_.executor.retry_max_ms;
  executor_ = std::make_unique<executor::Executor>(eo, *dispatcher_);
  executor_->onOutcome([this](const executor::Outcome& o) {
    nlohmann::json payload = {{"action", state::actionKindName(o.action.kind)},
                              {"daemon", o.action.daemon},
                              {"instance", o.action.instance},
                              {"generation", o.action.generation},
                              {"reason", o.action.reason},
                              {"disposition", executor::dispositionName(o.disposition)},
                              {"attempts", o.attempts}};
    if (o.disposition == executor::Disposition::kSucceeded) {
      record(chains::ChainName::kLog, "action", payload);
      return;
    }
    payload["error"] = o.error;
    spdlog::warn("action {} {} {} after {} attempt(s): {}", state::actionKindName(o.action.kind),
                 o.action.instance, executor::dispositionName(o.disposition), o.attempts, o.error);
    record(chains::ChainName::kFailure, "action", payload);
  });
}

Node::~Node() { closeSignals(); }

void Node::closeSignals() {
  for (uv_signal_t** s : {&sigint_, &sigterm_}) {
    if (*s == nullptr) continue;
    uv_close(reinterpret_cast<uv_handle_t*>(*s),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
    *s = nullptr;
  }
}

Status Node::openChains() {
  chains::ChainStoreOptions so;
  // Small memtables: an agent appends a few records a second, and RocksDB sizes its arena
  // blocks from this (an eighth each); the default would cost megabytes of RSS per chain.
  so.write_buffer_bytes = 1 << 20;
  auto store = chains::ChainStore::open(config_.node.data_dir, so);
  if (!store) return store.status().withContext("opening the chains database");
  store_ = std::move(*store);
  chains::ChainWriterOptions o;
  o.checkpoint_every = static_cast<uint64_t>(config_.chains.checkpoint_every);
  o.max_records = {static_cast<uint64_t>(config_.chains.max_records_audit),
                   static_cast<uint64_t>(config_.chains.max_records_log),
                   static_cast<uint64_t>(config_.chains.max_records_failure)};
  chains::ChainWriter::Callbacks cb;
  cb.on_acked = [this](const chains::AckEvent& ev) {
    state::fold(state_, state::ChainFlushed{std::string(chains::chainNameString(ev.chain)), ev.last_seq});
  };
  cb.on_write_failed = [this](const chains::WriteFailure& f) {
    ++chain_write_failures_;
    spdlog::error("chain write failed (attempt {}, {} records): {}; retrying in {} ms", f.attempt,
                  f.records, f.status.toString(), f.retry_in_ms);
  };
  auto writer = chains::ChainWriter::create(*store_, identity_.key, env_.clock, env_.poster, o, cb);
  if (!writer) return writer.status().withContext("starting the chain writer");
  chains_ = std::move(*writer);
  return Status::ok();
}

void Node::record(chains::ChainName chain, std::string_view kind, const nlohmann::json& payload) {
  if (!chains_ || chains_->closed()) return;
  auto t = chains_->append(chain, kind, payload.dump());
  if (!t) {
    spdlog::warn("{} record {} not appended: {}", chains::chainNameString(chain), kind,
                 t.status().toString());
  }
}

Status Node::openRuntime() {
  std::vector<spec::DaemonSpec> local;
  if (config_.runtime.local) {
    auto specs = loadLocalDaemons(*config_.runtime.local);
    if (!specs) return specs.status();
    local = std::move(*specs);
  }
  auto store = runtime::FileInstanceStore::open((config_.node.data_dir / "runtime" / "instances").string());
  if (!store) return store.status().withContext("runtime instance records");
  instance_store_ = std::move(*store);
  runtime::RuntimeOptions ro;
  ro.data_dir = config_.node.data_dir.string();
  ro.cgroup_parent = config_.runtime.cgroup_parent;
  runtime_ = std::make_unique<runtime::ProcessRuntime>(loop_, env_.clock, *instance_store_, ro);
  MESHOS_RETURN_IF_ERROR(runtime_->init().withContext("process runtime"));
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
  supervisor_ = std::make_unique<runtime::Supervisor>(loop_, env_.clock, env_.timers, env_.rng,
                                                      *runtime_, *instance_store_, cb);
  MESHOS_RETURN_IF_ERROR(supervisor_->recover().withContext("re-adopting daemons"));
  spdlog::info("runtime: {}", runtime_->cgroupStatus());
  config_specs_ = std::move(local);
  updateRunSet();
  refreshInstances();
  return Status::ok();
}

Status Node::applyDesired() {
  if (!supervisor_) return Status::unavailable("the runtime is not running");
  Status s = supervisor_->apply(run_specs_);
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
  }
  for (auto& [id, inst] : now) state::fold(state_, state::DaemonSignal{inst, false});
}

// openCommits() and commitOutput(): node_commits.cpp

Status Node::openGossip() {
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
  if (Status v = go.gossip.validate(); !v) return Status::invalid(v.message()).withContext("[gossip]");
  if (g.keyring) {
    auto ring = gossip::loadKeyring(*g.keyring);
    if (!ring) return Status::invalid(ring.status().message()).withContext("gossip.keyring");
    go.keyring = std::move(*ring);
  }
  go.data_dir = config_.node.data_dir;
  // The incarnation lives in the chains database's state area (a synced write, at start
  // and on each refutation). A data dir from before keeps its gossip.incarnation file until
  // the first store moves the number into the database.
  go.load_incarnation = [this]() -> Result<std::optional<uint64_t>> {
    auto stored = store_->getState(kIncarnationKey);
    if (!stored) return stored.status();
    if (*stored) {
      uint64_t v = 0;
      auto [end, ec] = std::from_chars((*stored)->data(), (*stored)->data() + (*stored)->size(), v);
      if (ec != std::errc() || end != (*stored)->data() + (*stored)->size()) {
        return Status::corruption(std::string("state ") + kIncarnationKey + ": not a number: '" + **stored + "'");
      }
      return std::optional<uint64_t>(v);
    }
    auto legacy = gossip::readIncarnationFile(config_.node.data_dir);
    if (!legacy) return legacy.status();
    return *legacy == 0 ? std::nullopt : std::optional<uint64_t>(*legacy);
  };
  go.store_incarnation = [this](uint64_t incarnation) -> Status {
    MESHOS_RETURN_IF_ERROR(store_->putState(kIncarnationKey, std::to_string(incarnation)));
    std::error_code ec;  // the legacy file, once the database holds the number
    std::filesystem::remove(config_.node.data_dir / "gossip.incarnation", ec);
    return Status::ok();
  };
  gossip_ = std::make_unique<gossip::GossipService>(loop_, env_, std::move(go));
  gossip_->onMemberEvent([this](const gossip::MemberEvent& e) {
    const auto& m = e.member;
    state::Member member{m.id, m.name, m.address, static_cast<state::MemberState>(static_cast<int>(m.state)),
                         m.incarnation, m.last_heard_ms, m.rtt_us < 0 ? -1.0 : static_cast<double>(m.rtt_us) / 1000.0};
    state::fold(state_, state::MembershipChanged{member});
    if (e.kind == gossip::MemberEventKind::kUpdate) return;  // address/metadata churn: no record
    nlohmann::json payload = {{"event", gossip::memberEventKindName(e.kind)}, {"id", m.id},
                              {"name", m.name}, {"address", m.address}, {"incarnation", m.incarnation}};
    if (!e.detail.empty()) payload["detail"] = e.detail;
    record(e.kind == gossip::MemberEventKind::kNameConflict ? chains::ChainName::kFailure
                                                             : chains::ChainName::kLog,
           "member", payload);
  });
  gossip_->onNodeState([this](const gossip::NodeStateUpdate& u) {
    onPeerState(u);
  });
  MESHOS_RETURN_IF_ERROR(gossip_->start().withContext("gossip"));
  // This node is a member too: the members table shows the whole cluster, self included.
  auto self = gossip_->localMember();
  state::fold(state_, state::MembershipChanged{{self.id, self.name, self.address, state::MemberState::kAlive,
                                                self.incarnation, nowMs(), 0}});
  spdlog::info("gossip on {} (cluster {}, {})", gossip_->advertiseAddress(), g.cluster,
               g.keyring ? "encrypted" : "plaintext");
  return Status::ok();
}

Status Node::start() {
  Status s = startServices();
  // A failed start leaves nothing running, signal handlers included, so the loop can end.
  if (!s) closeSignals();
  return s;
}

Status Node::startServices() {
  MESHOS_RETURN_IF_ERROR(openChains());
  if (Status s = openCommits(); !s) {
    chains_->close(kChainsStageMs).isOk();
    return s;
  }
  if (Status s = openRuntime(); !s) {
    chains_->close(kChainsStageMs).isOk();
    if (runtime_) runtime_->close();
    return s;
  }
  if (Status s = openGossip(); !s) {
    supervisor_.reset();
    runtime_->close();
    chains_->close(kChainsStageMs).isOk();
    return s;
  }
  openCommitSync();
  updateRunSet();  // ${node.host} is known now
  if (Status s = control_.listen(config_.control.socket, config_.control.mode); !s) {
    gossip_->close();
    supervisor_.reset();
    runtime_->close();
    chains_->close(kChainsStageMs).isOk();  // nothing was appended: just stop the thread
    return s.withContext("control socket");
  }
  startProbes();  // after the last step that can fail: nothing to undo
  started_ = true;
  record(chains::ChainName::kAudit, "agent.start",
         {{"version", MESHOS_VERSION}, {"node", config_.node.name}, {"id", identity_.id},
          {"config", config_.source.string()}, {"pid", ::getpid()},
          {"key_created", identity_.created}});
  next_tick_due_ns_ = env_.clock.monotonicNs();
  publish();
  scheduleTick();
  spdlog::info("meshos-agent {} node {} ({}) serving {}", MESHOS_VERSION, config_.node.name,
               identity_.id, config_.control.socket.string());
  return Status::ok();
}

void Node::handleSignals() {
  auto install = [this](uv_signal_t*& handle, int signum) {
    handle = new uv_signal_t();
    uv_signal_init(loop_, handle);
    handle->data = this;
    uv_signal_start(
        handle,
        [](uv_signal_t* h, int sig) {
          auto* self = static_cast<Node*>(h->data);
          if (++self->signals_seen_ > 1) {
            spdlog::error("second signal ({}): forcing exit", strsignal(sig));
            spdlog::default_logger()->flush();
            ::_exit(130);
          }
          self->shutdown(strsignal(sig));
        },
        signum);
  };
  install(sigint_, SIGINT);
  install(sigterm_, SIGTERM);
}

void Node::addProbe(std::unique_ptr<Probe> probe) {
  probes_.push_back(std::move(probe));
  probe_due_ms_.push_back(0);
}

void Node::handle(const state::Event& event) { state::fold(state_, event); }

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
  updateCoordinate();
  planPlacement();
  publishNodeState();
  for (const auto& action : reconcile::reconcile(state_)) executor_->offer(action, now);
  executor_->poll(now);
  refreshInstances();
  publish();
}

void Node::publish() {
  state::SnapshotInputs in;
  in.version = MESHOS_VERSION;
  in.cluster = config_.gossip.cluster;
  in.wall_ms = env_.clock.wallMs();
  in.loop_lag = lag_.summary();
  in.sections["executor"] = executor_->toJson();
  if (commit_log_) in.sections["commits"] = commits_json_;
  // Rendered when the plan changes, not every tick; members with their node state are
  // rendered on request (membersJson()).
  in.sections["placement"] = placement_json_;
  in.sections["placement"]["refused_node_states"] = bad_node_states_;
  if (rebalancer_) in.sections["placement"]["rebalance"] = rebalancer_->toJson();
  if (gossip_) {
    const auto& c = gossip_->counters();
    const auto& sc = gossip_->shellCounters();
    in.sections["gossip"] = {
        {"address", gossip_->advertiseAddress()}, {"incarnation", gossip_->incarnation()},
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
  if (runtime_) {
    in.sections["runtime"] = {{"cgroups", runtime_->cgroupStatus()},
                              {"instances", state_.instances.size()},
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
  in.sections["control"] = {{"connections", control_.counters().connections},
                            {"open_connections", control_.openConnections()},
                            {"requests", control_.counters().requests},
                            {"malformed", control_.counters().malformed},
                            {"oversized", control_.counters().oversized},
                            {"refused_connections", control_.counters().refused_connections}};
  snapshot_ = state::makeSnapshot(state_, std::move(in), snapshot_, lists_built_at_ms_);
}

void Node::onControl(proto::Request::Reader request, const net::PeerCred& peer,
                     net::ControlResponder reply) {
  if (stopping_) {
    reply.error(Status::unavailable("the agent is shutting down"));
    return;
  }
  std::string command;
  switch (request.which()) {
    case proto::Request::PING: command = "ping"; break;
    case proto::Request::SNAPSHOT: command = "snapshot"; break;
    case proto::Request::METRICS: command = "metrics"; break;
    case proto::Request::MEMBERS: command = "members"; break;
    case proto::Request::DAEMONS: command = "daemons"; break;
    case proto::Request::CHAIN_VERIFY: command = "chain-verify"; break;
    case proto::Request::CHAIN_TAIL: command = "chain-tail"; break;
    case proto::Request::CHAIN_SHOW: command = "chain-show"; break;
    case proto::Request::DAEMON_CONTROL: command = "daemon-control"; break;
    case proto::Request::DAEMON_LOGS: command = "daemon-logs"; break;
    case proto::Request::SUBMIT_COMMIT: command = "submit-commit"; break;
    case proto::Request::GET_COMMITS: command = "get-commits"; break;
    case proto::Request::COMMIT_HEAD: command = "commit-head"; break;
    case proto::Request::JOIN: command = "join"; break;
    case proto::Request::PLACEMENT: command = "placement"; break;
    case proto::Request::KEYRING: command = "keyring"; break;
    default: command = "unsupported"; break;
  }
  state::fold(state_, state::ControlCommand{command, request.getReason().cStr(), peer.pid,
                                            peer.uid, peer.gid, nowMs()});
  if (!isPolling(request.which()) && request.which() != proto::Request::DAEMON_CONTROL) {
    record(chains::ChainName::kAudit, "control",
           {{"command", command}, {"reason", request.getReason().cStr()}, {"pid", peer.pid},
            {"uid", peer.uid}, {"gid", peer.gid}});
  }
  switch (request.which()) {
    case proto::Request::PING:
      reply.json(nlohmann::json{{"pong", true}, {"node", identity_.id}}.dump());
      return;
    case proto::Request::SNAPSHOT: {
      auto j = state::snapshotToJson(*snapshot_);
      j["members"] = membersJson()["members"];  // with health, node state and estimated RTT
      reply.json(j.dump());
      return;
    }
    case proto::Request::METRICS:
      reply.text(state::snapshotToPrometheus(*snapshot_));
      return;
    case proto::Request::MEMBERS:
      reply.json(membersJson().dump());
      return;
    case proto::Request::DAEMONS: {
      // The supervisor's own view is richer (health, backoff, stats) and current.
      auto j = supervisor_ ? supervisor_->snapshotJson(true) : state::daemonsToJson(*snapshot_);
      j["desired"] = state::daemonsToJson(*snapshot_)["desired"];
      reply.json(j.dump());
      return;
    }
    case proto::Request::DAEMON_CONTROL:
    case proto::Request::DAEMON_LOGS:
      daemonRequest(request, peer, std::move(reply));
      return;
    case proto::Request::JOIN: {
      std::vector<std::string> addresses;
      for (auto a : request.getJoin()) {
        auto hp = config::parseHostPort(a.cStr(), false);
        if (!hp) {
          reply.error(hp.status().withContext("join"));
          return;
        }
        addresses.push_back(hp->toString());
      }
      gossip_->join(addresses);
      reply.json(nlohmann::json{{"joining", addresses}}.dump());
      return;
    }
    case proto::Request::SUBMIT_COMMIT:
    case proto::Request::GET_COMMITS:
    case proto::Request::COMMIT_HEAD: {
      commits::LogOutput out;
      auto j = commits::handleCommitRequest(*commit_log_, request, out);
      commitOutput(out);
      if (j) {
        reply.json(j->dump());
      } else {
        reply.error(j.status());
      }
      return;
    }
    case proto::Request::CHAIN_VERIFY:
    case proto::Request::CHAIN_TAIL:
    case proto::Request::CHAIN_SHOW:
      chainRequest(request, std::move(reply));
      return;
    case proto::Request::PLACEMENT: {
      std::string daemon = request.getPlacement().cStr();
      if (!daemon.empty() && commit_log_ && commit_log_->desired().daemons.count(daemon) == 0) {
        reply.error(Status::notFound("no daemon \"" + daemon + "\" in the commit log"));
        return;
      }
      reply.json(placementJson(daemon).dump());
      return;
    }
    case proto::Request::KEYRING:
      keyringRequest(request, peer, std::move(reply));
      return;
    default:
      reply.error(Status::notImplemented(
          "this agent does not serve that request yet (request kind " +
          std::to_string(static_cast<int>(request.which())) + ")"));
      return;
  }
}

void Node::onWorker(std::function<Result<std::string>()> work,
                    std::function<void(Result<std::string>)> done) {
  struct Job {
    uv_work_t req{};
    std::function<Result<std::string>()> work;
    std::function<void(Result<std::string>)> done;
    std::optional<Result<std::string>> result;
  };
  auto* job = new Job();
  job->req.data = job;
  job->work = std::move(work);
  job->done = std::move(done);
  uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* r) {
        auto* j = static_cast<Job*>(r->data);
        try {
          j->result = j->work();
        } catch (const std::exception& e) {
          j->result = Status::internal(e.what());
        }
      },
      [](uv_work_t* r, int status) {
        std::unique_ptr<Job> j(static_cast<Job*>(r->data));
        if (status != 0) {
          j->done(Status::unavailable("the work was cancelled"));
        } else {
          j->done(std::move(*j->result));
        }
      });
}

void Node::daemonRequest(proto::Request::Reader request, const net::PeerCred& peer,
                         net::ControlResponder reply) {
  if (!supervisor_) {
    reply.error(Status::unavailable("the runtime is not running"));
    return;
  }
  if (request.which() == proto::Request::DAEMON_LOGS) {
    auto q = request.getDaemonLogs();
    std::string instance = q.getInstance().cStr();
    if (instance.empty()) instance = std::string(q.getName().cStr()) + "#0";
    runtime::LogQuery lq;
    if (q.getOffset() > 0 || q.getTailLines() == 0) {
      lq.offset = static_cast<int64_t>(q.getOffset());
    } else {
      lq.tail_lines = q.getTailLines();
    }
    auto chunk = supervisor_->logs(instance, lq);
    if (!chunk) {
      reply.error(chunk.status());
      return;
    }
    reply.json(nlohmann::json{{"instance", instance}, {"data", chunk->data},
                              {"next_offset", chunk->next_offset}, {"rotated", chunk->rotated}}
                   .dump());
    return;
  }
  auto c = request.getDaemonControl();
  std::string target = c.getInstance().size() > 0 ? c.getInstance().cStr() : c.getName().cStr();
  std::string op;
  Status s;
  switch (c.getOp()) {
    case proto::DaemonControl::Op::RESTART: op = "restart"; s = supervisor_->restart(target); break;
    case proto::DaemonControl::Op::PAUSE: op = "pause"; s = supervisor_->pause(target); break;
    case proto::DaemonControl::Op::RESUME: op = "resume"; s = supervisor_->resume(target); break;
    case proto::DaemonControl::Op::QUARANTINE: op = "quarantine"; s = supervisor_->quarantine(target); break;
    case proto::DaemonControl::Op::STOP: op = "stop"; s = supervisor_->stop(target); break;
    case proto::DaemonControl::Op::START: op = "start"; s = supervisor_->start(target); break;
    case proto::DaemonControl::Op::TRIGGER: {
      op = "trigger";
      auto r = supervisor_->trigger(target);
      s = r.status();
      break;
    }
    case proto::DaemonControl::Op::EXEC: op = "exec"; break;
    default:
      reply.error(Status::invalid("unknown daemon operation"));
      return;
  }
  nlohmann::json audit = {{"command", "daemon-" + op}, {"target", target},
                          {"reason", request.getReason().cStr()}, {"pid", peer.pid},
                          {"uid", peer.uid}, {"gid", peer.gid}};
  if (op == "exec") {
    std::vector<std::string> argv;
    for (auto a : c.getArgv()) argv.emplace_back(a.cStr());
    audit["argv"] = argv;
    record(chains::ChainName::kAudit, "control", audit);
    std::string instance = c.getInstance().size() > 0 ? c.getInstance().cStr()
                                                        : std::string(c.getName().cStr()) + "#0";
    Status started = supervisor_->exec(instance, argv, 30000, [reply](Result<runtime::ExecResult> r) {
      if (!r) {
        reply.error(r.status());
        return;
      }
      reply.json(nlohmann::json{{"exit_code", r->exit_code}, {"signal", r->term_signal},
                                {"output", r->output}, {"truncated", r->truncated},
                                {"timed_out", r->timed_out}}
                     .dump());
    });
    if (!started) reply.error(started);
    return;
  }
  audit["result"] = s.toString();
  record(chains::ChainName::kAudit, "control", audit);
  instances_dirty_ = true;
  refreshInstances();
  if (!s) {
    reply.error(s);
    return;
  }
  reply.json(nlohmann::json{{"ok", true}, {"op", op}, {"target", target}}.dump());
}

void Node::chainRequest(proto::Request::Reader request, net::ControlResponder reply) {
  if (!store_) {
    reply.error(Status::unavailable("the chains database is not open"));
    return;
  }
  const auto which = request.which();
  auto range = which == proto::Request::CHAIN_VERIFY ? request.getChainVerify()
               : which == proto::Request::CHAIN_TAIL ? request.getChainTail()
                                                     : request.getChainShow();
  auto chain = chains::parseChainName(range.getChain().cStr());
  if (!chain) {
    reply.error(chain.status());
    return;
  }
  const uint64_t from = range.getFrom();
  const uint64_t count = range.getCount();
  const chains::ChainName name = *chain;
  const PublicKey key = identity_.key.public_key;
  chains::ChainStore* store = store_.get();
  // Reads can be long (verify walks the whole chain): off the loop, on the thread pool.
  onWorker(
      [store, which, name, from, count, key]() -> Result<std::string> {
        if (which == proto::Request::CHAIN_VERIFY) {
          chains::VerifyRange r;
          r.from = from;
          if (count > 0) r.to = from + count - 1;
          return chains::chainVerifyJson(*store, name, r, key).dump();
        }
        if (which == proto::Request::CHAIN_TAIL) {
          auto j = chains::chainTailJson(*store, name, from, count == 0 ? 20 : count);
          if (!j) return j.status();
          return j->dump();
        }
        auto j = chains::chainShowJson(*store, name,
                                       from == 0 ? std::nullopt : std::optional<uint64_t>(from));
        if (!j) return j.status();
        return j->dump();
      },
      [reply](Result<std::string> r) {
        if (r) {
          reply.json(std::move(*r));
        } else {
          reply.error(r.status());
        }
      });
}

void Node::shutdown(std::string why) {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("shutting down: {}", why);
  state::fold(state_, state::Shutdown{why});
  record(chains::ChainName::kAudit, "agent.stop", {{"why", why}});
  if (tick_timer_ != 0) {
    env_.timers.cancel(tick_timer_);
    tick_timer_ = 0;
  }
  closeCommitSync();
  if (inventory_) inventory_->stop();
  runStage(0);
}

void Node::runStage(size_t index) {
  if (index >= std::size(kStages)) {
    finishShutdown();
    return;
  }
  const Stage& stage = kStages[index];
  stage_started_ms_ = nowMs();
  ShutdownStage report{stage.name, 0, false, ""};
  // Each stage begins, then is polled every 10 ms until it is done or its deadline passes.
  std::function<bool()> done;
  switch (index) {
    case 0:
      control_.close();
      done = [] { return true; };
      break;
    case 1:
      if (gossip_) {
        gossip_->leave(stage.deadline_ms, [this] { gossip_left_ = true; });
        done = [this] { return gossip_left_; };
      } else {
        done = [] { return true; };
      }
      break;
    case 2: {
      executor_->setGate(false);
      size_t abandoned = executor_->abandonPending(nowMs());
      report.detail = std::to_string(abandoned) + " queued action(s) abandoned";
      done = [this] { return executor_->inFlight() == 0; };
      break;
    }
    case 3:
      // Daemons keep running across an agent restart: the next agent re-adopts them.
      supervisor_.reset();
      if (runtime_) runtime_->close();
      report.detail = std::to_string(state_.instances.size()) + " instance(s) left running for re-adoption";
      done = [] { return true; };
      break;
    case 4: {
      // close() blocks this thread until the queue is durable and the final checkpoints
      // are synced: nothing else is left for the loop to do at this point.
      uint64_t pending = chains_ ? chains_->pendingTotal() : 0;
      Status s = chains_ ? chains_->close(stage.deadline_ms) : Status::ok();
      report.detail = std::to_string(pending) + " pending record(s) flushed, final checkpoints signed";
      if (!s) {
        report.detail = s.toString();
        exit_status_ = 1;
      }
      done = [] { return true; };
      break;
    }
    default:
      done = [] { return true; };
      break;
  }
  shutdown_report_.push_back(report);
  stage_index_ = index;
  stage_deadline_ms_ = stage.deadline_ms;
  stage_done_ = std::move(done);
  pollStage();
}

void Node::pollStage() {
  auto& r = shutdown_report_.back();
  r.took_ms = nowMs() - stage_started_ms_;
  bool finished = stage_done_();
  if (!finished && r.took_ms < stage_deadline_ms_) {
    env_.timers.after(10, [this] { pollStage(); });
    return;
  }
  r.timed_out = !finished;
  if (r.timed_out) exit_status_ = 1;
  spdlog::info("shutdown stage {}: {} in {} ms{}{}", r.name, r.timed_out ? "timed out" : "done",
               r.took_ms, r.detail.empty() ? "" : "; ", r.detail);
  executor_->poll(nowMs());
  runStage(stage_index_ + 1);
}

void Node::finishShutdown() {
  if (gossip_) gossip_->close();
  publish();
  closeSignals();
  int64_t total = 0;
  for (const auto& s : shutdown_report_) total += s.took_ms;
  spdlog::info("shutdown complete in {} ms, exit status {}", total, exit_status_);
}

}  // namespace meshos::node
