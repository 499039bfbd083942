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

#include <capnp/message.h>

#include "agent/commits/commit_format.h"
#include "agent/commits/commit_sync.h"
#include "agent/control/control_frame.h"
#include "agent/core/bytes.h"
#include "agent/core/crypto.h"
#include "agent/gossip/keyring.h"
#include "agent/gossip/messages.h"
#include "agent/reconcile/rollout_record.h"
#include "agent/state/node_report.h"
#include "chains/chain_format.h"
#include "proto/control.capnp.h"
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

// Sealed secrets. A box is randomized (a fresh sender key each time), so the encoding is
// pinned with a stand-in box, and the sealing itself with a box made once, outside meshos,
// with libsodium alone (crypto_box_seal of "meshos-secret-v1" 0x00 "db" 0x00 "hunter2" to
// the X25519 form of fixedKey(0x05)): it must open to "hunter2", and not under another name.
void addSecretVectors(std::map<std::string, std::string>& v) {
  constexpr std::string_view kFixedBox =
      "a2d8b305854668d772cb9a490c30b73ee5f6e2ef58c7a104ecf628df9f6b1d3a70474b295583316b669df66cb77738b3d97a7942dd49"
      "32abb8e7d1e5bd31417c778c31627418fb33391e7e";
  SealedSecret s{"db", {{SecretRecipient::kNode, fixedKey(0x05).public_key, *fromHex(kFixedBox)}}};
  auto opened = openSecret(s, fixedKey(0x05), nullptr);
  REQUIRE(opened);
  CHECK(opened->view() == "hunter2");
  s.name = "dc";
  CHECK_FALSE(openSecret(s, fixedKey(0x05), nullptr));
  SealedSecret standin{"db", {{SecretRecipient::kNode, fixedKey(0x05).public_key, Bytes(72, 0x33)},
                              {SecretRecipient::kCluster, fixedKey(0x06).public_key, Bytes(70, 0x44)}}};
  const Bytes encoded = commits::encodeSealedSecret(standin);
  v["secret.sealed.encoded"] = toHex(encoded);
  auto back = commits::decodeSealedSecret(encoded);
  REQUIRE(back);
  CHECK(*back == standin);
}

// What nodes send each other and what the control socket carries: gossip packets and
// stream frames (the envelope sealed with a fixed key and nonce), a node's report, the
// commit-sync messages, a daemon spec's canonical bytes (hashed into the desired state) and
// a control frame. Each is decoded back.
void addWireVectors(std::map<std::string, std::string>& v) {
  using namespace meshos::gossip;
  const std::vector<Message> packet = {
      PingMsg{7, "00000000000000a1", "127.0.0.1:7946", "00000000000000b2"},
      AliveMsg{3, "00000000000000a1", "n1", "127.0.0.1:7946", Bytes(32, 0x11)},
      NodeStateMsg{"00000000000000a1", 9, true, Bytes{1, 2, 3}},
  };
  const Bytes encoded = encodePacket(packet);
  v["gossip.packet.encoded"] = toHex(encoded);
  ClusterKey key{};
  key.fill(0x07);
  std::array<uint8_t, kNonceBytes> nonce{};
  nonce.fill(0x09);
  const Keyring ring({key});
  const Bytes sealed = ring.sealWithNonce("vectors", encoded, nonce);
  v["gossip.packet.sealed"] = toHex(sealed);
  v["gossip.packet.plain_envelope"] = toHex(Keyring().seal("vectors", encoded));
  Bytes opened;
  REQUIRE(ring.open("vectors", sealed, opened) == OpenError::kNone);
  auto back = decodePacket(opened);
  REQUIRE(back.isOk());
  CHECK(encodePacket(*back) == encoded);

  PushPullMsg pp;
  pp.join = true;
  pp.members.push_back(MemberRecord{"00000000000000a1", "n1", "127.0.0.1:7946", Bytes(32, 0x11), 3, MemberState::kAlive});
  pp.states.push_back(std::get<NodeStateMsg>(packet[2]));
  const Bytes frame = encodeStreamFrame(pp);
  v["gossip.stream.push_pull"] = toHex(frame);
  auto frame_back = decodeStreamFrame(frame);
  REQUIRE(frame_back.isOk());
  CHECK(encodeStreamFrame(*frame_back) == frame);

  state::NodeReport report;
  report.version = "1.0.0";
  report.labels = {{"zone", "a"}};
  report.capabilities = {"arch:x86_64"};
  report.cpu_millicores = 2000;
  report.memory_bytes = 1 << 30;
  report.coordinate = state::Coordinate{{1.5, -2.0}, 0.25, 0, 0.5};
  report.commit_seq = 4;
  report.commit_hash = Bytes(32, 0xab);
  report.daemons["web"] = state::DaemonReport{3, 2, 4, 1'700'000'000'000, 0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  report.moves["web"] = "00000000000000b2";
  const Bytes report_bytes = state::encodeNodeReport(report);
  v["state.node_report.encoded"] = toHex(report_bytes);
  auto report_back = state::decodeNodeReport(report_bytes);
  REQUIRE(report_back.isOk());
  CHECK(*report_back == report);

  commits::Head head;
  head.seq = 4;
  head.hash.fill(0x44);
  v["commits.sync.range_request"] = toHex(commits::encodeRangeRequest(commits::CommitRange{2, 4}));
  auto range_back = commits::decodeRangeRequest(commits::encodeRangeRequest(commits::CommitRange{2, 4}));
  REQUIRE(range_back.isOk());
  CHECK(range_back->from == 2);
  CHECK(range_back->to == 4);
  const Bytes push_reply = commits::encodePushReply(commits::PushReply{1, head});
  v["commits.sync.push_reply"] = toHex(push_reply);
  auto push_back = commits::decodePushReply(push_reply);
  REQUIRE(push_back.isOk());
  CHECK(push_back->head == head);

  spec::DaemonSpec s;
  s.name = "web";
  s.command = {"/usr/bin/web", "--port", "8080"};
  s.env = {{"A", "1"}};
  s.replicas = 3;
  const Bytes canonical = spec::canonicalBytes(s);
  v["spec.canonical"] = toHex(canonical);
  auto spec_back = spec::fromBytes(canonical);
  REQUIRE(spec_back.isOk());
  CHECK(spec::canonicalEqual(*spec_back, s));
  // Ports (issue 18): a spec without them keeps the canonical bytes above.
  s.ports = {spec::Port{"http", 8080, spec::PortProtocol::kTcp}, spec::Port{"stats", 9125, spec::PortProtocol::kUdp}};
  const Bytes with_ports = spec::canonicalBytes(s);
  v["spec.canonical.ports"] = toHex(with_ports);
  auto ports_back = spec::fromBytes(with_ports);
  REQUIRE(ports_back.isOk());
  CHECK(ports_back->ports == s.ports);
  // Containers (issue 20): runtime and [daemon.container], pinned on a copy.
  spec::DaemonSpec boxed = s;
  boxed.runtime = spec::RuntimeKind::kOci;
  boxed.container = spec::Container{"/srv/web/rootfs", "", spec::ContainerNetwork::kNone, {"CAP_NET_BIND_SERVICE"}, false};
  const Bytes with_container = spec::canonicalBytes(boxed);
  v["spec.canonical.container"] = toHex(with_container);
  auto container_back = spec::fromBytes(with_container);
  REQUIRE(container_back.isOk());
  CHECK(container_back->container == boxed.container);
  // Rollout records (issue 18): what a node runs mid-rollout, kept in its state store.
  reconcile::RolloutRecord rollout{0x1122334455667788, s, s, 0x0102030405060708, 0};
  rollout.previous->command = {"/usr/bin/web", "--old"};
  const std::string rollout_text = reconcile::encodeRolloutRecord(rollout);
  v["reconcile.rollout_record"] = toHex(ByteView(reinterpret_cast<const uint8_t*>(rollout_text.data()), rollout_text.size()));
  auto rollout_back = reconcile::decodeRolloutRecord(rollout_text);
  REQUIRE(rollout_back.isOk());
  CHECK(rollout_back->version == rollout.version);
  CHECK(rollout_back->previous_version == rollout.previous_version);
  CHECK(spec::canonicalEqual(rollout_back->spec, rollout.spec));
  REQUIRE(rollout_back->previous.has_value());
  CHECK(spec::canonicalEqual(*rollout_back->previous, *rollout.previous));

  capnp::MallocMessageBuilder m;
  auto request = m.initRoot<proto::Request>();
  request.setId(7);
  request.setReason("known answer");
  request.setPing();
  const Bytes control = control::encodeFrame(m);
  v["control.frame.ping"] = toHex(control);
  control::FrameDecoder decoder;
  decoder.feed(control);
  auto payload = decoder.next();
  REQUIRE(payload.isOk());
  REQUIRE(payload->has_value());
  auto reader = control::FrameReader::open(std::move(**payload));
  REQUIRE(reader.isOk());
  auto read = (*reader)->message().getRoot<proto::Request>();
  CHECK(read.getId() == 7);
  CHECK(read.isPing());
}

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
  addWireVectors(v);
  addSecretVectors(v);
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
