// Node, rollouts: when a commit changes what a placed daemon runs, this node replaces its
// instance only when reconcile::decideRollout says it is its turn (agent/reconcile/rollout.h);
// until then it keeps running the spec it has. A new instance that misses the progress
// deadline marks the version failed in this node's state: every node then pauses the
// rollout, or (on_failure = "rollback") returns to the spec it ran before. Every step is in
// the log chain.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "agent/node/node.h"
#include "agent/reconcile/rollout_record.h"

namespace meshos::node {

// What the previous agent ran of each daemon mid-rollout: kept, so a restart neither jumps
// the turn order nor forgets what to roll back to. A record that does not decode is said
// and skipped (the daemon then starts from the commit's spec, as a fresh node would).
void Node::loadRollouts() {
  std::vector<std::pair<std::string, std::string>> found;
  Status s = store_->scanState(reconcile::kRolloutKeyPrefix, [&](std::string_view key, std::string_view value) {
    found.emplace_back(std::string(key.substr(reconcile::kRolloutKeyPrefix.size())), std::string(value));
    return true;
  });
  if (!s) spdlog::warn("rollouts: cannot read what this node ran before: {}", s.toString());
  for (const auto& [daemon, value] : found) {
    auto r = reconcile::decodeRolloutRecord(value);
    if (!r) {
      spdlog::warn("rollouts: the record of {} does not decode ({}); it starts from the commit's spec", daemon,
                   r.status().toString());
      continue;
    }
    rollout_saved_[daemon] = *r;
    RolloutRun run;
    static_cast<reconcile::RolloutRecord&>(run) = std::move(*r);
    rollouts_[daemon] = std::move(run);
  }
}

void Node::saveRollout(const std::string& daemon, const RolloutRun& run) {
  const reconcile::RolloutRecord& record = run;
  // Unchanged since stored: no synced write (this runs at every replan).
  if (auto it = rollout_saved_.find(daemon); it != rollout_saved_.end() && it->second == record) return;
  Status s = store_->putState(std::string(reconcile::kRolloutKeyPrefix) + daemon, reconcile::encodeRolloutRecord(record));
  if (!s) {
    noteStorageFailure(s, "storing a rollout step");
    return;  // tried again at the next replan; until then a restart starts from the commit's spec
  }
  rollout_saved_[daemon] = record;
}

void Node::forgetRollout(const std::string& daemon) {
  rollout_saved_.erase(daemon);
  Status s = store_->deleteState(std::string(reconcile::kRolloutKeyPrefix) + daemon);
  if (!s) noteStorageFailure(s, "forgetting a rollout");
}

reconcile::RolloutInputs Node::rolloutInputs(const std::string& daemon, const spec::DaemonSpec& commit_spec) const {
  reconcile::RolloutInputs in;
  in.daemon = daemon;
  in.target = reconcile::specVersion(commit_spec);
  in.self_id = identity_.id;
  in.strategy = commit_spec.update;
  in.now_wall_ms = env_.clock.wallMs();
  std::set<std::string> names;
  for (const auto& d : plan_.decisions) {
    if (d.daemon != daemon) continue;
    names.insert(d.assigned.begin(), d.assigned.end());
    names.insert(d.running_on.begin(), d.running_on.end());
  }
  if (rollouts_.count(daemon)) names.insert(config_.node.name);  // it runs here, assigned or not
  for (const auto& [id, m] : state_.members) {
    if (names.count(m.name) == 0 || m.state == state::MemberState::kLeft) continue;
    const state::NodeReport* report = nullptr;
    if (id == identity_.id) {
      report = &self_report_;
    } else if (auto it = state_.peer_states.find(id); it != state_.peer_states.end()) {
      report = &it->second.report;
    }
    const state::DaemonReport* d = nullptr;
    if (report != nullptr) {
      auto it = report->daemons.find(daemon);
      if (it != report->daemons.end()) d = &it->second;
    }
    in.nodes.push_back({id, m.name, d});
  }
  return in;
}

// Which spec this node runs for each placed daemon: the commit's, or (mid-rollout, not its
// turn, or the rollout halted) the one it runs now.
std::vector<spec::DaemonSpec> Node::gateRollouts(std::vector<spec::DaemonSpec> placed) {
  rollout_pending_ = false;
  std::set<std::string> here;
  for (auto& s : placed) {
    here.insert(s.name);
    auto d = commit_log_->desired().daemons.find(s.name);
    if (d == commit_log_->desired().daemons.end()) continue;
    const spec::DaemonSpec& commit_spec = d->second.spec;
    const uint64_t target = reconcile::specVersion(commit_spec);
    auto [it, fresh] = rollouts_.try_emplace(s.name);
    RolloutRun& run = it->second;
    if (fresh || !runsHere(s.name)) {  // nothing runs here (yet): nothing to replace
      run = RolloutRun{};
      run.version = target;
      run.spec = s;
      saveRollout(s.name, run);
      continue;
    }
    if (run.version == target) {
      if (rollbackDue(s.name, commit_spec, run)) {
        saveRollout(s.name, run);
        s = withReplicas(run.spec, s.replicas);
        continue;
      }
      run.spec = s;
      checkProgress(s.name, commit_spec, run);
      saveRollout(s.name, run);
      continue;
    }
    const auto in = rolloutInputs(s.name, commit_spec);
    const auto decision = reconcile::decideRollout(in);
    if (decision.step != reconcile::RolloutStep::kUpdate) {
      rollout_pending_ = rollout_pending_ || decision.step == reconcile::RolloutStep::kWait;
      s = withReplicas(run.spec, s.replicas);
      continue;
    }
    spdlog::info("rollout of {}: this node moves from {} to {}", s.name, state::versionText(run.version),
                 state::versionText(target));
    record(chains::ChainName::kLog, "rollout.update",
           {{"daemon", s.name}, {"from", state::versionText(run.version)}, {"to", state::versionText(target)},
            {"order", decision.order}, {"done", decision.done}});
    run.previous = run.spec;
    run.previous_version = run.version;
    run.version = target;
    run.spec = s;
    run.updated_ms = nowMs();
    run.old_pids.clear();
    for (const auto& [id, inst] : state_.instances) {
      if (inst.daemon == s.name && inst.pid > 0) run.old_pids.insert(inst.pid);
    }
    saveRollout(s.name, run);
    rollout_pending_ = true;
  }
  for (auto it = rollouts_.begin(); it != rollouts_.end();) {
    // Kept while an instance runs here, placed or not: an agent that just restarted places
    // nothing until it has heard its peers, and its adopted instance still runs this spec.
    if (here.count(it->first) || runsHere(it->first)) {
      ++it;
      continue;
    }
    forgetRollout(it->first);
    it = rollouts_.erase(it);
  }
  return placed;
}

bool Node::runsHere(const std::string& daemon) const {
  for (const auto& [id, inst] : state_.instances)
    if (inst.daemon == daemon) return true;
  return supervisor_ && supervisor_->awaitingAdoption(daemon);
}

spec::DaemonSpec Node::withReplicas(spec::DaemonSpec s, int64_t replicas) {
  s.replicas = replicas;
  return s;
}

// A new version not ready within the progress deadline: failed here, for everyone to see.
void Node::checkProgress(const std::string& daemon, const spec::DaemonSpec& commit_spec, RolloutRun& run) {
  if (run.updated_ms < 0) return;
  // Ready on the new version: a ready process that is not one of the old version's.
  const bool ready = std::any_of(state_.instances.begin(), state_.instances.end(), [&](const auto& e) {
    const state::Instance& i = e.second;
    return i.daemon == daemon && i.state == state::InstanceState::kReady && i.pid > 0 && run.old_pids.count(i.pid) == 0;
  });
  if (ready) {
    run.updated_ms = -1;
    run.old_pids.clear();
    ready_since_ms_[daemon] = env_.clock.wallMs();  // min_ready_ms counts from now, not from the old one
    record(chains::ChainName::kLog, "rollout.ready", {{"daemon", daemon}, {"version", state::versionText(run.version)}});
    return;
  }
  rollout_pending_ = true;
  if (nowMs() - run.updated_ms < commit_spec.update.progress_deadline_ms) return;
  run.updated_ms = -1;
  run.failed_version = run.version;
  spdlog::warn("rollout of {}: version {} not ready within {} ms here: the rollout stops ({})", daemon,
               state::versionText(run.version), commit_spec.update.progress_deadline_ms,
               spec::onUpdateFailureName(commit_spec.update.on_failure));
  record(chains::ChainName::kFailure, "rollout.failed",
         {{"daemon", daemon}, {"version", state::versionText(run.version)},
          {"progress_deadline_ms", commit_spec.update.progress_deadline_ms},
          {"on_failure", spec::onUpdateFailureName(commit_spec.update.on_failure)}});
}

// Rollback: the target failed somewhere and this node runs it: back to what it ran before.
bool Node::rollbackDue(const std::string& daemon, const spec::DaemonSpec& commit_spec, RolloutRun& run) {
  if (commit_spec.update.on_failure != spec::OnUpdateFailure::kRollback || !run.previous) return false;
  if (run.failed_version != run.version) {
    const auto decision = reconcile::decideRollout(rolloutInputs(daemon, commit_spec));
    if (decision.step != reconcile::RolloutStep::kHalted) return false;
  }
  spdlog::warn("rollout of {}: rolls back from {} to {}", daemon, state::versionText(run.version),
               state::versionText(run.previous_version));
  record(chains::ChainName::kLog, "rollout.rollback",
         {{"daemon", daemon}, {"from", state::versionText(run.version)}, {"to", state::versionText(run.previous_version)}});
  run.version = run.previous_version;
  run.spec = *run.previous;
  run.previous.reset();
  run.updated_ms = -1;
  return true;
}

nlohmann::json Node::rolloutJson(const std::string& daemon) const {
  auto d = commit_log_->desired().daemons.find(daemon);
  if (d == commit_log_->desired().daemons.end()) return nullptr;
  const auto in = rolloutInputs(daemon, d->second.spec);
  auto j = reconcile::rolloutToJson(in, reconcile::decideRollout(in));
  auto it = rollouts_.find(daemon);
  j["here"] = it == rollouts_.end() ? nlohmann::json(nullptr)
                                    : nlohmann::json{{"version", state::versionText(it->second.version)},
                                                     {"updating", it->second.updated_ms >= 0}};
  return j;
}

}  // namespace meshos::node
