#include "agent/reconcile/local_plan.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "agent/core/crypto.h"
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
    h.updateU64(r.moves.size());
    for (const auto& [d, to] : r.moves) h.update(asBytes(d)).update(asBytes(to));
  }
  Hash256 out = h.finish();
  const uint64_t v = readBigEndian64(ByteView(out.data(), 8));
  return v == 0 ? 1 : v;
}

LocalPlan planLocal(const LocalInputs& in, placement::Assigner& assigner) {
  LocalPlan plan;
  static const commits::DesiredState kEmpty;
  const commits::DesiredState& desired = in.desired ? *in.desired : kEmpty;
  plan.frozen = desired.frozenAt(in.wall_ms);

  const PeerView* self = nullptr;
  std::unordered_map<std::string_view, const PeerView*> by_id;
  by_id.reserve(in.nodes.size());
  for (const auto& n : in.nodes) {
    by_id[n.id] = &n;
    if (n.id == in.self_id) self = &n;
    if (n.state == state::MemberState::kAlive) ++plan.alive;
  }
  plan.isolated = in.members_known >= 3 && plan.alive * 2 < in.members_known;
  const std::string self_name = self ? self->name : in.self_id;
  plan.view_digest = viewDigest(in.nodes);
  plan.agreeing = 1;  // this node
  for (const auto& n : in.nodes) {
    if (n.id != in.self_id && n.state == state::MemberState::kAlive && n.report &&
        n.report->view_digest == plan.view_digest)
      ++plan.agreeing;
  }
  plan.agreed = !in.require_view_agreement || plan.agreeing * 2 > std::max<size_t>(in.members_known, 1);

  // Maintenance: the commit log says whether a node drains; every node reads the same
  // log, so every node excludes a draining node at once, before it reports anything.
  const commits::NodeMaintenance* m = maintenanceFor(desired, self_name);
  if (!m) {
    plan.maintenance = state::Maintenance::kActive;
  } else if (in.maintenance == state::Maintenance::kInMaintenance && in.maintenance_seq == m->seq) {
    plan.maintenance = state::Maintenance::kInMaintenance;  // only forward
  } else {
    plan.maintenance = state::Maintenance::kDraining;
  }
  plan.maintenance_seq = m ? m->seq : 0;

  // Placement's view. Active or not comes from the commit log (every node reads the same
  // one), so a drain takes effect everywhere before the drained node reports anything.
  std::vector<placement::NodeView> views = nodeViews(in.nodes);
  for (auto& v : views) {
    v.active = v.id == in.self_id ? plan.maintenance == state::Maintenance::kActive
                                  : maintenanceFor(desired, v.name) == nullptr;
  }

  // Who reports each daemon (self: what actually runs here).
  std::unordered_map<std::string, std::vector<Holder>> holders;
  for (const auto& n : in.nodes) {
    if (n.id == in.self_id) {
      for (const auto& [name, l] : in.local) {
        if (l.running > 0) holders[name].push_back({&n, {l.running, l.ready, 0}});
      }
    } else if (n.report && n.state == state::MemberState::kAlive) {
      for (const auto& [name, r] : n.report->daemons) {
        if (r.running > 0) holders[name].push_back({&n, r});
      }
    }
  }

  // The desired daemons, by name, walked once: each entry is a node of its own (a spec is
  // large), so the walk collects them and reads each a few entries ahead of its use
  // (prefetch), and later loops use what it kept rather than visiting the map again.
  std::vector<const std::pair<const std::string, commits::DesiredDaemon>*> entries;
  entries.reserve(desired.daemons.size());
  for (const auto& e : desired.daemons) entries.push_back(&e);
  auto prefetch = [&](size_t i) {
    if (i >= entries.size()) return;
    const commits::DesiredDaemon* d = &entries[i]->second;
    __builtin_prefetch(&d->spec.name);
    __builtin_prefetch(&d->spec.kind);
    __builtin_prefetch(&d->spec.resources);
    __builtin_prefetch(&d->spec.placement);
    __builtin_prefetch(&d->spec.depends_on);
    __builtin_prefetch(&d->paused);
  };
  constexpr size_t kAhead = 4;
  for (size_t i = 0; i < kAhead; ++i) prefetch(i);
  std::vector<placement::DaemonRequest> requests;
  requests.reserve(entries.size());
  std::vector<uint8_t> paused(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    prefetch(i + kAhead);
    const commits::DesiredDaemon& d = entries[i]->second;
    paused[i] = d.paused ? 1 : 0;
    auto req = placement::requestFromSpec(d.spec);
    if (d.kill_relocation_generation > 0 && d.kill_relocation_generation >= d.updated_seq) {
      if (auto held = holders.find(entries[i]->first); held != holders.end()) {
        for (const auto& h : held->second) req.pinned.push_back(h.node->id);
        std::sort(req.pinned.begin(), req.pinned.end());
      }
    }
    requests.push_back(std::move(req));
  }
  const placement::Assignment& base = assigner.assign(views, requests);
  // Rebalancing moves, as their sources publish them (self: its last published report).
  std::vector<placement::Move> published;
  for (const auto& n : in.nodes) {
    if (!n.report || n.state != state::MemberState::kAlive) continue;
    for (const auto& [daemon, to] : n.report->moves) published.push_back({daemon, n.id, to});
  }
  std::sort(published.begin(), published.end(),
            [](const placement::Move& a, const placement::Move& b) { return std::tie(a.from, a.daemon) < std::tie(b.from, b.daemon); });
  const bool overlay = !published.empty();
  placement::Assignment overlaid;
  if (overlay) {
    std::vector<bool> applied;
    overlaid = placement::applyMoves(base, published, &applied);
    for (size_t i = 0; i < published.size(); ++i) {
      if (applied[i]) plan.moves.push_back(std::move(published[i]));
    }
  }
  const placement::Assignment& assignment = overlay ? overlaid : base;

  auto nameOf = [&](const std::string& id) -> const std::string& {
    auto it = by_id.find(id);
    return it == by_id.end() ? id : it->second->name;
  };
  const bool drain_overdue = m && in.wall_ms >= m->deadline_ms;
  size_t placed_here = 0;
  std::set<std::string> run_names;
  std::vector<const commits::DesiredDaemon*> to_run;

  plan.decisions.reserve(entries.size());
  // The desired daemons, the assignment and what runs here are all ordered by daemon name:
  // walk them in step instead of looking each up.
  auto assigned_it = assignment.daemons.begin();
  auto local_it = in.local.begin();
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i + kAhead < entries.size()) __builtin_prefetch(entries[i + kAhead]);
    const std::string& name = entries[i]->first;
    const commits::DesiredDaemon& d = entries[i]->second;
    DaemonDecision& dec = plan.decisions.emplace_back();
    dec.daemon = name;
    dec.paused = paused[i] != 0;
    uint32_t assigned_here = 0;
    static const std::vector<std::string> kNone;
    const std::vector<std::string>* assigned_ids = &kNone;
    while (assigned_it != assignment.daemons.end() && assigned_it->first < name) ++assigned_it;
    if (assigned_it != assignment.daemons.end() && assigned_it->first == name) {
      const auto& a = assigned_it->second;
      dec.wanted = a.wanted;
      dec.infeasible = a.infeasible;
      assigned_ids = &a.nodes;
      dec.assigned.reserve(a.nodes.size());
      for (const auto& id : a.nodes) {
        dec.assigned.push_back(nameOf(id));
        if (id == in.self_id) ++assigned_here;
      }
      // A few reasons for the snapshot; meshos-inspect placement explains every node.
      dec.excluded_count = a.excluded.size();
      for (const auto& [id, why] : a.excluded) {
        if (dec.excluded.size() >= kExcludedShown) break;
        dec.excluded[nameOf(id)] = why;
      }
    }
    // Ready instances on the nodes now assigned, other than this one.
    uint32_t ready_elsewhere = 0;
    if (auto held = holders.empty() ? holders.end() : holders.find(name); held != holders.end()) {
      dec.running_on.reserve(held->second.size());
      dec.ready_on.reserve(held->second.size());
      for (const auto& h : held->second) {
        dec.running_on.push_back(h.node->name);
        if (h.report.ready > 0) dec.ready_on.push_back(h.node->name);
        bool assigned = std::find(assigned_ids->begin(), assigned_ids->end(), h.node->id) != assigned_ids->end();
        if (h.node->id != in.self_id && assigned) ready_elsewhere += h.report.ready;
      }
    }
    while (local_it != in.local.end() && local_it->first < name) ++local_it;
    const uint32_t running_here =
        local_it != in.local.end() && local_it->first == name ? local_it->second.running : 0;

    uint32_t here = assigned_here;
    if (dec.paused) {
      here = 0;
      dec.why = "paused";
    } else if (plan.frozen) {
      here = running_here;
      dec.why = "frozen: the local set is held";
    } else if (plan.isolated) {
      here = running_here;
      dec.why = "isolated: keeps what runs, starts nothing";
    } else if (running_here > assigned_here) {
      // Make-before-break: keep the extra instances until the new holders are ready.
      auto prev = in.handoffs.find(name);
      int64_t since = prev == in.handoffs.end() ? in.now_ms : prev->second.since_ms;
      // Covered when every slot now assigned is ready (an infeasible daemon has fewer
      // slots than it wants; waiting for the rest would never end).
      bool covered = ready_elsewhere + std::min(running_here, assigned_here) >= dec.assigned.size();
      bool expired = in.now_ms - since >= in.handoff_deadline_ms;
      if (covered || expired || drain_overdue) {
        dec.why = covered ? "moved: the new holders are ready"
                          : expired ? "moved: handoff deadline passed" : "moved: drain deadline passed";
      } else {
        here = running_here;
        plan.handoffs[name] = Handoff{since};
        dec.why = "handoff: kept until the new holders report ready";
      }
    } else {
      dec.why = assigned_here > 0 ? "assigned" : "not assigned here";
    }
    if (!plan.agreed && here > running_here && !dec.paused) {
      here = running_here;
      dec.why = "waiting: " + std::to_string(plan.agreeing) + " of " + std::to_string(in.members_known) +
                " members agree on the view";
    }
    dec.here = here;
    if (here > 0) {
      run_names.insert(name);
      to_run.push_back(&d);
      placed_here += here;
    }
  }

  // The specs, materialised for this node. A dependency that does not run here is dropped
  // (placement co-locates dependents; this covers a handoff in progress).
  for (size_t i = 0, k = 0; i < plan.decisions.size(); ++i) {
    auto& dec = plan.decisions[i];
    if (dec.here == 0) continue;
    const commits::DesiredDaemon& d = *to_run[k++];
    auto spec = spec::interpolate(d.spec, in.vars);
    if (!spec) {
      dec.why = spec.status().message();
      dec.here = 0;
      continue;
    }
    spec->replicas = dec.here;
    std::erase_if(spec->depends_on, [&](const spec::Dependency& dep) { return run_names.count(dep.name) == 0; });
    plan.run.push_back(std::move(*spec));
  }

  plan.views = std::move(views);
  plan.requests = std::move(requests);
  if (plan.maintenance == state::Maintenance::kDraining && placed_here == 0) {
    uint32_t still_running = 0;
    for (const auto& [name, l] : in.local) still_running += l.running;
    if (still_running == 0) plan.maintenance = state::Maintenance::kInMaintenance;
  }
  return plan;
}

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
