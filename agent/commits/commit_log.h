// CommitLog: the hash-linked log of admin commits, its verification, fork choice and the
// desired state it folds to. Sans-IO: no clock, no disk, no network. The agent's loop
// thread owns one CommitLog; every call returns what the shell must do (audit records to
// append, store writes to make, commits to push to peers) in a LogOutput.
//
// Acceptance (against the log's canonical chain, head = (seq, hash)):
//   - the bytes decode (kMalformedCommit), the cluster id matches (kWrongCluster);
//   - seq = head + 1 and parent = head hash; a commit further ahead waits in a bounded
//     pending set until its parent arrives (kFutureSeq when it does not fit);
//   - signatures of >= threshold distinct keys of the trust set in force at the parent
//     verify (kUnknownKey, kBadSignature, kInsufficientSignatures, kDuplicateSigner);
//   - while a freeze holds (the commit's issuedAt is before the freeze expiry), only thaw
//     and trust operations pass (kFrozen);
//   - every operation applies (kMalformedOperation).
// Fork choice: a valid commit at seq s <= head whose parent is the chain's commit at s-1
// competes with the chain's commit at s; the lower hash (bytewise) wins on every node. If
// the newcomer wins, the chain from s on is superseded (audited) and the state re-folded.
// A lower hash can only appear, never disappear, so every node that has seen the same
// commits holds the same chain.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/commits/commit_format.h"
#include "agent/commits/desired_state.h"
#include "agent/core/status.h"

namespace meshos::commits {

enum class Outcome {
  kAccepted,    // now on the chain (possibly after winning a fork)
  kPending,     // ahead of the head; kept until its parent arrives
  kRejected,    // see RejectReason
  kSuperseded,  // valid but lost the fork choice, or built on a commit that lost
  kDuplicate,   // already on the chain or pending; nothing happened (not audited)
};
std::string_view outcomeName(Outcome o);  // "accepted" | "pending" | ...

enum class RejectReason {
  kNone,
  kMalformedCommit,  // not a commit: framing, sizes, header fields
  kWrongCluster,
  kUnknownKey,              // signed only by keys not in the trust set
  kBadSignature,            // a trusted key's signature does not verify
  kInsufficientSignatures,  // fewer distinct trusted signers than the threshold
  kDuplicateSigner,         // the threshold was reached only by counting a key twice
  kWrongParent,             // seq = head + 1 but the parent is not the head
  kReplayedSeq,             // seq <= head and it does not fork from the chain
  kFutureSeq,               // too far ahead, or the pending set is full
  kMalformedOperation,
  kFrozen,
};
std::string_view reasonName(RejectReason r);  // "unknown-key", "bad-signature", ...

struct Head {
  uint64_t seq = 0;
  Hash256 hash{};  // zero for the empty log
  bool operator==(const Head&) const = default;
};

// One commit seen, for the audit chain (kind auditKind(), payload auditPayload()).
struct AuditRecord {
  Hash256 hash{};  // BLAKE2b of the raw bytes when they did not decode
  uint64_t seq = 0;
  Outcome outcome = Outcome::kAccepted;
  RejectReason reason = RejectReason::kNone;
  std::string message;
  std::vector<PublicKey> signers;  // verified signers (accepted) / claimed key ids (others)
};
std::string auditKind(const AuditRecord& r);     // "commit.accepted", "commit.rejected", ...
std::string auditPayload(const AuditRecord& r);  // one JSON object (see docs/COMMITS.md)

// What the store must hold after this call: commits by seq (replacing any at that seq)
// and the head. Write them in this order, head last (or in one batch).
struct StoreWrites {
  std::vector<std::pair<uint64_t, Bytes>> commits;
  std::optional<Head> head;
  bool empty() const { return commits.empty() && !head; }
};

struct LogOutput {
  std::vector<AuditRecord> audit;
  StoreWrites store;
  std::vector<Bytes> announce;  // commits that joined the chain: push them to peers now
  bool state_changed = false;   // desired() changed: re-run reconcile, publish
};

struct SubmitResult {
  Outcome outcome = Outcome::kRejected;
  RejectReason reason = RejectReason::kNone;
  std::string message;
  Hash256 hash{};
  uint64_t seq = 0;
  bool ok() const {
    return outcome == Outcome::kAccepted || outcome == Outcome::kDuplicate ||
           outcome == Outcome::kPending;
  }
};

struct CommitRange {
  uint64_t from = 0;
  uint64_t to = 0;  // inclusive
  bool operator==(const CommitRange&) const = default;
};

struct BatchResult {
  size_t accepted = 0;
  size_t rejected = 0;
  // Set when the batch's first commit builds on a commit this node does not have (the
  // peer's chain forks further back): ask the same peer for this range next.
  std::optional<CommitRange> refetch;
};

struct CommitLogConfig {
  std::string cluster_id;
  TrustSet genesis_trust;           // node.toml [trust]
  size_t max_pending = 128;         // commits ahead of the head kept waiting for parents
  uint64_t max_ahead = 1024;        // a pending commit's seq is at most head + max_ahead
  size_t max_range = 64;            // commits per getCommits() answer / fetch
  size_t superseded_memory = 4096;  // hashes of superseded commits remembered
};

struct CommitLogCounters {
  uint64_t accepted = 0, rejected = 0, superseded = 0, duplicates = 0, pending_evicted = 0,
           forks_won = 0, refolds = 0;
};

class CommitLog {
 public:
  explicit CommitLog(CommitLogConfig config);

  // Rebuilds the log from stored commits (seq -> bytes, as StoreWrites left them) up to
  // the stored head, re-verifying each. A commit that no longer verifies ends the chain
  // there (reported in the returned Status, kCorruption); what came before is kept.
  Status restore(const std::map<uint64_t, Bytes>& stored, const std::optional<Head>& head,
                 LogOutput& out);

  // One commit from anywhere (control socket, gossip push, a fetched range).
  SubmitResult submit(ByteView encoded, LogOutput& out);

  // ---- spreading ----
  // Given a peer's advertised head, the range to fetch from it, if any. The range starts
  // at our own head seq (one commit of overlap) so a fork at our head is seen.
  std::optional<CommitRange> planFetch(const Head& peer) const;
  // Our chain's commits in [from, to], at most max_range of them.
  std::vector<Bytes> getCommits(uint64_t from, uint64_t to) const;
  // A fetched range, in any order.
  BatchResult acceptBatch(const std::vector<Bytes>& commits, LogOutput& out);

  // ---- reads ----
  Head head() const { return Head{state_.seq, state_.hash}; }
  const DesiredState& desired() const { return state_; }
  const TrustSet& trust() const { return state_.trust; }
  const CommitLogConfig& config() const { return config_; }
  std::optional<Hash256> hashAt(uint64_t seq) const;
  // The decoded commit at seq on the chain, nullptr if none.
  const Commit* commitAt(uint64_t seq) const;
  struct PendingInfo {
    Hash256 hash;
    uint64_t seq;
    Hash256 parent;
  };
  std::vector<PendingInfo> pending() const;
  // The last 64 rejected or superseded records, oldest first.
  const std::deque<AuditRecord>& recentRejected() const { return recent_rejected_; }
  const CommitLogCounters& counters() const { return counters_; }

 private:
  struct Entry {
    Hash256 hash;
    Bytes encoded;
    Commit commit;
    std::vector<PublicKey> signers;
    TrustSet trust_after;  // so a fork candidate's signatures are checked before any re-fold
  };
  struct Verified {
    DesiredState state;
    std::vector<PublicKey> signers;
  };

  SubmitResult handle(DecodedCommit d, LogOutput& out);
  SubmitResult holdAhead(DecodedCommit d, LogOutput& out);
  SubmitResult winFork(DecodedCommit d, Verified v, const Hash256& incumbent, LogOutput& out);
  // Signatures, freeze, operations, against the state at the commit's parent.
  Result<Verified> verify(const DecodedCommit& d, const DesiredState& at,
                          RejectReason& reason) const;
  // The signature rule alone: the distinct trusted signers, or the reason they fall short.
  Result<std::vector<PublicKey>> verifySignatures(const DecodedCommit& d, const TrustSet& trust,
                                                  RejectReason& reason) const;
  DesiredState foldTo(uint64_t seq) const;  // state after chain_[0..seq)
  void appendEntry(DecodedCommit d, Verified v, LogOutput& out);
  void drainPending(LogOutput& out);
  void rememberSuperseded(const Hash256& h);
  SubmitResult record(LogOutput& out, const DecodedCommit* d, const Hash256& hash, uint64_t seq,
                      Outcome outcome, RejectReason reason, std::string message,
                      std::vector<PublicKey> signers = {});

  CommitLogConfig config_;
  DesiredState genesis_;
  DesiredState state_;
  std::vector<Entry> chain_;  // chain_[i] has seq i + 1
  std::map<Hash256, DecodedCommit> pending_;
  std::set<Hash256> superseded_;
  std::deque<Hash256> superseded_order_;
  std::deque<AuditRecord> recent_rejected_;
  // Rejections already audited, so a commit gossip keeps re-sending is audited once.
  std::set<Hash256> audited_rejects_;
  std::deque<Hash256> audited_rejects_order_;
  CommitLogCounters counters_;
};

}  // namespace meshos::commits
