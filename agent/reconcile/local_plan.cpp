#include "agent/reconcile/local_plan.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "agent/core/crypto.h"
#include "agent/core/node_identity.h"
#include "agent/spec/interpolate.h"
#include "placement/rebalancer.h"
#include "probes/vivaldi.h"

namespace meshos::reconcile {

namespace {

const commits::NodeMaintenance* maintenanceFor(const commits::DesiredState& d, const std::string& name) {
  auto it = d.maintenance.find(name);
  return it == d.maintenance.end() ? nullptr : &it->second;
}

struct Holder {  // a node that reports a daemon
  const PeerView* node;
  state::DaemonReport report;
};

}  // namespace

std::vector<placement::NodeView> nodeViews(const std::vector<PeerView>& nodes) {
  std::vector<placement::NodeView> views;
  views.reserve(nodes.size());
  for (const auto& n : nodes) {
    if (!n.report) continue;  // capacity and labels unknown: not placeable yet
    placement::NodeView v;
    v.id = n.id;
    v.name = n.name;
    v.alive = n.state == state::MemberState::kAlive;
    v.active = n.report->maintenance == state::Maintenance::kActive;
    v.unhealthy = n.report->unhealthy;
    v.labels = n.report->labels;
    v.capabilities = n.report->capabilities;
    v.cpu_millicores = n.report->cpu_millicores;
    v.memory_bytes = n.report->memory_bytes;
    if (n.report->coordinate) v.coordinate = probes::toPlacement(*n.report->coordinate);
    views.push_back(std::move(v));
  }
  return views;
}

uint64_t viewDigest(const std::vector<PeerView>& nodes) {
  std::vector<const PeerView*> alive;
  for (const auto& n : nodes)
    if (n.state == state::MemberState::kAlive) alive.push_back(&n);
  std::sort(alive.begin(), alive.end(), [](const PeerView* a, const PeerView* b) { return a->id < b->id; });
  Blake2b h;
  for (const PeerView* n : alive) {
    h.update(asBytes(n->id)).updateU64(n->report ? 1 : 0);
    if (!n->report) continue;
    const state::NodeReport& r = *n->report;
    h.updateU64(r.labels.size());
    for (const auto& [k, v] : r.labels) h.update(asBytes(k)).update(asBytes(v));
    h.updateU64(r.capabilities.size());
    for (const auto& c : r.capabilities) h.update(asBytes(c));
    h.updateU64(static_cast<uint64_t>(r.cpu_millicores)).updateU64(static_cast<uint64_t>(r.memory_bytes));
    h.update(asBytes(r.unhealthy)).updateU64(r.unhealthy.size());
    h.updateU64(r.moves.size());
    for (const auto& [d, to] : r.moves) h.update(asBytes(d)).update(asBytes(to));
  }
  Hash256 out = h.finish();
  const uint64_t v = readBigEndian64(ByteView(out.data(), 8));
  return v == 0 ? 1 : v;
}

void requireSecretHolders(const commits::DesiredState& desired, std::vector<placement::NodeView>& views,
                          std::vector<placement::DaemonRequest>& requests) {
  if (desired.secrets.empty()) return;
  // Only the secrets a daemon uses, sealed to nodes: their holders' ids (hashed from the
  // keys) are computed once per plan.
  std::map<std::string, std::set<std::string>> holders;
  for (auto& r : requests) {
    auto d = desired.daemons.find(r.name);
    if (d == desired.daemons.end() || d->second.spec.secrets.versions.empty()) continue;
    for (const auto& [name, seq] : d->second.spec.secrets.versions) {
      auto s = desired.secrets.find(name);
      if (s == desired.secrets.end() || sealedToCluster(s->second.sealed)) continue;
      if (auto [ids, fresh] = holders.try_emplace(name); fresh) {
        for (const auto& c : s->second.sealed.copies) ids->second.insert(nodeIdFromPublicKey(c.key));
      }
      r.placement.capabilities.push_back(secretCapability(name));
    }
    std::sort(r.placement.capabilities.begin(), r.placement.capabilities.end());
    r.placement.capabilities.erase(std::unique(r.placement.capabilities.begin(), r.placement.capabilities.end()),
                                   r.placement.capabilities.end());
  }
  if (holders.empty()) return;
  for (auto& v : views) {
    for (const auto& [name, ids] : holders)
      if (ids.count(v.id)) v.capabilities.push_back(secretCapability(name));
    std::sort(v.capabilities.begin(), v.capabilities.end());
  }
}

namespace {

// One run of planLocal(), in steps: the view (isolation, agreement), this node's
// maintenance, placement's inputs and the assignment, one decision per daemon, and the
// specs materialised for this node.
class Planner {
 public:
  Planner(const LocalInputs& in, placement::Assigner& assigner)
      : in_(in), assigner_(assigner), desired_(in.desired ? *in.desired : empty()) {}

  LocalPlan run() {
    if (desired_.freeze) {
      plan_.frozen = !deadlinePassed("freeze/" + std::to_string(desired_.freeze->seq), desired_.freeze->expires_at_ms);
    }
    judgeView();
    planMaintenance();
    const placement::Assignment& assignment = assign();
    decideAll(assignment);
    materialise();
    plan_.views = std::move(views_);
    plan_.requests = std::move(requests_);
    if (plan_.maintenance == state::Maintenance::kDraining && placed_here_ == 0) {
      uint32_t still_running = 0;
      for (const auto& [name, l] : in_.local) still_running += l.running;
      if (still_running == 0) plan_.maintenance = state::Maintenance::kInMaintenance;
    }
    if (in_.deadlines != nullptr) in_.deadlines->retain(deadline_keys_);
    return std::move(plan_);
  }

 private:
  // A commit's wall-clock deadline, on the node's monotonic clock when it keeps one.
  bool deadlinePassed(const std::string& key, int64_t deadline_wall_ms) {
    if (in_.deadlines == nullptr) return in_.wall_ms >= deadline_wall_ms;
    deadline_keys_.insert(key);
    return in_.deadlines->passed(key, deadline_wall_ms, in_.wall_ms, in_.now_ms);
  }

  static const commits::DesiredState& empty() {
    static const commits::DesiredState kEmpty;
    return kEmpty;
  }

  // Who is alive, whether this node is isolated, whether a majority shares its view.
  void judgeView() {
    by_id_.reserve(in_.nodes.size());
    for (const auto& n : in_.nodes) {
      by_id_[n.id] = &n;
      if (n.id == in_.self_id) self_ = &n;
      if (n.state == state::MemberState::kAlive) ++plan_.alive;
    }
    plan_.isolated = in_.members_known >= 3 && plan_.alive * 2 < in_.members_known;
    self_name_ = self_ ? self_->name : in_.self_id;
    plan_.view_digest = viewDigest(in_.nodes);
    plan_.agreeing = 1;  // this node
    for (const auto& n : in_.nodes) {
      if (n.id != in_.self_id && n.state == state::MemberState::kAlive && n.report &&
          n.report->view_digest == plan_.view_digest)
        ++plan_.agreeing;
    }
    plan_.agreed = !in_.require_view_agreement || plan_.agreeing * 2 > std::max<size_t>(in_.members_known, 1);
  }

  // The commit log says whether a node drains; every node reads the same log, so every node
  // excludes a draining node at once, before it reports anything.
  void planMaintenance() {
    maintenance_ = maintenanceFor(desired_, self_name_);
    if (!maintenance_) {
      plan_.maintenance = state::Maintenance::kActive;
    } else if (in_.maintenance == state::Maintenance::kInMaintenance && in_.maintenance_seq == maintenance_->seq) {
      plan_.maintenance = state::Maintenance::kInMaintenance;  // only forward
    } else {
      plan_.maintenance = state::Maintenance::kDraining;
    }
    plan_.maintenance_seq = maintenance_ ? maintenance_->seq : 0;
    drain_overdue_ = maintenance_ && deadlinePassed("drain/" + std::to_string(maintenance_->seq), maintenance_->deadline_ms);
  }

  // Who reports each daemon (self: what actually runs here).
  void collectHolders() {
    for (const auto& n : in_.nodes) {
      if (n.id == in_.self_id) {
        for (const auto& [name, l] : in_.local) {
          if (l.running > 0) holders_[name].push_back({&n, {l.running, l.ready, 0}});
        }
      } else if (n.report && n.state == state::MemberState::kAlive) {
        for (const auto& [name, r] : n.report->daemons) {
          if (r.running > 0) holders_[name].push_back({&n, r});
        }
      }
    }
  }

  // The desired daemons, by name, walked once: each entry is a node of its own (a spec is
  // large), so the walk collects them and reads each a few entries ahead of its use
  // (prefetch), and later loops use what it kept rather than visiting the map again.
  void prefetch(size_t i) const {
    if (i >= entries_.size()) return;
    const commits::DesiredDaemon* d = &entries_[i]->second;
    __builtin_prefetch(&d->spec.name);
    __builtin_prefetch(&d->spec.kind);
    __builtin_prefetch(&d->spec.resources);
    __builtin_prefetch(&d->spec.placement);
    __builtin_prefetch(&d->spec.depends_on);
    __builtin_prefetch(&d->paused);
  }

  void buildRequests() {
    entries_.reserve(desired_.daemons.size());
    for (const auto& e : desired_.daemons) entries_.push_back(&e);
    for (size_t i = 0; i < kAhead; ++i) prefetch(i);
    requests_.reserve(entries_.size());
    paused_.assign(entries_.size(), 0);
    for (size_t i = 0; i < entries_.size(); ++i) {
      prefetch(i + kAhead);
      const commits::DesiredDaemon& d = entries_[i]->second;
      paused_[i] = d.paused ? 1 : 0;
      auto req = placement::requestFromSpec(d.spec);
      if (d.kill_relocation_generation > 0 && d.kill_relocation_generation >= d.updated_seq) {
        if (auto held = holders_.find(entries_[i]->first); held != holders_.end()) {
          for (const auto& h : held->second) req.pinned.push_back(h.node->id);
          std::sort(req.pinned.begin(), req.pinned.end());
        }
      }
      requests_.push_back(std::move(req));
    }
  }

  // Placement's view (active or not comes from the commit log, which every node reads, so a
  // drain takes effect everywhere before the drained node reports anything), the base
  // assignment, and the rebalancing moves the alive sources publish laid over it.
  const placement::Assignment& assign() {
    views_ = nodeViews(in_.nodes);
    for (auto& v : views_) {
      v.active = v.id == in_.self_id ? plan_.maintenance == state::Maintenance::kActive
                                     : maintenanceFor(desired_, v.name) == nullptr;
    }
    collectHolders();
    buildRequests();
    requireSecretHolders(desired_, views_, requests_);
    const placement::Assignment& base = assigner_.assign(views_, requests_);
    std::vector<placement::Move> published;
    for (const auto& n : in_.nodes) {
      if (!n.report || n.state != state::MemberState::kAlive) continue;
      for (const auto& [daemon, to] : n.report->moves) published.push_back({daemon, n.id, to});
    }
    if (published.empty()) return base;
    std::sort(published.begin(), published.end(), [](const placement::Move& a, const placement::Move& b) {
      return std::tie(a.from, a.daemon) < std::tie(b.from, b.daemon);
    });
    std::vector<bool> applied;
    overlaid_ = placement::applyMoves(base, published, &applied);
    for (size_t i = 0; i < published.size(); ++i) {
      if (applied[i]) plan_.moves.push_back(std::move(published[i]));
    }
    return overlaid_;
  }

  const std::string& nameOf(const std::string& id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? id : it->second->name;
  }

  // The desired daemons, the assignment and what runs here are all ordered by daemon name:
  // walk them in step instead of looking each up.
  void decideAll(const placement::Assignment& assignment) {
    plan_.decisions.reserve(entries_.size());
    auto assigned_it = assignment.daemons.begin();
    auto local_it = in_.local.begin();
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (i + kAhead < entries_.size()) __builtin_prefetch(entries_[i + kAhead]);
      const std::string& name = entries_[i]->first;
      while (assigned_it != assignment.daemons.end() && assigned_it->first < name) ++assigned_it;
      const placement::DaemonAssignment* a =
          assigned_it != assignment.daemons.end() && assigned_it->first == name ? &assigned_it->second : nullptr;
      while (local_it != in_.local.end() && local_it->first < name) ++local_it;
      const uint32_t running_here =
          local_it != in_.local.end() && local_it->first == name ? local_it->second.running : 0;
      DaemonDecision& dec = plan_.decisions.emplace_back();
      dec.daemon = name;
      dec.paused = paused_[i] != 0;
      decide(dec, a, running_here);
      if (dec.here > 0) {
        run_names_.insert(name);
        to_run_.push_back(&entries_[i]->second);
        placed_here_ += dec.here;
      }
    }
  }

  // One daemon: how many instances run here after this plan, and why.
  void decide(DaemonDecision& dec, const placement::DaemonAssignment* a, uint32_t running_here) {
    uint32_t assigned_here = 0;
    static const std::vector<std::string> kNone;
    const std::vector<std::string>& assigned_ids = a ? a->nodes : kNone;
    if (a) {
      dec.wanted = a->wanted;
      dec.infeasible = a->infeasible;
      dec.assigned.reserve(a->nodes.size());
      for (const auto& id : a->nodes) {
        dec.assigned.push_back(nameOf(id));
        if (id == in_.self_id) ++assigned_here;
      }
      // A few reasons for the snapshot; meshos-inspect placement explains every node.
      dec.excluded_count = a->excluded.size();
      for (const auto& [id, why] : a->excluded) {
        if (dec.excluded.size() >= kExcludedShown) break;
        dec.excluded[nameOf(id)] = why;
      }
    }
    const uint32_t ready_elsewhere = readyElsewhere(dec, assigned_ids);
    uint32_t here = assigned_here;
    if (dec.paused) {
      here = 0;
      dec.why = "paused";
    } else if (plan_.frozen) {
      here = running_here;
      dec.why = "frozen: the local set is held";
    } else if (plan_.isolated) {
      here = running_here;
      dec.why = "isolated: keeps what runs, starts nothing";
    } else if (running_here > assigned_here) {
      here = handoff(dec, running_here, assigned_here, ready_elsewhere);
    } else {
      dec.why = assigned_here > 0 ? "assigned" : "not assigned here";
    }
    if (!plan_.agreed && here > running_here && !dec.paused) {
      here = running_here;
      dec.why = "waiting: " + std::to_string(plan_.agreeing) + " of " + std::to_string(in_.members_known) +
                " members agree on the view";
    }
    dec.here = here;
  }

  // Ready instances on the nodes now assigned, other than this one (and who runs it).
  uint32_t readyElsewhere(DaemonDecision& dec, const std::vector<std::string>& assigned_ids) {
    uint32_t ready = 0;
    auto held = holders_.empty() ? holders_.end() : holders_.find(dec.daemon);
    if (held == holders_.end()) return 0;
    dec.running_on.reserve(held->second.size());
    dec.ready_on.reserve(held->second.size());
    for (const auto& h : held->second) {
      dec.running_on.push_back(h.node->name);
      if (h.report.ready > 0) dec.ready_on.push_back(h.node->name);
      const bool assigned = std::find(assigned_ids.begin(), assigned_ids.end(), h.node->id) != assigned_ids.end();
      if (h.node->id != in_.self_id && assigned) ready += h.report.ready;
    }
    return ready;
  }

  // Make-before-break: the extra instances stay until the new holders are ready.
  uint32_t handoff(DaemonDecision& dec, uint32_t running_here, uint32_t assigned_here, uint32_t ready_elsewhere) {
    auto prev = in_.handoffs.find(dec.daemon);
    const int64_t since = prev == in_.handoffs.end() ? in_.now_ms : prev->second.since_ms;
    // Covered when every slot now assigned is ready (an infeasible daemon has fewer slots
    // than it wants; waiting for the rest would never end).
    const bool covered = ready_elsewhere + std::min(running_here, assigned_here) >= dec.assigned.size();
    const bool expired = in_.now_ms - since >= in_.handoff_deadline_ms;
    if (covered || expired || drain_overdue_) {
      dec.why = covered ? "moved: the new holders are ready"
                        : expired ? "moved: handoff deadline passed" : "moved: drain deadline passed";
      return assigned_here;
    }
    plan_.handoffs[dec.daemon] = Handoff{since};
    dec.why = "handoff: kept until the new holders report ready";
    return running_here;
  }

  // The specs, materialised for this node. A dependency that does not run here is dropped
  // (placement co-locates dependents; this covers a handoff in progress).
  void materialise() {
    for (size_t i = 0, k = 0; i < plan_.decisions.size(); ++i) {
      auto& dec = plan_.decisions[i];
      if (dec.here == 0) continue;
      const commits::DesiredDaemon& d = *to_run_[k++];
      auto spec = spec::interpolate(d.spec, in_.vars);
      if (!spec) {
        dec.why = spec.status().message();
        dec.here = 0;
        continue;
      }
      spec->replicas = dec.here;
      std::erase_if(spec->depends_on, [&](const spec::Dependency& dep) { return run_names_.count(dep.name) == 0; });
      plan_.run.push_back(std::move(*spec));
    }
  }

  static constexpr size_t kAhead = 4;
  const LocalInputs& in_;
  placement::Assigner& assigner_;
  const commits::DesiredState& desired_;
  LocalPlan plan_;
  const PeerView* self_ = nullptr;
  std::string self_name_;
  std::unordered_map<std::string_view, const PeerView*> by_id_;
  const commits::NodeMaintenance* maintenance_ = nullptr;
  bool drain_overdue_ = false;
  std::set<std::string> deadline_keys_;  // the deadlines this plan read
  std::vector<placement::NodeView> views_;
  std::unordered_map<std::string, std::vector<Holder>> holders_;
  std::vector<const std::pair<const std::string, commits::DesiredDaemon>*> entries_;
  std::vector<placement::DaemonRequest> requests_;
  std::vector<uint8_t> paused_;
  placement::Assignment overlaid_;
  size_t placed_here_ = 0;
  std::set<std::string> run_names_;
  std::vector<const commits::DesiredDaemon*> to_run_;
};

}  // namespace

LocalPlan planLocal(const LocalInputs& in, placement::Assigner& assigner) { return Planner(in, assigner).run(); }

nlohmann::json localPlanToJson(const LocalPlan& plan) {
  nlohmann::json decisions = nlohmann::json::array();
  for (const auto& d : plan.decisions) {
    decisions.push_back({{"daemon", d.daemon},
                         {"wanted", d.wanted},
                         {"assigned", d.assigned},
                         {"running_on", d.running_on},
                         {"ready_on", d.ready_on},
                         {"here", d.here},
                         {"infeasible", d.infeasible},
                         {"paused", d.paused},
                         {"why", d.why},
                         {"excluded", d.excluded},
                         {"excluded_count", d.excluded_count}});
  }
  nlohmann::json handoffs = nlohmann::json::object();
  for (const auto& [name, h] : plan.handoffs) handoffs[name] = {{"since_ms", h.since_ms}};
  nlohmann::json moves = nlohmann::json::array();
  for (const auto& m : plan.moves) moves.push_back({{"daemon", m.daemon}, {"from", m.from}, {"to", m.to}});
  return {{"decisions", std::move(decisions)},
          {"handoffs", std::move(handoffs)},
          {"moves", std::move(moves)},
          {"maintenance", state::maintenanceName(plan.maintenance)},
          {"maintenance_seq", plan.maintenance_seq},
          {"isolated", plan.isolated},
          {"view_digest", plan.view_digest},
          {"agreeing", plan.agreeing},
          {"agreed", plan.agreed},
          {"frozen", plan.frozen},
          {"alive", plan.alive}};
}

}  // namespace meshos::reconcile
