// Membership driven by hand: two or three cores wired together by the test, no network.
#include <doctest/doctest.h>

#include <sodium.h>

#include <map>

#include "agent/core/crypto.h"
#include "agent/core/node_identity.h"
#include "agent/gossip/membership.h"

using namespace meshos;
using namespace meshos::gossip;

namespace {

// One pool for the test process: every Membership here outlives nothing beyond it.
meshos::gossip::MemberIdentityPool& testIdentities() {
  static meshos::gossip::MemberIdentityPool pool;
  return pool;
}

LocalIdentity identity(const std::string& name, const std::string& address, uint8_t seed_byte) {
  REQUIRE(initCrypto().isOk());
  unsigned char seed[crypto_sign_SEEDBYTES];
  std::fill(std::begin(seed), std::end(seed), seed_byte);
  PublicKey pk{};
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk.data(), sk, seed);
  return LocalIdentity{name, nodeIdFromPublicKey(pk), Bytes(pk.begin(), pk.end()), address, 0};
}

// Moves packets and streams between cores instantly (optionally dropping to one address).
struct Wire {
  std::map<std::string, Membership*> by_address;
  std::set<std::string> down;
  std::vector<MemberEvent> events;
  std::vector<NodeStateUpdate> states;  // every on_state output, from any receiver
  std::map<std::string, std::vector<int64_t>> stream_times;  // stream requests, by target address
  int64_t now = 0;

  void pump() {
    for (int round = 0; round < 50; ++round) {
      bool any = false;
      for (auto& [addr, m] : by_address) {
        Outputs out = m->takeOutputs();
        for (auto& e : out.events) events.push_back(e);
        for (auto& st : out.states) states.push_back(st);
        for (auto& p : out.packets) {
          any = true;
          if (down.count(p.to) || down.count(addr) || !by_address.count(p.to)) continue;
          by_address[p.to]->handlePacket(now, addr, p.bytes);
        }
        for (auto& s : out.streams) {
          any = true;
          stream_times[s.to].push_back(now);
          if (down.count(s.to) || down.count(addr) || !by_address.count(s.to)) {
            m->handleStreamReply(now, s.id, Status::unavailable("down"));
            continue;
          }
          m->handleStreamReply(now, s.id, by_address[s.to]->handleStream(now, addr, s.frame));
        }
      }
      if (!any) return;
    }
  }
  void advance(int64_t to_ms) {
    while (now < to_ms) {
      now += 10;
      // Down nodes keep running; only their traffic is cut.
      for (auto& [addr, m] : by_address) m->tick(now);
      pump();
    }
  }
};

Options fast() {
  Options o;
  o.cluster_id = "test";
  return o;
}

// Three members on one Wire, b and c joined through a, 3 s on.
struct JoinedTrio {
  Membership a{fast(), identity("a", "a:1", 1), Keyring{}, Rng(1), testIdentities()};
  Membership b{fast(), identity("b", "b:1", 2), Keyring{}, Rng(2), testIdentities()};
  Membership c{fast(), identity("c", "c:1", 3), Keyring{}, Rng(3), testIdentities()};
  Wire w;
  JoinedTrio() {
    w.by_address = {{"a:1", &a}, {"b:1", &b}, {"c:1", &c}};
    for (Membership* m : {&a, &b, &c}) m->start(0);
    b.join(0, {"a:1"});
    c.join(0, {"a:1"});
    w.pump();
    w.advance(3000);
  }
};

// Two members on one Wire, b joined through a.
struct JoinedPair {
  Membership a{fast(), identity("a", "a:1", 1), Keyring{}, Rng(1), testIdentities()};
  Membership b{fast(), identity("b", "b:1", 2), Keyring{}, Rng(2), testIdentities()};
  Wire w;
  JoinedPair() {
    a.start(0);
    b.start(0);
    w.by_address = {{"a:1", &a}, {"b:1", &b}};
    b.join(0, {"a:1"});
    w.pump();
  }
};

}  // namespace

TEST_CASE("membership: options validation") {
  Options o;
  CHECK(o.validate().isOk());
  o.probe_timeout_ms = o.probe_interval_ms;
  CHECK(!o.validate().isOk());
  o = Options{};
  o.max_packet_bytes = 100;
  CHECK(!o.validate().isOk());
  o = Options{};
  o.cluster_id = "";
  CHECK(!o.validate().isOk());
}

TEST_CASE("membership: two nodes join, probe each other, record RTT; bad packets are counted") {
  Membership a(fast(), identity("a", "a:1", 1), Keyring{}, Rng(1), testIdentities());
  Membership b(fast(), identity("b", "b:1", 2), Keyring{}, Rng(2), testIdentities());
  Wire w;
  w.by_address = {{"a:1", &a}, {"b:1", &b}};
  a.start(0);
  b.start(0);
  b.join(0, {"a:1"});
  w.pump();
  REQUIRE(a.members().size() == 1);
  CHECK(a.members()[0].name == "b");
  CHECK(b.members()[0].state == MemberState::kAlive);
  w.advance(5000);
  CHECK(a.counters().probes >= 3);
  CHECK(a.counters().probe_failures == 0);
  CHECK(a.members()[0].rtt_ms == 0);
  CHECK(a.localHealth() == 0);
  auto before = a.members();
  a.handlePacket(w.now, "x:1", Bytes{0x00, 0x04, 't', 'e', 's', 't', 0xff, 0xff});  // undecodable
  a.handlePacket(w.now, "x:1", Bytes{0x07});
  a.handlePacket(w.now, "x:1", Keyring{}.seal("other", encodePacket({AckMsg{1}})));
  a.handlePacket(w.now, "x:1", Bytes(5000, 0));
  CHECK(a.counters().drop_decode == 1);
  CHECK(a.counters().drop_bad_version == 1);
  CHECK(a.counters().drop_wrong_cluster_or_key == 1);
  CHECK(a.counters().drop_oversized == 1);
  CHECK(a.members().size() == before.size());
}

TEST_CASE("membership: a silent node is suspected, then dead; the suspect refutes if it can") {
  JoinedTrio trio;
  auto& [a, b, c, w] = trio;
  REQUIRE(a.members().size() == 2);
  REQUIRE(b.members().size() == 2);
  w.down.insert("c:1");
  w.advance(8000);
  CHECK(a.findMember(c.self().id)->state != MemberState::kAlive);
  w.advance(40000);
  CHECK(a.findMember(c.self().id)->state == MemberState::kDead);
  CHECK(b.findMember(c.self().id)->state == MemberState::kDead);
  CHECK(a.counters().dead_declared + b.counters().dead_declared >= 1);
  // c comes back (same process): it learns it was declared dead and refutes with a higher incarnation.
  w.down.clear();
  uint64_t inc = c.incarnation();
  w.advance(80000);
  CHECK(c.incarnation() > inc);
  CHECK(a.findMember(c.self().id)->state == MemberState::kAlive);
  CHECK(b.findMember(c.self().id)->state == MemberState::kAlive);
}

TEST_CASE("membership: force-leave moves a dead member to left everywhere, and nothing else") {
  JoinedTrio trio;
  auto& [a, b, c, w] = trio;
  REQUIRE(a.members().size() == 2);
  CHECK(a.forceLeave(w.now, "c").code() == Code::kInvalidArgument);  // alive: it leaves itself
  CHECK(a.forceLeave(w.now, "nobody").code() == Code::kNotFound);
  CHECK(a.forceLeave(w.now, "a").code() == Code::kInvalidArgument);  // this node: use leave
  w.down.insert("c:1");
  w.advance(48000);
  REQUIRE(a.findMember(c.self().id)->state == MemberState::kDead);
  REQUIRE(b.findMember(c.self().id)->state == MemberState::kDead);
  CHECK(a.forceLeave(w.now, "c").isOk());
  CHECK(a.findMember(c.self().id)->state == MemberState::kLeft);  // at once, here
  w.pump();
  w.advance(1000);
  CHECK(b.findMember(c.self().id)->state == MemberState::kLeft);  // and by gossip, there
  CHECK(a.forceLeave(w.now, "c").isOk());                         // again: nothing to do
}

TEST_CASE("membership: a node whose suspicion times out tells a few members at once, not only by gossip") {
  JoinedTrio trio;
  auto& [a, b, c, w] = trio;
  REQUIRE(a.members().size() == 2);
  // c goes silent; a alone runs on, its packets inspected rather than delivered.
  auto dead_to_b = [&](const Outputs& out) {
    for (const auto& p : out.packets) {
      Bytes plain;
      if (p.to != "b:1" || Keyring{}.open("test", p.bytes, plain) != OpenError::kNone) continue;
      auto msgs = decodePacket(plain);
      REQUIRE(msgs.isOk());
      for (const auto& m : *msgs)
        if (const auto* d = std::get_if<DeadMsg>(&m); d != nullptr && d->id == c.self().id) return true;
    }
    return false;
  };
  int64_t now = w.now;
  bool told_at_once = false;
  while (a.counters().dead_declared == 0 && now < w.now + 60'000) {
    now += 10;
    a.tick(now);
    Outputs out = a.takeOutputs();
    if (a.counters().dead_declared == 1) told_at_once = dead_to_b(out);
  }
  REQUIRE(a.counters().dead_declared == 1);
  CHECK(told_at_once);
}

TEST_CASE("membership: two live nodes with one name are a conflict, not merged") {
  Membership a(fast(), identity("a", "a:1", 1), Keyring{}, Rng(1), testIdentities());
  Membership b(fast(), identity("b", "b:1", 2), Keyring{}, Rng(2), testIdentities());
  Membership b2(fast(), identity("b", "b2:1", 9), Keyring{}, Rng(9), testIdentities());
  Wire w;
  w.by_address = {{"a:1", &a}, {"b:1", &b}, {"b2:1", &b2}};
  a.start(0);
  b.start(0);
  b2.start(0);
  b.join(0, {"a:1"});
  w.pump();
  b2.join(0, {"a:1"});
  w.pump();
  CHECK(a.counters().name_conflicts >= 1);
  CHECK(a.findMember(b2.self().id) == std::nullopt);
  CHECK(a.findMember(b.self().id)->state == MemberState::kAlive);
  bool saw = false;
  for (auto& e : w.events) saw = saw || e.kind == MemberEventKind::kNameConflict;
  CHECK(saw);
}

TEST_CASE("membership: alive whose id does not match its key is rejected") {
  Membership a(fast(), identity("a", "a:1", 1), Keyring{}, Rng(1), testIdentities());
  a.start(0);
  auto forged = identity("z", "z:1", 5);
  Bytes packet = Keyring{}.seal("test", encodePacket({AliveMsg{1, "0123456789abcdef", "z", "z:1", forged.public_key}}));
  a.handlePacket(0, "z:1", packet);
  CHECK(a.members().empty());
  CHECK(a.counters().members_rejected == 1);
}

TEST_CASE("membership: encrypted cluster refuses a node with another key") {
  REQUIRE(initCrypto().isOk());
  Keyring k1({generateClusterKey()}), k2({generateClusterKey()});
  Membership a(fast(), identity("a", "a:1", 1), k1, Rng(1), testIdentities());
  Membership b(fast(), identity("b", "b:1", 2), k2, Rng(2), testIdentities());
  Membership c(fast(), identity("c", "c:1", 3), k1, Rng(3), testIdentities());
  Wire w;
  w.by_address = {{"a:1", &a}, {"b:1", &b}, {"c:1", &c}};
  a.start(0);
  b.start(0);
  c.start(0);
  b.join(0, {"a:1"});
  c.join(0, {"a:1"});
  w.pump();
  CHECK(a.findMember(b.self().id) == std::nullopt);
  CHECK(a.findMember(c.self().id).has_value());
  CHECK(a.counters().drop_wrong_cluster_or_key >= 1);
}

TEST_CASE("membership: packets stay within max_packet_bytes with many queued updates") {
  Options o = fast();
  Membership a(o, identity("a", "a:1", 1), Keyring{}, Rng(1), testIdentities());
  Membership b(o, identity("b", "b:1", 2), Keyring{}, Rng(2), testIdentities());
  a.start(0);
  b.start(0);
  std::vector<Message> alives;
  for (int i = 0; i < 60; ++i) {
    auto id = identity("m" + std::to_string(i), "m" + std::to_string(i) + ":1", static_cast<uint8_t>(20 + i));
    b.handlePacket(0, "x:1", Keyring{}.seal("test", encodePacket({AliveMsg{1, id.id, id.name, id.address, id.public_key}})));
  }
  REQUIRE(b.members().size() == 60);
  REQUIRE(b.setLocalState(0, Bytes(5000, 1)).isOk());  // too big for UDP: announced only
  b.join(0, {"a:1"});
  for (int64_t t = 0; t < 3000; t += 10) {
    b.tick(t);
    Outputs out = b.takeOutputs();
    for (auto& p : out.packets) {
      CHECK(p.bytes.size() <= o.max_packet_bytes);
      if (p.to == "a:1") a.handlePacket(t, "b:1", p.bytes);
    }
    for (auto& st : out.streams) {
      if (st.to == "a:1") b.handleStreamReply(t, st.id, a.handleStream(t, "b:1", st.frame));
    }
    (void)a.takeOutputs();
  }
  CHECK(a.members().size() == 61);
  CHECK(a.nodeStates().at(b.self().id).body.size() == 5000);
}

TEST_CASE("membership: an isolated node raises its local health score and probes less often (Lifeguard)") {
  JoinedTrio trio;
  auto& [a, b, c, w] = trio;
  CHECK(a.localHealth() == 0);
  uint64_t probes_before = a.counters().probes;
  w.down.insert("a:1");  // a can neither send nor receive
  w.advance(13000);
  INFO("probes " << a.counters().probes << " failures " << a.counters().probe_failures << " indirect " << a.counters().indirect_probes << " tcp " << a.counters().tcp_probes << " acks " << a.counters().acks_in);
  CHECK(a.localHealth() >= 3);
  CHECK(a.localHealth() <= 7);
  // A healthy node probes 10 times in 10 s; a node with score s waits (s+1) s between probes.
  CHECK(a.counters().probes - probes_before < 7);
  // Once reachable again, successful probes bring the score back down.
  w.down.clear();
  w.advance(120000);
  CHECK(a.localHealth() == 0);
}

TEST_CASE("membership: the suspect is told, and refutes before it is declared dead") {
  JoinedPair pair;
  auto& [a, b, w] = pair;
  // a hears (from a third party) that b is suspect at b's current incarnation.
  Bytes packet = Keyring{}.seal("test", encodePacket({SuspectMsg{b.incarnation(), b.self().id, "zzzz"}}));
  uint64_t inc = b.incarnation();
  a.handlePacket(w.now, "z:1", packet);
  CHECK(a.findMember(b.self().id)->state == MemberState::kSuspect);
  w.advance(3000);
  CHECK(b.incarnation() > inc);
  CHECK(b.counters().refutations >= 1);
  CHECK(a.findMember(b.self().id)->state == MemberState::kAlive);
  CHECK(a.counters().false_suspicions_refuted == 1);
}

TEST_CASE("membership: a suspect that pings us hears the suspicion in the ack and refutes straight to us") {
  JoinedPair pair;
  auto& [a, b, w] = pair;
  const uint64_t old_inc = b.incarnation();
  auto seal = [](Message m) { return Keyring{}.seal("test", encodePacket({std::move(m)})); };
  // b refutes a suspicion a never hears of (its broadcast is lost to a)...
  b.handlePacket(10, "z:1", seal(SuspectMsg{old_inc, b.self().id, "zzzz"}));
  REQUIRE(b.incarnation() > old_inc);
  (void)b.takeOutputs();
  // ...and a later takes up a stale suspicion of b, at the old incarnation.
  a.handlePacket(20, "z:1", seal(SuspectMsg{old_inc, b.self().id, "zzzz"}));
  REQUIRE(a.findMember(b.self().id)->state == MemberState::kSuspect);
  // a's broadcasts of the suspicion are spent while b hears nothing.
  w.now = 20;
  w.down = {"b:1"};
  w.advance(1500);
  REQUIRE(a.findMember(b.self().id)->state == MemberState::kSuspect);
  w.down.clear();
  // b's next ping to a is answered with the ack and the suspicion; b answers with its alive.
  a.handlePacket(w.now, "b:1", seal(PingMsg{7, a.self().id, b.self().address, b.self().id}));
  w.pump();
  CHECK(a.findMember(b.self().id)->state == MemberState::kAlive);
  CHECK(a.findMember(b.self().id)->incarnation == b.incarnation());
}

TEST_CASE("membership: rapid large state updates: every peer ends with the newest body, never a mismatched pair") {
  Options o = fast();
  // Anti-entropy and reconnects far away: the body must arrive through the fetch retries.
  o.push_pull_interval_ms = 600'000;
  o.reconnect_interval_ms = 600'000;
  constexpr int kNodes = 5;
  std::vector<std::unique_ptr<Membership>> nodes;
  Wire w;
  for (int i = 0; i < kNodes; ++i) {
    std::string addr = "n" + std::to_string(i) + ":1";
    nodes.push_back(std::make_unique<Membership>(o, identity("n" + std::to_string(i), addr, static_cast<uint8_t>(40 + i)),
                                                 Keyring{}, Rng(static_cast<uint64_t>(100 + i)), testIdentities()));
    nodes.back()->start(0);
    w.by_address[addr] = nodes.back().get();
  }
  for (int i = 1; i < kNodes; ++i) nodes[static_cast<size_t>(i)]->join(0, {"n0:1"});
  w.advance(5000);
  for (auto& n : nodes) REQUIRE(n->numAlive() == kNodes);

  Membership& origin = *nodes[2];
  const std::string origin_id = origin.self().id;
  std::map<uint64_t, Bytes> body_of;  // version -> the body the origin set under it
  // Every body is too large for UDP (announced only), and they come faster than one per
  // five probe intervals.
  auto check_pairs = [&] {
    for (auto& n : nodes) {
      auto states = n->nodeStates();
      auto it = states.find(origin_id);
      if (it == states.end()) continue;
      REQUIRE(body_of.count(it->second.version) == 1);
      CHECK(body_of.at(it->second.version) == it->second.body);
    }
    for (const auto& st : w.states) {
      if (st.origin != origin_id) continue;
      REQUIRE(body_of.count(st.version) == 1);
      CHECK(body_of.at(st.version) == st.body);
    }
  };
  uint64_t newest = 0;
  for (int k = 0; k < 8; ++k) {
    Bytes body(3000, static_cast<uint8_t>(k + 1));
    body[0] = static_cast<uint8_t>(0xA0 + k);
    REQUIRE(origin.setLocalState(w.now, body).isOk());
    newest = origin.nodeStates().at(origin_id).version;
    body_of[newest] = body;
    for (int step = 0; step < 40; ++step) {  // 400 ms between updates
      w.advance(w.now + 10);
      check_pairs();
    }
  }
  // Bounded: within 10 s of the last update every peer holds the newest body, under its version.
  const int64_t deadline = w.now + 10'000;
  auto settled = [&] {
    for (auto& n : nodes) {
      auto states = n->nodeStates();
      auto it = states.find(origin_id);
      if (it == states.end() || it->second.version != newest) return false;
      if (n->localMember().id != origin_id && n->findMember(origin_id)->state_version != newest) return false;
    }
    return true;
  };
  while (!settled() && w.now < deadline) {
    w.advance(w.now + 10);
    check_pairs();
  }
  CHECK(settled());
  INFO("settled after ", w.now - (deadline - 10'000), " ms");
  for (auto& n : nodes) CHECK(n->nodeStates().at(origin_id).body == body_of.at(newest));
  // The fetches are bounded: no more than a few per peer per update.
  uint64_t fetches = 0;
  for (auto& n : nodes) fetches += n->counters().state_fetches;
  CHECK(fetches <= static_cast<uint64_t>((kNodes - 1) * 8 * 3));
}

TEST_CASE("membership: a seed down at start is retried with backoff from ~1 s, capped at reconnect_interval_ms") {
  for (uint64_t seed : {1u, 2u, 3u}) {
    INFO("seed ", seed);
    Options o = fast();
    Membership a(o, identity("a", "a:1", 1), Keyring{}, Rng(seed), testIdentities());
    Membership b(o, identity("b", "b:1", 2), Keyring{}, Rng(seed + 100), testIdentities());
    a.start(0);
    b.start(0);
    Wire w;
    w.by_address = {{"a:1", &a}, {"b:1", &b}};
    w.down = {"a:1"};
    b.join(0, {"a:1"});
    w.pump();
    w.advance(125'000);
    // Attempts at about 0, 1, 2, 4, 8, 16, then every 30 s (+-25 % jitter each).
    const auto& t = w.stream_times["a:1"];
    REQUIRE(t.size() >= 6);
    CHECK(t.size() <= 12);
    CHECK(t[1] - t[0] <= 1'300);  // the first retry comes after ~1 s, not 30 s
    for (size_t i = 1; i < t.size(); ++i) CHECK(t[i] - t[i - 1] <= o.reconnect_interval_ms + 10);
    CHECK(t[4] - t[3] >= 2 * 750);  // it backs off
    // The seed comes up: b reaches it within one capped interval, and stops knocking.
    w.down.clear();
    const int64_t up_at = w.now;
    while (b.numAlive() < 2 && w.now < up_at + o.reconnect_interval_ms + 1'000) w.advance(w.now + 100);
    CHECK(b.numAlive() == 2);
    CHECK(a.numAlive() == 2);
  }
}

TEST_CASE("membership: a seed that comes up 3 s late is joined within seconds") {
  Options o = fast();
  Membership a(o, identity("a", "a:1", 1), Keyring{}, Rng(7), testIdentities());
  Membership b(o, identity("b", "b:1", 2), Keyring{}, Rng(8), testIdentities());
  a.start(0);
  b.start(0);
  Wire w;
  w.by_address = {{"a:1", &a}, {"b:1", &b}};
  w.down = {"a:1"};
  b.join(0, {"a:1"});
  w.pump();
  w.advance(3'000);
  w.down.clear();
  while (b.numAlive() < 2 && w.now < 20'000) w.advance(w.now + 10);
  INFO("joined at ", w.now, " ms");
  CHECK(w.now <= 3'000 + 5'000);  // next attempt at ~4 s (or ~8 s with jitter), not 30 s
  CHECK(a.numAlive() == 2);
}

TEST_CASE("membership: a ping from an unknown member starts one push-pull with it (bounded)") {
  Membership a(fast(), identity("a", "a:1", 1), Keyring{}, Rng(1), testIdentities());
  Membership b(fast(), identity("b", "b:1", 2), Keyring{}, Rng(2), testIdentities());
  a.start(0);
  b.start(0);
  // a learns b from an alive broadcast; b never hears of a.
  auto bi = b.self();
  a.handlePacket(0, "b:1", Keyring{}.seal("test", encodePacket({AliveMsg{1, bi.id, bi.name, bi.address, bi.public_key}})));
  REQUIRE(a.findMember(bi.id).has_value());
  (void)a.takeOutputs();
  (void)b.takeOutputs();
  const auto& ai = a.self();
  auto ping = [&](uint32_t seq) {
    return Keyring{}.seal("test", encodePacket({PingMsg{seq, bi.id, ai.address, ai.id}}));
  };
  b.handlePacket(100, "a:1", ping(1));
  Outputs out = b.takeOutputs();
  REQUIRE(out.packets.size() == 1);  // the ack
  CHECK(out.packets[0].to == "a:1");
  REQUIRE(out.streams.size() == 1);  // the push-pull with the unknown sender
  CHECK(out.streams[0].kind == StreamKind::kPushPull);
  CHECK(out.streams[0].to == "a:1");
  CHECK(b.counters().sender_syncs == 1);
  // More pings within the cooldown start nothing more.
  b.handlePacket(200, "a:1", ping(2));
  b.handlePacket(1500, "a:1", ping(3));
  CHECK(b.takeOutputs().streams.empty());
  CHECK(b.counters().sender_syncs == 1);
  // The push-pull completes: b knows a, and further pings start nothing.
  b.handleStreamReply(1500, out.streams[0].id, a.handleStream(1500, "b:1", out.streams[0].frame));
  REQUIRE(b.findMember(ai.id).has_value());
  CHECK(b.findMember(ai.id)->state == MemberState::kAlive);
  (void)b.takeOutputs();
  b.handlePacket(20'000, "a:1", ping(4));
  CHECK(b.takeOutputs().streams.empty());
  CHECK(b.counters().sender_syncs == 1);
}

TEST_CASE("membership: direct probe RTT in microseconds (tickUs / handlePacketUs)") {
  Membership a(fast(), identity("a", "a:1", 1), Keyring{}, Rng(1), testIdentities());
  Membership b(fast(), identity("b", "b:1", 2), Keyring{}, Rng(2), testIdentities());
  Wire w;
  w.by_address = {{"a:1", &a}, {"b:1", &b}};
  a.start(0);
  b.start(0);
  b.join(0, {"a:1"});
  w.pump();
  REQUIRE(a.findMember(b.self().id).has_value());
  CHECK(a.findMember(b.self().id)->rtt_us == -1);
  CHECK(a.findMember(b.self().id)->rtt_samples == 0);
  (void)b.takeOutputs();
  // Drive a by hand in microseconds until it pings b; b answers 300 us later, the ack
  // arrives 350 us after that.
  int64_t t_us = 0;
  uint64_t probes = a.counters().probes;
  Outputs out;
  while (a.counters().probes == probes) {
    t_us += 1'000;
    REQUIRE(t_us < 5'000'000);
    a.tickUs(t_us + 123);  // not on a millisecond boundary
    out = a.takeOutputs();
  }
  const int64_t sent_us = t_us + 123;
  bool acked = false;
  for (auto& p : out.packets) {
    if (p.to != "b:1") continue;
    b.handlePacketUs(sent_us + 300, "a:1", p.bytes);
    for (auto& r : b.takeOutputs().packets) {
      if (r.to != "a:1") continue;
      a.handlePacketUs(sent_us + 650, "b:1", r.bytes);
      acked = true;
    }
  }
  REQUIRE(acked);
  const std::optional<MemberInfo> m = a.findMember(b.self().id);
  REQUIRE(m.has_value());
  CHECK(m->rtt_us == 650);
  CHECK(m->rtt_samples == 1);
  CHECK(m->rtt_ms == 0);  // the old whole-millisecond figure is kept as it was
  CHECK(a.counters().probe_failures == 0);
}

TEST_CASE("membership: adoptConvergedMembers seeds the table, queues no broadcast, and the cluster runs on") {
  Membership a(fast(), identity("a", "a:1", 1), Keyring{}, Rng(1), testIdentities());
  Membership b(fast(), identity("b", "b:1", 2), Keyring{}, Rng(2), testIdentities());
  Membership c(fast(), identity("c", "c:1", 3), Keyring{}, Rng(3), testIdentities());
  std::vector<Membership*> all{&a, &b, &c};
  for (auto* m : all) m->start(0);
  std::vector<MemberRecord> records;
  for (auto* m : all) {
    MemberInfo i = m->localMember();
    records.push_back(MemberRecord{i.id, i.name, i.address, i.public_key, i.incarnation, MemberState::kAlive});
  }
  // A record that fails validation is refused, as a push-pull would refuse it.
  records.push_back(MemberRecord{"0011223344556677", "bad", "bad:1", Bytes(32, 7), 1, MemberState::kAlive});
  for (auto* m : all) {
    m->adoptConvergedMembers(0, records);
    Outputs out = m->takeOutputs();
    CHECK(out.packets.empty());
    CHECK(out.streams.empty());
    CHECK(out.events.size() == 2);  // a join event per other member
    REQUIRE(m->members().size() == 2);
    for (const auto& mi : m->members()) CHECK(mi.state == MemberState::kAlive);
    CHECK(m->counters().members_rejected == 1);
  }
  CHECK(a.memberState(b.self().id) == MemberState::kAlive);
  CHECK(a.memberAddress(c.self().id) == "c:1");
  CHECK(a.memberState("nobody") == std::nullopt);
  CHECK(a.memberAddress("nobody").empty());

  // Over the next seconds a's gossip carries only its own alive (queued at start), never
  // one about the adopted members.
  Wire w;
  w.by_address = {{"a:1", &a}, {"b:1", &b}, {"c:1", &c}};
  size_t alive_about_others = 0, alive_about_self = 0;
  for (int64_t t = 10; t <= 5'000; t += 10) {
    for (auto* m : all) m->tick(t);
    Outputs out = a.takeOutputs();
    for (auto& p : out.packets) {
      Bytes plain;
      REQUIRE(a.keyring().open("test", p.bytes, plain) == OpenError::kNone);
      auto msgs = decodePacket(plain);
      REQUIRE(msgs.isOk());
      for (const auto& msg : *msgs) {
        if (const auto* al = std::get_if<AliveMsg>(&msg)) (al->id == a.self().id ? alive_about_self : alive_about_others)++;
      }
      w.by_address[p.to]->handlePacket(t, "a:1", p.bytes);
    }
    for (auto& s : out.streams) a.handleStreamReply(t, s.id, w.by_address[s.to]->handleStream(t, "a:1", s.frame));
    w.now = t;
    w.pump();
  }
  CHECK(alive_about_self > 0);
  CHECK(alive_about_others == 0);
  for (auto* m : all) CHECK(m->counters().suspicions == 0);

  // Failure detection works from the adopted table.
  w.down.insert("c:1");
  w.advance(60'000);
  CHECK(a.memberState(c.self().id) == MemberState::kDead);
  CHECK(b.memberState(c.self().id) == MemberState::kDead);
  CHECK(a.memberState(b.self().id) == MemberState::kAlive);
}

TEST_CASE("member identities are shared across memberships and follow a move") {
  Membership a(fast(), identity("a", "a:1", 1), Keyring{}, Rng(1), testIdentities());
  Membership b(fast(), identity("b", "b:1", 2), Keyring{}, Rng(2), testIdentities());
  LocalIdentity ci = identity("c", "c:1", 3);
  a.start(0);
  b.start(0);
  std::vector<MemberRecord> records{MemberRecord{ci.id, ci.name, ci.address, ci.public_key, 1, MemberState::kAlive}};
  a.adoptConvergedMembers(0, records);
  b.adoptConvergedMembers(0, records);
  {
    MemberIdentityRef mine = testIdentities().intern(ci.id, ci.name, ci.address, ci.public_key);
    CHECK(mine.use_count() == 3);  // a's entry, b's entry, this one
    MemberIdentityRef same = testIdentities().intern(ci.id, ci.name, ci.address, ci.public_key);
    CHECK(same.get() == mine.get());
    MemberIdentityRef other = testIdentities().intern(ci.id, ci.name, "c:2", ci.public_key);
    CHECK(other.get() != mine.get());
  }
  // c comes back at a new address (a newer incarnation): a moves it; b still shares the old one.
  records[0].address = "c:2";
  records[0].incarnation = 2;
  a.adoptConvergedMembers(0, records);
  CHECK(a.memberAddress(ci.id) == "c:2");
  CHECK(a.findMember(ci.id)->name == "c");
  CHECK(b.memberAddress(ci.id) == "c:1");
  CHECK(testIdentities().intern(ci.id, ci.name, "c:1", ci.public_key).use_count() == 2);  // b's and this one
  // Renamed: the name index follows (a new member named "c" is now a conflict, "c2" is not).
  records[0].name = "c2";
  records[0].incarnation = 3;
  a.adoptConvergedMembers(0, records);
  CHECK(a.findMember(ci.id)->name == "c2");
  LocalIdentity di = identity("c2", "d:1", 4);
  a.adoptConvergedMembers(0, {MemberRecord{di.id, di.name, di.address, di.public_key, 1, MemberState::kAlive}});
  CHECK(a.findMember(di.id) == std::nullopt);
  CHECK(a.counters().name_conflicts == 1);
  LocalIdentity ei = identity("c", "e:1", 5);
  a.adoptConvergedMembers(0, {MemberRecord{ei.id, ei.name, ei.address, ei.public_key, 1, MemberState::kAlive}});
  CHECK(a.findMember(ei.id).has_value());
  CHECK(a.members().size() == 2);
}
