#include "chains/chain_format.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstdint>
#include <cstring>

#include "proto/chain.capnp.h"

namespace meshos::chains {

namespace {

constexpr std::string_view kRecordDomain{"meshos.chain.record.v1\0", 23};
constexpr std::string_view kCheckpointDomain{"meshos.chain.checkpoint.v1\0", 27};

std::string prefixedSeqKey(char prefix, uint64_t seq) {
  std::string key(9, '\0');
  key[0] = prefix;
  for (int i = 0; i < 8; ++i) key[1 + i] = static_cast<char>(seq >> (56 - 8 * i));
  return key;
}

std::string flatten(capnp::MessageBuilder& msg) {
  auto words = capnp::messageToFlatArray(msg);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

capnp::Data::Reader dataOf(ByteView b) { return {b.data(), b.size()}; }

template <size_t N>
bool copyFixed(capnp::Data::Reader in, std::array<uint8_t, N>& out) {
  if (in.size() != N) return false;
  std::memcpy(out.data(), in.begin(), N);
  return true;
}

capnp::ReaderOptions boundedOptions(size_t bytes) {
  capnp::ReaderOptions opts;
  opts.traversalLimitInWords = bytes / 8 + 64;
  opts.nestingLimit = 8;
  return opts;
}

// Cap'n Proto needs 8-byte aligned input: reads the bytes in place when they are aligned,
// otherwise copies them into `buffer`.
kj::ArrayPtr<const capnp::word> alignedWords(std::string_view bytes,
                                             std::vector<uint64_t>& buffer) {
  size_t n = bytes.size() / 8;
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
    return {reinterpret_cast<const capnp::word*>(bytes.data()), n};
  }
  buffer.resize(n);
  if (n > 0) std::memcpy(buffer.data(), bytes.data(), n * 8);
  return {reinterpret_cast<const capnp::word*>(buffer.data()), n};
}

}  // namespace

std::string_view chainNameString(ChainName chain) {
  switch (chain) {
    case ChainName::kAudit:
      return "audit";
    case ChainName::kLog:
      return "log";
    case ChainName::kFailure:
      return "failure";
  }
  return "?";
}

std::string chainMetaCfName(ChainName chain) {
  return std::string(chainNameString(chain)) + ".meta";
}

Result<ChainName> parseChainName(std::string_view name) {
  for (ChainName c : kAllChains) {
    if (chainNameString(c) == name) return c;
  }
  return Status::invalid("unknown chain '" + std::string(name) +
                         "' (expected audit, log or failure)");
}

std::string recordKey(uint64_t seq) { return prefixedSeqKey(kRecordPrefix, seq); }
std::string checkpointKey(uint64_t seq) { return prefixedSeqKey(kCheckpointPrefix, seq); }

std::optional<uint64_t> seqFromKey(std::string_view key, char prefix) {
  if (key.size() != 9 || key[0] != prefix) return std::nullopt;
  return readBigEndian64(asBytes(key.substr(1)));
}

RecordHasher::RecordHasher(ChainName chain) {
  std::string_view name = chainNameString(chain);
  prefix_.update(kRecordDomain);
  prefix_.updateU64(name.size());
  prefix_.update(name);
}

Hash256 RecordHasher::hash(uint64_t seq, int64_t time_ms, std::string_view kind, ByteView payload,
                           const Hash256& prev_hash) const {
  // Same byte string as updating field by field; gathered into one buffer so the hash
  // state is updated three times instead of seven.
  uint8_t head[8 * 4 + kMaxKindBytes];
  size_t n = 0;
  auto put64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) head[n++] = static_cast<uint8_t>(v >> (56 - 8 * i));
  };
  Blake2b h = prefix_;
  put64(seq);
  put64(static_cast<uint64_t>(time_ms));
  put64(kind.size());
  if (kind.size() <= kMaxKindBytes) {
    std::memcpy(head + n, kind.data(), kind.size());
    n += kind.size();
  } else {
    h.update(ByteView(head, n));
    h.update(kind);
    n = 0;
  }
  put64(payload.size());
  h.update(ByteView(head, n));
  h.update(payload);
  h.update(ByteView(prev_hash));
  return h.finish();
}

Bytes checkpointMessage(ChainName chain, uint64_t seq, const Hash256& head_hash) {
  std::string_view name = chainNameString(chain);
  Bytes msg(kCheckpointDomain.begin(), kCheckpointDomain.end());
  appendBigEndian64(msg, name.size());
  msg.insert(msg.end(), name.begin(), name.end());
  appendBigEndian64(msg, seq);
  msg.insert(msg.end(), head_hash.begin(), head_hash.end());
  return msg;
}

Checkpoint signCheckpoint(ChainName chain, uint64_t seq, const Hash256& head_hash, int64_t time_ms,
                          const SigningKey& key) {
  Checkpoint cp;
  cp.chain = chain;
  cp.seq = seq;
  cp.head_hash = head_hash;
  cp.time_ms = time_ms;
  cp.signer = key.public_key;
  cp.signature = key.sign(checkpointMessage(chain, seq, head_hash));
  return cp;
}

bool checkpointSignatureValid(const Checkpoint& cp, const PublicKey& key) {
  return verifySignature(key, checkpointMessage(cp.chain, cp.seq, cp.head_hash), cp.signature);
}

namespace {
template <typename R>
void fillRecord(proto::ChainRecord::Builder b, const R& r) {
  b.setSeq(r.seq);
  b.setTimeMs(r.time_ms);
  // initKind + copy: r.kind may be a view that is not NUL-terminated.
  auto kind = b.initKind(static_cast<unsigned>(r.kind.size()));
  if (!r.kind.empty()) std::memcpy(kind.begin(), r.kind.data(), r.kind.size());
  b.setPayload(dataOf(r.payload));
  b.setPrevHash(dataOf(r.prev_hash));
  b.setHash(dataOf(r.hash));
}
}  // namespace

std::string encodeRecord(const ChainRecord& r) {
  capnp::MallocMessageBuilder msg(
      static_cast<unsigned>((r.payload.size() + r.kind.size()) / 8 + 32));
  fillRecord(msg.initRoot<proto::ChainRecord>(), r);
  return flatten(msg);
}

namespace {
template <typename R>
void encodeInto(const R& r, std::vector<uint64_t>& scratch, std::string& out) {
  // Struct (3 data + 4 pointer words) + text + 3 data blobs, each rounded up to words.
  size_t words = 8 + (r.kind.size() + 1 + 7) / 8 + (r.payload.size() + 7) / 8 + 4 + 4 + 8;
  if (scratch.size() < words) scratch.resize(words);
  std::memset(scratch.data(), 0, words * 8);
  capnp::MallocMessageBuilder msg(
      kj::ArrayPtr<capnp::word>(reinterpret_cast<capnp::word*>(scratch.data()), words),
      capnp::AllocationStrategy::FIXED_SIZE);
  fillRecord(msg.initRoot<proto::ChainRecord>(), r);
  auto segments = msg.getSegmentsForOutput();
  if (segments.size() != 1) {
    out = flatten(msg);
    return;
  }
  // Single-segment flat array: u32 (segment count - 1) = 0, u32 size in words, the words.
  auto seg = segments[0];
  uint32_t header[2] = {0, static_cast<uint32_t>(seg.size())};
  out.resize(sizeof(header) + seg.size() * 8);
  std::memcpy(out.data(), header, sizeof(header));
  std::memcpy(out.data() + sizeof(header), seg.begin(), seg.size() * 8);
}
}  // namespace

void encodeRecordInto(const ChainRecord& r, std::vector<uint64_t>& scratch, std::string& out) {
  encodeInto(r, scratch, out);
}
void encodeRecordInto(const RecordView& r, std::vector<uint64_t>& scratch, std::string& out) {
  encodeInto(r, scratch, out);
}

std::string encodeHead(const ChainHead& h) {
  capnp::MallocMessageBuilder msg(16);
  auto b = msg.initRoot<proto::ChainHead>();
  b.setSeq(h.seq);
  b.setHash(dataOf(h.hash));
  return flatten(msg);
}

std::string encodeCheckpoint(const Checkpoint& cp) {
  capnp::MallocMessageBuilder msg(64);
  auto b = msg.initRoot<proto::ChainCheckpoint>();
  std::string_view name = chainNameString(cp.chain);
  b.setChain(capnp::Text::Reader(name.data(), name.size()));
  b.setSeq(cp.seq);
  b.setHeadHash(dataOf(cp.head_hash));
  b.setTimeMs(cp.time_ms);
  b.setSigner(dataOf(cp.signer));
  b.setSignature(dataOf(cp.signature));
  return flatten(msg);
}

Status RecordDecoder::decode(std::string_view bytes, ChainRecord& out) {
  if (bytes.size() % 8 != 0 || bytes.empty()) {
    return Status::corruption("record is " + std::to_string(bytes.size()) +
                              " bytes, not a whole number of words");
  }
  try {
    capnp::FlatArrayMessageReader reader(alignedWords(bytes, words_), boundedOptions(bytes.size()));
    auto r = reader.getRoot<proto::ChainRecord>();
    out.seq = r.getSeq();
    out.time_ms = r.getTimeMs();
    auto kind = r.getKind();
    out.kind.assign(kind.begin(), kind.size());
    auto payload = r.getPayload();
    out.payload.assign(payload.begin(), payload.end());
    if (!copyFixed(r.getPrevHash(), out.prev_hash)) {
      return Status::corruption("record prevHash is not 32 bytes");
    }
    if (!copyFixed(r.getHash(), out.hash)) return Status::corruption("record hash is not 32 bytes");
  } catch (const kj::Exception& e) {
    return Status::corruption(std::string("record does not decode: ") + e.getDescription().cStr());
  }
  return Status::ok();
}

Status RecordDecoder::decodeView(std::string_view bytes, RecordView& out) {
  if (bytes.size() % 8 != 0 || bytes.empty()) {
    return Status::corruption("record is " + std::to_string(bytes.size()) +
                              " bytes, not a whole number of words");
  }
  try {
    capnp::FlatArrayMessageReader reader(alignedWords(bytes, words_), boundedOptions(bytes.size()));
    auto r = reader.getRoot<proto::ChainRecord>();
    out.seq = r.getSeq();
    out.time_ms = r.getTimeMs();
    auto kind = r.getKind();
    out.kind = std::string_view(kind.begin(), kind.size());
    auto payload = r.getPayload();
    out.payload = ByteView(payload.begin(), payload.size());
    if (!copyFixed(r.getPrevHash(), out.prev_hash)) {
      return Status::corruption("record prevHash is not 32 bytes");
    }
    if (!copyFixed(r.getHash(), out.hash)) return Status::corruption("record hash is not 32 bytes");
  } catch (const kj::Exception& e) {
    return Status::corruption(std::string("record does not decode: ") + e.getDescription().cStr());
  }
  return Status::ok();
}

Result<ChainRecord> decodeRecord(std::string_view bytes) {
  RecordDecoder d;
  ChainRecord r;
  Status s = d.decode(bytes, r);
  if (!s) return s;
  return r;
}

Result<ChainHead> decodeHead(std::string_view bytes) {
  if (bytes.size() % 8 != 0 || bytes.empty()) return Status::corruption("head is not whole words");
  std::vector<uint64_t> buf;
  try {
    capnp::FlatArrayMessageReader reader(alignedWords(bytes, buf), boundedOptions(bytes.size()));
    auto r = reader.getRoot<proto::ChainHead>();
    ChainHead h;
    h.seq = r.getSeq();
    if (!copyFixed(r.getHash(), h.hash)) return Status::corruption("head hash is not 32 bytes");
    return h;
  } catch (const kj::Exception& e) {
    return Status::corruption(std::string("head does not decode: ") + e.getDescription().cStr());
  }
}

Result<Checkpoint> decodeCheckpoint(std::string_view bytes) {
  if (bytes.size() % 8 != 0 || bytes.empty()) {
    return Status::corruption("checkpoint is not whole words");
  }
  std::vector<uint64_t> buf;
  try {
    capnp::FlatArrayMessageReader reader(alignedWords(bytes, buf), boundedOptions(bytes.size()));
    auto r = reader.getRoot<proto::ChainCheckpoint>();
    Checkpoint cp;
    auto chain = parseChainName(std::string_view(r.getChain().cStr(), r.getChain().size()));
    if (!chain) return Status::corruption("checkpoint names " + chain.status().message());
    cp.chain = *chain;
    cp.seq = r.getSeq();
    cp.time_ms = r.getTimeMs();
    if (!copyFixed(r.getHeadHash(), cp.head_hash)) {
      return Status::corruption("checkpoint headHash is not 32 bytes");
    }
    if (!copyFixed(r.getSigner(), cp.signer)) {
      return Status::corruption("checkpoint signer is not 32 bytes");
    }
    if (!copyFixed(r.getSignature(), cp.signature)) {
      return Status::corruption("checkpoint signature is not 64 bytes");
    }
    return cp;
  } catch (const kj::Exception& e) {
    return Status::corruption(std::string("checkpoint does not decode: ") +
                              e.getDescription().cStr());
  }
}

}  // namespace meshos::chains
