// AgentCluster, the judging half: ground truth from the simulated machines (processes,
// disks, the admin's commit chain) and the invariants checked on every step.
#include <algorithm>
#include <sstream>

#include "agent/sim/agent_cluster.h"
#include "chains/chain_verify.h"

namespace meshos::sim {

namespace {

// After this long with no fault active, every host up and nothing changed, the cluster
// must have converged: one membership, one commit head.
constexpr int64_t kQuiescenceMs = 60'000;
constexpr int64_t kCommitSpreadMs = 5'000;
// A node may take this long to act on what it learnt (a tick, a stop, a readiness check):
// the replica bound uses the largest count wanted within it.
constexpr int64_t kActWindowMs = 5'000;
// An exit the agent watched must be reaped within this; a live process must be known to
// its host's agent once the agent has run this long.
constexpr int64_t kReapWithinMs = 2'000;
// A host stranded a moment ago still holds what it kept running meanwhile.
constexpr int64_t kStrandedGraceMs = 15'000;
constexpr int64_t kAdoptWithinMs = node::Node::kAdoptionWaitMs + 10'000;

uint32_t wantedBy(const commits::DesiredState& d, const std::string& daemon) {
  auto it = d.daemons.find(daemon);
  if (it == d.daemons.end() || it->second.paused) return 0;
  return static_cast<uint32_t>(std::max<int64_t>(0, it->second.spec.replicas));
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

}  // namespace

std::map<std::string, DaemonActual> AgentCluster::actual() const {
  std::map<std::string, DaemonActual> out;
  const int64_t now = nowMs();
  for (const auto& h : hosts_) {
    for (const auto& [pid, p] : h->runtime().processes()) {
      if (!p.alive || h->isLocalDaemon(p.daemon)) continue;
      DaemonActual& a = out[p.daemon];
      ++a.running_on[h->name()];
      ++a.running;
      if (!p.paused && now >= p.ready_at_ms) {
        ++a.ready_on[h->name()];
        ++a.ready;
      }
    }
  }
  return out;
}

std::vector<size_t> AgentCluster::largestGroup() const {
  std::vector<size_t> best;
  if (groups_.empty()) {
    for (size_t i = 0; i < hosts_.size(); ++i) best.push_back(i);
    return best;
  }
  for (const auto& g : groups_)
    if (g.size() > best.size()) best = g;
  return best;
}

std::set<size_t> AgentCluster::strandedHosts() const {
  std::set<size_t> out = strandedNow();
  const int64_t now = nowMs();
  for (size_t i : out) last_stranded_ms_[i] = now;
  for (size_t i = 0; i < hosts_.size(); ++i)
    if (now - last_stranded_ms_[i] <= kStrandedGraceMs) out.insert(i);
  return out;
}

std::set<size_t> AgentCluster::strandedNow() const {
  std::set<size_t> out;
  const auto majority = largestGroup();
  std::set<size_t> in_majority(majority.begin(), majority.end());
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (!hosts_[i]->up() || in_majority.count(i) == 0 || hosts_[i]->slowMs() > 0) out.insert(i);
  }
  // Seen not alive by an up member of the majority: its instances are being replaced.
  for (size_t i : majority) {
    const node::Node* n = hosts_[i]->node();
    if (n == nullptr || !hosts_[i]->up()) continue;
    const auto& members = n->state().members;
    for (size_t j = 0; j < hosts_.size(); ++j) {
      auto it = members.find(hosts_[j]->id());
      if (it != members.end() && it->second.state != state::MemberState::kAlive) out.insert(j);
    }
  }
  return out;
}

// No daemon runs more instances than its replicas plus the make-before-break allowance
// (one extra per instance on the move: at most replicas more), counting only hosts that
// are not stranded. "Its replicas" is the largest count any up node wanted within the last
// kActWindowMs: nodes learn commits at different moments and act on their next tick.
Status AgentCluster::checkReplicaBound() {
  const int64_t now = nowMs();
  std::map<std::string, uint32_t> wanted_now;
  for (const auto& h : hosts_) {
    const node::Node* n = h->node();
    if (n == nullptr || n->commitLog() == nullptr) continue;
    const auto& d = n->commitLog()->desired();
    for (const auto& [name, dd] : d.daemons) wanted_now[name] = std::max(wanted_now[name], wantedBy(d, name));
  }
  wanted_history_.emplace_back(now, std::move(wanted_now));
  while (wanted_history_.size() > 1 && wanted_history_.front().first < now - kActWindowMs) wanted_history_.pop_front();
  std::map<std::string, uint32_t> wanted;
  for (const auto& [t, m] : wanted_history_)
    for (const auto& [name, r] : m) wanted[name] = std::max(wanted[name], r);
  const auto stranded = strandedHosts();
  std::map<std::string, uint32_t> live;
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (stranded.count(i) != 0) continue;
    for (const auto& [name, count] : hosts_[i]->runtime().liveByDaemon())
      if (!hosts_[i]->isLocalDaemon(name)) live[name] += count;
  }
  for (const auto& [name, count] : live) {
    // Removed everywhere for longer than the window: none may run.
    const uint32_t bound = wanted.count(name) != 0 ? wanted.at(name) : 0;
    if (count > 2 * bound)
      return Status::internal(name + " runs " + std::to_string(count) + " instances on hosts in good standing, over " +
                              std::to_string(bound) + " replicas + " + std::to_string(bound) + " on the move");
  }
  return Status::ok();
}

Status AgentCluster::checkExecutors() const {
  for (const auto& h : hosts_) {
    const node::Node* n = h->node();
    if (n == nullptr) continue;
    const auto& e = n->executor();
    const auto& c = e.counters();
    const uint64_t ended = c.succeeded + c.failed + c.expired + c.abandoned;
    const uint64_t waiting = e.queued() + e.retrying() + e.inFlight();
    if (c.admitted != ended + waiting)
      return Status::internal(h->name() + ": executor lost track of an action (admitted " + std::to_string(c.admitted) +
                              ", ended " + std::to_string(ended) + ", waiting " + std::to_string(waiting) + ")");
  }
  return Status::ok();
}

Status AgentCluster::checkProcesses() const {
  const int64_t now = nowMs();
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const SimHost& h = *hosts_[i];
    if (!h.up() || agent_started_ms_[i] < 0) continue;
    const int64_t since = agent_started_ms_[i];
    const auto known = h.runtime().instances();
    for (const auto& [pid, p] : h.runtime().processes()) {
      if (!p.alive && !p.reaped && p.exited_ms > since && now - p.exited_ms > kReapWithinMs)
        return Status::internal(h.name() + ": the exit of " + p.instance + " (pid " + std::to_string(pid) +
                                ") was not reaped after " + std::to_string(now - p.exited_ms) + " ms");
      if (p.alive && now - since > kAdoptWithinMs &&
          std::find(known.begin(), known.end(), p.instance) == known.end())
        return Status::internal(h.name() + ": " + p.instance + " (pid " + std::to_string(pid) +
                                ") runs, but the agent that started " + std::to_string(now - since) +
                                " ms ago does not manage it");
    }
  }
  return Status::ok();
}

Status AgentCluster::checkAckedSurvived(size_t i) const {
  const node::Node* n = hosts_[i]->node();
  if (n == nullptr || n->database() == nullptr) return Status::ok();
  for (const auto& [chain, acked] : acked_[i]) {
    auto head = n->database()->head(chain);
    if (!head) return head.status().withContext(hosts_[i]->name());
    if (head->seq < acked.first)
      return Status::internal(hosts_[i]->name() + ": chain " + std::string(chains::chainNameString(chain)) +
                              " lost acknowledged records: head " + std::to_string(head->seq) + ", acked " +
                              std::to_string(acked.first));
    auto rec = n->database()->get(chain, acked.first);
    if (!rec || rec->hash != acked.second)
      return Status::internal(hosts_[i]->name() + ": chain " + std::string(chains::chainNameString(chain)) +
                              " record " + std::to_string(acked.first) + " differs from the one acknowledged");
  }
  return Status::ok();
}

Status AgentCluster::checkInvariants() {
  ++figures_.invariant_checks;
  if (!violation_.empty()) return Status::internal(violation_);
  for (size_t i = 0; i < hosts_.size(); ++i) {
    // A new agent: what its predecessor acknowledged must be on the disk it reopened.
    if (!check_acked_[i]) continue;
    check_acked_[i] = false;
    if (hosts_[i]->running()) MESHOS_RETURN_IF_ERROR(checkAckedSurvived(i));
  }
  MESHOS_RETURN_IF_ERROR(checkReplicaBound());
  MESHOS_RETURN_IF_ERROR(checkExecutors());
  MESHOS_RETURN_IF_ERROR(checkProcesses());
  MESHOS_RETURN_IF_ERROR(checkRolloutReady());
  bool all_up = std::all_of(hosts_.begin(), hosts_.end(), [](const auto& h) { return h->up(); });
  // Outside node loss and partitions (a side that sees the other dead rolls on alone).
  if (all_up && !anyFaultActive() && groups_.empty() && nowMs() - quiet_since_ms_ >= kQuiescenceMs) {
    MESHOS_RETURN_IF_ERROR(checkRollouts());
  }
  // A commit made a moment ago has not reached every host yet (a few gossip rounds).
  if (all_up && !anyFaultActive() && groups_.empty() && nowMs() - quiet_since_ms_ >= kQuiescenceMs &&
      nowMs() - last_commit_ms_ >= kCommitSpreadMs) {
    MESHOS_RETURN_IF_ERROR(checkConverged().withContext("quiet for " + std::to_string(nowMs() - quiet_since_ms_) + " ms"));
  }
  return Status::ok();
}

Status AgentCluster::checkRollouts() {
  for (const auto& [name, d] : desired().daemons) {
    const uint64_t target = reconcile::specVersion(d.spec);
    std::vector<std::string> updating;
    for (const auto& h : hosts_) {
      const node::Node* n = h->node();
      if (n == nullptr) continue;
      if (auto v = n->updatingTo(name); v && *v == target) updating.push_back(h->name());
    }
    figures_.rollout_checks += !updating.empty();
    if (static_cast<int64_t>(updating.size()) > d.spec.update.max_unavailable) {
      return Status::internal("rollout of " + name + ": " + std::to_string(updating.size()) + " nodes replace it at once (" +
                              join(updating) + "), max_unavailable " + std::to_string(d.spec.update.max_unavailable));
    }
  }
  return Status::ok();
}

// Rollouts, from ground truth: on the hosts in good standing, no more than max_unavailable
// instances of a daemon are down for a replacement at once. Down for a replacement: the
// agent stopped the previous process of the instance (a stop it asked for) and its successor,
// started on a changed spec within kReplaceGapMs without the instance being let go between
// (a move away and back), is not ready yet; or it is stopped and the agent still manages the
// instance (the new one not started yet). An exit nobody asked for
// (a crash) and hosts lost or cut off are node loss, not the rollout's. With every other
// placed instance ready, that is: ready >= replicas - max_unavailable.
Status AgentCluster::checkRolloutReady() {
  constexpr int64_t kReplaceGapMs = 5'000;
  const int64_t now = nowMs();
  const auto stranded = strandedHosts();
  std::map<std::string, std::vector<std::string>> replacing;  // daemon -> host/instance
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (stranded.count(i) != 0 || !hosts_[i]->up()) continue;
    const SimRuntime& rt = hosts_[i]->runtime();
    const auto managed = rt.instances();
    std::map<std::string, std::vector<const SimProcess*>> lives;  // by instance, in start order (pids grow)
    for (const auto& [pid, p] : rt.processes()) lives[p.instance].push_back(&p);
    for (const auto& [instance, list] : lives) {
      const SimProcess& last = *list.back();
      const SimProcess* prev = list.size() >= 2 ? list[list.size() - 2] : nullptr;
      bool down = false;
      if (last.alive) {
        const int64_t removed = rt.removedAtMs(instance);
        const bool moved = prev != nullptr && removed >= prev->exited_ms && removed < last.started_ms;
        down = prev != nullptr && prev->stop_requested && !moved && now < last.ready_at_ms && !last.paused &&
               last.started_ms - prev->exited_ms <= kReplaceGapMs &&
               reconcile::specVersion(prev->spec) != reconcile::specVersion(last.spec);
      } else {
        down = last.stop_requested && std::find(managed.begin(), managed.end(), instance) != managed.end();
      }
      if (down) replacing[last.daemon].push_back(hosts_[i]->name() + "/" + instance);
    }
  }
  for (const auto& [name, where] : replacing) {
    auto d = desired().daemons.find(name);
    if (d == desired().daemons.end()) continue;
    figures_.rollout_down_seen += 1;
    if (static_cast<int64_t>(where.size()) > d->second.spec.update.max_unavailable) {
      return Status::internal(name + ": " + std::to_string(where.size()) + " instances down for a replacement at once (" +
                              join(where) + "), max_unavailable " +
                              std::to_string(d->second.spec.update.max_unavailable));
    }
  }
  return Status::ok();
}

Status AgentCluster::checkAllUp() const {
  for (const auto& h : hosts_)
    if (!h->up()) return Status::unavailable(h->name() + " is not up");
  return Status::ok();
}

Status AgentCluster::checkConverged() const {
  const commits::Head want = reference_.head();
  for (const auto& a : hosts_) {
    const node::Node* n = a->node();
    if (n == nullptr || !a->up()) continue;
    if (n->commitLog() == nullptr || n->gossip() == nullptr) return Status::internal(a->name() + " is not started");
    const commits::Head head = n->commitLog()->head();
    if (head.seq != want.seq || head.hash != want.hash)
      return Status::internal(a->name() + " is at commit " + std::to_string(head.seq) + ", the admin at " +
                              std::to_string(want.seq));
    // Once the disk has room again, the node is whole: not degraded, every commit stored.
    if (n->storageFailing()) return Status::internal(a->name() + " still reports its storage failing");
    auto stored = n->commitStore()->loadHead();
    const uint64_t stored_seq = stored && stored->has_value() ? (*stored)->seq : 0;
    if (!stored || stored_seq != head.seq)
      return Status::internal(a->name() + " stored commit head is " +
                              (stored ? std::to_string(stored_seq) : stored.status().toString()) + ", its log at " +
                              std::to_string(head.seq));
    std::map<std::string, gossip::MemberInfo> seen;
    for (const auto& m : n->gossip()->members()) seen[m.id] = m;
    for (const auto& b : hosts_) {
      if (a.get() == b.get() || b->starts() == 0) continue;
      auto it = seen.find(b->id());
      const bool alive = it != seen.end() && it->second.state == gossip::MemberState::kAlive;
      if (b->up() && (!alive || it->second.address != b->address()))
        return Status::internal(a->name() + " does not see " + b->name() + " alive");
      if (!b->running() && alive) return Status::internal(a->name() + " sees " + b->name() + " alive, but it is down");
    }
  }
  return Status::ok();
}

bool AgentCluster::labelsFit(const spec::DaemonSpec& spec, const HostSetup& n) {
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

Status AgentCluster::checkFeasible() const {
  const auto& daemons = desired().daemons;
  for (const auto& h : hosts_) {
    for (const auto& [name, count] : h->runtime().liveByDaemon()) {
      auto it = daemons.find(name);
      if (it == daemons.end()) continue;  // removed: checkAtReplicas() judges the stop
      const spec::DaemonSpec& s = it->second.spec;
      if (!labelsFit(s, h->setup()))
        return Status::internal(name + " runs on " + h->name() + ", which does not meet its constraints");
      if (s.placement.max_per_node > 0 && count > static_cast<uint64_t>(s.placement.max_per_node))
        return Status::internal(name + " runs " + std::to_string(count) + " instances on " + h->name() +
                                " (max_per_node " + std::to_string(s.placement.max_per_node) + ")");
    }
  }
  return Status::ok();
}

Status AgentCluster::checkAtReplicas(bool at_least) const {
  const auto act = actual();
  const auto& d = desired();
  for (const auto& [name, a] : act)
    if (d.daemons.count(name) == 0)
      return Status::internal(name + " is no longer desired but runs " + std::to_string(a.running) + " instances");
  for (const auto& [name, dd] : d.daemons) {
    const uint32_t wanted = wantedBy(d, name);
    size_t feasible = 0;
    for (const auto& h : hosts_)
      if (h->up() && d.maintenance.count(h->name()) == 0 && labelsFit(dd.spec, h->setup())) ++feasible;
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
                            " hosts) on " + std::to_string(a.running_on.size()) + " hosts");
  }
  return Status::ok();
}

Status AgentCluster::checkResources() const {
  for (const auto& h : hosts_) {
    int64_t cpu = 0, mem = 0;
    for (const auto& [pid, p] : h->runtime().processes()) {
      if (!p.alive) continue;
      cpu += p.spec.resources.cpu_millicores;
      mem += p.spec.resources.memory_bytes;
    }
    if (cpu > h->setup().cpu_millicores || mem > h->setup().memory_bytes)
      return Status::internal(h->name() + " holds " + std::to_string(cpu) + "m cpu / " + std::to_string(mem) +
                              " bytes, over its capacity " + std::to_string(h->setup().cpu_millicores) + "m / " +
                              std::to_string(h->setup().memory_bytes));
  }
  return Status::ok();
}

Status AgentCluster::checkSameAssignment() const {
  const SimHost* first = nullptr;
  for (const auto& h : hosts_) {
    if (!h->up() || h->node()->plan().decisions.empty()) continue;
    if (first == nullptr) {
      first = h.get();
      continue;
    }
    const auto& a = first->node()->plan().decisions;
    const auto& b = h->node()->plan().decisions;
    if (a.size() != b.size())
      return Status::internal(first->name() + " plans " + std::to_string(a.size()) + " daemons, " + h->name() + " " +
                              std::to_string(b.size()));
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].daemon == b[i].daemon && a[i].assigned == b[i].assigned) continue;
      return Status::internal("assignments differ for " + a[i].daemon + ": " + first->name() + " [" +
                              join(a[i].assigned) + "] vs " + h->name() + " [" + join(b[i].assigned) + "]");
    }
  }
  return Status::ok();
}

Status AgentCluster::checkChains() const {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const node::Node* n = hosts_[i]->node();
    if (n == nullptr || n->database() == nullptr) continue;
    MESHOS_RETURN_IF_ERROR(checkAckedSurvived(i));
    for (chains::ChainName c : chains::kAllChains) {
      chains::VerifyTuning one_thread;
      one_thread.threads = 1;
      auto report = chains::verifyChain(*n->database(), c, {}, std::nullopt, {}, 1 << 18, one_thread);
      if (!report.ok)
        return Status::corruption(hosts_[i]->name() + ": chain " + std::string(chains::chainNameString(c)) +
                                  " does not verify at seq " + std::to_string(report.bad_seq) + ": " + report.detail);
    }
  }
  return Status::ok();
}

std::string AgentCluster::describe() const {
  std::ostringstream os;
  const auto act = actual();
  for (const auto& [name, dd] : desired().daemons) {
    os << "  " << name << " x" << dd.spec.replicas << (dd.paused ? " (paused)" : "") << ":";
    auto it = act.find(name);
    if (it != act.end()) {
      for (const auto& [host, cnt] : it->second.running_on) {
        auto r = it->second.ready_on.find(host);
        os << " " << host << "(" << cnt << "/" << (r != it->second.ready_on.end() ? r->second : 0) << ")";
      }
    }
    os << "\n";
  }
  for (const auto& [name, a] : act)
    if (desired().daemons.count(name) == 0) os << "  " << name << " (removed): " << a.running << " running\n";
  for (const auto& h : hosts_) {
    os << "  " << h->name() << ": " << (h->up() ? "up" : h->running() ? "stopping" : "down");
    if (const node::Node* n = h->node(); n != nullptr && n->commitLog() != nullptr)
      os << ", commit " << n->commitLog()->head().seq;
    if (h->disk().full()) os << ", disk full";
    if (const node::Node* n = h->node(); n != nullptr && n->supervisor() != nullptr) {
      os << ", managing " << h->runtime().instances().size() << " instance(s)";
      if (n->supervisor()->awaitingAdoption() > 0) os << ", " << n->supervisor()->awaitingAdoption() << " awaiting adoption";
      os << ", set generation " << n->state().desired_set_generation << "/" << n->state().applied_set_generation;
      os << (n->plan().agreed ? ", view agreed" : ", view not agreed");
      for (const auto& [id, inst] : n->state().instances) os << " [" << id << " " << state::instanceStateName(inst.state) << "]";
    }
    if (h->slowMs() > 0) os << ", slow " << h->slowMs() << " ms";
    os << "\n";
  }
  return os.str();
}

}  // namespace meshos::sim
