// Gossip targets: a UDP packet and a TCP stream frame, each through the keyring envelope
// (sealed with a key, or plain when the cluster runs without one) and the Cap'n Proto
// decoder behind it; and the keyring file. A decoded value re-encodes to bytes that decode
// again, and encoding is then stable.
#include <array>
#include <string>

#include "agent/gossip/keyring.h"
#include "agent/gossip/messages.h"
#include "tests/fuzz/fuzz_target.h"

namespace meshos::fuzz {

using namespace meshos::gossip;

namespace {

constexpr std::string_view kCluster = "fuzz";

ClusterKey fixedClusterKey(uint8_t fill) {
  ClusterKey k{};
  k.fill(fill);
  return k;
}

const Keyring& keyedRing() {
  static const Keyring ring({fixedClusterKey(7), fixedClusterKey(8)});
  return ring;
}

// What the receiving node does with the bytes: open the envelope with its ring (keyed or
// plain), then decode; and the payload decoder on its own, as if the envelope had opened.
template <class Decode>
void openAndDecode(ByteView in, Decode decode) {
  Bytes payload;
  if (keyedRing().open(kCluster, in, payload) == OpenError::kNone) decode(ByteView(payload));
  if (Keyring().open(kCluster, in, payload) == OpenError::kNone) decode(ByteView(payload));
  decode(in);
}

// Sealing and opening give the payload back, with either envelope.
void checkSealRoundTrip(ByteView payload) {
  for (const Keyring& ring : {keyedRing(), Keyring()}) {
    Bytes opened;
    check(ring.open(kCluster, ring.seal(kCluster, payload), opened) == OpenError::kNone);
    check(opened == Bytes(payload.begin(), payload.end()));
  }
}

std::vector<Bytes> sealedAndPlain(const std::vector<Bytes>& payloads) {
  std::vector<Bytes> out;
  for (const auto& p : payloads) {
    out.push_back(Keyring().seal(kCluster, p));
    out.push_back(keyedRing().seal(kCluster, p));
    out.push_back(p);
  }
  out.push_back(Keyring().seal("other-cluster", payloads.front()));
  out.push_back(Bytes{kEnvelopeXChaCha, 1, 2, 3});
  out.push_back(Bytes{0x7f});
  return out;
}

}  // namespace

int fuzzGossipPacket(const uint8_t* data, size_t size) {
  openAndDecode(ByteView(data, size), [](ByteView payload) {
    auto messages = decodePacket(payload);
    if (!messages) return;
    check(messages->size() <= DecodeLimits{}.max_messages);
    const Bytes once = encodePacket(*messages);
    auto again = decodePacket(once);
    check(again.isOk() && again->size() == messages->size());
    check(encodePacket(*again) == once);
    checkSealRoundTrip(once);
  });
  return 0;
}

int fuzzGossipStream(const uint8_t* data, size_t size) {
  openAndDecode(ByteView(data, size), [](ByteView payload) {
    auto frame = decodeStreamFrame(payload);
    if (!frame) return;
    const Bytes once = encodeStreamFrame(*frame);
    auto again = decodeStreamFrame(once);
    check(again.isOk() && again->index() == frame->index());
    check(encodeStreamFrame(*again) == once);
  });
  return 0;
}

int fuzzKeyring(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ring = parseKeyring(text, "fuzz.keyring");
  if (ring) {
    auto again = parseKeyring(keyringText(*ring), "fuzz.keyring");
    check(again.isOk() && again->keys() == ring->keys());
  }
  if (auto key = clusterKeyFromBase64(text)) check(clusterKeyFromBase64(clusterKeyToBase64(*key)).isOk());
  return 0;
}

std::vector<Bytes> gossipPacketSeeds() {
  std::vector<Message> all = {
      PingMsg{1, "00000000000000a1", "127.0.0.1:7946", "00000000000000b2"},
      IndirectPingMsg{2, "00000000000000a1", "127.0.0.1:7947", true, "127.0.0.1:7946"},
      AckMsg{3},
      NackMsg{4},
      AliveMsg{5, "00000000000000a1", "n1", "127.0.0.1:7946", Bytes(32, 0x11)},
      SuspectMsg{6, "00000000000000a1", "00000000000000b2"},
      DeadMsg{7, "00000000000000a1", "00000000000000b2"},
      NodeStateMsg{"00000000000000a1", 9, true, Bytes{1, 2, 3}},
  };
  std::vector<Bytes> payloads = {encodePacket(all)};
  for (const auto& m : all) payloads.push_back(encodePacket({m}));
  return sealedAndPlain(payloads);
}

std::vector<Bytes> gossipStreamSeeds() {
  PushPullMsg pp;
  pp.join = true;
  pp.members.push_back(MemberRecord{"00000000000000a1", "n1", "127.0.0.1:7946", Bytes(32, 0x11), 3,
                                    MemberState::kSuspect});
  pp.states.push_back(NodeStateMsg{"00000000000000a1", 2, true, Bytes{9, 9}});
  std::vector<StreamFrame> frames = {
      pp,
      PingMsg{1, "00000000000000a1", "127.0.0.1:7946", "00000000000000b2"},
      AckMsg{2},
      AppRequestMsg{"commits.get", "00000000000000a1", "127.0.0.1:7946", Bytes{1, 2}},
      AppReplyMsg{false, "kInvalidArgument", "bad request", {}},
      AppReplyMsg{true, "", "", Bytes{4, 5, 6}},
  };
  std::vector<Bytes> payloads;
  for (const auto& f : frames) payloads.push_back(encodeStreamFrame(f));
  return sealedAndPlain(payloads);
}

std::vector<Bytes> keyringSeeds() {
  Keyring two({fixedClusterKey(1), fixedClusterKey(2)});
  return {
      bytesOf(keyringText(two)),
      bytesOf("# rotated on day 3\nmeshos-gossip-keyring-v1\n\n" + clusterKeyToBase64(fixedClusterKey(3)) + "\r\n"),
      bytesOf("meshos-gossip-keyring-v1\n"),
      bytesOf("meshos-gossip-keyring-v1\nnot base64!\n"),
      bytesOf("meshos-gossip-keyring-v1\nAAAA\n"),
      bytesOf("wrong header\n"),
      bytesOf(clusterKeyToBase64(fixedClusterKey(4))),
  };
}

}  // namespace meshos::fuzz
