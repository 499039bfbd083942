#include <doctest/doctest.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstring>

#include "agent/core/rng.h"
#include "agent/gossip/messages.h"
#include "proto/gossip.capnp.h"

using namespace meshos;
using namespace meshos::gossip;

TEST_CASE("codec: every message kind round-trips") {
  std::vector<Message> msgs{
      PingMsg{7, "aaaa", "10.0.0.1:7946", "bbbb"},
      IndirectPingMsg{8, "cccc", "10.0.0.2:7946", true, "10.0.0.1:7946"},
      AckMsg{9},
      NackMsg{10},
      AliveMsg{11, "dddd", "web-1", "10.0.0.3:7946", Bytes(32, 5)},
      SuspectMsg{12, "eeee", "ffff"},
      DeadMsg{13, "gggg", "gggg"},
      NodeStateMsg{"hhhh", 99, true, Bytes{1, 2, 3}},
  };
  auto decoded = decodePacket(encodePacket(msgs));
  REQUIRE(decoded.isOk());
  REQUIRE(decoded->size() == msgs.size());
  CHECK(std::get<PingMsg>((*decoded)[0]).source_address == "10.0.0.1:7946");
  CHECK(std::get<IndirectPingMsg>((*decoded)[1]).want_nack);
  CHECK(std::get<AliveMsg>((*decoded)[4]).public_key == Bytes(32, 5));
  CHECK(std::get<DeadMsg>((*decoded)[6]).from == "gggg");
  CHECK(std::get<NodeStateMsg>((*decoded)[7]).body == Bytes{1, 2, 3});
  for (size_t i = 0; i < msgs.size(); ++i) {
    auto one = encodePacket({msgs[i]});
    CHECK(one.size() <= encodedSizeHint(msgs[i]) + 16);
  }
}

TEST_CASE("codec: the alive size hint bounds the encoding at every text and key length") {
  // The hint pads exactly as Cap'n Proto does, so every length around a word edge is tried.
  for (size_t id = 0; id <= 17; ++id)
    for (size_t name = 0; name <= 17; name += 3)
      for (size_t address = 7; address <= 24; address += 5)
        for (size_t key : {0, 31, 32, 33}) {
          AliveMsg a{7, std::string(id, 'i'), std::string(name, 'n'), std::string(address, 'a'), Bytes(key, 1)};
          CAPTURE(id);
          CAPTURE(name);
          CAPTURE(address);
          CAPTURE(key);
          CHECK(encodePacket({a}).size() <= encodedSizeHint(a) + 16);
        }
}

TEST_CASE("codec: push-pull frame round-trips") {
  PushPullMsg pp;
  pp.join = true;
  pp.members.push_back(MemberRecord{"id1", "n1", "a:1", Bytes(32, 1), 3, MemberState::kSuspect});
  pp.states.push_back(NodeStateMsg{"id1", 5, true, Bytes(1000, 2)});
  auto decoded = decodeStreamFrame(encodeStreamFrame(pp));
  REQUIRE(decoded.isOk());
  auto& out = std::get<PushPullMsg>(*decoded);
  CHECK(out.join);
  CHECK(out.members[0].state == MemberState::kSuspect);
  CHECK(out.states[0].body.size() == 1000);
}

TEST_CASE("codec: garbage, truncation and limits give errors, never crashes") {
  Rng rng(42);
  Bytes good = encodePacket({AliveMsg{1, "id", "name", "addr:1", Bytes(32, 3)}, PingMsg{1, "x", "y", "z"}});
  int errors = 0;
  for (int i = 0; i < 2000; ++i) {
    Bytes b = good;
    if (i % 3 == 0) b.resize(rng.uniform(b.size()));
    else if (i % 3 == 1) b[rng.uniform(b.size())] ^= static_cast<uint8_t>(1 + rng.uniform(255));
    else {
      b.resize(rng.uniform(300));
      for (auto& x : b) x = static_cast<uint8_t>(rng.next());
    }
    auto r = decodePacket(b);
    if (!r) ++errors;
    auto f = decodeStreamFrame(b);
    (void)f;
  }
  CHECK(errors > 100);
  CHECK(!decodePacket(Bytes{}).isOk());
  // Too many messages.
  std::vector<Message> many(300, AckMsg{1});
  DecodeLimits limits;
  auto r = decodePacket(encodePacket(many), limits);
  CHECK(!r.isOk());
  // Traversal limit.
  limits.traversal_limit_words = 4;
  CHECK(!decodePacket(good, limits).isOk());
}

namespace {

// Cap'n Proto's packing, written plainly (every tag spelled out, no runs): a test can then
// pack a message whose segment table it changed. A tag byte says which of the word's
// bytes follow; after 0x00 and 0xff a count of further such words, here always 0.
Bytes packWords(const Bytes& unpacked) {
  Bytes out;
  for (size_t w = 0; w < unpacked.size(); w += 8) {
    uint8_t tag = 0;
    for (int i = 0; i < 8; ++i) tag |= unpacked[w + i] != 0 ? (1u << i) : 0;
    out.push_back(tag);
    for (int i = 0; i < 8; ++i) {
      if (unpacked[w + i] != 0) out.push_back(unpacked[w + i]);
    }
    if (tag == 0x00 || tag == 0xff) out.push_back(0);
  }
  return out;
}

// An app request whose segment table names a second segment of `second_words`, of which
// `carried_words` follow; the frame itself lies wholly in the first segment.
Bytes appRequestWithSecondSegment(uint32_t second_words, uint32_t carried_words) {
  capnp::MallocMessageBuilder mb;
  auto req = mb.initRoot<proto::GossipStreamFrame>().initAppRequest();
  req.setChannel("kv");
  req.setBody(capnp::Data::Reader(reinterpret_cast<const uint8_t*>("a body of bytes"), 15));
  auto flat = capnp::messageToFlatArray(mb);
  auto bytes = flat.asBytes();
  uint32_t first_words = 0;
  std::memcpy(&first_words, bytes.begin() + 4, 4);
  REQUIRE(bytes.size() == 8 + first_words * 8);
  Bytes unpacked(16, 0);  // two segments: count - 1, both sizes, padding to a word
  const uint32_t table[3] = {1, first_words, second_words};
  std::memcpy(unpacked.data(), table, sizeof table);
  unpacked.insert(unpacked.end(), bytes.begin() + 8, bytes.end());
  unpacked.resize(unpacked.size() + carried_words * 8, 0);
  return packWords(unpacked);
}

}  // namespace

TEST_CASE("codec: a frame that names a segment it does not carry is refused, and nothing leaks") {
  // The reader finds the missing segment only as it is destroyed, after the frame was read
  // (found by LeakSanitizer in the clang fuzz build: see decodeStreamFrame).
  auto whole = decodeStreamFrame(appRequestWithSecondSegment(4, 4));
  REQUIRE(whole.isOk());
  REQUIRE(std::holds_alternative<AppRequestMsg>(*whole));
  CHECK(std::get<AppRequestMsg>(*whole).body.size() == 15);
  auto cut = decodeStreamFrame(appRequestWithSecondSegment(4, 1));
  REQUIRE_FALSE(cut.isOk());
  CHECK(cut.status().message().find("gossip stream frame") == 0);
}

TEST_CASE("codec: text that is not UTF-8 and records without identity are refused") {
  // Both found by the gossip fuzz targets (tests/fuzz/gossip_fuzz.cpp).
  AliveMsg alive{1, "00000000000000a1", "n\xff", "127.0.0.1:7946", Bytes(32, 1)};
  CHECK_FALSE(decodePacket(encodePacket({alive})).isOk());
  alive.name = "n\xc3\xbc";  // well-formed UTF-8 is fine
  CHECK(decodePacket(encodePacket({alive})).isOk());
  // Empty records cost a sender nothing: thousands of node states in a few bytes.
  PushPullMsg pp;
  pp.states.assign(5000, NodeStateMsg{});
  CHECK_FALSE(decodeStreamFrame(encodeStreamFrame(pp)).isOk());
  pp.states.clear();
  pp.members.assign(3, MemberRecord{});
  CHECK_FALSE(decodeStreamFrame(encodeStreamFrame(pp)).isOk());
}
