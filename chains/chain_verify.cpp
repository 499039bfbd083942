#include "chains/chain_verify.h"

#include <rocksdb/db.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "chains/rocks_slice.h"

namespace meshos::chains {

namespace {

constexpr size_t kMaxVerifyThreads = 4;

std::string shortHash(const Hash256& h) { return toHex(ByteView(h.data(), 8)); }

// One record of a batch: where its raw bytes sit in the batch's arena, and what the
// decode-and-hash step found. Only fixed-size results are kept, so nothing points into a
// decoder.
struct Item {
  uint64_t key_seq = 0;
  bool malformed_key = false;
  size_t word_offset = 0;
  size_t size = 0;
  Status decoded;
  uint64_t seq = 0;
  Hash256 prev_hash{};
  Hash256 stored_hash{};
  Hash256 computed{};
};

// A run of consecutive records, read and then decoded and hashed as one unit.
struct Batch {
  std::vector<Item> items;
  std::vector<uint64_t> arena;  // raw records, each starting on an 8-byte boundary
  // Parallel segments: keys from recordKey(start) up to recordKey(start + segment seqs)
  // (exclusive), or, for the final segment, to the end of the walk.
  bool parallel = false;
  bool final = false;
  uint64_t start = 0;
  bool more = false;       // stopped because the batch was full: records may follow
  std::string read_error;  // the iterator failed after the items
};

// Copies up to max_items raw records from the iterator into `b`, stopping before
// limit_key (when not empty), at a key past end_seq, or after a malformed key (kept as
// the batch's last item). True when it stopped only because the batch was full.
bool fillBatch(rocksdb::Iterator& it, uint64_t end_seq, std::string_view limit_key,
               size_t max_items, Batch& b) {
  b.items.clear();
  b.arena.clear();
  b.read_error.clear();
  b.more = false;
  while (b.items.size() < max_items) {
    if (!it.Valid()) {
      if (!it.status().ok()) b.read_error = it.status().ToString();
      return false;
    }
    std::string_view key = view(it.key());
    if (!limit_key.empty() && key >= limit_key) return false;
    Item& item = b.items.emplace_back();
    auto key_seq = seqFromKey(key, kRecordPrefix);
    if (!key_seq) {
      item.malformed_key = true;
      return false;
    }
    if (*key_seq > end_seq) {
      b.items.pop_back();
      return false;
    }
    rocksdb::Slice v = it.value();
    item.key_seq = *key_seq;
    item.word_offset = b.arena.size();
    item.size = v.size();
    b.arena.resize(b.arena.size() + (v.size() + 7) / 8);
    if (v.size() > 0) std::memcpy(b.arena.data() + item.word_offset, v.data(), v.size());
    it.Next();
  }
  b.more = true;
  return true;
}

void decodeBatch(Batch& b, RecordDecoder& decoder, const RecordHasher& hasher) {
  const char* base = reinterpret_cast<const char*>(b.arena.data());
  RecordView rec;
  for (Item& item : b.items) {
    if (item.malformed_key) continue;
    item.decoded = decoder.decodeView(std::string_view(base + item.word_offset * 8, item.size), rec);
    if (!item.decoded) continue;
    item.seq = rec.seq;
    item.prev_hash = rec.prev_hash;
    item.stored_hash = rec.hash;
    item.computed = hasher.hash(rec);
  }
}

// Worker threads that each read a segment of the chain with their own iterator (same
// view of the database), then decode and hash it. Segments finish in any order; wait()
// returns when a given one is done. Joined on destruction (before the iterators are
// destroyed).
class SegmentPool {
 public:
  // iterators: one per worker, all from the walk's consistent view; they must outlive
  // the pool.
  SegmentPool(std::vector<Batch>& slots, const std::vector<rocksdb::Iterator*>& iterators,
              size_t seg, uint64_t end_seq, const RecordHasher& hasher)
      : slots_(slots), done_(slots.size(), true) {
    for (rocksdb::Iterator* it : iterators) {
      workers_.emplace_back([this, seg, it, end_seq, &hasher] {
        RecordDecoder decoder;
        for (;;) {
          size_t s;
          {
            std::unique_lock<std::mutex> lock(mu_);
            work_cv_.wait(lock, [this] { return quit_ || !todo_.empty(); });
            if (quit_) return;
            s = todo_.front();
            todo_.pop_front();
          }
          Batch& b = slots_[s];
          it->Seek(recordKey(b.start));
          if (b.final) {
            fillBatch(*it, end_seq, {}, 2 * seg, b);
          } else {
            // One more than the segment's seqs, so a malformed key after a full segment
            // is seen too.
            fillBatch(*it, end_seq, recordKey(b.start + seg), seg + 1, b);
          }
          decodeBatch(b, decoder, hasher);
          {
            std::lock_guard<std::mutex> lock(mu_);
            done_[s] = true;
          }
          done_cv_.notify_all();
        }
      });
    }
  }
  ~SegmentPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  SegmentPool(const SegmentPool&) = delete;
  SegmentPool& operator=(const SegmentPool&) = delete;

  void submit(size_t slot) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_[slot] = false;
      todo_.push_back(slot);
    }
    work_cv_.notify_one();
  }
  void wait(size_t slot) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return done_[slot]; });
  }

 private:
  std::vector<Batch>& slots_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<size_t> todo_;  // bounded by the number of slots
  std::vector<bool> done_;
  bool quit_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

std::string_view verifyProblemName(VerifyProblem p) {
  switch (p) {
    case VerifyProblem::kNone:
      return "none";
    case VerifyProblem::kUndecodable:
      return "undecodable";
    case VerifyProblem::kSeqMismatch:
      return "seq_mismatch";
    case VerifyProblem::kHashMismatch:
      return "hash_mismatch";
    case VerifyProblem::kBrokenLink:
      return "broken_link";
    case VerifyProblem::kGap:
      return "gap";
    case VerifyProblem::kBadCheckpoint:
      return "bad_checkpoint";
    case VerifyProblem::kBadCheckpointSignature:
      return "bad_checkpoint_signature";
    case VerifyProblem::kCheckpointMismatch:
      return "checkpoint_mismatch";
    case VerifyProblem::kTruncated:
      return "truncated";
    case VerifyProblem::kBadHead:
      return "bad_head";
    case VerifyProblem::kBadGenesis:
      return "bad_genesis";
    case VerifyProblem::kReadError:
      return "read_error";
  }
  return "?";
}

namespace {

// Releases the snapshot it holds; not copyable, so no temporary releases it early.
struct SnapshotGuard {
  SnapshotGuard() = default;
  SnapshotGuard(const SnapshotGuard&) = delete;
  SnapshotGuard& operator=(const SnapshotGuard&) = delete;
  rocksdb::DB* db = nullptr;
  const rocksdb::Snapshot* snapshot = nullptr;
  ~SnapshotGuard() {
    if (snapshot != nullptr) db->ReleaseSnapshot(snapshot);
  }
};

// One walk of one chain, in the steps it takes: open the iterators, read the head, find
// where the records start, read the checkpoints, check the records in seq order, and hold
// the end against the head. Every step returns false once the report names a problem.
// The caller holds the store's read lock for the walk's whole life.
class ChainWalk {
 public:
  ChainWalk(const ChainStore& store, ChainName chain, VerifyRange range,
            const std::optional<PublicKey>& public_key, const VerifyProgressFn& progress,
            uint64_t progress_every_records, const VerifyTuning& tuning)
      : store_(store),
        chain_(chain),
        range_(range),
        public_key_(public_key),
        progress_(progress),
        progress_every_(progress_every_records),
        hasher_(chain),
        threads_(std::clamp<size_t>(
            tuning.threads != 0 ? tuning.threads : std::thread::hardware_concurrency(), 1,
            kMaxVerifyThreads)),
        seg_(std::clamp<size_t>(tuning.segment_records, 1, size_t{1} << 24)) {
    report_.chain = chain;
    report_.ok = true;
    report_.signer_authenticated = public_key.has_value();
  }
  ChainWalk(const ChainWalk&) = delete;
  ChainWalk& operator=(const ChainWalk&) = delete;

  VerifyReport run(bool use_snapshot) {
    if (openIterators(use_snapshot) && readHead() && readStart() && readCheckpoints() &&
        walkRecords()) {
      holdEndAgainstHead();
    }
    return report_;
  }

 private:
  bool fail(VerifyProblem p, uint64_t seq, std::string detail) {
    report_.ok = false;
    report_.problem = p;
    report_.bad_seq = seq;
    report_.detail = std::move(detail);
    return false;
  }

  // Every read of the walk goes through iterators made by one NewIterators() call, so
  // they all see the database as of one moment (RocksDB gives them one sequence number),
  // whatever the ChainWriter appends meanwhile. Not a registered snapshot (unless the
  // caller asks for one): releasing one marks every bottommost file for a rewrite (to zero
  // its sequence numbers), and that compaction then competes with the agent for the
  // cores after each verify.
  // Iterator 0 reads the head, genesis and checkpoints; 1 the records on this thread;
  // 2.. the records on the segment workers. All keys of both column families sort
  // below 's', which bounds every iterator.
  bool openIterators(bool use_snapshot) {
    rocksdb::DB* db = store_.db();
    if (db == nullptr) return fail(VerifyProblem::kReadError, 0, "chain database is not open");
    rocksdb::ColumnFamilyHandle* cf = store_.cf(chain_);
    guard_.db = db;
    guard_.snapshot = use_snapshot ? db->GetSnapshot() : nullptr;
    read_options_.snapshot = guard_.snapshot;
    read_options_.readahead_size = 4 << 20;
    read_options_.fill_cache = false;
    read_options_.iterate_upper_bound = &upper_slice_;
    std::vector<rocksdb::ColumnFamilyHandle*> families{store_.metaCf(chain_)};
    families.insert(families.end(), 1 + (threads_ > 1 ? threads_ : 0), cf);
    std::vector<rocksdb::Iterator*> raw_iterators;
    rocksdb::Status s = db->NewIterators(read_options_, families, &raw_iterators);
    for (rocksdb::Iterator* i : raw_iterators) iterators_.emplace_back(i);
    if (!s.ok() || iterators_.size() != families.size()) {
      return fail(VerifyProblem::kReadError, 0, "cannot read the chain: " + s.ToString());
    }
    return true;
  }
  rocksdb::Iterator& metaIterator() { return *iterators_[0]; }
  rocksdb::Iterator& recordIterator() { return *iterators_[1]; }

  // Reads one key: true if present (value in `out`), false if absent, nullopt on a read
  // error.
  static std::optional<bool> readKey(rocksdb::Iterator& i, std::string_view key,
                                     std::string& out) {
    i.Seek(rocksdb::Slice(key.data(), key.size()));
    if (!i.Valid()) {
      if (!i.status().ok()) return std::nullopt;
      return false;
    }
    if (view(i.key()) != key) return false;
    out.assign(i.value().data(), i.value().size());
    return true;
  }

  bool readHead() {
    std::string raw;
    auto got = readKey(metaIterator(), kHeadKey, raw);
    if (!got) return fail(VerifyProblem::kReadError, 0, "cannot read the head");
    if (*got) {
      auto h = decodeHead(raw);
      if (!h) return fail(VerifyProblem::kBadHead, 0, "head: " + h.status().message());
      head_ = *h;
    }
    report_.head_seq = head_.seq;
    return true;
  }

  // Where the walk starts: seq 1 after zeros, or after the genesis checkpoint; a range
  // that starts later trusts the stored hash of the record before it.
  bool readStart() {
    std::string raw;
    auto got = readKey(metaIterator(), kGenesisKey, raw);
    if (!got) return fail(VerifyProblem::kReadError, 0, "cannot read the genesis checkpoint");
    if (*got) {
      auto g = decodeCheckpoint(raw);
      uint64_t gseq = g ? g->seq : 0;
      if (!checkCheckpoint(raw, gseq, {}, /*is_genesis=*/true)) return false;
      report_.genesis_seq = gseq;
      report_.last_good_checkpoint_seq = gseq;
      expected_ = gseq + 1;
      prev_ = g->head_hash;
    }
    if (range_.from > expected_) {
      report_.partial = true;
      auto present = readKey(recordIterator(), recordKey(range_.from - 1), raw);
      if (!present || !*present) {
        return fail(present ? VerifyProblem::kGap : VerifyProblem::kReadError, range_.from - 1,
                    "cannot read record " + std::to_string(range_.from - 1) + " before the range");
      }
      auto before = decodeRecord(raw);
      if (!before) {
        return fail(VerifyProblem::kUndecodable, range_.from - 1, before.status().message());
      }
      expected_ = range_.from;
      prev_ = before->hash;
    }
    to_head_ = range_.to == std::numeric_limits<uint64_t>::max() || range_.to >= head_.seq;
    if (!to_head_) report_.partial = true;
    end_seq_ = to_head_ ? std::numeric_limits<uint64_t>::max() : range_.to;
    return true;
  }

  // Checkpoints ('c' keys), in seq order; those before the walk's start are skipped.
  bool readCheckpoints() {
    rocksdb::Iterator& it = metaIterator();
    for (it.Seek(checkpointKey(expected_)); it.Valid(); it.Next()) {
      if (it.key().empty() || it.key()[0] != kCheckpointPrefix) break;
      auto seq = seqFromKey(view(it.key()), kCheckpointPrefix);
      if (!seq) return fail(VerifyProblem::kBadCheckpoint, 0, "malformed checkpoint key");
      if (*seq > end_seq_) break;
      checkpoints_.emplace_back(*seq, it.value().ToString());
    }
    if (!it.status().ok()) {
      return fail(VerifyProblem::kReadError, expected_,
                  "reading checkpoints: " + it.status().ToString());
    }
    return true;
  }

  // Checks one checkpoint against the record hash it must sign.
  bool checkCheckpoint(std::string_view raw, uint64_t seq, const Hash256& record_hash,
                       bool is_genesis) {
    VerifyProblem bad = is_genesis ? VerifyProblem::kBadGenesis : VerifyProblem::kBadCheckpoint;
    std::string what = is_genesis ? "genesis checkpoint" : "checkpoint";
    auto cp = decodeCheckpoint(raw);
    if (!cp)
      return fail(bad, seq, what + " at seq " + std::to_string(seq) + ": " + cp.status().message());
    if (cp->chain != chain_ || cp->seq != seq) {
      return fail(bad, seq,
                  what + " stored at seq " + std::to_string(seq) + " names " +
                      std::string(chainNameString(cp->chain)) + " seq " + std::to_string(cp->seq));
    }
    const PublicKey& signer = public_key_ ? *public_key_ : cp->signer;
    if (!checkpointSignatureValid(*cp, signer)) {
      return fail(is_genesis ? VerifyProblem::kBadGenesis : VerifyProblem::kBadCheckpointSignature,
                  seq,
                  what + " at seq " + std::to_string(seq) + " has a signature that does not hold" +
                      (public_key_ ? " for the node key" : ""));
    }
    if (!is_genesis && cp->head_hash != record_hash) {
      return fail(VerifyProblem::kCheckpointMismatch, seq,
                  "checkpoint at seq " + std::to_string(seq) + " signed hash " +
                      shortHash(cp->head_hash) + "… but record " + std::to_string(seq) +
                      " hashes to " + shortHash(record_hash) + "…: records after seq " +
                      std::to_string(report_.last_good_checkpoint_seq) + " were rewritten");
    }
    ++report_.checkpoints;
    if (!is_genesis) report_.last_good_checkpoint_seq = seq;
    return true;
  }

  // Records are walked in two ways that yield the same records in the same order:
  // - parallel: the seqs up to the head (or range end) are cut into segments of
  //   tuning.segment_records seqs; up to kMaxVerifyThreads workers each read a segment
  //   with their own iterator and decode and hash it;
  // - sequential: this thread reads and decodes batches with one iterator. Used for short
  //   walks, for whatever lies past the last segment, and after a segment shows a gap.
  // Either way, this thread runs the checks that link records, in seq order, so the first
  // bad seq and its reason are exactly those of a plain sequential walk.
  bool walkRecords() {
    limit_ = to_head_ ? head_.seq : end_seq_;
    progress_last_ = to_head_ ? std::max(head_.seq, expected_) : end_seq_;
    const bool parallel = threads_ > 1 && limit_ >= expected_ &&
                          limit_ - expected_ + 1 >= 2 * static_cast<uint64_t>(seg_);
    slots_.resize(threads_ + 2);  // bounded: at most this many batches in memory
    for (size_t s = slots_.size(); s > 0; --s) free_slots_.push_back(s - 1);
    sequential_ = !parallel;
    next_segment_ = expected_;
    if (parallel) {
      std::vector<rocksdb::Iterator*> worker_iterators;
      for (size_t i = 2; i < iterators_.size(); ++i) worker_iterators.push_back(iterators_[i].get());
      pool_.emplace(slots_, worker_iterators, seg_, end_seq_, hasher_);
    } else {
      recordIterator().Seek(recordKey(expected_));
    }
    for (;;) {
      fillSlots();
      if (inflight_.empty()) break;
      size_t s = inflight_.front();
      inflight_.pop_front();
      if (!checkBatch(slots_[s])) return false;
      free_slots_.push_back(s);
      afterBatch(slots_[s]);
    }
    if (!recordIterator().status().ok()) {
      return fail(VerifyProblem::kReadError, expected_,
                  "reading records: " + recordIterator().status().ToString());
    }
    if (progress_) progress_(VerifyProgress{report_.records, expected_ - 1, progress_last_});
    return true;
  }

  // Puts batches in flight until the slots run out or nothing is left to read.
  void fillSlots() {
    while (!reading_done_ && !free_slots_.empty()) {
      size_t s = free_slots_.back();
      Batch& b = slots_[s];
      b.parallel = !sequential_;
      if (sequential_) {
        bool full = fillBatch(recordIterator(), end_seq_, {}, seg_, b);
        decodeBatch(b, decoder_, hasher_);
        if (!full) reading_done_ = true;
        if (b.items.empty() && b.read_error.empty()) break;
      } else {
        b.start = next_segment_;
        b.final = limit_ - next_segment_ + 1 < 2 * static_cast<uint64_t>(seg_);
        pool_->submit(s);
        if (b.final) {
          reading_done_ = true;
        } else {
          next_segment_ += seg_;
        }
      }
      free_slots_.pop_back();
      inflight_.push_back(s);
    }
  }

  bool checkBatch(Batch& b) {
    if (b.parallel) pool_->wait(&b - slots_.data());
    for (const Item& item : b.items) {
      if (!checkItem(item)) return false;
    }
    if (!b.read_error.empty()) {
      return fail(VerifyProblem::kReadError, expected_, "reading records: " + b.read_error);
    }
    return true;
  }

  // After a parallel segment: more records than seqs up to the head, or a seq missing
  // inside the segment, send the walk on sequentially.
  void afterBatch(const Batch& b) {
    if (b.parallel && b.final && b.more) {
      // Go on past the last record read.
      goSequential(recordKey(b.items.back().key_seq), /*skip_key=*/true);
    } else if (b.parallel && !b.final && b.items.size() < seg_) {
      // The next record stored (wherever it is) names the gap.
      goSequential(recordKey(b.start + seg_), /*skip_key=*/false);
    }
  }

  // Stops the parallel walk: waits out the segments still in flight (their records are not
  // needed) and continues sequentially from `key`, skipping it when it was already checked.
  void goSequential(const std::string& key, bool skip_key) {
    for (size_t s : inflight_) {
      if (slots_[s].parallel) pool_->wait(s);
      free_slots_.push_back(s);
    }
    inflight_.clear();
    sequential_ = true;
    reading_done_ = false;
    rocksdb::Iterator& it = recordIterator();
    it.Seek(key);
    if (skip_key && it.Valid() && view(it.key()) == key) it.Next();
  }

  bool checkItem(const Item& item) {
    const uint64_t k = item.key_seq;
    if (item.malformed_key) {
      return fail(VerifyProblem::kUndecodable, expected_,
                  "malformed record key after seq " + std::to_string(expected_ - 1));
    }
    if (k != expected_) {
      return fail(VerifyProblem::kGap, expected_,
                  "record " + std::to_string(expected_) + " is missing (next stored is " +
                      std::to_string(k) + ")");
    }
    if (!item.decoded) {
      return fail(VerifyProblem::kUndecodable, k,
                  "record " + std::to_string(k) + ": " + item.decoded.message());
    }
    if (item.seq != k) {
      return fail(VerifyProblem::kSeqMismatch, k,
                  "record stored under seq " + std::to_string(k) + " says it is seq " +
                      std::to_string(item.seq) + " (moved or reordered)");
    }
    if (item.computed != item.stored_hash) {
      return fail(VerifyProblem::kHashMismatch, k,
                  "record " + std::to_string(k) +
                      " does not hash to its stored hash (content changed)");
    }
    if (item.prev_hash != prev_) {
      return fail(VerifyProblem::kBrokenLink, k,
                  "record " + std::to_string(k) + " prev_hash " + shortHash(item.prev_hash) +
                      "… is not the hash of record " + std::to_string(k - 1) + " (" +
                      shortHash(prev_) + "…)");
    }
    while (next_cp_ < checkpoints_.size() && checkpoints_[next_cp_].first < k) ++next_cp_;
    if (next_cp_ < checkpoints_.size() && checkpoints_[next_cp_].first == k) {
      if (!checkCheckpoint(checkpoints_[next_cp_].second, k, item.computed, false)) return false;
      ++next_cp_;
    }
    if (report_.records == 0) report_.first_seq = k;
    report_.last_seq = k;
    ++report_.records;
    prev_ = item.computed;
    ++expected_;
    if (progress_ && report_.records % progress_every_ == 0) {
      progress_(VerifyProgress{report_.records, k, progress_last_});
    }
    return true;
  }

  // The last record that holds (or the genesis seq) against the range end or the head.
  bool holdEndAgainstHead() {
    const uint64_t last = expected_ - 1;
    if (!to_head_) {
      if (last < end_seq_) {
        return fail(VerifyProblem::kGap, last + 1,
                    "record " + std::to_string(last + 1) + " is missing inside the range");
      }
      return true;
    }
    if (next_cp_ < checkpoints_.size()) {
      return fail(VerifyProblem::kTruncated, last + 1,
                  "records after seq " + std::to_string(last) +
                      " are missing: a checkpoint at seq " +
                      std::to_string(checkpoints_[next_cp_].first) + " signs a record that is gone");
    }
    if (head_.seq > last) {
      return fail(VerifyProblem::kTruncated, last + 1,
                  "records after seq " + std::to_string(last) + " are missing: the head is at seq " +
                      std::to_string(head_.seq));
    }
    if (head_.seq < last) {
      return fail(VerifyProblem::kBadHead, head_.seq + 1,
                  "records past the head (head at seq " + std::to_string(head_.seq) +
                      ", last record " + std::to_string(last) + ")");
    }
    if (last != 0 && head_.hash != prev_) {
      return fail(VerifyProblem::kBadHead, last,
                  "the head hash " + shortHash(head_.hash) + "… is not the hash of record " +
                      std::to_string(last));
    }
    return true;
  }

  const ChainStore& store_;
  ChainName chain_;
  VerifyRange range_;
  const std::optional<PublicKey>& public_key_;
  const VerifyProgressFn& progress_;
  uint64_t progress_every_;
  RecordHasher hasher_;
  const size_t threads_;
  const size_t seg_;
  VerifyReport report_;

  // Declared in the order they must outlive each other: the snapshot and read options
  // outlive the iterators, which outlive the segment workers.
  const std::string upper_ = std::string(1, static_cast<char>(kRecordPrefix + 1));
  const rocksdb::Slice upper_slice_{upper_};
  SnapshotGuard guard_;
  rocksdb::ReadOptions read_options_;
  std::vector<std::unique_ptr<rocksdb::Iterator>> iterators_;
  std::vector<Batch> slots_;
  std::optional<SegmentPool> pool_;

  ChainHead head_;
  uint64_t expected_ = 1;  // the next seq the walk must see
  Hash256 prev_{};         // the hash the next record must link to
  bool to_head_ = true;
  uint64_t end_seq_ = std::numeric_limits<uint64_t>::max();
  uint64_t limit_ = 0;
  uint64_t progress_last_ = 0;
  std::vector<std::pair<uint64_t, std::string>> checkpoints_;
  size_t next_cp_ = 0;
  std::vector<size_t> free_slots_;
  std::deque<size_t> inflight_;  // slots in seq order
  RecordDecoder decoder_;
  bool sequential_ = true;
  bool reading_done_ = false;
  uint64_t next_segment_ = 1;
};

// One walk: under a registered snapshot when use_snapshot. The walk ends (its iterators
// and workers gone) before the read lock is let go.
VerifyReport walkChain(const ChainStore& store, ChainName chain, VerifyRange range,
                       const std::optional<PublicKey>& public_key,
                       const VerifyProgressFn& progress, uint64_t progress_every_records,
                       const VerifyTuning& tuning, bool use_snapshot) {
  auto lock = store.readLock();
  ChainWalk walk(store, chain, range, public_key, progress, progress_every_records, tuning);
  return walk.run(use_snapshot);
}

}  // namespace

VerifyReport verifyChain(const ChainStore& store, ChainName chain, VerifyRange range,
                         std::optional<PublicKey> public_key, const VerifyProgressFn& progress,
                         uint64_t progress_every_records, const VerifyTuning& tuning) {
  VerifyReport report = walkChain(store, chain, range, public_key, progress,
                                  progress_every_records, tuning, /*use_snapshot=*/false);
  if (report.ok) return report;
  // NewIterators() reads the sequence number just before it pins each column family's
  // files and memtables; a flush landing in between could already have dropped the head
  // version that sequence number sees (the writer overwrites the head with every batch).
  // So a walk that failed is done again under a registered snapshot, which pins what it
  // sees, and that report is the answer: a real problem fails both walks the same way.
  return walkChain(store, chain, range, public_key, progress, progress_every_records, tuning,
                   /*use_snapshot=*/true);
}

}  // namespace meshos::chains
