// verifyChain: walks a chain (or a range of it) and checks that it holds together: every
// record decodes, sits under its own seq, hashes to its stored hash, links to the one
// before, every checkpoint is signed by the node key and matches the record it names, no
// record is missing before the head or a checkpoint, and the head matches the last record.
// It reports OK with counts, or the first seq that does not hold and why.
//
// Threads: any thread. It reads through one consistent set of RocksDB iterators (one
// sequence number, no registered snapshot), so it can run on a worker thread against a
// live agent's open store while the ChainWriter appends (it checks the chain as of the
// moment it started), or on a store opened read-only. A walk that finds a problem is done
// once more under a registered RocksDB snapshot, and that second report is returned. The progress
// callback runs on the calling thread. Long walks are split into segments that up to 4
// worker threads (started and joined inside the call) read, decode and hash; the calling
// thread checks the links in seq order, so the result is that of a sequential walk.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>

#include "agent/core/crypto.h"
#include "chains/chain_format.h"
#include "chains/chain_store.h"

namespace meshos::chains {

enum class VerifyProblem {
  kNone = 0,
  kUndecodable,             // a record (or checkpoint) does not decode
  kSeqMismatch,             // a record under key N says it is seq M: moved or reordered
  kHashMismatch,            // a record's content does not hash to its stored hash
  kBrokenLink,              // a record's prev_hash is not the hash of the record before it
  kGap,                     // a record is missing between two others
  kBadCheckpoint,           // a checkpoint does not decode or names another chain/seq
  kBadCheckpointSignature,  // a checkpoint's signature does not hold for the node key
  kCheckpointMismatch,      // a checkpoint signed another hash: records were rewritten
  kTruncated,               // records missing after the last one (head or a checkpoint is past it)
  kBadHead,                 // the head does not match the last record
  kBadGenesis,              // the genesis checkpoint left by pruning does not hold
  kReadError,               // RocksDB could not read
};
std::string_view verifyProblemName(VerifyProblem p);

struct VerifyRange {
  uint64_t from = 0;                                   // 0: from the oldest record
  uint64_t to = std::numeric_limits<uint64_t>::max();  // inclusive; max: through the head
};

struct VerifyProgress {
  uint64_t records_checked = 0;
  uint64_t current_seq = 0;
  uint64_t last_seq = 0;  // where the walk will end (the head, or range.to)
};
using VerifyProgressFn = std::function<void(const VerifyProgress&)>;

struct VerifyReport {
  ChainName chain = ChainName::kAudit;
  bool ok = false;
  uint64_t records = 0;      // records checked
  uint64_t checkpoints = 0;  // checkpoints checked (including the genesis)
  uint64_t first_seq = 0;    // first record checked (0: none)
  uint64_t last_seq = 0;     // last record checked
  uint64_t head_seq = 0;     // the head as stored
  uint64_t genesis_seq = 0;  // the chain was pruned up to and including this seq (0: never)
  uint64_t last_good_checkpoint_seq = 0;
  bool partial = false;               // a range narrower than the whole chain was checked
  bool signer_authenticated = false;  // checked against a given public key, not the stored one
  VerifyProblem problem = VerifyProblem::kNone;
  uint64_t bad_seq = 0;  // the first seq that does not hold
  std::string detail;    // why, for humans
};

// How the walk is split across threads. The defaults suit production; tests shrink the
// segments to exercise the parallel walk on short chains. Results do not depend on it.
struct VerifyTuning {
  size_t threads = 0;               // 0: hardware threads, at most 4; 1: one thread
  size_t segment_records = 16384;   // seqs per segment of the parallel walk
};

// public_key: the node's key; without it signatures are checked against the signer key
// stored in each checkpoint (catches corruption, not a forger), and the report says so.
VerifyReport verifyChain(const ChainStore& store, ChainName chain, VerifyRange range = {},
                         std::optional<PublicKey> public_key = std::nullopt,
                         const VerifyProgressFn& progress = {},
                         uint64_t progress_every_records = 1 << 18,
                         const VerifyTuning& tuning = {});

}  // namespace meshos::chains
