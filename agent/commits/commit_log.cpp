#include "agent/commits/commit_log.h"

#include <algorithm>
#include <cassert>
#include <nlohmann/json.hpp>

namespace meshos::commits {

namespace {
constexpr size_t kRecentRejected = 64;
constexpr size_t kAuditedRejectsMemory = 1024;
std::string shortHash(const Hash256& h) { return toHex(ByteView(h.data(), 8)); }
}  // namespace

std::string_view outcomeName(Outcome o) {
  switch (o) {
    case Outcome::kAccepted:
      return "accepted";
    case Outcome::kPending:
      return "pending";
    case Outcome::kRejected:
      return "rejected";
    case Outcome::kSuperseded:
      return "superseded";
    case Outcome::kDuplicate:
      return "duplicate";
  }
  return "?";
}

std::string_view reasonName(RejectReason r) {
  switch (r) {
    case RejectReason::kNone:
      return "none";
    case RejectReason::kMalformedCommit:
      return "malformed-commit";
    case RejectReason::kWrongCluster:
      return "wrong-cluster";
    case RejectReason::kUnknownKey:
      return "unknown-key";
    case RejectReason::kBadSignature:
      return "bad-signature";
    case RejectReason::kInsufficientSignatures:
      return "insufficient-signatures";
    case RejectReason::kDuplicateSigner:
      return "duplicate-signer";
    case RejectReason::kWrongParent:
      return "wrong-parent";
    case RejectReason::kReplayedSeq:
      return "replayed-seq";
    case RejectReason::kFutureSeq:
      return "future-seq";
    case RejectReason::kMalformedOperation:
      return "malformed-operation";
    case RejectReason::kFrozen:
      return "frozen";
  }
  return "?";
}

std::string auditKind(const AuditRecord& r) {
  return "commit." + std::string(outcomeName(r.outcome));
}

std::string auditPayload(const AuditRecord& r) {
  nlohmann::json j;
  j["hash"] = toHex(r.hash);
  j["seq"] = r.seq;
  j["outcome"] = outcomeName(r.outcome);
  j["reason"] = reasonName(r.reason);
  j["message"] = r.message;
  auto& signers = j["signers"] = nlohmann::json::array();
  for (const auto& k : r.signers) signers.push_back(publicKeyToBase64(k));
  return j.dump();
}

CommitLog::CommitLog(CommitLogConfig config) : config_(std::move(config)) {
  genesis_.trust = config_.genesis_trust;
  state_ = genesis_;
}

std::optional<Hash256> CommitLog::hashAt(uint64_t seq) const {
  if (seq == 0) return Hash256{};
  if (seq > chain_.size()) return std::nullopt;
  return chain_[seq - 1].hash;
}

const Commit* CommitLog::commitAt(uint64_t seq) const {
  if (seq == 0 || seq > chain_.size()) return nullptr;
  return &chain_[seq - 1].commit;
}

std::vector<CommitLog::PendingInfo> CommitLog::pending() const {
  std::vector<PendingInfo> out;
  for (const auto& [h, d] : pending_) out.push_back({h, d.commit.seq, d.commit.parent});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.seq != b.seq ? a.seq < b.seq : a.hash < b.hash;
  });
  return out;
}

SubmitResult CommitLog::record(LogOutput& out, const DecodedCommit* d, const Hash256& hash,
                               uint64_t seq, Outcome outcome, RejectReason reason,
                               std::string message, std::vector<PublicKey> signers) {
  SubmitResult res{outcome, reason, message, hash, seq};
  switch (outcome) {
    case Outcome::kAccepted:
      ++counters_.accepted;
      break;
    case Outcome::kRejected:
      ++counters_.rejected;
      break;
    case Outcome::kSuperseded:
      ++counters_.superseded;
      break;
    case Outcome::kDuplicate:
      ++counters_.duplicates;
      return res;
    case Outcome::kPending:
      return res;
  }
  if (signers.empty() && d != nullptr && outcome != Outcome::kAccepted) {
    for (const auto& s : d->commit.signatures) signers.push_back(s.key_id);
  }
  AuditRecord rec{hash, seq, outcome, reason, std::move(message), std::move(signers)};
  if (outcome != Outcome::kAccepted) {
    recent_rejected_.push_back(rec);
    if (recent_rejected_.size() > kRecentRejected) recent_rejected_.pop_front();
    if (outcome == Outcome::kRejected) {
      // Keyed by the exact bytes: the same body with other signatures is another event.
      const Hash256 key = d != nullptr ? blake2b256(d->encoded) : hash;
      if (audited_rejects_.count(key)) return res;  // audited once already
      audited_rejects_.insert(key);
      audited_rejects_order_.push_back(key);
      if (audited_rejects_order_.size() > kAuditedRejectsMemory) {
        audited_rejects_.erase(audited_rejects_order_.front());
        audited_rejects_order_.pop_front();
      }
    }
  }
  out.audit.push_back(std::move(rec));
  return res;
}

void CommitLog::rememberSuperseded(const Hash256& h) {
  if (!superseded_.insert(h).second) return;
  superseded_order_.push_back(h);
  if (superseded_order_.size() > config_.superseded_memory) {
    superseded_.erase(superseded_order_.front());
    superseded_order_.pop_front();
  }
}

DesiredState CommitLog::foldTo(uint64_t seq) const {
  DesiredState s = genesis_;
  for (uint64_t i = 0; i < seq && i < chain_.size(); ++i) {
    auto next = applyCommitOps(s, chain_[i].commit, chain_[i].hash);
    // Every entry applied when it joined the chain, and the fold is pure.
    assert(next.isOk());
    if (!next) break;
    s = std::move(*next);
  }
  return s;
}

Result<std::vector<PublicKey>> CommitLog::verifySignatures(const DecodedCommit& d,
                                                           const TrustSet& trust,
                                                           RejectReason& reason) const {
  const Commit& c = d.commit;
  std::set<PublicKey> valid;
  size_t unknown = 0, bad = 0, duplicates = 0;
  for (const auto& s : c.signatures) {
    if (!trust.contains(s.key_id)) {
      ++unknown;
      continue;
    }
    if (valid.count(s.key_id)) {
      ++duplicates;
      continue;
    }
    if (verifySignature(s.key_id, d.signing_bytes, s.signature)) {
      valid.insert(s.key_id);
    } else {
      ++bad;
    }
  }
  std::string tally = std::to_string(valid.size()) +
                      " distinct trusted signer(s) verify, threshold " +
                      std::to_string(trust.threshold);
  if (valid.size() < trust.threshold) {
    if (bad > 0) {
      reason = RejectReason::kBadSignature;
      return Status::invalid(std::to_string(bad) + " signature(s) by trusted keys do not verify; " +
                             tally);
    }
    if (duplicates > 0) {
      reason = RejectReason::kDuplicateSigner;
      return Status::invalid(std::to_string(duplicates) +
                             " duplicate signature(s) of the same key count once; " + tally);
    }
    if (unknown > 0 && valid.empty()) {
      reason = RejectReason::kUnknownKey;
      return Status::invalid("signed only by keys outside the trust set (" +
                             std::to_string(unknown) + " signature(s)); " + tally);
    }
    reason = RejectReason::kInsufficientSignatures;
    return Status::invalid(std::to_string(c.signatures.size()) + " signature(s) (" +
                           std::to_string(unknown) + " by unknown keys); " + tally);
  }
  return std::vector<PublicKey>(valid.begin(), valid.end());
}

Result<CommitLog::Verified> CommitLog::verify(const DecodedCommit& d, const DesiredState& at,
                                              RejectReason& reason) const {
  const Commit& c = d.commit;
  auto signers = verifySignatures(d, at.trust, reason);
  if (!signers) return signers.status();
  if (at.freeze && c.issued_at_ms < at.freeze->expires_at_ms) {
    for (size_t i = 0; i < c.operations.size(); ++i) {
      if (!allowedWhileFrozen(c.operations[i])) {
        reason = RejectReason::kFrozen;
        return Status::invalid("frozen until " + std::to_string(at.freeze->expires_at_ms) + " (" +
                               at.freeze->reason + "): operation " + std::to_string(i + 1) + " (" +
                               std::string(operationName(c.operations[i])) +
                               ") is neither thaw nor a trust change");
      }
    }
  }
  auto next = applyCommitOps(at, c, d.hash);
  if (!next) {
    reason = RejectReason::kMalformedOperation;
    return next.status();
  }
  return Verified{std::move(*next), std::move(*signers)};
}

void CommitLog::appendEntry(DecodedCommit d, Verified v, LogOutput& out) {
  out.store.commits.emplace_back(d.commit.seq, d.encoded);
  out.announce.push_back(d.encoded);
  state_ = std::move(v.state);
  chain_.push_back(
      Entry{d.hash, std::move(d.encoded), std::move(d.commit), std::move(v.signers), state_.trust});
  out.store.head = head();
  out.state_changed = true;
}

// A commit ahead of the head waits in the bounded pending set; when the set is full, the
// highest seq is the one to go, since it is the furthest from being appliable.
SubmitResult CommitLog::holdAhead(DecodedCommit d, LogOutput& out) {
  const Hash256 hash = d.hash;
  const uint64_t seq = d.commit.seq;
  const uint64_t head_seq = chain_.size();
  if (seq > head_seq + config_.max_ahead) {
    return record(out, &d, hash, seq, Outcome::kRejected, RejectReason::kFutureSeq,
                  "seq " + std::to_string(seq) + " is more than " +
                      std::to_string(config_.max_ahead) + " ahead of head " +
                      std::to_string(head_seq));
  }
  if (pending_.size() >= config_.max_pending) {
    auto highest = std::max_element(pending_.begin(), pending_.end(), [](auto& a, auto& b) {
      return a.second.commit.seq < b.second.commit.seq;
    });
    if (highest->second.commit.seq <= seq) {
      return record(out, &d, hash, seq, Outcome::kRejected, RejectReason::kFutureSeq,
                    "seq " + std::to_string(seq) + " is ahead of head " +
                        std::to_string(head_seq) + " and the pending set is full (" +
                        std::to_string(config_.max_pending) + ")");
    }
    DecodedCommit evicted = std::move(highest->second);
    pending_.erase(highest);
    ++counters_.pending_evicted;
    record(out, &evicted, evicted.hash, evicted.commit.seq, Outcome::kRejected,
           RejectReason::kFutureSeq, "evicted from the full pending set by a lower seq");
  }
  pending_.emplace(hash, std::move(d));
  return SubmitResult{
      Outcome::kPending, RejectReason::kNone,
      "waiting for seq " + std::to_string(head_seq + 1) + ".." + std::to_string(seq - 1), hash,
      seq};
}

// The newcomer wins: everything from its seq on is superseded, the state re-folds.
SubmitResult CommitLog::winFork(DecodedCommit d, Verified v, const Hash256& incumbent, LogOutput& out) {
  const Hash256 hash = d.hash;
  const uint64_t seq = d.commit.seq;
  const uint64_t head_seq = chain_.size();
  for (uint64_t s = seq; s <= head_seq; ++s) {
    Entry& e = chain_[s - 1];
    rememberSuperseded(e.hash);
    record(out, nullptr, e.hash, s, Outcome::kSuperseded, RejectReason::kNone,
           s == seq ? "lost the fork at seq " + std::to_string(seq) + " to " + shortHash(hash) +
                          " (the lower hash wins)"
                    : "its ancestor at seq " + std::to_string(seq) + " lost a fork",
           e.signers);
  }
  chain_.resize(seq - 1);
  ++counters_.forks_won;
  ++counters_.refolds;
  std::vector<PublicKey> signers = v.signers;
  appendEntry(std::move(d), std::move(v), out);
  return record(out, nullptr, hash, seq, Outcome::kAccepted, RejectReason::kNone,
                "won the fork at seq " + std::to_string(seq) + " over " + shortHash(incumbent) +
                    "; " + std::to_string(head_seq - seq + 1) + " commit(s) superseded",
                std::move(signers));
}

SubmitResult CommitLog::handle(DecodedCommit d, LogOutput& out) {
  const Commit& c = d.commit;
  const Hash256 hash = d.hash;
  const uint64_t seq = c.seq;
  const uint64_t head_seq = chain_.size();
  if (c.cluster_id != config_.cluster_id) {
    return record(
        out, &d, hash, seq, Outcome::kRejected, RejectReason::kWrongCluster,
        "cluster \"" + c.cluster_id + "\", this node is in \"" + config_.cluster_id + "\"");
  }
  if (seq <= head_seq && chain_[seq - 1].hash == hash) {
    return record(out, &d, hash, seq, Outcome::kDuplicate, RejectReason::kNone,
                  "already in the log at seq " + std::to_string(seq));
  }
  if (pending_.count(hash)) {
    return record(out, &d, hash, seq, Outcome::kDuplicate, RejectReason::kNone, "already pending");
  }
  if (superseded_.count(hash)) {
    return record(out, &d, hash, seq, Outcome::kDuplicate, RejectReason::kNone,
                  "already superseded");
  }
  if (superseded_.count(c.parent)) {
    rememberSuperseded(hash);
    return record(out, &d, hash, seq, Outcome::kSuperseded, RejectReason::kNone,
                  "its parent " + shortHash(c.parent) + " lost a fork");
  }
  if (!d.operation_error.isOk()) {
    return record(out, &d, hash, seq, Outcome::kRejected, RejectReason::kMalformedOperation,
                  d.operation_error.message());
  }
  if (seq > head_seq + 1) return holdAhead(std::move(d), out);
  const Hash256 expected_parent = seq == 1 ? Hash256{} : chain_[seq - 2].hash;
  if (c.parent != expected_parent) {
    if (seq == head_seq + 1) {
      return record(out, &d, hash, seq, Outcome::kRejected, RejectReason::kWrongParent,
                    "parent " + shortHash(c.parent) + " is not the head " +
                        shortHash(expected_parent) + " at seq " + std::to_string(head_seq));
    }
    return record(out, &d, hash, seq, Outcome::kRejected, RejectReason::kReplayedSeq,
                  "seq " + std::to_string(seq) + " is at or below head " +
                      std::to_string(head_seq) + " and its parent " + shortHash(c.parent) +
                      " is not in the log");
  }
  const bool fork = seq <= head_seq;
  RejectReason reason = RejectReason::kNone;
  if (fork) {
    // Signatures first, against the trust set kept with the parent: a flood of unsigned
    // fork candidates costs one signature check each, never a re-fold.
    const TrustSet& trust_at = seq == 1 ? genesis_.trust : chain_[seq - 2].trust_after;
    auto signers = verifySignatures(d, trust_at, reason);
    if (!signers) {
      return record(out, &d, hash, seq, Outcome::kRejected, reason, signers.status().message());
    }
  }
  DesiredState at = fork ? foldTo(seq - 1) : DesiredState{};
  auto v = verify(d, fork ? at : state_, reason);
  if (!v) {
    return record(out, &d, hash, seq, Outcome::kRejected, reason, v.status().message());
  }
  if (!fork) {
    std::vector<PublicKey> signers = v->signers;
    appendEntry(std::move(d), std::move(*v), out);
    return record(out, nullptr, hash, seq, Outcome::kAccepted, RejectReason::kNone,
                  "accepted at seq " + std::to_string(seq), std::move(signers));
  }
  const Hash256 incumbent = chain_[seq - 1].hash;
  if (!(hash < incumbent)) {
    rememberSuperseded(hash);
    return record(out, &d, hash, seq, Outcome::kSuperseded, RejectReason::kNone,
                  "lost the fork at seq " + std::to_string(seq) + " to " + shortHash(incumbent) +
                      " (the lower hash wins)",
                  v->signers);
  }
  return winFork(std::move(d), std::move(*v), incumbent, out);
}

void CommitLog::drainPending(LogOutput& out) {
  bool progress = true;
  while (progress && !pending_.empty()) {
    progress = false;
    const uint64_t next_seq = chain_.size() + 1;
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (it->second.commit.seq <= next_seq) {
        DecodedCommit d = std::move(it->second);
        pending_.erase(it);
        (void)handle(std::move(d), out);
        progress = true;
        break;
      }
    }
  }
}

SubmitResult CommitLog::submit(ByteView encoded, LogOutput& out) {
  auto d = decodeCommit(encoded);
  if (!d) {
    return record(out, nullptr, blake2b256(encoded), 0, Outcome::kRejected,
                  RejectReason::kMalformedCommit, d.status().message());
  }
  SubmitResult r = handle(std::move(*d), out);
  drainPending(out);
  return r;
}

std::optional<CommitRange> CommitLog::planFetch(const Head& peer) const {
  if (peer.seq == 0 || superseded_.count(peer.hash)) return std::nullopt;
  const uint64_t mine = chain_.size();
  if (peer.seq <= mine) {
    if (chain_[peer.seq - 1].hash == peer.hash) return std::nullopt;
    return CommitRange{peer.seq, peer.seq};
  }
  const uint64_t from = std::max<uint64_t>(1, mine);
  const uint64_t to = std::min<uint64_t>(peer.seq, from + config_.max_range - 1);
  return CommitRange{from, to};
}

std::vector<Bytes> CommitLog::getCommits(uint64_t from, uint64_t to) const {
  std::vector<Bytes> out;
  from = std::max<uint64_t>(from, 1);
  to = std::min<uint64_t>(to, chain_.size());
  for (uint64_t s = from; s <= to && out.size() < config_.max_range; ++s) {
    out.push_back(chain_[s - 1].encoded);
  }
  return out;
}

BatchResult CommitLog::acceptBatch(const std::vector<Bytes>& commits, LogOutput& out) {
  BatchResult br;
  std::vector<DecodedCommit> decoded;
  const size_t n = std::min(commits.size(), config_.max_range);
  for (size_t i = 0; i < n; ++i) {
    auto d = decodeCommit(commits[i]);
    if (!d) {
      ++br.rejected;
      (void)record(out, nullptr, blake2b256(commits[i]), 0, Outcome::kRejected,
                   RejectReason::kMalformedCommit, d.status().message());
      continue;
    }
    decoded.push_back(std::move(*d));
  }
  std::sort(decoded.begin(), decoded.end(),
            [](const auto& a, const auto& b) { return a.commit.seq < b.commit.seq; });
  bool first = true;
  for (auto& d : decoded) {
    const uint64_t seq = d.commit.seq;
    SubmitResult r = handle(std::move(d), out);
    if (r.outcome == Outcome::kAccepted) ++br.accepted;
    if (r.outcome == Outcome::kRejected) ++br.rejected;
    if (first && seq > 1 &&
        (r.reason == RejectReason::kReplayedSeq || r.reason == RejectReason::kWrongParent)) {
      const uint64_t back = std::min<uint64_t>(seq - 1, config_.max_range);
      br.refetch = CommitRange{seq - back, seq - 1};
    }
    first = false;
  }
  drainPending(out);
  return br;
}

Status CommitLog::restore(const std::map<uint64_t, Bytes>& stored, const std::optional<Head>& head,
                          LogOutput& out) {
  chain_.clear();
  pending_.clear();
  state_ = genesis_;
  if (!head || head->seq == 0) return Status::ok();
  Status result = Status::ok();
  for (uint64_t seq = 1; seq <= head->seq; ++seq) {
    auto it = stored.find(seq);
    if (it == stored.end()) {
      result = Status::corruption("stored commit log: seq " + std::to_string(seq) +
                                  " is missing (head " + std::to_string(head->seq) + ")");
      break;
    }
    auto d = decodeCommit(it->second);
    if (!d) {
      result = d.status().withContext("stored commit seq " + std::to_string(seq));
      result = Status::corruption(result.message());
      break;
    }
    const Hash256 expected_parent = seq == 1 ? Hash256{} : chain_[seq - 2].hash;
    if (d->commit.seq != seq || d->commit.parent != expected_parent ||
        d->commit.cluster_id != config_.cluster_id || !d->operation_error.isOk()) {
      result = Status::corruption("stored commit seq " + std::to_string(seq) +
                                  " does not link to the one before it");
      break;
    }
    RejectReason reason = RejectReason::kNone;
    auto v = verify(*d, state_, reason);
    if (!v) {
      result = Status::corruption("stored commit seq " + std::to_string(seq) +
                                  " no longer verifies: " + v.status().message());
      break;
    }
    LogOutput scratch;
    appendEntry(std::move(*d), std::move(*v), scratch);
  }
  if (result.isOk() && chain_.size() == head->seq && chain_.back().hash != head->hash) {
    result = Status::corruption("stored commit head hash does not match the stored commits");
  }
  if (!result.isOk()) out.store.head = this->head();  // repair the stored head
  out.state_changed = true;
  return result;
}

}  // namespace meshos::commits
