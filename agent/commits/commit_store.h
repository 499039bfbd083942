// CommitStore: where the commit log persists (commits by seq, and the head).
//
// The CommitLog itself does no I/O: it returns StoreWrites, the shell applies them with
// applyStoreWrites(), and at start loadCommitLog() reads everything back and re-folds, so
// a restarted agent has its desired state before it talks to anyone.
// MemoryCommitStore is for tests; RocksCommitStore keeps the records in the "state" column
// family of the node's chains::ChainStore under these keys (see docs/COMMITS.md):
//   "commits/c" + be64(seq)  the commit's wire bytes (proto/commit.capnp Commit)
//   "commits/head"           be64(seq) || 32-byte hash
// ChainStore::putState is a synced write: call these from a worker or accept ~1 ms per
// commit on the loop (commits are rare). Not thread-safe; one owner.
#pragma once

#include <map>
#include <optional>

#include "agent/commits/commit_log.h"
#include "agent/core/status.h"

namespace meshos::chains {
class ChainStore;
}

namespace meshos::commits {

class CommitStore {
 public:
  virtual ~CommitStore() = default;
  // Stores the commit at seq, replacing any commit stored at that seq.
  virtual Status putCommit(uint64_t seq, ByteView encoded) = 0;
  // Every stored commit by seq (some may be beyond the head: left by a lost fork).
  virtual Result<std::map<uint64_t, Bytes>> loadCommits() const = 0;
  virtual Status putHead(const Head& head) = 0;
  virtual Result<std::optional<Head>> loadHead() const = 0;
};

class MemoryCommitStore final : public CommitStore {
 public:
  Status putCommit(uint64_t seq, ByteView encoded) override;
  Result<std::map<uint64_t, Bytes>> loadCommits() const override { return commits_; }
  Status putHead(const Head& head) override;
  Result<std::optional<Head>> loadHead() const override { return head_; }

 private:
  std::map<uint64_t, Bytes> commits_;
  std::optional<Head> head_;
};

class RocksCommitStore final : public CommitStore {
 public:
  // `store` must outlive this object.
  explicit RocksCommitStore(chains::ChainStore& store) : store_(store) {}
  Status putCommit(uint64_t seq, ByteView encoded) override;
  Result<std::map<uint64_t, Bytes>> loadCommits() const override;
  Status putHead(const Head& head) override;
  Result<std::optional<Head>> loadHead() const override;

 private:
  chains::ChainStore& store_;
};

// Commits first, head last: a crash between them leaves the old head, still consistent.
Status applyStoreWrites(CommitStore& store, const StoreWrites& writes);

// Reads the store and restores `log` (see CommitLog::restore). A corrupt tail is reported
// in the Status while the log keeps the verified prefix; `out` then holds the head repair.
Status loadCommitLog(const CommitStore& store, CommitLog& log, LogOutput& out);

}  // namespace meshos::commits
