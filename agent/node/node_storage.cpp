// Node, storage faults: what the node does while its database refuses writes (a full disk,
// an I/O error, a database that could only be opened read-only at start). It runs on:
// gossips, supervises and answers reads. It reports itself degraded (the snapshot's
// "storage" section, its node state and so `members`, the metrics), refuses the requests it
// would have to audit, and resumes by itself at the first chain write that succeeds.
// Nothing acknowledged is lost: the chain writer retries its batch (on a reopened database)
// and accepted commits wait in unstored_commits_. Everything here runs on the loop thread.
#include <spdlog/spdlog.h>

#include "agent/node/node.h"

namespace meshos::node {

void Node::onChainAcked(const chains::AckEvent& ev) {
  state::fold(state_, state::ChainFlushed{std::string(chains::chainNameString(ev.chain)), ev.last_seq});
  if (observer_.on_chain_acked) observer_.on_chain_acked(ev.chain, ev.last_seq, ev.last_hash);
  if (!storage_failure_) return;
  const int64_t failed_for_ms = nowMs() - storage_failure_->since_ms;
  spdlog::warn("chain writes resumed after {} ms; the node is no longer degraded", failed_for_ms);
  storage_failure_.reset();
  record(chains::ChainName::kFailure, "storage.resumed", {{"failed_for_ms", failed_for_ms}});
  retryStorageWrites();
  snapshot_stale_ = true;
  publishNodeState();
}

void Node::onChainWriteFailed(const chains::WriteFailure& f) {
  ++chain_write_failures_;
  noteStorageFailure(f.status, "chain write of " + std::to_string(f.records) + " records");
}

void Node::noteStorageFailure(const Status& s, std::string_view what) {
  if (storage_failure_) {
    storage_failure_->error = s.message();
    if (nowMs() - storage_failure_->reported_ms >= kStorageReportEveryMs) {
      storage_failure_->reported_ms = nowMs();
      spdlog::error("storage still failing after {} ms ({}): {}", nowMs() - storage_failure_->since_ms, what,
                    s.toString());
    }
    return;
  }
  storage_failure_ = StorageFailure{s.message(), nowMs(), nowMs()};
  spdlog::error("{} failed: {}; the node runs degraded, refuses requests it must audit, and retries "
                "until a write succeeds", what, s.toString());
  // Queued like any record, so written once writes resume: the outage is on record. It
  // also sets the chain writer going, whose retries reopen the database.
  record(chains::ChainName::kFailure, "storage.failed", {{"what", what}, {"error", s.toString()}});
  snapshot_stale_ = true;
  publishNodeState();
}

void Node::storeCommits(commits::StoreWrites writes) {
  // Appended after what still waits, so a head is never stored ahead of its commits.
  commits::StoreWrites& w = unstored_commits_;
  for (auto& c : writes.commits) w.commits.push_back(std::move(c));
  if (writes.head) w.head = writes.head;
  if (w.empty()) return;
  if (Status s = commits::applyStoreWrites(*commit_store_, w); !s) {
    noteStorageFailure(s, "storing " + std::to_string(w.commits.size()) + " accepted commits");
    return;
  }
  w = {};
}

void Node::retryStorageWrites() {
  if (!storage_failure_ && !unstored_commits_.empty()) storeCommits({});
}

Status Node::auditRefusal() const {
  if (!storage_failure_) return Status::ok();
  const std::string& e = storage_failure_->error;
  const std::string cause = e.find("disk full") != std::string::npos ? "disk full" : "storage failing (" + e + ")";
  return Status::unavailable(cause + ": the audit chain cannot record this; refused");
}

nlohmann::json Node::storageJson() const {
  nlohmann::json j = {{"failing", storage_failure_ ? 1 : 0},
                      {"write_failures", chain_write_failures_},
                      {"audit_refusals", audit_refusals_},
                      {"unstored_commits", unstored_commits_.commits.size()}};
  if (storage_failure_) {
    j["error"] = storage_failure_->error;
    j["failing_for_ms"] = nowMs() - storage_failure_->since_ms;
  }
  return j;
}

}  // namespace meshos::node
