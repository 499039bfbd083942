#include "agent/sim/mesh_cluster.h"

#include <sodium.h>

#include <algorithm>
#include <set>
#include <sstream>

namespace meshos::sim {

namespace {

state::MemberState toState(gossip::MemberState s) {
  switch (s) {
    case gossip::MemberState::kAlive: return state::MemberState::kAlive;
    case gossip::MemberState::kSuspect: return state::MemberState::kSuspect;
    case gossip::MemberState::kDead: return state::MemberState::kDead;
    case gossip::MemberState::kLeft: return state::MemberState::kLeft;
  }
  return state::MemberState::kDead;
}

// The admin key, derived from the seed so commit hashes repeat run to run.
SigningKey keyFromRng(Rng& rng) {
  unsigned char seed[crypto_sign_SEEDBYTES];
  for (size_t i = 0; i < sizeof(seed); i += 8) {
    const uint64_t v = rng.next();
    for (size_t j = 0; j < 8 && i + j < sizeof(seed); ++j) seed[i + j] = static_cast<unsigned char>(v >> (8 * j));
  }
  SigningKey k;
  crypto_sign_seed_keypair(k.public_key.data(), k.secret_key.data(), seed);
  return k;
}

constexpr size_t kDecodedPerOrigin = 4;

}  // namespace

// ---------------------------------------------------------------- MeshNode

MeshNode::MeshNode(MeshCluster& cluster, SimNode& sim, NodeSetup setup, Rng rng)
    : cluster_(cluster),
      sim_(sim),
      setup_(std::move(setup)),
      rng_(rng),
      log_(cluster.log_config_),
      runtime_(rng_.fork(), SimRuntimeOptions{cluster.options_.ready_delay_ms, cluster.options_.ready_jitter_ms,
                                              cluster.options_.stop_grace_ms}),
      rebalancer_(sim.id(), cluster.options_.rebalance) {
  std::sort(setup_.capabilities.begin(), setup_.capabilities.end());
  setup_.capabilities.erase(std::unique(setup_.capabilities.begin(), setup_.capabilities.end()),
                            setup_.capabilities.end());
}

void MeshNode::start() {
  ++generation_;
  plan_ = {};
  report_ = {};
  published_ = false;
  members_known_ = 0;
  // Commits it missed while down: what its first fetch from a peer would bring.
  while (commits_seen_ < cluster_.commits_.size()) submit(cluster_.commits_[commits_seen_]);
  const int64_t now = cluster_.nowMs();
  publish(now);
  const uint64_t gen = generation_;
  const int64_t phase = 1 + static_cast<int64_t>(rng_.uniform(static_cast<uint64_t>(cluster_.options_.tick_ms)));
  cluster_.gossip_.timers().after(phase, [this, gen] {
    if (gen == generation_ && up()) tick();
  });
}

void MeshNode::crash() {
  ++generation_;
  runtime_.crash();
  rebalancer_ = reconcile::LocalRebalancer(id(), cluster_.options_.rebalance);  // moves live in memory
}

void MeshNode::submit(const Bytes& commit) {
  commits::LogOutput out;
  (void)log_.submit(commit, out);
  ++commits_seen_;
}

std::optional<state::NodeReport> MeshNode::decodeCached(const gossip::NodeStateUpdate& st) {
  auto& cache = decoded_[st.origin];
  for (const auto& c : cache)
    if (c.body == st.body) return c.report;
  CachedReport entry;
  entry.body = st.body;
  auto decoded = state::decodeNodeReport(st.body);
  if (decoded) {
    entry.report = std::move(decoded).value();
  } else {
    ++decode_errors_;
  }
  cache.push_back(std::move(entry));
  if (cache.size() > kDecodedPerOrigin) cache.erase(cache.begin());
  return cache.back().report;
}

void MeshNode::tick() {
  const uint64_t gen = generation_;
  cluster_.gossip_.timers().after(cluster_.options_.tick_ms, [this, gen] {
    if (gen == generation_ && up()) tick();
  });
  ++ticks_;
  const int64_t now = cluster_.nowMs();
  runtime_.prune(now);
  gossip::Membership& m = sim_.membership();

  reconcile::LocalInputs in;
  in.self_id = id();
  in.now_ms = now;
  in.wall_ms = cluster_.gossip_.clock().wallMs();
  in.desired = &log_.desired();
  reconcile::PeerView self;
  self.id = id();
  self.name = name();
  self.state = state::MemberState::kAlive;
  if (published_) self.report = report_;
  in.nodes.push_back(std::move(self));
  // As the agent counts them (agent/node/node_placement.cpp): every member not left, self
  // included; isolation is judged against that.
  in.members_known = 1;
  const auto states = m.nodeStates();
  for (const auto& mi : m.members()) {
    reconcile::PeerView p;
    p.id = mi.id;
    p.name = mi.name;
    p.state = toState(mi.state);
    if (auto it = states.find(mi.id); it != states.end()) p.report = decodeCached(it->second);
    in.nodes.push_back(std::move(p));
    if (mi.state != gossip::MemberState::kLeft) ++in.members_known;
  }
  members_known_ = in.members_known;
  for (const auto& [name, c] : runtime_.counts(now)) {
    if (c.running == 0) continue;
    in.local[name] = reconcile::LocalDaemon{c.running, c.ready};
  }
  in.maintenance = plan_.maintenance;
  in.maintenance_seq = plan_.maintenance_seq;
  in.handoffs = plan_.handoffs;
  in.handoff_deadline_ms = cluster_.options_.handoff_deadline_ms;
  in.vars = {{"node.name", name()}, {"node.id", id()}, {"node.host", Network::hostOf(sim_.address())}};
  for (const auto& [k, v] : setup_.labels) in.vars["node.label." + k] = v;

  plan_ = reconcile::planLocal(in, assigner_);
  if (rebalancer_.due(now)) (void)rebalancer_.update(now, plan_, in.nodes, assigner_);

  std::map<std::string, uint64_t> generations;
  for (const auto& [name, d] : log_.desired().daemons) generations[name] = d.updated_seq;
  runtime_.apply(now, plan_.run, generations);
  publish(now);
}

void MeshNode::publish(int64_t now_ms) {
  state::NodeReport r;
  r.version = "sim";
  r.labels = setup_.labels;
  r.capabilities = setup_.capabilities;
  r.cpu_millicores = setup_.cpu_millicores;
  r.memory_bytes = setup_.memory_bytes;
  r.maintenance = plan_.maintenance;
  r.maintenance_seq = plan_.maintenance_seq;
  const commits::Head head = log_.head();
  r.commit_seq = head.seq;
  if (head.seq > 0) r.commit_hash.assign(head.hash.begin(), head.hash.end());
  for (const auto& [name, c] : runtime_.counts(now_ms)) {
    if (c.running == 0) continue;
    r.daemons[name] = state::DaemonReport{c.running, c.ready, c.generation};
    r.instances += c.running;
    r.ready += c.ready;
  }
  r.isolated = plan_.isolated;
  r.moves = rebalancer_.moves();
  if (setup_.load) {
    r.inventory.cpu_count = static_cast<uint32_t>(std::max<int64_t>(1, setup_.cpu_millicores / 1000));
    r.inventory.load1 = *setup_.load * r.inventory.cpu_count;
    r.inventory.memory_total_bytes = setup_.memory_bytes;
  }
  if (published_ && r == report_) return;
  report_ = std::move(r);
  published_ = true;
  ++publishes_;
  Status s = sim_.membership().setLocalState(now_ms, state::encodeNodeReport(report_));
  if (!s) ++publish_errors_;  // over max_node_state_bytes: counted, the old state stays
}

// ---------------------------------------------------------------- MeshCluster

MeshCluster::MeshCluster(uint64_t seed, MeshOptions options)
    : options_(std::move(options)), gossip_(seed, options_.cluster), rng_(gossip_.forkRng()), admin_(keyFromRng(rng_)),
      log_config_([&] {
        commits::CommitLogConfig c;
        c.cluster_id = options_.cluster_id;
        c.genesis_trust.admins.insert(admin_.public_key);
        c.genesis_trust.threshold = 1;
        return c;
      }()),
      reference_(log_config_) {}

MeshCluster::~MeshCluster() = default;

MeshNode& MeshCluster::addNode(NodeSetup setup) {
  SimNode& s = gossip_.addNode();
  nodes_.push_back(std::make_unique<MeshNode>(*this, s, std::move(setup), gossip_.forkRng()));
  return *nodes_.back();
}

void MeshCluster::startAll(size_t seeds) {
  gossip_.startAll(seeds);
  seed_addresses_.clear();
  for (size_t i = 0; i < std::min(seeds, nodes_.size()); ++i) seed_addresses_.push_back(nodes_[i]->sim().address());
  for (auto& n : nodes_) n->start();
}

Result<commits::SubmitResult> MeshCluster::commit(std::vector<commits::Operation> ops, std::string note) {
  commits::Commit c;
  c.cluster_id = options_.cluster_id;
  const commits::Head head = reference_.head();
  c.seq = head.seq + 1;
  c.parent = head.hash;
  c.issued_at_ms = gossip_.clock().wallMs();
  c.issuer = admin_.public_key;
  c.operations = std::move(ops);
  c.note = std::move(note);
  commits::signCommit(c, admin_);
  Bytes bytes = commits::encodeCommit(c);
  commits::LogOutput out;
  commits::SubmitResult r = reference_.submit(bytes, out);
  if (r.outcome != commits::Outcome::kAccepted)
    return Status::invalid("commit " + std::to_string(c.seq) + " refused: " + std::string(commits::reasonName(r.reason)) +
                           ": " + r.message);
  commits_.push_back(std::move(bytes));
  for (auto& n : nodes_)
    if (n->up()) n->submit(commits_.back());
  return r;
}

void MeshCluster::crash(size_t i) {
  MeshNode& n = *nodes_[i];
  if (!n.up()) return;
  n.sim().crash();
  n.crash();
}

void MeshCluster::restart(size_t i) {
  MeshNode& n = *nodes_[i];
  if (n.up()) crash(i);
  n.sim().restart();
  std::vector<std::string> peers;
  for (size_t j = 0; j < nodes_.size() && peers.size() < 3; ++j)
    if (j != i && nodes_[j]->up()) peers.push_back(nodes_[j]->sim().address());
  n.sim().join(peers);
  n.start();
}

std::optional<size_t> MeshCluster::indexOf(const std::string& name) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i]->name() == name) return i;
  return std::nullopt;
}

std::map<std::string, DaemonActual> MeshCluster::actual() const {
  std::map<std::string, DaemonActual> out;
  const int64_t now = nowMs();
  for (const auto& n : nodes_) {
    if (!n->up()) continue;
    for (const auto& [name, c] : n->runtime().counts(now)) {
      if (c.running == 0) continue;
      DaemonActual& a = out[name];
      a.running_on[n->name()] = c.running;
      a.running += c.running;
      if (c.ready > 0) a.ready_on[n->name()] = c.ready;
      a.ready += c.ready;
    }
  }
  return out;
}

bool MeshCluster::labelsFit(const spec::DaemonSpec& spec, const NodeSetup& n) {
  for (const auto& c : spec.placement.constraints) {
    auto it = n.labels.find(c.label);
    const bool has = it != n.labels.end();
    const bool listed = has && std::find(c.values.begin(), c.values.end(), it->second) != c.values.end();
    switch (c.op) {
      case spec::ConstraintOp::kEquals:
      case spec::ConstraintOp::kIn:
        if (!listed) return false;
        break;
      case spec::ConstraintOp::kNotIn:
        if (listed) return false;
        break;
    }
  }
  for (const auto& cap : spec.placement.capabilities)
    if (!std::binary_search(n.capabilities.begin(), n.capabilities.end(), cap)) return false;
  return true;
}

Status MeshCluster::checkFeasible() const {
  const auto& daemons = desired().daemons;
  const int64_t now = nowMs();
  for (const auto& n : nodes_) {
    if (!n->up()) continue;
    for (const auto& [name, c] : n->runtime().counts(now)) {
      if (c.running == 0) continue;
      auto it = daemons.find(name);
      if (it == daemons.end()) continue;  // removed: checkAtReplicas() judges the stop
      const spec::DaemonSpec& s = it->second.spec;
      if (!labelsFit(s, n->setup()))
        return Status::internal(name + " runs on " + n->name() + ", which does not meet its constraints");
      if (s.placement.max_per_node > 0 && c.running > static_cast<uint64_t>(s.placement.max_per_node))
        return Status::internal(name + " runs " + std::to_string(c.running) + " instances on " + n->name() +
                                " (max_per_node " + std::to_string(s.placement.max_per_node) + ")");
    }
  }
  return Status::ok();
}

Status MeshCluster::checkAtReplicas(bool at_least) const {
  const auto act = actual();
  const auto& d = desired();
  for (const auto& [name, a] : act)
    if (d.daemons.count(name) == 0)
      return Status::internal(name + " is no longer desired but runs " + std::to_string(a.running) + " instances");
  for (const auto& [name, dd] : d.daemons) {
    const uint32_t wanted = dd.paused ? 0 : static_cast<uint32_t>(std::max<int64_t>(0, dd.spec.replicas));
    size_t feasible = 0;
    for (const auto& n : nodes_)
      if (n->up() && d.maintenance.count(n->name()) == 0 && labelsFit(dd.spec, n->setup())) ++feasible;
    auto it = act.find(name);
    const DaemonActual none;
    const DaemonActual& a = it != act.end() ? it->second : none;
    if (wanted > feasible) {
      if (feasible > 0 && a.ready == 0) return Status::internal(name + ": infeasible and not even partly placed");
      continue;
    }
    if (at_least) {
      if (a.ready_on.size() >= wanted) continue;
    } else if (a.running == wanted && a.ready == wanted && a.running_on.size() == wanted) {
      continue;
    }
    return Status::internal(name + ": wanted " + std::to_string(wanted) + ", running " + std::to_string(a.running) +
                            " (ready " + std::to_string(a.ready) + " on " + std::to_string(a.ready_on.size()) +
                            " nodes) on " + std::to_string(a.running_on.size()) + " nodes");
  }
  return Status::ok();
}

Status MeshCluster::checkResources() const {
  const int64_t now = nowMs();
  for (const auto& n : nodes_) {
    if (!n->up()) continue;
    int64_t cpu = 0, mem = 0;
    for (const auto& [name, list] : n->runtime().instances()) {
      for (const auto& inst : list) {
        if (inst.stopped_ms >= 0 && now >= inst.stopped_ms) continue;
        cpu += inst.resources.cpu_millicores;
        mem += inst.resources.memory_bytes;
      }
    }
    if (cpu > n->setup().cpu_millicores || mem > n->setup().memory_bytes)
      return Status::internal(n->name() + " holds " + std::to_string(cpu) + "m cpu / " + std::to_string(mem) +
                              " bytes, over its capacity " + std::to_string(n->setup().cpu_millicores) + "m / " +
                              std::to_string(n->setup().memory_bytes));
  }
  return Status::ok();
}

Status MeshCluster::checkSameAssignment() const {
  const MeshNode* first = nullptr;
  for (const auto& n : nodes_) {
    if (!n->up() || n->ticks() == 0) continue;
    if (first == nullptr) {
      first = n.get();
      continue;
    }
    const auto& a = first->plan().decisions;
    const auto& b = n->plan().decisions;
    if (a.size() != b.size())
      return Status::internal(first->name() + " plans " + std::to_string(a.size()) + " daemons, " + n->name() + " " +
                              std::to_string(b.size()));
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].daemon == b[i].daemon && a[i].assigned == b[i].assigned) continue;
      auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
        return s;
      };
      return Status::internal("assignments differ for " + a[i].daemon + ": " + first->name() + " [" +
                              join(a[i].assigned) + "] vs " + n->name() + " [" + join(b[i].assigned) + "]");
    }
  }
  return Status::ok();
}

std::string MeshCluster::describe() const {
  std::ostringstream os;
  const auto act = actual();
  for (const auto& [name, dd] : desired().daemons) {
    os << "  " << name << " x" << dd.spec.replicas << (dd.paused ? " (paused)" : "") << ":";
    auto it = act.find(name);
    if (it != act.end()) {
      for (const auto& [node, cnt] : it->second.running_on) {
        auto r = it->second.ready_on.find(node);
        os << " " << node << "(" << cnt << "/" << (r != it->second.ready_on.end() ? r->second : 0) << ")";
      }
    }
    os << "\n";
  }
  for (const auto& [name, a] : act)
    if (desired().daemons.count(name) == 0) os << "  " << name << " (removed): " << a.running << " running\n";
  // For a daemon off its replica count: what each node holding it (and the first up node)
  // decided, and why.
  for (const auto& [name, dd] : desired().daemons) {
    auto it = act.find(name);
    const uint32_t running = it == act.end() ? 0 : it->second.running;
    if (running == static_cast<uint32_t>(dd.paused ? 0 : dd.spec.replicas)) continue;
    os << "  " << name << " decisions:\n";
    bool first = true;
    for (const auto& n : nodes_) {
      if (!n->up()) continue;
      const bool holds = it != act.end() && it->second.running_on.count(n->name()) != 0;
      if (!holds && !first) continue;
      first = false;
      for (const auto& d : n->plan().decisions) {
        if (d.daemon != name) continue;
        os << "    " << n->name() << ": here " << d.here << ", assigned [";
        for (size_t i = 0; i < d.assigned.size(); ++i) os << (i ? "," : "") << d.assigned[i];
        os << "], ready_on [";
        for (size_t i = 0; i < d.ready_on.size(); ++i) os << (i ? "," : "") << d.ready_on[i];
        os << "] " << (d.infeasible ? "infeasible " : "") << "why: " << d.why << "\n";
      }
    }
  }
  return os.str();
}

}  // namespace meshos::sim
