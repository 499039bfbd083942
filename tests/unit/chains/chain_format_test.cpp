#include "chains/chain_format.h"

#include <doctest/doctest.h>

using namespace meshos;
using namespace meshos::chains;

TEST_CASE("record encodes and decodes") {
  REQUIRE(initCrypto().isOk());
  RecordHasher h(ChainName::kLog);
  ChainRecord r;
  r.seq = 42;
  r.time_ms = -5;
  r.kind = "daemon.exit";
  r.payload = {1, 2, 3, 0, 255};
  r.prev_hash.fill(7);
  r.hash = h.hash(r);
  auto d = decodeRecord(encodeRecord(r));
  REQUIRE(d.isOk());
  CHECK(d->seq == 42);
  CHECK(d->time_ms == -5);
  CHECK(d->kind == "daemon.exit");
  CHECK(d->payload == r.payload);
  CHECK(d->prev_hash == r.prev_hash);
  CHECK(d->hash == r.hash);
  CHECK(h.hash(*d) == r.hash);
}

TEST_CASE("record hash covers every field and the chain name") {
  RecordHasher audit(ChainName::kAudit);
  RecordHasher log(ChainName::kLog);
  ChainRecord r;
  r.seq = 1;
  r.time_ms = 100;
  r.kind = "k";
  r.payload = {1, 2};
  Hash256 base = audit.hash(r);
  CHECK(log.hash(r) != base);
  ChainRecord x = r;
  x.seq = 2;
  CHECK(audit.hash(x) != base);
  x = r;
  x.time_ms = 101;
  CHECK(audit.hash(x) != base);
  x = r;
  x.kind = "kk";
  CHECK(audit.hash(x) != base);
  x = r;
  x.payload = {1, 3};
  CHECK(audit.hash(x) != base);
  x = r;
  x.prev_hash[31] = 1;
  CHECK(audit.hash(x) != base);
  // Length prefixes: moving a byte between kind and payload changes the hash.
  x = r;
  x.kind = "k\x01";
  x.payload = {2};
  CHECK(audit.hash(x) != base);
  CHECK(audit.hash(r) == base);  // deterministic
}

TEST_CASE("checkpoints are signed over chain, seq and hash") {
  REQUIRE(initCrypto().isOk());
  SigningKey key = SigningKey::generate();
  SigningKey other = SigningKey::generate();
  Hash256 h{};
  h.fill(3);
  Checkpoint cp = signCheckpoint(ChainName::kFailure, 1000, h, 5, key);
  CHECK(checkpointSignatureValid(cp, key.public_key));
  CHECK_FALSE(checkpointSignatureValid(cp, other.public_key));
  auto d = decodeCheckpoint(encodeCheckpoint(cp));
  REQUIRE(d.isOk());
  CHECK(d->chain == ChainName::kFailure);
  CHECK(d->seq == 1000);
  CHECK(checkpointSignatureValid(*d, key.public_key));
  Checkpoint moved = cp;
  moved.seq = 1001;
  CHECK_FALSE(checkpointSignatureValid(moved, key.public_key));
  Checkpoint renamed = cp;
  renamed.chain = ChainName::kAudit;
  CHECK_FALSE(checkpointSignatureValid(renamed, key.public_key));
}

TEST_CASE("garbage does not decode and says why") {
  CHECK(decodeRecord("").status().code() == Code::kCorruption);
  CHECK(decodeRecord("abc").status().code() == Code::kCorruption);
  CHECK(decodeRecord(std::string(64, '\xff')).status().code() == Code::kCorruption);
  CHECK(decodeHead(std::string(16, '\x01')).status().code() == Code::kCorruption);
  CHECK(decodeCheckpoint(std::string(8, '\0')).status().code() == Code::kCorruption);
  // A valid record with a short hash field is refused.
  ChainRecord r;
  auto bytes = encodeRecord(r);
  CHECK(decodeRecord(bytes).isOk());
}

TEST_CASE("keys sort by seq and parse back") {
  CHECK(recordKey(1) < recordKey(2));
  CHECK(recordKey(255) < recordKey(256));
  CHECK(recordKey(UINT64_MAX - 1) < recordKey(UINT64_MAX));
  CHECK(seqFromKey(recordKey(77), kRecordPrefix) == 77u);
  CHECK_FALSE(seqFromKey(recordKey(77), kCheckpointPrefix).has_value());
  CHECK_FALSE(seqFromKey("r123", kRecordPrefix).has_value());
  CHECK(parseChainName("audit").isOk());
  CHECK(parseChainName("nope").status().code() == Code::kInvalidArgument);
}

TEST_CASE("encodeRecordInto writes the same bytes as encodeRecord, for any size") {
  std::vector<uint64_t> scratch;
  std::string out;
  for (size_t n : {0, 1, 7, 8, 9, 200, 5000, 70000}) {
    ChainRecord r;
    r.seq = n + 1;
    r.time_ms = 12345;
    r.kind = std::string(n % 13, 'k');
    r.payload.assign(n, static_cast<uint8_t>(n));
    r.hash.fill(9);
    encodeRecordInto(r, scratch, out);
    CHECK(out == encodeRecord(r));
    auto d = decodeRecord(out);
    REQUIRE(d.isOk());
    CHECK(d->payload == r.payload);
  }
}
