// The on-disk format of meshos hash chains, and the pure functions that encode, decode and
// hash it. No I/O here: ChainStore writes and reads these bytes, verifyChain() checks them.
// Any thread may call anything in this file.
//
// Database: one RocksDB per node at <data_dir>/db with the column families
//   "audit", "log", "failure"  one per chain (see ChainName): its records only
//   "audit.meta", "log.meta", "failure.meta"
//                              one per chain: its head, checkpoints and genesis
//   "state"                    a key/value area for other modules (ChainStore::putState)
//   "default"                  unused
// Records sit alone so that their files never overlap and verify scans them without
// competing with compaction.
//
// Keys (all integers big-endian, so keys sort by number):
//   'r' + be64(seq)   in "<chain>": a record: Cap'n Proto ChainRecord (proto/chain.capnp)
//   in "<chain>.meta":
//   'h'               the head: ChainHead {seq, hash} of the newest record, written in the
//                     same WriteBatch as that record
//   'c' + be64(seq)   a checkpoint: ChainCheckpoint, signed by the node key
//   'g'               the genesis checkpoint after pruning (a ChainCheckpoint at the seq
//                     just before the oldest kept record); absent while nothing was pruned
//
// Record hash (BLAKE2b-256, 32 bytes), over this byte string:
//   "meshos.chain.record.v1" 0x00
//   be64(len(chain)) chain          (the chain's name: "audit", "log", "failure")
//   be64(seq) be64(timeMs as two's complement)
//   be64(len(kind)) kind
//   be64(len(payload)) payload
//   prevHash (32 bytes)
// The first record of a chain has seq 1 and prevHash = 32 zero bytes. Every later record's
// prevHash is the previous record's hash, so a record's hash commits to all history.
// The stored `hash` field lets verify name the record whose content changed; it is itself
// checked, never trusted.
//
// Checkpoint signature (ed25519, node key) over:
//   "meshos.chain.checkpoint.v1" 0x00 be64(len(chain)) chain be64(seq) headHash (32)
// A checkpoint at seq s is written in the same batch as record s (every K records) or on
// its own (clean shutdown, pruning).
//
// Record values are Cap'n Proto single-segment flat arrays (messageToFlatArray), decoded
// with bounded ReaderOptions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/bytes.h"
#include "agent/core/crypto.h"
#include "agent/core/status.h"

namespace meshos::chains {

enum class ChainName : uint8_t { kAudit = 0, kLog = 1, kFailure = 2 };
inline constexpr size_t kChainCount = 3;
inline constexpr ChainName kAllChains[kChainCount] = {ChainName::kAudit, ChainName::kLog,
                                                      ChainName::kFailure};

std::string_view chainNameString(ChainName chain);
// "<chain>.meta": the column family of the chain's head, checkpoints and genesis.
std::string chainMetaCfName(ChainName chain);
Result<ChainName> parseChainName(std::string_view name);
inline size_t chainIndex(ChainName chain) { return static_cast<size_t>(chain); }

inline constexpr char kRecordPrefix = 'r';
inline constexpr char kCheckpointPrefix = 'c';
inline constexpr std::string_view kHeadKey = "h";
inline constexpr std::string_view kGenesisKey = "g";
// Largest payload and kind an append accepts.
inline constexpr size_t kMaxPayloadBytes = 1 << 20;
inline constexpr size_t kMaxKindBytes = 256;

std::string recordKey(uint64_t seq);
std::string checkpointKey(uint64_t seq);
// The seq in a 'r'/'c' key, or nullopt if the key is not 9 bytes with that prefix.
std::optional<uint64_t> seqFromKey(std::string_view key, char prefix);

struct ChainRecord {
  uint64_t seq = 0;
  int64_t time_ms = 0;
  std::string kind;
  Bytes payload;
  Hash256 prev_hash{};
  Hash256 hash{};  // as stored (decoded) or as computed (built by the writer)
};

// A decoded record whose kind and payload point into the decoded bytes when they were
// 8-byte aligned, otherwise into the decoder's buffer: valid while those bytes live and
// until the decoder's next call.
struct RecordView {
  uint64_t seq = 0;
  int64_t time_ms = 0;
  std::string_view kind;
  ByteView payload;
  Hash256 prev_hash{};
  Hash256 hash{};
};

struct ChainHead {
  uint64_t seq = 0;  // 0: empty chain
  Hash256 hash{};
};

struct Checkpoint {
  ChainName chain = ChainName::kAudit;
  uint64_t seq = 0;
  Hash256 head_hash{};
  int64_t time_ms = 0;
  PublicKey signer{};
  Signature signature{};
};

// Hashes records of one chain; keeps the domain-separation prefix precomputed so each
// record costs one copy of the hash state plus its bytes.
class RecordHasher {
 public:
  explicit RecordHasher(ChainName chain);
  Hash256 hash(uint64_t seq, int64_t time_ms, std::string_view kind, ByteView payload,
               const Hash256& prev_hash) const;
  Hash256 hash(const ChainRecord& r) const {
    return hash(r.seq, r.time_ms, r.kind, r.payload, r.prev_hash);
  }
  Hash256 hash(const RecordView& r) const {
    return hash(r.seq, r.time_ms, r.kind, r.payload, r.prev_hash);
  }

 private:
  Blake2b prefix_;
};

Bytes checkpointMessage(ChainName chain, uint64_t seq, const Hash256& head_hash);
Checkpoint signCheckpoint(ChainName chain, uint64_t seq, const Hash256& head_hash, int64_t time_ms,
                          const SigningKey& key);
// True if the signature holds for `key` (the node's public key).
bool checkpointSignatureValid(const Checkpoint& cp, const PublicKey& key);

std::string encodeRecord(const ChainRecord& r);
// Same bytes as encodeRecord(), written into `out` (replacing its content) without a heap
// allocation per record once `out` and `scratch` have grown: the writer's hot path.
void encodeRecordInto(const ChainRecord& r, std::vector<uint64_t>& scratch, std::string& out);
void encodeRecordInto(const RecordView& r, std::vector<uint64_t>& scratch, std::string& out);
std::string encodeHead(const ChainHead& h);
std::string encodeCheckpoint(const Checkpoint& cp);
// Decoders: kCorruption with a reason on anything that does not decode or has wrong sizes.
Result<ChainRecord> decodeRecord(std::string_view bytes);
Result<ChainHead> decodeHead(std::string_view bytes);
Result<Checkpoint> decodeCheckpoint(std::string_view bytes);

// Reusable decoder for hot loops (verify): avoids an allocation per record. Reads the
// bytes in place when they are 8-byte aligned, copies them only when they are not.
class RecordDecoder {
 public:
  // Fills `out` (reusing its buffers). kCorruption when the bytes do not decode.
  Status decode(std::string_view bytes, ChainRecord& out);
  Status decodeView(std::string_view bytes, RecordView& out);

 private:
  std::vector<uint64_t> words_;
};

}  // namespace meshos::chains
