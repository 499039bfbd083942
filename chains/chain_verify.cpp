#include "chains/chain_verify.h"

#include <rocksdb/db.h>

#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

namespace meshos::chains {

namespace {

std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

constexpr size_t kMaxVerifyThreads = 4;

std::string shortHash(const Hash256& h) { return toHex(ByteView(h.data(), 8)); }

struct SnapshotGuard {
  rocksdb::DB* db;
  const rocksdb::Snapshot* snap;
  ~SnapshotGuard() { db->ReleaseSnapshot(snap); }
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

VerifyReport verifyChain(const ChainStore& store, ChainName chain, VerifyRange range,
                         std::optional<PublicKey> public_key, const VerifyProgressFn& progress,
                         uint64_t progress_every_records) {
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
  SnapshotGuard guard{db, db->GetSnapshot()};
  rocksdb::ReadOptions ro;
  ro.snapshot = guard.snap;
  ro.readahead_size = 4 << 20;
  ro.fill_cache = false;

  auto readKey = [&](std::string_view key, std::string& out) -> std::optional<bool> {
    rocksdb::Status s = db->Get(ro, cf, rocksdb::Slice(key.data(), key.size()), &out);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return std::nullopt;
    return true;
  };

  // The head.
  std::string raw;
  ChainHead head;
  auto got = readKey(kHeadKey, raw);
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
  got = readKey(kGenesisKey, raw);
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
    auto present = readKey(recordKey(range.from - 1), raw);
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
    std::string upper(1, static_cast<char>(kCheckpointPrefix + 1));
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions cro = ro;
    cro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(cro, cf));
    for (it->Seek(checkpointKey(expected)); it->Valid(); it->Next()) {
      auto seq = seqFromKey(view(it->key()), kCheckpointPrefix);
      if (!seq) {
        w.fail(VerifyProblem::kBadCheckpoint, 0, "malformed checkpoint key");
        return report;
      }
      if (*seq > end_seq) break;
      checkpoints.emplace_back(*seq, it->value().ToString());
    }
    if (!it->status().ok()) {
      w.fail(VerifyProblem::kReadError, expected,
             "reading checkpoints: " + it->status().ToString());
      return report;
    }
  }
  size_t next_cp = 0;

  // The records.
  std::string upper(1, static_cast<char>(kRecordPrefix + 1));
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  uint64_t last_progress_total = head.seq >= expected ? head.seq : expected;
  uint64_t progress_last = to_head ? last_progress_total : end_seq;

  // Records are read in batches; decoding and hashing (independent per record) run on up
  // to kMaxVerifyThreads threads; the checks that link records run in seq order after.
  struct Item {
    uint64_t key_seq = 0;
    bool malformed_key = false;
    size_t offset = 0;
    size_t size = 0;
    Status decoded;
    RecordView rec;
    Hash256 computed{};
  };
  constexpr size_t kBatch = 8192;
  const size_t threads =
      std::clamp<size_t>(std::thread::hardware_concurrency(), 1, kMaxVerifyThreads);
  std::vector<Item> items;
  std::string arena;
  std::vector<RecordDecoder> decoders(threads);
  it->Seek(recordKey(expected));
  bool done = false;
  while (!done) {
    items.clear();
    arena.clear();
    while (items.size() < kBatch) {
      if (!it->Valid()) {
        done = true;
        break;
      }
      Item item;
      auto key_seq = seqFromKey(view(it->key()), kRecordPrefix);
      if (!key_seq) {
        item.malformed_key = true;
        items.push_back(std::move(item));
        done = true;
        break;
      }
      if (*key_seq > end_seq) {
        done = true;
        break;
      }
      item.key_seq = *key_seq;
      item.offset = arena.size();
      item.size = it->value().size();
      arena.append(it->value().data(), it->value().size());
      items.push_back(std::move(item));
      it->Next();
    }
    auto work = [&](size_t t) {
      for (size_t i = t; i < items.size(); i += threads) {
        Item& item = items[i];
        if (item.malformed_key) continue;
        // The views in item.rec point into this thread's decoder only until its next
        // decode, so keep just what the checks below need.
        item.decoded = decoders[t].decodeView(
            std::string_view(arena).substr(item.offset, item.size), item.rec);
        if (item.decoded) item.computed = w.hasher().hash(item.rec);
        item.rec.kind = {};
        item.rec.payload = {};
      }
    };
    if (threads > 1 && items.size() > 256) {
      std::vector<std::thread> pool;
      for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
      work(0);
      for (auto& th : pool) th.join();
    } else {
      for (size_t t = 0; t < threads; ++t) work(t);
    }

    for (Item& item : items) {
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
      const RecordView& rec = item.rec;
      if (rec.seq != k) {
        w.fail(VerifyProblem::kSeqMismatch, k,
               "record stored under seq " + std::to_string(k) + " says it is seq " +
                   std::to_string(rec.seq) + " (moved or reordered)");
        return report;
      }
      if (item.computed != rec.hash) {
        w.fail(
            VerifyProblem::kHashMismatch, k,
            "record " + std::to_string(k) + " does not hash to its stored hash (content changed)");
        return report;
      }
      if (rec.prev_hash != prev) {
        w.fail(VerifyProblem::kBrokenLink, k,
               "record " + std::to_string(k) + " prev_hash " + shortHash(rec.prev_hash) +
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

}  // namespace meshos::chains
