#include "chains/chain_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "chains/rocks_logger.h"
#include "chains/rocks_slice.h"

namespace meshos::chains {

namespace {
constexpr std::string_view kStateCfName = "state";

// The database's options and column families, the same for opening and repairing.
struct DbLayout {
  rocksdb::DBOptions db_opts;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
};

DbLayout dbLayout(const ChainStoreOptions& options, bool read_only) {
  DbLayout layout;
  rocksdb::DBOptions& db_opts = layout.db_opts;
  db_opts.create_if_missing = !read_only;
  db_opts.create_missing_column_families = !read_only;
  db_opts.max_background_jobs = 2;
  db_opts.info_log = makeRocksLogger();  // no LOG file: see rocks_logger.h
  db_opts.info_log_level = rocksdb::WARN_LEVEL;
  db_opts.max_total_wal_size = 256 << 20;
  // A node's database holds a handful of table files: opening them on the calling thread
  // costs less than starting a pool of threads to do it (RocksDB's default is 16).
  db_opts.max_file_opening_threads = 1;
  if (options.env != nullptr) db_opts.env = options.env;
  if (options.simulated) {
    db_opts.avoid_flush_during_recovery = true;
    db_opts.stats_dump_period_sec = 0;
    db_opts.stats_persist_period_sec = 0;
    db_opts.info_log_level = rocksdb::ERROR_LEVEL;
  }

  rocksdb::ColumnFamilyOptions chain_opts;
  chain_opts.write_buffer_size = options.write_buffer_bytes;
  chain_opts.disable_auto_compactions = options.simulated;
  // Records are mostly hashes and already-compact payloads: compression costs more CPU
  // than it saves on the write path.
  chain_opts.compression = rocksdb::kNoCompression;
  // A records column family holds only 'r' + be64(seq) keys, written in seq order, so
  // its flushed files never overlap: leveled compaction moves them down without
  // rewriting them (a trivial move) instead of spending a core merging them while the
  // agent appends or verifies.
  // Records are read by long scans (verify, tail): bigger blocks mean fewer block reads,
  // checksums and allocations per record.
  rocksdb::BlockBasedTableOptions chain_table;
  chain_table.block_size = 64 << 10;
  chain_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(chain_table));
  rocksdb::ColumnFamilyOptions meta_opts;
  meta_opts.write_buffer_size = 4 << 20;
  meta_opts.disable_auto_compactions = options.simulated;
  rocksdb::ColumnFamilyOptions state_opts;
  state_opts.disable_auto_compactions = options.simulated;

  std::vector<rocksdb::ColumnFamilyDescriptor>& cfs = layout.cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, state_opts);
  for (ChainName c : kAllChains) cfs.emplace_back(std::string(chainNameString(c)), chain_opts);
  cfs.emplace_back(std::string(kStateCfName), state_opts);
  for (ChainName c : kAllChains) cfs.emplace_back(chainMetaCfName(c), meta_opts);

  return layout;
}
}  // namespace

Status fromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::ok();
  std::string msg = std::string(context) + ": " + s.ToString();
  // The one fault an operator can act on at once gets its plain name first.
  if (s.IsNoSpace() || msg.find("No space left on device") != std::string::npos) msg = "disk full: " + msg;
  if (s.IsNotFound()) return Status::notFound(msg);
  if (s.IsCorruption()) return Status::corruption(msg);
  if (s.IsInvalidArgument()) return Status::invalid(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsIncomplete()) return Status::unavailable(msg);
  if (s.IsNotSupported()) return Status::notImplemented(msg);
  return Status::io(msg);
}

Result<std::unique_ptr<ChainStore>> ChainStore::open(const std::filesystem::path& data_dir,
                                                     const ChainStoreOptions& options) {
  std::unique_ptr<ChainStore> store(new ChainStore());
  store->path_ = data_dir / "db";
  store->options_ = options;
  store->read_only_ = options.read_only;
  if (options.env != nullptr) {
    // Another file system (the simulator's, in memory): nothing on the real disk.
    if (!options.read_only) {
      (void)options.env->CreateDirIfMissing(data_dir.string());
    } else if (!store->exists()) {
      return Status::notFound("no chain database at " + store->path_.string());
    }
  } else if (!options.read_only) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) return Status::io("creating " + data_dir.string() + ": " + ec.message());
  } else if (!store->exists()) {
    return Status::notFound("no chain database at " + store->path_.string());
  }
  Status opened = store->openLocked();
  if (!opened && store->db_ == nullptr) return opened;  // else: open read-only, writes fenced
  return store;
}

Status ChainStore::repair(const std::filesystem::path& data_dir, const ChainStoreOptions& options) {
  DbLayout layout = dbLayout(options, /*read_only=*/false);
  const std::string path = (data_dir / "db").string();
  return fromRocks(rocksdb::RepairDB(path, layout.db_opts, layout.cfs), "repairing chain database " + path);
}

bool ChainStore::exists() const {
  if (options_.env != nullptr) return options_.env->FileExists((path_ / "CURRENT").string()).ok();
  std::error_code ec;
  return std::filesystem::exists(path_ / "CURRENT", ec);
}

Status ChainStore::openLocked() {
  write_fence_ = Status::ok();
  Status opened = openHandles(options_.read_only);
  if (opened || options_.read_only || !opened.message().starts_with("disk full") || !exists()) return opened;
  // Opening for writing needs space (a new WAL and MANIFEST). With the disk full the node
  // still runs: reads go to a read-only handle, writes are refused until a reopen succeeds.
  if (openHandles(/*read_only=*/true)) write_fence_ = opened;
  return opened;
}

Status ChainStore::openHandles(bool read_only) {
  DbLayout layout = dbLayout(options_, read_only);
  rocksdb::Status s;
  handles_.clear();
  if (read_only) {
    s = rocksdb::DB::OpenForReadOnly(layout.db_opts, path_.string(), layout.cfs, &handles_, &db_);
  } else {
    s = rocksdb::DB::Open(layout.db_opts, path_.string(), layout.cfs, &handles_, &db_);
  }
  if (!s.ok()) {
    db_ = nullptr;
    return fromRocks(s, "opening chain database " + path_.string());
  }
  for (size_t i = 0; i < kChainCount; ++i) chain_cfs_[i] = handles_[1 + i];
  state_cf_ = handles_[1 + kChainCount];
  for (size_t i = 0; i < kChainCount; ++i) meta_cfs_[i] = handles_[2 + kChainCount + i];
  return Status::ok();
}

void ChainStore::closeLocked() {
  if (db_ == nullptr) return;
  for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  (void)db_->Close();
  delete db_;
  db_ = nullptr;
}

ChainStore::~ChainStore() {
  std::unique_lock lock(mu_);
  closeLocked();
}

Status ChainStore::reopen() {
  if (read_only_) return Status::ok();
  std::unique_lock lock(mu_);
  closeLocked();
  last_open_error_ = openLocked();
  return last_open_error_;
}

std::optional<uint64_t> ChainStore::freeBytes() const {
  rocksdb::Env* env = options_.env != nullptr ? options_.env : rocksdb::Env::Default();
  uint64_t free = 0;
  if (!env->GetFreeSpace(path_.string(), &free).ok()) return std::nullopt;
  return free;
}

Status ChainStore::checkOpen() const {
  if (db_ == nullptr) return Status::unavailable("chain database is not open: " + last_open_error_.message());
  return Status::ok();
}

Status ChainStore::checkWritable() const {
  if (read_only_) return Status::denied("chain database is open read-only");
  MESHOS_RETURN_IF_ERROR(checkOpen());
  if (!write_fence_) return Status::unavailable(write_fence_.message() + " (opened read-only; writes resume after a reopen)");
  return Status::ok();
}

Result<std::optional<std::string>> ChainStore::getRaw(rocksdb::ColumnFamilyHandle* cf,
                                                      std::string_view key,
                                                      const rocksdb::Snapshot* snap) const {
  MESHOS_RETURN_IF_ERROR(checkOpen());
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string value;
  rocksdb::Status s = db_->Get(ro, cf, slice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return fromRocks(s, "reading chain database");
  return std::optional<std::string>(std::move(value));
}

Result<ChainHead> ChainStore::head(ChainName chain) const {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkOpen());
  auto raw = getRaw(metaCf(chain), kHeadKey);
  if (!raw) return raw.status();
  if (!raw->has_value()) return ChainHead{};
  auto h = decodeHead(**raw);
  if (!h) return h.status().withContext(std::string(chainNameString(chain)) + " head");
  return h;
}

Result<std::optional<Checkpoint>> ChainStore::genesis(ChainName chain) const {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkOpen());
  auto raw = getRaw(metaCf(chain), kGenesisKey);
  if (!raw) return raw.status();
  if (!raw->has_value()) return std::optional<Checkpoint>();
  auto cp = decodeCheckpoint(**raw);
  if (!cp) return cp.status().withContext(std::string(chainNameString(chain)) + " genesis");
  return std::optional<Checkpoint>(*cp);
}

Result<std::optional<Checkpoint>> ChainStore::lastCheckpoint(ChainName chain) const {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkOpen());
  rocksdb::ReadOptions ro;
  std::string upper(1, static_cast<char>(kCheckpointPrefix + 1));
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, metaCf(chain)));
  it->SeekToLast();
  if (!it->Valid()) {
    if (!it->status().ok()) return fromRocks(it->status(), "reading checkpoints");
    return std::optional<Checkpoint>();
  }
  if (!seqFromKey(view(it->key()), kCheckpointPrefix)) return std::optional<Checkpoint>();
  auto cp = decodeCheckpoint(view(it->value()));
  if (!cp) return cp.status().withContext(std::string(chainNameString(chain)) + " checkpoint");
  return std::optional<Checkpoint>(*cp);
}

Result<uint64_t> ChainStore::firstSeq(ChainName chain) const {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkOpen());
  rocksdb::ReadOptions ro;
  std::string upper(1, static_cast<char>(kRecordPrefix + 1));
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(chain)));
  it->Seek(rocksdb::Slice(std::string(1, kRecordPrefix)));
  if (!it->Valid()) {
    if (!it->status().ok()) return fromRocks(it->status(), "reading records");
    return uint64_t{0};
  }
  auto seq = seqFromKey(view(it->key()), kRecordPrefix);
  if (!seq)
    return Status::corruption("malformed record key in " + std::string(chainNameString(chain)));
  return *seq;
}

Result<ChainRecord> ChainStore::get(ChainName chain, uint64_t seq) const {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkOpen());
  auto raw = getRaw(cf(chain), recordKey(seq));
  if (!raw) return raw.status();
  if (!raw->has_value()) {
    return Status::notFound(std::string(chainNameString(chain)) + " has no record " +
                            std::to_string(seq));
  }
  auto r = decodeRecord(**raw);
  if (!r) {
    return r.status().withContext(std::string(chainNameString(chain)) + " record " +
                                  std::to_string(seq));
  }
  return r;
}

Result<std::vector<ChainRecord>> ChainStore::tail(ChainName chain, uint64_t from,
                                                  size_t count) const {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkOpen());
  std::vector<ChainRecord> out;
  rocksdb::ReadOptions ro;
  std::string upper(1, static_cast<char>(kRecordPrefix + 1));
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(chain)));
  RecordDecoder decoder;
  for (it->Seek(recordKey(from)); it->Valid() && out.size() < count; it->Next()) {
    ChainRecord r;
    Status s = decoder.decode(view(it->value()), r);
    if (!s) {
      auto seq = seqFromKey(view(it->key()), kRecordPrefix);
      return s.withContext(std::string(chainNameString(chain)) + " record " +
                           std::to_string(seq.value_or(0)));
    }
    out.push_back(std::move(r));
  }
  if (!it->status().ok()) return fromRocks(it->status(), "reading records");
  return out;
}

Result<std::vector<ChainRecord>> ChainStore::last(ChainName chain, size_t count) const {
  auto h = head(chain);
  if (!h) return h.status();
  uint64_t from = h->seq >= count ? h->seq - count + 1 : 0;
  return tail(chain, from, count);
}

Status ChainStore::writeBatch(rocksdb::WriteBatch& batch, bool sync) {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkWritable());
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return fromRocks(db_->Write(wo, &batch), "writing chain batch");
}

Status ChainStore::putState(std::string_view key, std::string_view value) {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkWritable());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return fromRocks(db_->Put(wo, state_cf_, slice(key), slice(value)), "writing state");
}

Result<std::optional<std::string>> ChainStore::getState(std::string_view key) const {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkOpen());
  return getRaw(state_cf_, key);
}

Status ChainStore::deleteState(std::string_view key) {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkWritable());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return fromRocks(db_->Delete(wo, state_cf_, slice(key)), "deleting state");
}

Status ChainStore::scanState(
    std::string_view prefix,
    const std::function<bool(std::string_view key, std::string_view value)>& fn) const {
  auto lock = readLock();
  MESHOS_RETURN_IF_ERROR(checkOpen());
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, state_cf_));
  for (it->Seek(slice(prefix)); it->Valid(); it->Next()) {
    std::string_view k = view(it->key());
    if (k.substr(0, prefix.size()) != prefix) break;
    if (!fn(k, view(it->value()))) break;
  }
  return fromRocks(it->status(), "scanning state");
}

}  // namespace meshos::chains
