// Node, the commit half: the commit log (opened from the store, its outputs carried out)
// and commit spreading between agents (commits::CommitSync over the gossip app channels
// "commits.push" and "commits.get"; peer heads from the NodeReports gossip carries).
// Everything here runs on the loop thread.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/commits/commit_json.h"
#include "agent/commits/commit_sync.h"
#include "agent/node/node.h"

namespace meshos::node {

namespace {
// Commit sync steps after every push, reply and accepted commit, and soon after a member
// or a peer's node state changes (a new head to fetch); otherwise when a retry falls due,
// but not sooner than kCommitSyncRetryMs (a due fetch may wait for a fetch slot or for the
// same range from another peer). Each step sets the next one, so with nothing due it
// comes only every kCommitSyncIdleMs, a safety net: an idle agent does not wake for it.
constexpr int64_t kCommitSyncRetryMs = 100;
constexpr int64_t kCommitSyncIdleMs = 30'000;
}  // namespace

Status Node::openCommits() {
  commits::CommitLogConfig lc;
  lc.cluster_id = config_.gossip.cluster;
  if (config_.trust.admins.empty()) {
    // No admins: the node runs its local daemons, and every commit is rejected (unknown key).
    spdlog::warn("no [trust] admins: commits will be refused until admins are configured");
  } else {
    auto trust = commits::trustFromConfig(config_.trust.admins, config_.trust.threshold);
    if (!trust) return trust.status();
    lc.genesis_trust = *trust;
  }
  commit_log_ = std::make_unique<commits::CommitLog>(lc);
  commit_store_ = std::make_unique<commits::CommitStore>(*store_);
  commits::LogOutput out;
  Status loaded = commits::loadCommitLog(*commit_store_, *commit_log_, out);
  if (!loaded) {
    // A corrupt tail: the good prefix is kept; peers will supply the rest.
    spdlog::error("commit log: {}", loaded.toString());
    record(chains::ChainName::kFailure, "commits.load", {{"error", loaded.toString()}});
  }
  out.store = {};  // just read back: nothing to write
  out.announce.clear();  // peers had them already
  out.state_changed = true;
  commitOutput(out);
  spdlog::info("commit log at seq {}", commit_log_->head().seq);
  return Status::ok();
}

void Node::commitOutput(commits::LogOutput& out, const std::string& pushed_by) {
  for (const auto& rec : out.audit) {
    auto t = chains_->append(chains::ChainName::kAudit, commits::auditKind(rec), commits::auditPayload(rec));
    if (!t) spdlog::warn("commit audit record not appended: {}", t.status().toString());
  }
  // Synced writes of the (rare) accepted commits. One that cannot be stored now (a full
  // disk) is kept and stored again once writes resume: see retryStorageWrites().
  storeCommits(std::move(out.store));
  if (out.state_changed) {
    auto head = commit_log_->head();
    state::fold(state_, state::CommitReceived{head.seq, toHex(head.hash)});
    publishEvent("commits", {{"seq", head.seq}, {"hash", toHex(head.hash)}});
    // The daemons this node runs follow on the next tick: planPlacement() places them.
    commits_json_ = commits::commitLogToJson(*commit_log_);
  }
  // New commits on our chain go to the peers at once (not back to the one that pushed them).
  if (commit_sync_ && !out.announce.empty()) {
    commit_sync_->announce(out.announce, pushed_by);
    commitSyncStep();
  }
}

// ---------------------------------------------------------------- spreading

void Node::openCommitSync() {
  if (!gossip_ || !commit_log_) return;
  commits::SyncOptions so;
  so.max_range = commit_log_->config().max_range;
  commit_sync_ = std::make_unique<commits::CommitSync>(so, Rng(env_.rng.next()));
  gossip_->onAppStream(commits::kGetChannel, [this](const std::string&, ByteView request) -> Result<Bytes> {
    if (stopping_ || !commit_sync_) return Status::unavailable("agent shutting down");
    return commit_sync_->serveGet(request, *commit_log_);
  });
  gossip_->onAppStream(commits::kPushChannel, [this](const std::string& from, ByteView request) -> Result<Bytes> {
    if (stopping_ || !commit_sync_) return Status::unavailable("agent shutting down");
    commits::LogOutput out;
    auto served = commit_sync_->servePush(from, request, *commit_log_, out);
    commitOutput(out, from);  // audit even when the push was refused as a whole
    if (!served) return served.status();
    return std::move(served->reply);
  });
  scheduleCommitSync(0);
}

void Node::scheduleCommitSync(int64_t delay_ms) {
  if (commit_sync_timer_ != 0) env_.timers.cancel(commit_sync_timer_);
  commit_sync_timer_ = env_.timers.after(delay_ms, [this] {
    commit_sync_timer_ = 0;
    // Not started (start() failed after openGossip) or stopping: let the loop end.
    if (stopping_ || !started_ || !commit_sync_) return;
    commitSyncStep();
  });
}

void Node::closeCommitSync() {
  if (commit_sync_timer_ != 0) env_.timers.cancel(commit_sync_timer_);
  commit_sync_timer_ = 0;
}

void Node::commitSyncStep() {
  if (!commit_sync_ || !gossip_ || stopping_) return;
  // The alive peers, from the folded membership (not a copy of gossip's table per step):
  // only when it changed.
  if (commit_sync_peers_generation_ != state_.structural_generation) {
    commit_sync_peers_generation_ = state_.structural_generation;
    std::vector<commits::SyncPeer> peers;
    for (const auto& [id, m] : state_.members) {
      if (id != identity_.id && m.state == state::MemberState::kAlive) peers.push_back({id, m.address});
    }
    commit_sync_->setPeers(peers);
  }
  // Peer heads from their node reports (decoded when they arrived); only new versions.
  for (const auto& [id, ps] : state_.peer_states) {
    auto& seen = commit_sync_versions_[id];
    if (seen == ps.version && seen != 0) continue;
    seen = ps.version;
    commits::Head head;
    head.seq = ps.report.commit_seq;
    if (ps.report.commit_hash.size() == head.hash.size()) {
      std::copy(ps.report.commit_hash.begin(), ps.report.commit_hash.end(), head.hash.begin());
    } else if (head.seq != 0) {
      continue;  // a head without its hash is no head
    }
    commit_sync_->setPeerHead(id, head);
  }
  if (commit_sync_versions_.size() > state_.peer_states.size() + 1024) commit_sync_versions_.clear();
  commit_sync_->step(nowMs(), *commit_log_);
  for (auto& r : commit_sync_->takeRequests()) {
    const uint64_t id = r.id;
    gossip_->requestApp(r.address, r.channel, std::move(r.body), [this, id](Result<Bytes> reply) {
      if (stopping_ || !commit_sync_) return;
      commits::LogOutput out;
      commit_sync_->onReply(nowMs(), id, std::move(reply), *commit_log_, out);
      commitOutput(out);
      commitSyncStep();
    });
  }
  const int64_t due = commit_sync_->nextWakeMs(*commit_log_);
  scheduleCommitSync(
      std::clamp<int64_t>(due == INT64_MAX ? kCommitSyncIdleMs : due - nowMs(), kCommitSyncRetryMs, kCommitSyncIdleMs));
}

nlohmann::json Node::commitSyncJson() const {
  nlohmann::json j = commits::syncToJson(*commit_sync_);
  if (gossip_) {
    const auto& c = gossip_->counters();
    j["channels"] = {{"requests_out", c.app_requests_out},        {"replies_ok", c.app_replies_ok},
                     {"failures", c.app_failures},                {"requests_in", c.app_requests_in},
                     {"unknown_channel", c.app_unknown_channel},  {"handler_errors", c.app_handler_errors},
                     {"oversized", c.app_oversized},              {"in_flight", gossip_->appInFlight()},
                     {"rejected", gossip_->shellCounters().app_rejected}};
  }
  return j;
}

}  // namespace meshos::node
