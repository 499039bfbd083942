// ChainStore: the node's one RocksDB database (<data_dir>/db) with two column families per
// hash chain (its records: "audit", "log", "failure"; its head and checkpoints:
// "audit.meta", "log.meta", "failure.meta") and one key/value area ("state") that other
// modules use for their durable records (commits, gossip incarnation, runtime records).
// The on-disk format of the chains is in chains/chain_format.h.
//
// Ownership and threads: the agent (or a tool) owns the ChainStore; it must outlive the
// ChainWriter and any verify running on a worker. Every read here is safe from any thread
// (RocksDB is thread-safe for reads). Chain records are written only by the ChainWriter's
// writer thread through writeBatch(). putState()/deleteState() do a synced write: they
// block for one fsync (about a millisecond), so the loop calls them only for rare records.
// A store opened read-only (a stopped agent's data dir, for `meshos-inspect chain verify
// --data-dir`) refuses every write with kPermissionDenied. A store opened for writing on a
// full disk falls back to a read-only handle (writeFence()) and writes again once reopen()
// succeeds.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/kv_store.h"
#include "agent/core/status.h"
#include "chains/chain_format.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Env;
class Snapshot;
class Status;
class WriteBatch;
}  // namespace rocksdb

namespace meshos::chains {

struct ChainStoreOptions {
  bool read_only = false;
  // RocksDB environment; nullptr is the default one. Tests pass a fault-injecting Env.
  rocksdb::Env* env = nullptr;
  // Memtable size per chain column family.
  size_t write_buffer_bytes = 32 << 20;
  // The simulator's database (over an in-memory env): RocksDB never works in the
  // background on its own (no automatic compaction, no flush at recovery, no stats
  // dumps), so a run repeats from its seed.
  bool simulated = false;
};

// Turns a RocksDB status into ours, with context.
Status fromRocks(const rocksdb::Status& status, std::string_view context);

class ChainStore final : public KvStore {
 public:
  // Opens (creating if needed, unless read-only) <data_dir>/db.
  static Result<std::unique_ptr<ChainStore>> open(const std::filesystem::path& data_dir,
                                                  const ChainStoreOptions& options = {});
  static Result<std::unique_ptr<ChainStore>> openReadOnly(const std::filesystem::path& data_dir) {
    ChainStoreOptions o;
    o.read_only = true;
    return open(data_dir, o);
  }
  // RocksDB's repair of <data_dir>/db in place: rebuilds its manifest from the files that
  // are left, dropping what cannot be read. For a salvage copy only (see chain_recover.h).
  static Status repair(const std::filesystem::path& data_dir, const ChainStoreOptions& options = {});
  ~ChainStore() override;
  ChainStore(const ChainStore&) = delete;
  ChainStore& operator=(const ChainStore&) = delete;

  bool readOnly() const { return read_only_; }
  // Not ok while the store is open read-only because opening it for writing failed (a
  // full disk at start): why. Cleared by the first reopen() that succeeds.
  Status writeFence() const {
    auto lock = readLock();
    return write_fence_;
  }
  const std::filesystem::path& path() const { return path_; }

  // ---- chains: reads, any thread ----
  // The head; seq 0 and a zero hash for an empty chain.
  Result<ChainHead> head(ChainName chain) const;
  // The genesis checkpoint left by pruning, if the chain was pruned.
  Result<std::optional<Checkpoint>> genesis(ChainName chain) const;
  // The newest stored checkpoint ('c' keys), if any.
  Result<std::optional<Checkpoint>> lastCheckpoint(ChainName chain) const;
  // Seq of the oldest stored record, 0 if none.
  Result<uint64_t> firstSeq(ChainName chain) const;
  // One record (kNotFound if absent, kCorruption if it does not decode).
  Result<ChainRecord> get(ChainName chain, uint64_t seq) const;
  // Up to `count` records with seq >= from, in order (from = 0 means the oldest).
  Result<std::vector<ChainRecord>> tail(ChainName chain, uint64_t from, size_t count) const;
  // Up to `count` newest records, in order.
  Result<std::vector<ChainRecord>> last(ChainName chain, size_t count) const;

  // ---- chains: writes, the ChainWriter's thread only ----
  Status writeBatch(rocksdb::WriteBatch& batch, bool sync);
  // After a failed write RocksDB keeps refusing writes (a WAL sync error is not
  // resumable), so the writer closes and reopens the database: recovery replays the WAL
  // and the retried batch rewrites the same keys. Readers wait while it happens.
  Status reopen();
  // Free bytes on the database's file system (statvfs, or the simulated disk), if known: a
  // writer fenced by a full disk reopens once this grows rather than at every retry.
  std::optional<uint64_t> freeBytes() const;

  // ---- state area, any thread ----
  Status putState(std::string_view key, std::string_view value) override;  // synced
  Result<std::optional<std::string>> getState(std::string_view key) const override;
  Status deleteState(std::string_view key) override;  // synced; deleting a missing key is OK
  // Calls fn for each key starting with prefix, in key order, until fn returns false.
  Status scanState(
      std::string_view prefix,
      const std::function<bool(std::string_view key, std::string_view value)>& fn) const override;

  // ---- for chains/ internals (verify, tamper tests) ----
  // Hold readLock() while using db()/cf(): reopen() replaces them. db() is null after a
  // reopen that failed (every read then returns kUnavailable until one succeeds).
  std::shared_lock<std::shared_mutex> readLock() const { return std::shared_lock(mu_); }
  rocksdb::DB* db() const { return db_; }
  // The chain's records ('r' keys).
  rocksdb::ColumnFamilyHandle* cf(ChainName chain) const { return chain_cfs_[chainIndex(chain)]; }
  // The chain's head, checkpoints and genesis ('h', 'c', 'g' keys).
  rocksdb::ColumnFamilyHandle* metaCf(ChainName chain) const {
    return meta_cfs_[chainIndex(chain)];
  }
  rocksdb::ColumnFamilyHandle* stateCf() const { return state_cf_; }

 private:
  ChainStore() = default;
  // Opens for writing; on a full disk falls back to a read-only handle and sets
  // write_fence_ (still returning the error).
  Status openLocked();
  Status openHandles(bool read_only);
  void closeLocked();
  Status checkOpen() const;
  Status checkWritable() const;
  bool exists() const;  // <data_dir>/db holds a database
  Status write_fence_;      // see writeFence()
  Status last_open_error_;  // why the last reopen failed, for every refusal until one works
  Result<std::optional<std::string>> getRaw(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                                            const rocksdb::Snapshot* snap = nullptr) const;

  std::filesystem::path path_;
  ChainStoreOptions options_;
  bool read_only_ = false;
  mutable std::shared_mutex mu_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // all, for closing
  rocksdb::ColumnFamilyHandle* chain_cfs_[kChainCount] = {};
  rocksdb::ColumnFamilyHandle* meta_cfs_[kChainCount] = {};
  rocksdb::ColumnFamilyHandle* state_cf_ = nullptr;
};

}  // namespace meshos::chains
