// Known-answer vectors: every wire and disk format, computed from fixed inputs and compared
// byte for byte with tests/vectors/formats.txt. Every node and every version must agree on
// these bytes (a commit's hash is its identity, a chain record's hash links the chain,
// rendezvous ranks decide placement on every node alike), so a change to any of them must
// be deliberate: this test fails, and the fixture is rewritten on purpose with
//   MESHOS_VECTORS_REGENERATE=1 build/tests/unit/vectors/unit_vectors
// (then review the diff). Each vector is also decoded back where a decoder exists.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "agent/commits/commit_format.h"
#include "agent/core/bytes.h"
#include "agent/core/crypto.h"
#include "chains/chain_format.h"
#include "placement/hashing.h"

using namespace meshos;

namespace {

const char* fixturePath() {
  const char* p = std::getenv("MESHOS_VECTORS");
  return p != nullptr ? p : "tests/vectors/formats.txt";
}

SigningKey fixedKey(uint8_t fill) {
  std::array<uint8_t, 32> seed{};
  seed.fill(fill);
  return SigningKey::fromSeed(seed);
}

Hash256 fixedHash(uint8_t fill) {
  Hash256 h{};
  h.fill(fill);
  return h;
}

std::string hex(std::string_view bytes) { return toHex(ByteView(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())); }

// name -> lower-case hex (or decimal text), in a stable order.
std::map<std::string, std::string> computeVectors() {
  REQUIRE(initCrypto().isOk());
  std::map<std::string, std::string> v;
  const SigningKey admin = fixedKey(0x01);
  v["key.public"] = toHex(admin.public_key);

  commits::Commit c;
  c.cluster_id = "vectors";
  c.seq = 1;
  c.issued_at_ms = 1'700'000'000'000;
  c.issuer = admin.public_key;
  spec::DaemonSpec s;
  s.name = "web";
  s.command = {"/usr/bin/web", "--port", "8080"};
  s.replicas = 3;
  c.operations.push_back(commits::OpPutDaemon{s});
  c.operations.push_back(commits::OpScale{"web", 5});
  c.note = "known answer";
  signCommit(c, admin);
  v["commit.signing_bytes"] = toHex(commits::signingBytes(c));
  v["commit.hash"] = toHex(commits::commitHash(c));
  v["commit.signature"] = toHex(c.signatures.at(0).signature);
  const Bytes encoded = commits::encodeCommit(c);
  v["commit.encoded"] = toHex(encoded);
  auto decoded = commits::decodeCommit(encoded);
  REQUIRE_MESSAGE(decoded.isOk(), decoded.status().toString());
  CHECK(commits::commitHash(decoded->commit) == commits::commitHash(c));

  chains::ChainRecord r;
  r.seq = 42;
  r.time_ms = 1'700'000'000'123;
  r.kind = "control";
  const std::string payload = R"({"op":"restart","daemon":"web"})";
  r.payload.assign(payload.begin(), payload.end());
  r.prev_hash = fixedHash(0x11);
  r.hash = chains::RecordHasher(chains::ChainName::kAudit).hash(r);
  v["chain.record.hash"] = toHex(r.hash);
  const std::string rec = chains::encodeRecord(r);
  v["chain.record.encoded"] = hex(rec);
  auto back = chains::decodeRecord(rec);
  REQUIRE(back.isOk());
  CHECK(back->hash == r.hash);
  CHECK(back->kind == r.kind);
  v["chain.head.encoded"] = hex(chains::encodeHead(chains::ChainHead{r.seq, r.hash}));
  const chains::Checkpoint cp = chains::signCheckpoint(chains::ChainName::kAudit, 1000, fixedHash(0x22),
                                                       1'700'000'000'456, fixedKey(0x02));
  v["chain.checkpoint.signature"] = toHex(cp.signature);
  const std::string cpe = chains::encodeCheckpoint(cp);
  v["chain.checkpoint.encoded"] = hex(cpe);
  auto cpd = chains::decodeCheckpoint(cpe);
  REQUIRE(cpd.isOk());
  CHECK(chains::checkpointSignatureValid(*cpd, fixedKey(0x02).public_key));

  // Placement: the stable hashes and the rendezvous order of five nodes for two daemons.
  for (const char* daemon : {"web", "db"}) {
    const uint64_t dh = placement::hashString(daemon, placement::kDaemonSeed);
    std::vector<std::pair<uint64_t, std::string>> ranked;
    for (const char* node : {"n1", "n2", "n3", "n4", "n5"}) {
      ranked.emplace_back(placement::rendezvous(dh, placement::hashString(node, placement::kNodeSeed)), node);
    }
    std::sort(ranked.rbegin(), ranked.rend());
    std::string order;
    for (const auto& [w, n] : ranked) order += (order.empty() ? "" : ",") + n;
    v[std::string("placement.hash.") + daemon] = std::to_string(dh);
    v[std::string("placement.rank.") + daemon] = order;
  }
  v["placement.hash.node.n1"] = std::to_string(placement::hashString("n1", placement::kNodeSeed));
  return v;
}

std::map<std::string, std::string> readFixture(const std::string& path) {
  std::map<std::string, std::string> v;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.find(' ');
    if (sp != std::string::npos) v[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return v;
}

}  // namespace

TEST_CASE("known-answer vectors: every wire and disk format is byte for byte as pinned") {
  const auto computed = computeVectors();
  if (std::getenv("MESHOS_VECTORS_REGENERATE") != nullptr) {
    std::ofstream out(fixturePath());
    out << "# Known-answer vectors (tests/unit/vectors/vectors_test.cpp). Rewrite only for a\n"
           "# deliberate format change: MESHOS_VECTORS_REGENERATE=1, then review the diff.\n";
    for (const auto& [k, val] : computed) out << k << " " << val << "\n";
    MESSAGE("rewrote " << fixturePath());
    return;
  }
  const auto pinned = readFixture(fixturePath());
  REQUIRE_MESSAGE(!pinned.empty(), "no vectors at " << fixturePath());
  for (const auto& [k, val] : computed) {
    auto it = pinned.find(k);
    REQUIRE_MESSAGE(it != pinned.end(), "vector " << k << " is not pinned");
    CHECK_MESSAGE(it->second == val, "format changed: " << k);
  }
  CHECK(pinned.size() == computed.size());
}
