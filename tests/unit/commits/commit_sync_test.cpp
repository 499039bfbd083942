// CommitSync driven by hand: a few nodes (CommitLog + CommitSync each) wired by a test
// "wire" that delivers requests at once (or fails them), no network, no clock.
#include "agent/commits/commit_sync.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include "commit_test_util.h"

using namespace meshos;
using namespace meshos::commits;
using namespace meshos::commits::testing;

namespace {

struct SyncNode {
  std::string id;
  std::string address;
  CommitLog log;
  CommitSync sync;
  SyncNode(std::string i, const CommitLogConfig& cfg, SyncOptions so, uint64_t seed)
      : id(std::move(i)), address(id + ":7946"), log(cfg), sync(so, Rng(seed)) {}
};

struct Wire {
  std::vector<std::unique_ptr<SyncNode>> nodes;
  int64_t now = 0;
  std::set<std::string> down;  // addresses whose requests fail
  std::map<std::string, int> requests_to;
  std::vector<SyncRequest> held;  // with hold = true: requests are kept, not delivered
  bool hold = false;

  SyncNode& add(const std::string& id, const CommitLogConfig& cfg, SyncOptions so = {}) {
    nodes.push_back(std::make_unique<SyncNode>(id, cfg, so, 1000 + nodes.size()));
    return *nodes.back();
  }
  SyncNode* byAddress(const std::string& a) {
    for (auto& n : nodes)
      if (n->address == a) return n.get();
    return nullptr;
  }
  void connectAll() {
    for (auto& n : nodes) {
      std::vector<SyncPeer> peers;
      for (auto& m : nodes)
        if (m != n) peers.push_back({m->id, m->address});
      n->sync.setPeers(peers);
    }
  }
  // Heads advertised by everyone to everyone (what node state gossip does).
  void advertise() {
    for (auto& n : nodes)
      for (auto& m : nodes)
        if (m != n) n->sync.setPeerHead(m->id, m->log.head());
  }
  void deliver(SyncNode& from, SyncRequest r) {
    ++requests_to[r.address];
    SyncNode* to = byAddress(r.address);
    LogOutput out;
    Result<Bytes> reply = Status::unavailable("down");
    if (to != nullptr && !down.count(r.address)) {
      if (r.channel == kGetChannel) {
        reply = to->sync.serveGet(r.body, to->log);
      } else {
        LogOutput tout;
        auto served = to->sync.servePush(from.address, r.body, to->log, tout);
        if (served) {
          reply = served->reply;
          to->sync.announce(tout.announce, from.address);
        } else {
          reply = served.status();
        }
      }
    }
    from.sync.onReply(now, r.id, std::move(reply), from.log, out);
    from.sync.announce(out.announce);
  }
  // Steps every node and delivers until nothing moves.
  void run(int rounds = 100) {
    for (int i = 0; i < rounds; ++i) {
      bool any = false;
      for (auto& n : nodes) {
        n->sync.step(now, n->log);
        for (auto& r : n->sync.takeRequests()) {
          any = true;
          if (hold) {
            held.push_back(std::move(r));
          } else {
            deliver(*n, std::move(r));
          }
        }
      }
      if (!any) return;
    }
  }
};


void submitAll(SyncNode& n, const std::vector<Bytes>& commits, bool announce = false) {
  for (const auto& c : commits) {
    LogOutput out;
    REQUIRE(n.log.submit(c, out).outcome == Outcome::kAccepted);
    if (announce) n.sync.announce(out.announce);
  }
}

}  // namespace

TEST_CASE("commit sync codecs: round trips and bad input") {
  REQUIRE(initCrypto().isOk());
  auto rq = decodeRangeRequest(encodeRangeRequest({3, 9}));
  REQUIRE(rq.isOk());
  CHECK(*rq == CommitRange{3, 9});
  CHECK_FALSE(decodeRangeRequest(encodeRangeRequest({0, 9})).isOk());
  CHECK_FALSE(decodeRangeRequest(encodeRangeRequest({9, 3})).isOk());
  CHECK_FALSE(decodeRangeRequest(Bytes{}).isOk());
  CHECK_FALSE(decodeRangeRequest(Bytes{1, 2, 3}).isOk());
  CHECK_FALSE(decodeRangeRequest(Bytes(4104, 0)).isOk());

  Admins admins(1);
  auto chain = chainOf(admins.keys[0], 3, "d");
  RangeReply reply{chain, Head{3, commitHash(decodeCommit(chain[2])->commit)}};
  auto rr = decodeRangeReply(encodeRangeReply(reply), 64);
  REQUIRE(rr.isOk());
  CHECK(rr->commits == chain);
  CHECK(rr->head == reply.head);
  CHECK_FALSE(decodeRangeReply(encodeRangeReply(reply), 2).isOk());  // over the count limit
  Bytes cut = encodeRangeReply(reply);
  cut.resize(cut.size() - 8);
  CHECK_FALSE(decodeRangeReply(cut, 64).isOk());
  CHECK_FALSE(decodeRangeReply(Bytes(64, 0xff), 64).isOk());

  auto push = decodePush(encodePush(chain), 64);
  REQUIRE(push.isOk());
  CHECK(*push == chain);
  CHECK_FALSE(decodePush(encodePush({}), 64).isOk());  // nothing to push
  CHECK_FALSE(decodePush(encodePush({Bytes{}}), 64).isOk());
  auto pr = decodePushReply(encodePushReply({2, reply.head}));
  REQUIRE(pr.isOk());
  CHECK(pr->accepted == 2);
  CHECK(pr->head == reply.head);
  CHECK(decodePushReply(encodePushReply({0, Head{}}))->head == Head{});
}

TEST_CASE("commit sync: a new commit is pushed to every peer and spreads on") {
  REQUIRE(initCrypto().isOk());
  Admins admins(1);
  auto cfg = config(admins.trust(1));
  Wire w;
  for (int i = 0; i < 5; ++i) w.add("n" + std::to_string(i), cfg);
  w.connectAll();
  auto chain = chainOf(admins.keys[0], 1, "web");
  submitAll(*w.nodes[0], chain, true);
  w.run();
  for (auto& n : w.nodes) CHECK(n->log.head() == w.nodes[0]->log.head());
  // n0 pushed to all 4; each of them accepted and pushed on to the 3 others (not back).
  CHECK(w.nodes[0]->sync.counters().pushes_sent == 4);
  for (size_t i = 1; i < 5; ++i) {
    CHECK(w.nodes[i]->sync.counters().pushed_commits_accepted == 1);
    CHECK(w.nodes[i]->sync.counters().pushes_sent == 3);
  }
  CHECK(w.nodes[0]->sync.counters().pushes_ok == 4);
  // Nobody fetched: the pushes were enough.
  for (auto& n : w.nodes) CHECK(n->sync.counters().fetches_sent == 0);
}

TEST_CASE("commit sync: past fanout_all_max_peers a push goes to `fanout` random peers") {
  REQUIRE(initCrypto().isOk());
  Admins admins(1);
  auto cfg = config(admins.trust(1));
  SyncOptions so;
  so.fanout_all_max_peers = 8;
  so.fanout = 3;
  Wire w;
  for (int i = 0; i < 12; ++i) w.add("n" + std::to_string(i), cfg, so);
  w.connectAll();
  submitAll(*w.nodes[0], chainOf(admins.keys[0], 1, "web"), true);
  w.nodes[0]->sync.step(0, w.nodes[0]->log);
  CHECK(w.nodes[0]->sync.takeRequests().size() == 3);
}

TEST_CASE("commit sync: a node behind fetches the missing range, capped per fetch") {
  REQUIRE(initCrypto().isOk());
  Admins admins(1);
  auto cfg = config(admins.trust(1));
  SyncOptions so;
  so.max_range = 16;
  Wire w;
  SyncNode& a = w.add("a", cfg, so);
  SyncNode& b = w.add("b", cfg, so);
  w.connectAll();
  submitAll(a, chainOf(admins.keys[0], 40, "d"));
  w.advertise();
  w.run();
  CHECK(b.log.head() == a.log.head());
  CHECK(b.sync.counters().fetches_sent >= 3);  // 40 commits, 16 a fetch
  CHECK(b.sync.counters().fetched_commits_accepted == 40);
  CHECK(a.sync.counters().gets_served == b.sync.counters().fetches_sent);
  CHECK(b.sync.fetchesInFlight() == 0);
}

TEST_CASE("commit sync: one fetch in flight per peer; same range not asked twice") {
  REQUIRE(initCrypto().isOk());
  Admins admins(1);
  auto cfg = config(admins.trust(1));
  Wire w;
  SyncNode& a = w.add("a", cfg);
  SyncNode& b = w.add("b", cfg);
  SyncNode& c = w.add("c", cfg);
  w.connectAll();
  auto chain = chainOf(admins.keys[0], 3, "d");
  submitAll(a, chain);
  submitAll(b, chain);
  w.advertise();
  c.sync.step(0, c.log);
  auto first = c.sync.takeRequests();
  CHECK(first.size() == 1);  // a and b advertise the same head: one fetch
  c.sync.step(0, c.log);
  CHECK(c.sync.takeRequests().empty());
  LogOutput out;
  c.sync.onReply(0, first[0].id, Status::unavailable("lost"), c.log, out);
  CHECK(c.sync.counters().fetch_failures == 1);
  // The failed peer backs off; the other one is asked.
  c.sync.step(0, c.log);
  auto second = c.sync.takeRequests();
  REQUIRE(second.size() == 1);
  CHECK(second[0].peer_id != first[0].peer_id);
}

TEST_CASE("commit sync: failures back off exponentially, bounded; news resets the backoff") {
  REQUIRE(initCrypto().isOk());
  Admins admins(1);
  auto cfg = config(admins.trust(1));
  SyncOptions so;
  so.retry_base_ms = 100;
  so.retry_max_ms = 1000;
  Wire w;
  SyncNode& a = w.add("a", cfg, so);
  SyncNode& b = w.add("b", cfg, so);
  w.connectAll();
  submitAll(a, chainOf(admins.keys[0], 2, "d"));
  w.advertise();
  w.down.insert(a.address);
  std::vector<int64_t> gaps;
  int64_t last = 0;
  for (int i = 0; i < 8; ++i) {
    // Advance to the next retry.
    int64_t wake = b.sync.nextWakeMs(b.log);
    REQUIRE(wake < std::numeric_limits<int64_t>::max());
    w.now = std::max(w.now, wake);
    gaps.push_back(w.now - last);
    last = w.now;
    b.sync.step(w.now, b.log);
    auto reqs = b.sync.takeRequests();
    REQUIRE(reqs.size() == 1);
    w.deliver(b, reqs[0]);
  }
  CHECK(b.sync.counters().fetch_failures == 8);
  // The first try is at once; then each wait is within [delay/2, delay] of 100, 200, 400,
  // 800, 1000, 1000 ...
  CHECK(gaps[0] == 0);
  CHECK((gaps[1] >= 50 && gaps[1] <= 100));
  CHECK((gaps[2] >= 100 && gaps[2] <= 200));
  CHECK((gaps[3] >= 200 && gaps[3] <= 400));
  CHECK((gaps[5] >= 500 && gaps[5] <= 1000));
  CHECK((gaps[7] >= 500 && gaps[7] <= 1000));
  // Heal; nothing happens before the backoff ends, then it catches up.
  w.down.clear();
  b.sync.step(w.now, b.log);
  CHECK(b.sync.takeRequests().empty());
  w.now = b.sync.nextWakeMs(b.log);
  w.run();
  CHECK(b.log.head() == a.log.head());
}

TEST_CASE("commit sync: a fetch that brings nothing new backs off (no busy loop)") {
  REQUIRE(initCrypto().isOk());
  Admins admins(1);
  Admins strangers(1);
  auto cfg = config(admins.trust(1));
  Wire w;
  SyncNode& a = w.add("a", cfg);
  SyncNode& b = w.add("b", cfg);
  w.connectAll();
  // b is said to be at a head it does not have: the fetch brings nothing.
  auto bad = chainOf(strangers.keys[0], 1, "x");
  Head fake{1, commitHash(decodeCommit(bad[0])->commit)};
  a.sync.setPeerHead(b.id, fake);
  w.run();
  CHECK(a.sync.counters().fetches_sent == 1);
  CHECK(a.sync.counters().fetches_useless == 1);
  CHECK(a.log.head().seq == 0);
}

TEST_CASE("commit sync: a push ahead of the head is kept pending and the gap fetched from the pusher") {
  REQUIRE(initCrypto().isOk());
  Admins admins(1);
  auto cfg = config(admins.trust(1));
  Wire w;
  SyncNode& a = w.add("a", cfg);
  SyncNode& b = w.add("b", cfg);
  w.connectAll();
  auto chain = chainOf(admins.keys[0], 5, "d");
  submitAll(a, std::vector<Bytes>(chain.begin(), chain.begin() + 4));
  // Only the last commit is pushed: b has none of 1..4.
  LogOutput out;
  REQUIRE(a.log.submit(chain[4], out).outcome == Outcome::kAccepted);
  a.sync.announce(out.announce);
  w.run();
  CHECK(b.log.head() == a.log.head());
  CHECK(b.sync.counters().fetches_sent >= 1);
}

TEST_CASE("commit sync: two branches converge on the lower hash") {
  REQUIRE(initCrypto().isOk());
  Admins admins(1);
  auto cfg = config(admins.trust(1));
  Wire w;
  SyncNode& a = w.add("a", cfg);
  SyncNode& b = w.add("b", cfg);
  SyncNode& c = w.add("c", cfg);
  w.connectAll();
  auto base = chainOf(admins.keys[0], 2, "base");
  for (auto* n : {&a, &b, &c}) submitAll(*n, base);
  Hash256 h2 = commitHash(decodeCommit(base[1])->commit);
  auto left = chainOf(admins.keys[0], 2, "left", h2, 3);
  auto right = chainOf(admins.keys[0], 1, "right", h2, 3);
  submitAll(a, left);
  submitAll(b, right);
  w.advertise();
  for (int i = 0; i < 5; ++i) {
    w.run();
    w.advertise();
  }
  CHECK(a.log.head() == b.log.head());
  CHECK(b.log.head() == c.log.head());
  const Hash256 l3 = commitHash(decodeCommit(left[0])->commit), r3 = commitHash(decodeCommit(right[0])->commit);
  CHECK(*a.log.hashAt(3) == std::min(l3, r3));
}

TEST_CASE("commit sync: bad requests are refused, counted and change nothing") {
  REQUIRE(initCrypto().isOk());
  Admins admins(1);
  Admins strangers(1);
  auto cfg = config(admins.trust(1));
  Wire w;
  SyncNode& a = w.add("a", cfg);
  w.connectAll();
  CHECK_FALSE(a.sync.serveGet(Bytes{1, 2, 3}, a.log).isOk());
  CHECK_FALSE(a.sync.serveGet(encodeRangeRequest({0, 0}), a.log).isOk());
  CHECK(a.sync.counters().get_errors == 2);
  LogOutput out;
  CHECK_FALSE(a.sync.servePush("x:1", Bytes(16, 0xab), a.log, out).isOk());
  CHECK(a.sync.counters().push_errors == 1);
  // A well-formed push of a commit signed by an unknown key: served, rejected by the log.
  auto served = a.sync.servePush("x:1", encodePush(chainOf(strangers.keys[0], 1, "x")), a.log, out);
  REQUIRE(served.isOk());
  CHECK(served->accepted == 0);
  CHECK(a.log.head().seq == 0);
  CHECK(out.announce.empty());
  REQUIRE(out.audit.size() == 1);
  CHECK(out.audit[0].reason == RejectReason::kUnknownKey);
}

TEST_CASE("commit sync: the push queue is bounded; the oldest is dropped and counted") {
  REQUIRE(initCrypto().isOk());
  Admins admins(1);
  auto cfg = config(admins.trust(1));
  SyncOptions so;
  so.max_push_queue = 5;
  so.max_pushes_in_flight = 2;
  Wire w;
  for (int i = 0; i < 11; ++i) w.add("n" + std::to_string(i), cfg, so);
  w.connectAll();
  submitAll(*w.nodes[0], chainOf(admins.keys[0], 1, "d"), true);
  CHECK(w.nodes[0]->sync.counters().pushes_dropped == 5);
  CHECK(w.nodes[0]->sync.pushQueueSize() == 5);
  w.nodes[0]->sync.step(0, w.nodes[0]->log);
  CHECK(w.nodes[0]->sync.takeRequests().size() == 2);
  CHECK(w.nodes[0]->sync.pushesInFlight() == 2);
  CHECK(w.nodes[0]->sync.pushQueueSize() == 3);
}

TEST_CASE("commit sync: options are validated") {
  SyncOptions so;
  CHECK(so.validate().isOk());
  so.fanout = 0;
  CHECK_FALSE(so.validate().isOk());
  so = {};
  so.retry_max_ms = 1;
  CHECK_FALSE(so.validate().isOk());
  so = {};
  so.max_message_bytes = 1024;
  CHECK_FALSE(so.validate().isOk());
}

TEST_CASE("commit sync: 30 nodes, lossy requests, conflicting commits: every node ends at one head (seeded)") {
  REQUIRE(initCrypto().isOk());
  uint64_t seeds[] = {1, 2, 3, 4, 5};
  const char* env_seed = std::getenv("MESHOS_SEED");
  std::vector<uint64_t> run = env_seed ? std::vector<uint64_t>{std::strtoull(env_seed, nullptr, 10)}
                                       : std::vector<uint64_t>(std::begin(seeds), std::end(seeds));
  for (uint64_t seed : run) {
    INFO("seed " << seed << " (replay: MESHOS_SEED=" << seed << ")");
    Rng rng(seed);
    Admins admins(1);
    auto cfg = config(admins.trust(1));
    SyncOptions so;
    so.fanout_all_max_peers = 8;  // 29 peers: random fanout
    so.fanout = 3;
    so.retry_base_ms = 50;
    so.retry_max_ms = 400;
    Wire w;
    for (int i = 0; i < 30; ++i) w.add("n" + std::to_string(i), cfg, so);
    w.connectAll();
    // Lossy: every request fails with probability 0.3.
    auto lossyRun = [&] {
      for (int round = 0; round < 50; ++round) {
        bool any = false;
        for (auto& n : w.nodes) {
          n->sync.step(w.now, n->log);
          for (auto& r : n->sync.takeRequests()) {
            any = true;
            if (rng.chance(0.3)) {
              LogOutput out;
              n->sync.onReply(w.now, r.id, Status::unavailable("lost"), n->log, out);
            } else {
              w.deliver(*n, std::move(r));
            }
          }
        }
        if (!any) break;
      }
    };
    auto submitAt = [&](size_t i, const std::string& tag) {
      SyncNode& n = *w.nodes[i];
      Commit c = makeCommit(n.log.head().seq + 1, n.log.head().hash, {OpPutDaemon{daemon(tag)}});
      LogOutput out;
      REQUIRE(n.log.submit(signedBytes(c, {&admins.keys[0]}), out).outcome == Outcome::kAccepted);
      n.sync.announce(out.announce);
    };
    auto allSame = [&] {
      for (auto& n : w.nodes)
        if (!(n->log.head() == w.nodes[0]->log.head())) return false;
      return true;
    };
    submitAt(rng.uniform(30), "a");
    for (int t = 0; t < 200 && !(allSame() && w.nodes[0]->log.head().seq == 1); ++t) {
      w.now += 50;
      if (t % 4 == 0) w.advertise();
      lossyRun();
    }
    REQUIRE(allSame());
    // Two conflicting commits at the same seq on two nodes, before either spreads.
    size_t x = rng.uniform(30), y = (x + 1 + rng.uniform(29)) % 30;
    submitAt(x, "left");
    submitAt(y, "right");
    bool converged = false;
    for (int t = 0; t < 200 && !converged; ++t) {
      w.now += 50;
      if (t % 4 == 0) w.advertise();  // node state gossip, now and then
      lossyRun();
      converged = allSame();
    }
    CHECK(converged);
    CHECK(w.nodes[0]->log.head().seq == 2);
    for (auto& n : w.nodes) CHECK(n->log.desired() == w.nodes[0]->log.desired());
  }
}
