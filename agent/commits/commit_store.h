// CommitStore: where the commit log persists (commits by seq, and the head).
//
// The CommitLog itself does no I/O: it returns StoreWrites, the shell applies them with
// applyStoreWrites(), and at start loadCommitLog() reads everything back and re-folds, so
// a restarted agent has its desired state before it talks to anyone. The records live in a
// KvStore (the agent: the "state" column family of its database; tests: MemoryKvStore)
// under these keys (see docs/COMMITS.md):
//   "commits/c" + be64(seq)  the commit's wire bytes (proto/commit.capnp Commit)
//   "commits/head"           be64(seq) || 32-byte hash
// KvStore writes are synced: accept ~1 ms per commit on the loop (commits are rare).
// Not thread-safe; one owner.
#pragma once

#include <map>
#include <optional>

#include "agent/commits/commit_log.h"
#include "agent/core/kv_store.h"
#include "agent/core/status.h"

namespace meshos::commits {

class CommitStore {
 public:
  // `kv` must outlive this object.
  explicit CommitStore(KvStore& kv) : kv_(kv) {}
  // Stores the commit at seq, replacing any commit stored at that seq.
  Status putCommit(uint64_t seq, ByteView encoded);
  // Every stored commit by seq (some may be beyond the head: left by a lost fork).
  Result<std::map<uint64_t, Bytes>> loadCommits() const;
  Status putHead(const Head& head);
  Result<std::optional<Head>> loadHead() const;

 private:
  KvStore& kv_;
};

// Commits first, head last: a crash between them leaves the old head, still consistent.
Status applyStoreWrites(CommitStore& store, const StoreWrites& writes);

// Reads the store and restores `log` (see CommitLog::restore). A corrupt tail is reported
// in the Status while the log keeps the verified prefix; `out` then holds the head repair.
Status loadCommitLog(const CommitStore& store, CommitLog& log, LogOutput& out);

}  // namespace meshos::commits
