// Chain target: a stored value of a chain (record, head or checkpoint) as RocksDB hands it
// back, which a damaged disk can make anything. Every decoder runs on the bytes; the record
// decoders agree with each other whether the bytes are 8-byte aligned (read in place) or not
// (copied), and a decoded value re-encodes to bytes that decode to the same value.
#include <cstring>
#include <string>

#include "chains/chain_format.h"
#include "tests/fuzz/fuzz_target.h"

namespace meshos::fuzz {

using namespace meshos::chains;

namespace {

Hash256 fixedHash(uint8_t fill) {
  Hash256 h{};
  h.fill(fill);
  return h;
}

SigningKey fixedSigner() {
  std::array<uint8_t, 32> seed{};
  seed.fill(5);
  return SigningKey::fromSeed(seed);
}

bool sameRecord(const ChainRecord& a, const RecordView& b) {
  return a.seq == b.seq && a.time_ms == b.time_ms && a.kind == b.kind &&
         Bytes(b.payload.begin(), b.payload.end()) == a.payload && a.prev_hash == b.prev_hash &&
         a.hash == b.hash;
}

}  // namespace

int fuzzChainRecord(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // The same bytes one past an 8-byte boundary, so the decoders take their copying path.
  std::string shifted_buf(size + 1, '\0');
  std::memcpy(shifted_buf.data() + 1, data, size);
  const std::string_view shifted = std::string_view(shifted_buf).substr(1);

  auto record = decodeRecord(in);
  RecordDecoder decoder;
  RecordView view;
  for (std::string_view bytes : {in, shifted}) {
    const Status s = decoder.decodeView(bytes, view);
    check(s.isOk() == record.isOk());
    if (record) check(sameRecord(*record, view));
  }
  if (record) {
    const std::string once = encodeRecord(*record);
    auto again = decodeRecord(once);
    check(again.isOk() && encodeRecord(*again) == once);
    std::vector<uint64_t> scratch;
    std::string into;
    encodeRecordInto(*record, scratch, into);
    check(into == once);
    // A record whose stored hash is not the one computed from its fields is what verify
    // reports; computing it must work for any decoded record.
    (void)RecordHasher(ChainName::kAudit).hash(*record);
  }
  if (auto head = decodeHead(in)) {
    auto again = decodeHead(encodeHead(*head));
    check(again.isOk() && again->seq == head->seq && again->hash == head->hash);
  }
  if (auto cp = decodeCheckpoint(in)) {
    auto again = decodeCheckpoint(encodeCheckpoint(*cp));
    check(again.isOk() && again->signature == cp->signature && again->head_hash == cp->head_hash);
    (void)checkpointSignatureValid(*cp, cp->signer);
  }
  return 0;
}

std::vector<Bytes> chainRecordSeeds() {
  ChainRecord r;
  r.seq = 42;
  r.time_ms = 1'700'000'000'123;
  r.kind = "control";
  r.payload = bytesOf(R"({"op":"restart","daemon":"web"})");
  r.prev_hash = fixedHash(0x11);
  r.hash = RecordHasher(ChainName::kAudit).hash(r);
  ChainRecord empty;
  empty.seq = 1;
  empty.kind = "chain.genesis";
  std::vector<Bytes> out = {
      bytesOf(encodeRecord(r)),
      bytesOf(encodeRecord(empty)),
      bytesOf(encodeHead(ChainHead{42, r.hash})),
      bytesOf(encodeCheckpoint(signCheckpoint(ChainName::kFailure, 1000, fixedHash(0x22), 5, fixedSigner()))),
  };
  Bytes torn = out[0];
  torn.resize(torn.size() - 8);
  out.push_back(torn);
  out.push_back(Bytes(16, 0xff));
  return out;
}

}  // namespace meshos::fuzz
