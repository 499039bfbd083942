// Pass: one assignment pass (see pass.h); Pass::place() places one daemon in steps.
#include "placement/pass.h"

namespace meshos::placement::detail {

void Pass::prepareNodes(const std::vector<NodeView>& input) {
  const auto unique = sortedUnique(
      input, [](const NodeView& v) -> const std::string& { return v.id; },
      [](const NodeView& v) { return hashNode(v); });
  nodes_.reserve(unique.size());
  for (const NodeView* v : unique) {
    PreparedNode p;
    p.view = v;
    p.hash = hashString(v->id, kNodeSeed);
    p.caps.assign(v->capabilities.begin(), v->capabilities.end());
    std::sort(p.caps.begin(), p.caps.end());
    p.caps.erase(std::unique(p.caps.begin(), p.caps.end()), p.caps.end());
    nodes_.push_back(std::move(p));
  }
  const size_t n = nodes_.size();
  load_.assign(n, NodeLoad{});
  cpu_left_.resize(n);
  memory_left_.resize(n);
  spread_score_.resize(n);
  binpack_score_.resize(n);
  zero_score_.resize(n);
  stamp_.assign(n, 0);
  colocated_mark_.assign(n, 0);
  node_hash_.resize(n);
  base_ok_.resize(n);
  static const DaemonRequest kReservesNothing;
  for (uint32_t i = 0; i < n; ++i) {
    const NodeView& v = *nodes_[i].view;
    node_hash_[i] = nodes_[i].hash;
    base_ok_[i] = v.alive && v.active && v.unhealthy.empty() ? 1 : 0;
    cpu_left_[i] = std::max<int64_t>(0, v.cpu_millicores);
    memory_left_[i] = std::max<int64_t>(0, v.memory_bytes);
    zero_score_.set(i, scorerFor(spec::PlacementStrategy::kSpread).score(kReservesNothing, v, load_[i], input_nodes_));
    refreshScores(i);
  }
  usable_ = static_cast<size_t>(std::count(base_ok_.begin(), base_ok_.end(), uint8_t{1}));
  for (Scores* s : {&spread_score_, &binpack_score_, &zero_score_}) {
    s->order.build(s->level, base_ok_, node_hash_, &cpu_left_, &memory_left_);
    orders_.push_back(&s->order);
  }
}

void Pass::prepareDaemons(const std::vector<DaemonRequest>& input) {
  daemon_prefix_.reserve(input.size());
  daemons_ = sortedUnique(
      input, [](const DaemonRequest& d) -> const std::string& { return d.name; },
      [](const DaemonRequest& d) { return hashDaemon(d); }, &daemon_prefix_);
  const size_t m = daemons_.size();

  // Dependency order (Kahn), ties by name. Dependencies outside the set are ignored; a cycle
  // (specs are validated, so it should not happen) is broken by appending what is left by name.
  deps_begin_.resize(m);
  deps_end_.resize(m);
  std::vector<uint32_t> indegree(m, 0);
  std::vector<std::pair<uint32_t, uint32_t>> edges;  // (dependency, dependent)
  for (size_t i = 0; i < m; ++i) {
    deps_begin_[i] = static_cast<uint32_t>(deps_.size());
    for (const auto& name : daemons_[i]->depends_on) {
      auto dep = daemonIndex(name);
      if (!dep || *dep == i) continue;
      const auto d32 = static_cast<uint32_t>(*dep);
      if (std::find(deps_.begin() + deps_begin_[i], deps_.end(), d32) != deps_.end()) continue;
      deps_.push_back(d32);
      edges.emplace_back(d32, static_cast<uint32_t>(i));
      ++indegree[i];
    }
    deps_end_[i] = static_cast<uint32_t>(deps_.size());
  }
  order_.reserve(m);
  if (edges.empty()) {
    for (size_t i = 0; i < m; ++i) order_.push_back(i);
  } else {
    std::sort(edges.begin(), edges.end());
    std::vector<uint32_t> first_edge(m + 1, 0);
    for (const auto& e : edges) ++first_edge[e.first + 1];
    for (size_t i = 0; i < m; ++i) first_edge[i + 1] += first_edge[i];
    // The lowest ready index next, as one priority queue of every ready daemon would give;
    // but the daemons ready from the start are taken in index order by a cursor, and only
    // those that become ready later (dependents) go through the heap.
    std::vector<uint8_t> initial(m, 0);
    for (size_t i = 0; i < m; ++i) initial[i] = indegree[i] == 0 ? 1 : 0;
    std::priority_queue<size_t, std::vector<size_t>, std::greater<>> later;
    std::vector<uint8_t> queued(m, 0);
    size_t cursor = 0;
    for (;;) {
      while (cursor < m && !initial[cursor]) ++cursor;
      size_t i;
      if (cursor < m && (later.empty() || cursor < later.top())) {
        i = cursor++;
      } else if (!later.empty()) {
        i = later.top();
        later.pop();
      } else {
        break;
      }
      queued[i] = 1;
      order_.push_back(i);
      for (uint32_t e = first_edge[i]; e < first_edge[i + 1]; ++e) {
        if (--indegree[edges[e].second] == 0) later.push(edges[e].second);
      }
    }
    for (size_t i = 0; i < m; ++i) {
      if (!queued[i]) order_.push_back(i);
    }
  }

  done_.assign(m, 0);
  // Signatures and name hashes in the input's order (memory order: the requests and their
  // strings were most likely allocated in that order), not in name order, which would visit
  // the requests at random; place() then finds them ready.
  signature_of_.assign(m, 0);
  daemon_hash_.assign(m, 0);
  constexpr uint32_t kDropped = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> by_input(input.size(), kDropped);
  for (size_t i = 0; i < m; ++i) by_input[static_cast<size_t>(daemons_[i] - input.data())] = static_cast<uint32_t>(i);
  for (const uint32_t i : by_input) {
    if (i == kDropped) continue;
    signature_of_[i] = signatureFor(*daemons_[i]);
    daemon_hash_[i] = hashString(daemons_[i]->name, kDaemonSeed);
  }
  instances_begin_.assign(m, 0);
  instances_end_.assign(m, 0);
  out_.daemons.reserve(m);
  for (size_t i = 0; i < m; ++i) out_.daemons.emplace(daemons_[i]->name, DaemonAssignment{});
}

const std::vector<const std::string*>& Pass::labelValues(const std::string& label) {
  auto it = label_values_.find(label);
  if (it != label_values_.end()) return it->second;
  std::vector<const std::string*> values(nodes_.size(), nullptr);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const auto& labels = nodes_[i].view->labels;
    if (auto l = labels.find(label); l != labels.end()) values[i] = &l->second;
  }
  return label_values_.emplace(label, std::move(values)).first->second;
}

const std::vector<uint8_t>& Pass::constraintMask(const spec::Constraint& c) {
  std::string key = constraintKey(c);
  auto it = constraint_masks_.find(key);
  if (it != constraint_masks_.end()) return it->second;
  // constraintOk() for every node, from the label's value on each (looked up once per label).
  const auto& values = labelValues(c.label);
  std::vector<uint8_t> mask(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const bool listed = values[i] != nullptr && std::find(c.values.begin(), c.values.end(), *values[i]) != c.values.end();
    switch (c.op) {
      case spec::ConstraintOp::kNotIn: mask[i] = listed ? 0 : 1; break;
      case spec::ConstraintOp::kEquals:
      case spec::ConstraintOp::kIn: mask[i] = listed ? 1 : 0; break;
      default: mask[i] = 0; break;
    }
  }
  return constraint_masks_.emplace(std::move(key), std::move(mask)).first->second;
}

const std::vector<uint8_t>& Pass::capabilityMask(const std::string& cap) {
  auto it = capability_masks_.find(cap);
  if (it != capability_masks_.end()) return it->second;
  std::vector<uint8_t> mask(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    mask[i] = std::binary_search(nodes_[i].caps.begin(), nodes_[i].caps.end(), std::string_view(cap)) ? 1 : 0;
  }
  return capability_masks_.emplace(cap, std::move(mask)).first->second;
}

// The static checks (staticOk) for every node, once per distinct signature, from one mask
// per distinct capability and constraint.
// Daemons are matched to a signature by a hash of their capabilities and constraints (as
// written, in order), confirmed by comparing them: no string is built per daemon. Two
// daemons that list the same ones in another order get two signatures with equal masks.
uint32_t Pass::signatureFor(const DaemonRequest& d) {
  const auto& p = d.placement;
  const bool base = p.capabilities.empty() && p.constraints.empty();
  if (base && base_signature_ != kNoSignature) return base_signature_;
  Hasher h(0x7369676e61747572ULL);
  h.add(p.capabilities.size());
  for (const auto& c : p.capabilities) h.add(c);
  h.add(p.constraints.size());
  for (const auto& c : p.constraints) {
    h.add(c.label);
    h.add(static_cast<uint64_t>(c.op));
    h.add(c.values.size());
    for (const auto& v : c.values) h.add(v);
  }
  const uint64_t key = h.done();
  auto& same_hash = signature_index_[key];
  for (uint32_t idx : same_hash) {
    const spec::Placement& q = *signatures_[idx].placement;
    if (q.capabilities == p.capabilities && q.constraints == p.constraints) return idx;
  }
  Signature sig;
  sig.placement = &p;
  sig.ok = base_ok_;
  for (const auto& cap : d.placement.capabilities) {
    const auto& mask = capabilityMask(cap);
    for (size_t i = 0; i < sig.ok.size(); ++i) sig.ok[i] &= mask[i];
  }
  for (const auto& c : d.placement.constraints) {
    const auto& mask = constraintMask(c);
    for (size_t i = 0; i < sig.ok.size(); ++i) sig.ok[i] &= mask[i];
  }
  for (uint32_t i = 0; i < sig.ok.size(); ++i) {
    if (sig.ok[i]) sig.nodes.push_back(i);
  }
  const auto idx = static_cast<uint32_t>(signatures_.size());
  signatures_.push_back(std::move(sig));
  same_hash.push_back(idx);
  if (base) base_signature_ = idx;
  return idx;
}

void Pass::refreshScores(uint32_t i) {
  // What the spread and binpack scorers return for a daemon that reserves: -step and +step
  // of the same utilizationStep, computed once (the unit tests check it against them).
  const double step = utilizationStep(*nodes_[i].view, load_[i]);
  spread_score_.set(i, -step);
  binpack_score_.set(i, step);
}

const Scores& Pass::scoresFor(const DaemonRequest& d) {
  switch (d.placement.strategy) {
    case spec::PlacementStrategy::kBinpack: return binpack_score_;
    case spec::PlacementStrategy::kNear: {
      // Near scores depend only on coordinates: computed once per target per pass (the same
      // functions NearScorer uses).
      auto it = near_scores_.find(d.placement.near);
      if (it == near_scores_.end()) {
        const auto targets = nearTargets(d.placement.near, input_nodes_);
        Scores scores;
        scores.resize(nodes_.size());
        for (size_t i = 0; i < nodes_.size(); ++i) scores.set(i, nearScore(*nodes_[i].view, d.placement.near, targets));
        // By node: near runs are short (scores rarely tie), and a reservation would
        // otherwise update every near order.
        scores.order.build(scores.level, base_ok_, node_hash_, nullptr, nullptr);
        it = near_scores_.emplace(d.placement.near, std::move(scores)).first;
      }
      return it->second;
    }
    case spec::PlacementStrategy::kSpread: break;
  }
  return asksResources(d) ? spread_score_ : zero_score_;
}

Pass::Placing Pass::begin(size_t di) {
  Placing p;
  p.di = di;
  p.d = daemons_[di];
  p.sig = &signatures_[signature_of_[di]];
  p.dh = daemon_hash_[di];
  p.ranked = &scoresFor(*p.d);
  p.cpu = std::max<int64_t>(0, p.d->resources.cpu_millicores);
  p.memory = std::max<int64_t>(0, p.d->resources.memory_bytes);
  p.wanted = std::min(p.d->replicas, kMaxReplicas);
  p.per_node = static_cast<uint32_t>(std::clamp<int64_t>(p.d->placement.max_per_node, 1, kMaxReplicas));
  p.mark = static_cast<uint32_t>(di) + 1;
  // Co-location: only nodes where every dependency (already placed) has an instance.
  placed_deps_.clear();
  for (uint32_t k = deps_begin_[di]; k < deps_end_[di]; ++k) {
    if (done_[deps_[k]]) placed_deps_.push_back(deps_[k]);
  }
  p.colocate = !placed_deps_.empty();
  colocated_.clear();
  if (p.colocate) {
    auto [b, e] = instancesOf(placed_deps_.front());
    colocated_.assign(b, e);
    std::sort(colocated_.begin(), colocated_.end());
    colocated_.erase(std::unique(colocated_.begin(), colocated_.end()), colocated_.end());
    for (size_t k = 1; k < placed_deps_.size(); ++k) {
      std::erase_if(colocated_, [&](uint32_t i) { return !hasInstance(placed_deps_[k], i); });
    }
    std::erase_if(colocated_, [&](uint32_t i) { return !p.sig->ok[i]; });
  }
  p.candidates = p.colocate ? &colocated_ : &p.sig->nodes;
  for (uint32_t i : colocated_) colocated_mark_[i] = p.mark;
  return p;
}

// Pinned nodes first: kept when feasible apart from resources.
void Pass::choosePinned(const Placing& p) {
  chosen_.clear();
  if (p.d->pinned.empty() || p.wanted == 0) return;
  for (const auto& id : p.d->pinned) {
    auto found = nodeIndex(id);
    if (!found) continue;
    const uint32_t i = *found;
    if (stamp_[i] == p.mark || !p.sig->ok[i] || !colocatedOk(p, i)) continue;
    stamp_[i] = p.mark;
    chosen_.push_back({p.ranked->score[i], tieOf(p, i), i, p.ranked->level[i]});
  }
  std::sort(chosen_.begin(), chosen_.end(), better);
  if (chosen_.size() > p.wanted) {
    for (size_t k = p.wanted; k < chosen_.size(); ++k) stamp_[chosen_[k].node] = 0;  // not kept: rankable
    chosen_.resize(p.wanted);
  }
}

// The best `wanted - pinned` of the other feasible nodes (distinct nodes).
void Pass::chooseRanked(const Placing& p) {
  const size_t k = p.wanted - chosen_.size();
  const bool reserves = p.cpu > 0 || p.memory > 0;
  const ScanInput in{p.candidates,
                     stamp_.data(),
                     p.mark,
                     cpu_left_.data(),
                     memory_left_.data(),
                     p.cpu > 0 ? p.cpu : std::numeric_limits<int64_t>::min(),
                     p.memory > 0 ? p.memory : std::numeric_limits<int64_t>::min(),
                     p.ranked->score.data(),
                     p.ranked->level.data(),
                     node_hash_.data(),
                     p.dh};
  if (p.colocate) {  // few candidates: scan them all
    if (k == 1) {
      reserves ? scanBest<true>(in, top_) : scanBest<false>(in, top_);
    } else {
      reserves ? scanTop<true>(in, k, top_) : scanTop<false>(in, k, top_);
    }
  } else {
    const OrderedInput o{&p.ranked->order, p.sig->ok.data()};
    const bool filter = p.sig->nodes.size() != usable_;  // the signature excludes a usable node
    const bool pins = !p.d->pinned.empty();
    const int variant = (filter ? 4 : 0) | (pins ? 2 : 0) | (reserves ? 1 : 0);
    switch (variant) {
      case 0: scanOrdered<false, false, false>(in, o, k, top_); break;
      case 1: scanOrdered<false, false, true>(in, o, k, top_); break;
      case 2: scanOrdered<false, true, false>(in, o, k, top_); break;
      case 3: scanOrdered<false, true, true>(in, o, k, top_); break;
      case 4: scanOrdered<true, false, false>(in, o, k, top_); break;
      case 5: scanOrdered<true, false, true>(in, o, k, top_); break;
      case 6: scanOrdered<true, true, false>(in, o, k, top_); break;
      default: scanOrdered<true, true, true>(in, o, k, top_); break;
    }
  }
  chosen_.insert(chosen_.end(), top_.begin(), top_.end());
}

// Instances: one per chosen node; more on the best nodes when max_per_node allows and
// there are fewer feasible nodes than replicas.
void Pass::recordInstances(const Placing& p) {
  instances_begin_[p.di] = static_cast<uint32_t>(instances_.size());
  for (const auto& c : chosen_) instances_.push_back(c.node);
  if (chosen_.size() < p.wanted && p.per_node > 1 && !chosen_.empty()) {
    cpu_rem_.resize(chosen_.size());
    memory_rem_.resize(chosen_.size());
    for (size_t j = 0; j < chosen_.size(); ++j) {
      cpu_rem_[j] = cpu_left_[chosen_[j].node] - p.cpu;
      memory_rem_[j] = memory_left_[chosen_[j].node] - p.memory;
    }
    size_t placed = chosen_.size();
    for (uint32_t round = 2; round <= p.per_node && placed < p.wanted; ++round) {
      bool any = false;
      for (size_t j = 0; j < chosen_.size() && placed < p.wanted; ++j) {
        if (p.cpu > 0 && cpu_rem_[j] < p.cpu) continue;
        if (p.memory > 0 && memory_rem_[j] < p.memory) continue;
        cpu_rem_[j] -= p.cpu;
        memory_rem_[j] -= p.memory;
        instances_.push_back(chosen_[j].node);
        ++placed;
        any = true;
      }
      if (!any) break;
    }
  }
  instances_end_[p.di] = static_cast<uint32_t>(instances_.size());
}

// Why a node was excluded, against the reservations as they stood when this daemon was
// placed; empty when it is feasible.
void Pass::exclusionReason(const Placing& p, uint32_t i, std::string& why) {
  const bool kept = stamp_[i] == p.mark;  // pinned and kept
  why.clear();
  if (!staticOk(nodes_[i], *p.d, &why)) {
  } else if (!colocatedOk(p, i)) {
    for (size_t dep : placed_deps_) {
      if (!hasInstance(dep, i)) {
        why = fmt::format("co-location: dependency {} has no instance here", daemons_[dep]->name);
        break;
      }
    }
  } else if (!kept && p.cpu > 0 && cpu_left_[i] < p.cpu) {
    why = fmt::format("cpu: {}m left, {}m asked", std::max<int64_t>(0, cpu_left_[i]), p.cpu);
  } else if (!kept && p.memory > 0 && memory_left_[i] < p.memory) {
    why = fmt::format("memory: {} left, {} asked", humanBytes(memory_left_[i]), humanBytes(p.memory));
  }
}

// Every node: feasible (ranked) or excluded with the first reason; in words for the first
// `cap`, counted past them.
void Pass::explainPlacement(const Placing& p, DaemonAssignment& out, bool detail) {
  out.detailed = true;
  const size_t cap = detail ? std::numeric_limits<size_t>::max() : kExcludedSample;
  std::string why;
  const auto n = static_cast<uint32_t>(nodes_.size());
  uint32_t i = 0;
  for (; i < n && out.excluded.size() < cap; ++i) {
    exclusionReason(p, i, why);
    if (why.empty()) {
      out.feasible.push_back({nodes_[i].view->id, p.ranked->score[i], tieOf(p, i)});
    } else {
      out.excluded.emplace_hint(out.excluded.end(), nodes_[i].view->id, why);
      ++out.excluded_count;
    }
  }
  if (i < n) {
    // Past the sample, count only: the same checks without the words. A feasible node
    // passes the static checks and co-location, so it is one of `candidates` (ascending):
    // only those are checked, every other node is excluded.
    const size_t feasible_before = out.feasible.size();
    const auto& candidates = *p.candidates;
    for (auto c = std::lower_bound(candidates.begin(), candidates.end(), i); c != candidates.end(); ++c) {
      const uint32_t j = *c;
      const bool kept = stamp_[j] == p.mark;
      if (kept || ((p.cpu == 0 || cpu_left_[j] >= p.cpu) && (p.memory == 0 || memory_left_[j] >= p.memory))) {
        out.feasible.push_back({nodes_[j].view->id, p.ranked->score[j], tieOf(p, j)});
      }
    }
    out.excluded_count += static_cast<uint32_t>((n - i) - (out.feasible.size() - feasible_before));
  }
  std::sort(out.feasible.begin(), out.feasible.end(), [](const ScoredNode& a, const ScoredNode& b) {
    const uint32_t la = scoreLevel(a.score), lb = scoreLevel(b.score);
    if (la != lb) return la > lb;
    if (a.tie != b.tie) return a.tie > b.tie;
    return a.node < b.node;  // sorted ids: the lower index
  });
}

void Pass::reserve(const Placing& p) {
  auto [inst_b, inst_e] = instancesOf(p.di);
  for (auto q = inst_b; q != inst_e; ++q) {
    const uint32_t i = *q;
    load_[i].cpu_reserved += p.cpu;
    load_[i].memory_reserved += p.memory;
    ++load_[i].instances;
    cpu_left_[i] -= p.cpu;
    memory_left_[i] -= p.memory;
  }
  if (p.cpu != 0 || p.memory != 0) {
    for (const auto& c : chosen_) {
      for (LevelOrder* order : orders_) order->setLeft(c.node, cpu_left_[c.node], memory_left_[c.node]);
    }
  }
  for (const auto& c : chosen_) refreshScores(c.node);
}

void Pass::place(size_t di, bool detail) {
  const Placing p = begin(di);
  choosePinned(p);
  chooseRanked(p);
  recordInstances(p);
  auto [inst_b, inst_e] = instancesOf(di);
  const size_t placed = static_cast<size_t>(inst_e - inst_b);
  DaemonAssignment& out = (out_.daemons.begin() + static_cast<std::ptrdiff_t>(di))->second;
  out.wanted = p.wanted;
  out.infeasible = placed < p.wanted;
  out.nodes.reserve(placed);
  for (auto q = inst_b; q != inst_e; ++q) out.nodes.push_back(nodes_[*q].view->id);
  if (detail || out.infeasible) explainPlacement(p, out, detail);
  reserve(p);
  done_[di] = 1;
}

Assignment Pass::run(bool detail_all, size_t explain_only) {
  instances_.reserve(daemons_.size() * 2);
  // The requests are the caller's, one after another in memory but visited in name order:
  // fetch the next ones' lines ahead of place() (it reads name, resources, placement, pins).
  constexpr size_t kAhead = 4;
  auto prefetch = [&](size_t k) {
    if (k >= order_.size()) return;
    const DaemonRequest* d = daemons_[order_[k]];
    prefetchLine(&d->name);
    prefetchLine(&d->resources);
    prefetchLine(&d->placement);
    prefetchLine(&d->placement.max_per_node);
    prefetchLine(&d->depends_on);
    prefetchLine(&d->pinned);
  };
  for (size_t k = 0; k < kAhead; ++k) prefetch(k);
  for (size_t k = 0; k < order_.size(); ++k) {
    prefetch(k + kAhead);
    const size_t di = order_[k];
    place(di, detail_all || di == explain_only);
  }
  return std::move(out_);
}

}  // namespace meshos::placement::detail
