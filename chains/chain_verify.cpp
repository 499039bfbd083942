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

namespace meshos::chains {

namespace {

std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

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

class Walker {
 public:
  Walker(ChainName chain, VerifyReport& report) : chain_(chain), report_(report), hasher_(chain) {}

  bool fail(VerifyProblem p, uint64_t seq, std::string detail) {
    report_.ok = false;
    report_.problem = p;
    report_.bad_seq = seq;
    report_.detail = std::move(detail);
    return false;
  }

  // Checks one checkpoint against the record hash it must sign. False on a problem.
  bool checkCheckpoint(std::string_view raw, uint64_t seq, const Hash256& record_hash,
                       const std::optional<PublicKey>& key, bool is_genesis) {
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
    const PublicKey& signer = key ? *key : cp->signer;
    if (!checkpointSignatureValid(*cp, signer)) {
      return fail(is_genesis ? VerifyProblem::kBadGenesis : VerifyProblem::kBadCheckpointSignature,
                  seq,
                  what + " at seq " + std::to_string(seq) + " has a signature that does not hold" +
                      (key ? " for the node key" : ""));
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

  const RecordHasher& hasher() const { return hasher_; }

 private:
  ChainName chain_;
  VerifyReport& report_;
  RecordHasher hasher_;
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

struct SnapshotGuard {
  rocksdb::DB* db = nullptr;
  const rocksdb::Snapshot* snapshot = nullptr;
  ~SnapshotGuard() {
    if (snapshot != nullptr) db->ReleaseSnapshot(snapshot);
  }
};

// One walk: under a registered snapshot when use_snapshot, otherwise see below.
VerifyReport walkChain(const ChainStore& store, ChainName chain, VerifyRange range,
                       const std::optional<PublicKey>& public_key,
                       const VerifyProgressFn& progress, uint64_t progress_every_records,
                       const VerifyTuning& tuning, bool use_snapshot) {
  VerifyReport report;
  report.chain = chain;
  report.ok = true;
  report.signer_authenticated = public_key.has_value();
  Walker w(chain, report);
  auto lock = store.readLock();
  rocksdb::DB* db = store.db();
  if (db == nullptr) {
    w.fail(VerifyProblem::kReadError, 0, "chain database is not open");
    return report;
  }
  rocksdb::ColumnFamilyHandle* cf = store.cf(chain);
  rocksdb::ColumnFamilyHandle* meta_cf = store.metaCf(chain);
  const size_t threads = std::clamp<size_t>(
      tuning.threads != 0 ? tuning.threads : std::thread::hardware_concurrency(), 1,
      kMaxVerifyThreads);

  // Every read of the walk goes through iterators made by one NewIterators() call, so
  // they all see the database as of one moment (RocksDB gives them one sequence number),
  // whatever the ChainWriter appends meanwhile. Not a registered snapshot (unless the
  // caller passes one): releasing one marks every bottommost file for a rewrite (to zero
  // its sequence numbers), and that compaction then competes with the agent for the
  // cores after each verify.
  // Iterator 0 reads the head, genesis and checkpoints; 1 the records on this thread;
  // 2.. the records on the segment workers. All keys of both column families sort
  // below 's', which bounds every iterator.
  const std::string upper(1, static_cast<char>(kRecordPrefix + 1));
  const rocksdb::Slice upper_slice(upper);
  SnapshotGuard guard{db, use_snapshot ? db->GetSnapshot() : nullptr};
  rocksdb::ReadOptions ro;
  ro.snapshot = guard.snapshot;
  ro.readahead_size = 4 << 20;
  ro.fill_cache = false;
  ro.iterate_upper_bound = &upper_slice;
  std::vector<rocksdb::ColumnFamilyHandle*> families{meta_cf};
  families.insert(families.end(), 1 + (threads > 1 ? threads : 0), cf);
  std::vector<std::unique_ptr<rocksdb::Iterator>> iterators;
  {
    std::vector<rocksdb::Iterator*> raw_iterators;
    rocksdb::Status s = db->NewIterators(ro, families, &raw_iterators);
    for (rocksdb::Iterator* i : raw_iterators) iterators.emplace_back(i);
    if (!s.ok() || iterators.size() != families.size()) {
      w.fail(VerifyProblem::kReadError, 0, "cannot read the chain: " + s.ToString());
      return report;
    }
  }
  rocksdb::Iterator& meta_it = *iterators[0];
  std::vector<rocksdb::Iterator*> worker_iterators;
  for (size_t i = 2; i < iterators.size(); ++i) worker_iterators.push_back(iterators[i].get());

  // Reads one key: true if present (value in `out`), false if absent, nullopt on a read
  // error.
  auto readKey = [&](rocksdb::Iterator& i, std::string_view key,
                     std::string& out) -> std::optional<bool> {
    i.Seek(rocksdb::Slice(key.data(), key.size()));
    if (!i.Valid()) {
      if (!i.status().ok()) return std::nullopt;
      return false;
    }
    if (view(i.key()) != key) return false;
    out.assign(i.value().data(), i.value().size());
    return true;
  };

  // The head.
  std::string raw;
  ChainHead head;
  auto got = readKey(meta_it, kHeadKey, raw);
  if (!got) {
    w.fail(VerifyProblem::kReadError, 0, "cannot read the head");
    return report;
  }
  if (*got) {
    auto h = decodeHead(raw);
    if (!h) {
      w.fail(VerifyProblem::kBadHead, 0, "head: " + h.status().message());
      return report;
    }
    head = *h;
  }
  report.head_seq = head.seq;

  // Where the chain starts: seq 1 after zeros, or after the genesis checkpoint.
  uint64_t expected = 1;
  Hash256 prev{};
  got = readKey(meta_it, kGenesisKey, raw);
  if (!got) {
    w.fail(VerifyProblem::kReadError, 0, "cannot read the genesis checkpoint");
    return report;
  }
  if (*got) {
    auto g = decodeCheckpoint(raw);
    uint64_t gseq = g ? g->seq : 0;
    if (!w.checkCheckpoint(raw, gseq, {}, public_key, /*is_genesis=*/true)) return report;
    report.genesis_seq = gseq;
    report.last_good_checkpoint_seq = gseq;
    expected = gseq + 1;
    prev = g->head_hash;
  }

  // A range that starts later trusts the stored hash of the record before it.
  if (range.from > expected) {
    report.partial = true;
    auto present = readKey(*iterators[1], recordKey(range.from - 1), raw);
    if (!present || !*present) {
      w.fail(present ? VerifyProblem::kGap : VerifyProblem::kReadError, range.from - 1,
             "cannot read record " + std::to_string(range.from - 1) + " before the range");
      return report;
    }
    auto before = decodeRecord(raw);
    if (!before) {
      w.fail(VerifyProblem::kUndecodable, range.from - 1, before.status().message());
      return report;
    }
    expected = range.from;
    prev = before->hash;
  }
  bool to_head = range.to == std::numeric_limits<uint64_t>::max() || range.to >= head.seq;
  if (!to_head) report.partial = true;
  uint64_t end_seq = to_head ? std::numeric_limits<uint64_t>::max() : range.to;

  // Checkpoints ('c' keys), in seq order; those before the walk's start are skipped.
  std::vector<std::pair<uint64_t, std::string>> checkpoints;
  {
    rocksdb::Iterator& it = meta_it;
    for (it.Seek(checkpointKey(expected)); it.Valid(); it.Next()) {
      if (it.key().empty() || it.key()[0] != kCheckpointPrefix) break;
      auto seq = seqFromKey(view(it.key()), kCheckpointPrefix);
      if (!seq) {
        w.fail(VerifyProblem::kBadCheckpoint, 0, "malformed checkpoint key");
        return report;
      }
      if (*seq > end_seq) break;
      checkpoints.emplace_back(*seq, it.value().ToString());
    }
    if (!it.status().ok()) {
      w.fail(VerifyProblem::kReadError, expected,
             "reading checkpoints: " + it.status().ToString());
      return report;
    }
  }
  size_t next_cp = 0;

  // The records.
  rocksdb::Iterator* it = iterators[1].get();
  uint64_t last_progress_total = head.seq >= expected ? head.seq : expected;
  uint64_t progress_last = to_head ? last_progress_total : end_seq;

  // Records are walked in two ways that yield the same records in the same order:
  // - parallel: the seqs up to the head (or range end) are cut into segments of
  //   tuning.segment_records seqs; up to kMaxVerifyThreads workers each read a segment with their
  //   own iterator and decode and hash it;
  // - sequential: this thread reads and decodes batches with one iterator. Used for short
  //   walks, for whatever lies past the last segment, and after a segment shows a gap.
  // Either way, this thread runs the checks that link records, in seq order, so the first
  // bad seq and its reason are exactly those of a plain sequential walk.
  const size_t seg = std::clamp<size_t>(tuning.segment_records, 1, size_t{1} << 24);
  const uint64_t limit = to_head ? head.seq : end_seq;
  const bool parallel =
      threads > 1 && limit >= expected && limit - expected + 1 >= 2 * static_cast<uint64_t>(seg);
  std::vector<Batch> slots(threads + 2);  // bounded: at most this many batches in memory
  std::vector<size_t> free_slots;
  for (size_t s = slots.size(); s > 0; --s) free_slots.push_back(s - 1);
  std::deque<size_t> inflight;  // slots in seq order
  RecordDecoder decoder;
  std::optional<SegmentPool> pool;
  bool sequential = !parallel;
  bool reading_done = false;
  uint64_t next_segment = expected;
  if (parallel) {
    pool.emplace(slots, worker_iterators, seg, end_seq, w.hasher());
  } else {
    it->Seek(recordKey(expected));
  }
  // Stops the parallel walk: waits out the segments still in flight (their records are not
  // needed) and continues sequentially from `key`, skipping it when it was already checked.
  auto goSequential = [&](const std::string& key, bool skip_key) {
    for (size_t s : inflight) {
      if (slots[s].parallel) pool->wait(s);
      free_slots.push_back(s);
    }
    inflight.clear();
    sequential = true;
    reading_done = false;
    it->Seek(key);
    if (skip_key && it->Valid() && view(it->key()) == key) it->Next();
  };
  for (;;) {
    while (!reading_done && !free_slots.empty()) {
      size_t s = free_slots.back();
      Batch& b = slots[s];
      b.parallel = !sequential;
      if (sequential) {
        bool full = fillBatch(*it, end_seq, {}, seg, b);
        decodeBatch(b, decoder, w.hasher());
        if (!full) reading_done = true;
        if (b.items.empty() && b.read_error.empty()) break;
      } else {
        b.start = next_segment;
        b.final = limit - next_segment + 1 < 2 * static_cast<uint64_t>(seg);
        pool->submit(s);
        if (b.final) {
          reading_done = true;
        } else {
          next_segment += seg;
        }
      }
      free_slots.pop_back();
      inflight.push_back(s);
    }
    if (inflight.empty()) break;
    size_t s = inflight.front();
    inflight.pop_front();
    Batch& b = slots[s];
    if (b.parallel) pool->wait(s);
    for (Item& item : b.items) {
      if (item.malformed_key) {
        w.fail(VerifyProblem::kUndecodable, expected,
               "malformed record key after seq " + std::to_string(expected - 1));
        return report;
      }
      uint64_t k = item.key_seq;
      if (k != expected) {
        w.fail(VerifyProblem::kGap, expected,
               "record " + std::to_string(expected) + " is missing (next stored is " +
                   std::to_string(k) + ")");
        return report;
      }
      if (!item.decoded) {
        w.fail(VerifyProblem::kUndecodable, k,
               "record " + std::to_string(k) + ": " + item.decoded.message());
        return report;
      }
      if (item.seq != k) {
        w.fail(VerifyProblem::kSeqMismatch, k,
               "record stored under seq " + std::to_string(k) + " says it is seq " +
                   std::to_string(item.seq) + " (moved or reordered)");
        return report;
      }
      if (item.computed != item.stored_hash) {
        w.fail(
            VerifyProblem::kHashMismatch, k,
            "record " + std::to_string(k) + " does not hash to its stored hash (content changed)");
        return report;
      }
      if (item.prev_hash != prev) {
        w.fail(VerifyProblem::kBrokenLink, k,
               "record " + std::to_string(k) + " prev_hash " + shortHash(item.prev_hash) +
                   "… is not the hash of record " + std::to_string(k - 1) + " (" + shortHash(prev) +
                   "…)");
        return report;
      }
      while (next_cp < checkpoints.size() && checkpoints[next_cp].first < k) ++next_cp;
      if (next_cp < checkpoints.size() && checkpoints[next_cp].first == k) {
        if (!w.checkCheckpoint(checkpoints[next_cp].second, k, item.computed, public_key, false)) {
          return report;
        }
        ++next_cp;
      }
      if (report.records == 0) report.first_seq = k;
      report.last_seq = k;
      ++report.records;
      prev = item.computed;
      ++expected;
      if (progress && report.records % progress_every_records == 0) {
        progress(VerifyProgress{report.records, k, progress_last});
      }
    }
    if (!b.read_error.empty()) {
      w.fail(VerifyProblem::kReadError, expected, "reading records: " + b.read_error);
      return report;
    }
    free_slots.push_back(s);
    if (b.parallel && b.final && b.more) {
      // More records than seqs up to the head: go on past the last one read.
      goSequential(recordKey(b.items.back().key_seq), /*skip_key=*/true);
    } else if (b.parallel && !b.final && b.items.size() < seg) {
      // A seq of this segment is missing after its last record: the next record stored
      // (wherever it is) names the gap.
      goSequential(recordKey(b.start + seg), /*skip_key=*/false);
    }
  }
  if (!it->status().ok()) {
    w.fail(VerifyProblem::kReadError, expected, "reading records: " + it->status().ToString());
    return report;
  }
  if (progress) progress(VerifyProgress{report.records, expected - 1, progress_last});

  uint64_t last = expected - 1;  // last record that holds (or the genesis seq)
  if (!to_head) {
    if (last < end_seq) {
      w.fail(VerifyProblem::kGap, last + 1,
             "record " + std::to_string(last + 1) + " is missing inside the range");
    }
    return report;
  }
  if (next_cp < checkpoints.size()) {
    w.fail(VerifyProblem::kTruncated, last + 1,
           "records after seq " + std::to_string(last) + " are missing: a checkpoint at seq " +
               std::to_string(checkpoints[next_cp].first) + " signs a record that is gone");
    return report;
  }
  if (head.seq > last) {
    w.fail(VerifyProblem::kTruncated, last + 1,
           "records after seq " + std::to_string(last) + " are missing: the head is at seq " +
               std::to_string(head.seq));
    return report;
  }
  if (head.seq < last) {
    w.fail(VerifyProblem::kBadHead, head.seq + 1,
           "records past the head (head at seq " + std::to_string(head.seq) + ", last record " +
               std::to_string(last) + ")");
    return report;
  }
  if (last != 0 && head.hash != prev) {
    w.fail(VerifyProblem::kBadHead, last,
           "the head hash " + shortHash(head.hash) + "… is not the hash of record " +
               std::to_string(last));
    return report;
  }
  return report;
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
