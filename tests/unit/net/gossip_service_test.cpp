// GossipService over real loopback UDP/TCP: several services on one uv loop, real clock.
#include "tests/temp_dir.h"
#include <doctest/doctest.h>

#include <sodium.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>

#include "agent/core/clock.h"
#include "agent/core/crypto.h"
#include "agent/core/node_identity.h"
#include "agent/gossip/gossip_service.h"
#include "agent/net/gossip_transport.h"
#include "agent/net/uv_loop.h"

using namespace meshos;
using namespace meshos::gossip;
using meshos::net::parseSocketAddress;

namespace {

struct Harness {
  uv_loop_t loop{};
  SystemClock clock;
  std::unique_ptr<UvTimers> timers;
  std::unique_ptr<UvPoster> poster;
  std::unique_ptr<UvWorkers> workers;
  PosixFileSystem fs;
  Rng rng{12345};
  std::unique_ptr<Env> env;
  MemberIdentityPool pool;
  std::vector<std::unique_ptr<net::GossipTransport>> transports;
  meshos::testing::TempDir tmp{"meshos-gossip"};
  std::filesystem::path dir = tmp.path;

  Harness() {
    REQUIRE(initCrypto().isOk());
    uv_loop_init(&loop);
    timers = std::make_unique<UvTimers>(&loop);
    poster = std::make_unique<UvPoster>(&loop);
    workers = std::make_unique<UvWorkers>(&loop);
    env = std::make_unique<Env>(Env{clock, *timers, *poster, rng, *workers, fs});
  }
  // A new UDP+TCP transport for one service; the harness keeps it until the end.
  net::GossipTransport& transport() {
    transports.push_back(std::make_unique<net::GossipTransport>(&loop, *timers, clock));
    return *transports.back();
  }
  ~Harness() {
    for (auto& t : transports) t->close();
    timers->close();
    poster->close();
    uv_run(&loop, UV_RUN_DEFAULT);  // runs close callbacks
    CHECK(uv_loop_close(&loop) == 0);  // a leaked handle fails the test
  }
  bool runUntil(const std::function<bool()>& pred, int64_t timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      uv_run(&loop, UV_RUN_ONCE);
    }
    return pred();
  }
};

Options fastOptions() {
  Options o;
  o.cluster_id = "itest";
  o.probe_interval_ms = 200;
  o.probe_timeout_ms = 100;
  o.gossip_interval_ms = 50;
  o.push_pull_interval_ms = 2000;
  o.reconnect_interval_ms = 1000;
  o.stream_timeout_ms = 2000;
  return o;
}

// Incarnations survive a restart of a service of the same name (what the agent's database does).
std::map<std::string, uint64_t>& storedIncarnations() {
  static std::map<std::string, uint64_t> stored;
  return stored;
}

GossipServiceOptions serviceOptions(const std::string& name, uint8_t key_seed, const std::filesystem::path& data_dir) {
  unsigned char seed[crypto_sign_SEEDBYTES];
  std::fill(std::begin(seed), std::end(seed), key_seed);
  PublicKey pk{};
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk.data(), sk, seed);
  GossipServiceOptions o;
  o.name = name;
  o.id = nodeIdFromPublicKey(pk);
  o.public_key.assign(pk.begin(), pk.end());
  o.bind = "127.0.0.1:0";
  o.gossip = fastOptions();
  (void)data_dir;
  o.load_incarnation = [name]() -> Result<std::optional<uint64_t>> {
    auto it = storedIncarnations().find(name);
    if (it == storedIncarnations().end()) return std::optional<uint64_t>();
    return std::optional<uint64_t>(it->second);
  };
  o.store_incarnation = [name](uint64_t inc) -> Status {
    storedIncarnations()[name] = inc;
    return Status::ok();
  };
  return o;
}

size_t aliveSeen(const GossipService& s) {
  size_t n = 0;
  for (const auto& m : s.members()) n += m.state == MemberState::kAlive;
  return n;
}

const MemberInfo* findMember(const std::vector<MemberInfo>& ms, const std::string& id, MemberInfo& out) {
  for (const auto& m : ms)
    if (m.id == id) {
      out = m;
      return &out;
    }
  return nullptr;
}

}  // namespace

TEST_CASE("gossip service: four nodes on loopback join, share state, detect a failure, accept a restart") {
  Harness h;
  std::vector<std::unique_ptr<GossipService>> nodes;
  for (int i = 0; i < 4; ++i) {
    auto o = serviceOptions("node-" + std::to_string(i), static_cast<uint8_t>(i + 1), h.dir / ("n" + std::to_string(i)));
    if (i > 0) o.seeds = {nodes[0]->advertiseAddress()};
    nodes.push_back(std::make_unique<GossipService>(*h.env, h.transport(), h.pool, o));
    REQUIRE(nodes.back()->start().isOk());
    CHECK(nodes.back()->advertiseAddress().substr(nodes.back()->advertiseAddress().rfind(':') + 1) != "0");
  }
  CHECK(nodes[0]->members().empty());
  REQUIRE(h.runUntil([&] {
    for (auto& n : nodes)
      if (aliveSeen(*n) != 3) return false;
    return true;
  }, 10'000));
  // Direct probes over loopback are timed in microseconds: never 0, well under a second.
  REQUIRE(h.runUntil([&] {
    for (const auto& m : nodes[0]->members())
      if (m.rtt_samples > 0) return true;
    return false;
  }, 10'000));
  for (const auto& m : nodes[0]->members()) {
    if (m.rtt_samples == 0) continue;
    CHECK(m.rtt_us > 0);
    CHECK(m.rtt_us < 1'000'000);
  }

  // Node state: a small one by UDP gossip, a large one by TCP push-pull.
  int updates = 0;
  nodes[3]->onNodeState([&](const NodeStateUpdate& u) { updates += u.name == "node-1"; });
  REQUIRE(nodes[1]->setLocalState(Bytes(64, 1)).isOk());
  REQUIRE(nodes[2]->setLocalState(Bytes(30'000, 2)).isOk());
  REQUIRE(h.runUntil([&] {
    auto st = nodes[3]->nodeStates();
    return st.count(nodes[1]->localMember().id) && st.count(nodes[2]->localMember().id) &&
           st.at(nodes[2]->localMember().id).body.size() == 30'000;
  }, 10'000));
  CHECK(updates == 1);
  // The seed's own periodic push-pull (first at a random point of the second half of the
  // 2 s interval): the joins and the state above may all have finished before it.
  CHECK(h.runUntil([&] { return nodes[0]->counters().push_pulls > 0; }, 5'000));

  // A garbage packet is dropped and counted.
  {
    auto* sock = new uv_udp_t();
    uv_udp_init(&h.loop, sock);
    sockaddr_storage to{};
    REQUIRE(parseSocketAddress(nodes[0]->advertiseAddress(), to).isOk());
    char junk[] = "\x01 this is not a sealed packet";
    uv_buf_t b = uv_buf_init(junk, sizeof(junk));
    CHECK(uv_udp_try_send(sock, &b, 1, reinterpret_cast<sockaddr*>(&to)) > 0);
    uv_close(reinterpret_cast<uv_handle_t*>(sock), [](uv_handle_t* hd) { delete reinterpret_cast<uv_udp_t*>(hd); });
  }
  REQUIRE(h.runUntil([&] { return nodes[0]->counters().drop_encrypted > 0; }, 5'000));

  // Crash node 3 (close without leave): the others declare it dead.
  std::string id3 = nodes[3]->localMember().id;
  uint64_t inc3 = nodes[3]->incarnation();
  nodes[3]->close();
  REQUIRE(h.runUntil([&] {
    for (int i = 0; i < 3; ++i) {
      MemberInfo m;
      if (!findMember(nodes[i]->members(), id3, m) || m.state != MemberState::kDead) return false;
    }
    return true;
  }, 20'000));

  // Restart it at a new port with the same data dir: a higher incarnation, accepted everywhere.
  auto o3 = serviceOptions("node-3", 4, h.dir / "n3");
  o3.seeds = {nodes[1]->advertiseAddress()};
  nodes[3] = std::make_unique<GossipService>(*h.env, h.transport(), h.pool, o3);
  REQUIRE(nodes[3]->start().isOk());
  CHECK(nodes[3]->incarnation() > inc3);
  std::string addr3 = nodes[3]->advertiseAddress();
  REQUIRE(h.runUntil([&] {
    for (int i = 0; i < 3; ++i) {
      MemberInfo m;
      if (!findMember(nodes[i]->members(), id3, m) || m.state != MemberState::kAlive || m.address != addr3) return false;
    }
    return true;
  }, 15'000));

  // Graceful leave of node 2.
  bool left = false;
  nodes[2]->leave(3'000, [&] { left = true; });
  REQUIRE(h.runUntil([&] { return left; }, 5'000));
  std::string id2 = nodes[2]->localMember().id;
  nodes[2]->close();
  REQUIRE(h.runUntil([&] {
    MemberInfo m;
    return findMember(nodes[0]->members(), id2, m) && m.state == MemberState::kLeft;
  }, 5'000));
  for (auto& n : nodes) n->close();
}

TEST_CASE("gossip service: an encrypted cluster refuses a node with the wrong key") {
  Harness h;
  ClusterKey good = generateClusterKey(), bad = generateClusterKey();
  std::vector<std::unique_ptr<GossipService>> nodes;
  for (int i = 0; i < 3; ++i) {
    auto o = serviceOptions("enc-" + std::to_string(i), static_cast<uint8_t>(40 + i), h.dir / ("e" + std::to_string(i)));
    o.keyring = Keyring({i == 2 ? bad : good});
    if (i > 0) o.seeds = {nodes[0]->advertiseAddress()};
    nodes.push_back(std::make_unique<GossipService>(*h.env, h.transport(), h.pool, o));
    REQUIRE(nodes.back()->start().isOk());
  }
  REQUIRE(h.runUntil([&] { return aliveSeen(*nodes[0]) == 1 && aliveSeen(*nodes[1]) == 1; }, 10'000));
  REQUIRE(h.runUntil([&] { return nodes[0]->counters().drop_wrong_cluster_or_key > 0; }, 5'000));
  CHECK(aliveSeen(*nodes[2]) == 0);
  for (auto& n : nodes) n->close();
}

TEST_CASE("gossip service: bad options and addresses are refused") {
  Harness h;
  auto o = serviceOptions("x", 9, h.dir / "x");
  o.bind = "not-an-address";
  GossipService s(*h.env, h.transport(), h.pool, o);
  CHECK(s.start().code() == Code::kInvalidArgument);
  sockaddr_storage a{};
  CHECK(parseSocketAddress("127.0.0.1:7946", a).isOk());
  CHECK(parseSocketAddress("[::1]:7946", a).isOk());
  CHECK(!parseSocketAddress("127.0.0.1:99999", a).isOk());
  CHECK(!parseSocketAddress("localhost", a).isOk());
}

TEST_CASE("gossip service: the incarnation goes through the load/store hooks when they are set") {
  Harness h;
  std::optional<uint64_t> stored;
  bool fail_store = false, fail_load = false;
  std::vector<uint64_t> writes;
  auto hooked = [&](const std::string& name) {
    auto o = serviceOptions(name, 77, h.dir / "hooked");
    o.load_incarnation = [&]() -> Result<std::optional<uint64_t>> {
      if (fail_load) return Status::io("state store unavailable");
      return stored;
    };
    o.store_incarnation = [&](uint64_t inc) -> Status {
      if (fail_store) return Status::io("state store unavailable");
      stored = inc;
      writes.push_back(inc);
      return Status::ok();
    };
    return o;
  };
  {
    GossipService s(*h.env, h.transport(), h.pool, hooked("hook"));
    REQUIRE(s.start().isOk());  // nothing stored yet: a first start
    CHECK(s.incarnation() == 1);
    CHECK(stored == std::optional<uint64_t>(1));
    CHECK(s.shellCounters().incarnation_writes == 1);
    s.close();
  }
  {
    GossipService s(*h.env, h.transport(), h.pool, hooked("hook"));
    REQUIRE(s.start().isOk());
    CHECK(s.incarnation() == 2);
    CHECK(stored == std::optional<uint64_t>(2));
    s.close();
  }
  {
    // A failing store is counted and retried until it works.
    fail_store = true;
    GossipService s(*h.env, h.transport(), h.pool, hooked("hook"));
    REQUIRE(s.start().isOk());
    CHECK(s.incarnation() == 3);
    CHECK(s.shellCounters().incarnation_write_errors == 1);
    CHECK(s.shellCounters().incarnation_writes == 0);
    CHECK(stored == std::optional<uint64_t>(2));
    fail_store = false;
    REQUIRE(h.runUntil([&] { return s.shellCounters().incarnation_writes == 1; }, 5'000));
    CHECK(stored == std::optional<uint64_t>(3));
    s.close();
  }
  CHECK(writes == std::vector<uint64_t>{1, 2, 3});
  {
    // A failing load fails start(); nothing is written.
    fail_load = true;
    GossipService s(*h.env, h.transport(), h.pool, hooked("hook"));
    Status st = s.start();
    CHECK(st.code() == Code::kIoError);
    CHECK(writes.size() == 3);
    s.close();
  }
  {
    // One hook without the other is refused.
    auto o = serviceOptions("half", 78, h.dir / "half");
    o.load_incarnation = nullptr;
    o.store_incarnation = [](uint64_t) { return Status::ok(); };
    GossipService s(*h.env, h.transport(), h.pool, o);
    CHECK(s.start().code() == Code::kInvalidArgument);
    s.close();
  }
  {
    // Without hooks the incarnation starts afresh.
    auto o = serviceOptions("nohooks", 79, h.dir / "nohooks");
    o.load_incarnation = nullptr;
    o.store_incarnation = nullptr;
    GossipService s(*h.env, h.transport(), h.pool, o);
    REQUIRE(s.start().isOk());
    CHECK(s.incarnation() == 1);
    s.close();
  }
}
