// Application channels on the gossip TCP stream: first the sans-IO core (Membership) wired by
// hand, then GossipService over real loopback TCP (echo, unknown channel, handler error,
// wrong key, in-flight bound, timeout, oversized and truncated frames).
#include "tests/temp_dir.h"
#include <doctest/doctest.h>

#include <sodium.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include "agent/core/clock.h"
#include "agent/core/crypto.h"
#include "agent/core/node_identity.h"
#include "agent/net/uv_loop.h"
#include "agent/gossip/gossip_service.h"
#include "agent/net/gossip_transport.h"
#include "agent/gossip/membership.h"

using namespace meshos;
using namespace meshos::gossip;
using meshos::net::formatSocketAddress;
using meshos::net::parseSocketAddress;

namespace {

// One pool for the test process: every Membership here outlives nothing beyond it.
meshos::gossip::MemberIdentityPool& testIdentities() {
  static meshos::gossip::MemberIdentityPool pool;
  return pool;
}

PublicKey keyFromSeed(uint8_t seed_byte) {
  REQUIRE(initCrypto().isOk());
  unsigned char seed[crypto_sign_SEEDBYTES];
  std::fill(std::begin(seed), std::end(seed), seed_byte);
  PublicKey pk{};
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk.data(), sk, seed);
  return pk;
}

LocalIdentity identity(const std::string& name, const std::string& address, uint8_t seed_byte) {
  PublicKey pk = keyFromSeed(seed_byte);
  return LocalIdentity{name, nodeIdFromPublicKey(pk), Bytes(pk.begin(), pk.end()), address, 0};
}

Options coreOptions() {
  Options o;
  o.cluster_id = "apptest";
  o.max_app_body_bytes = 4096;
  return o;
}

Bytes bytesOf(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string textOf(const Bytes& b) { return std::string(b.begin(), b.end()); }

// Runs A's outbound streams against B by hand; returns A's app replies.
std::vector<AppReply> exchange(Membership& a, const std::string& a_addr, Membership& b) {
  Outputs out = a.takeOutputs();
  for (auto& s : out.streams) a.handleStreamReply(0, s.id, b.handleStream(0, a_addr, s.frame));
  return a.takeOutputs().app_replies;
}

}  // namespace

TEST_CASE("app streams (core): request, reply, unknown channel, handler error, bounds") {
  Keyring ring({generateClusterKey()});
  Membership a(coreOptions(), identity("a", "10.0.0.1:7946", 1), ring, Rng(1), testIdentities());
  Membership b(coreOptions(), identity("b", "10.0.0.2:7946", 2), ring, Rng(2), testIdentities());
  a.start(0);
  b.start(0);
  (void)a.takeOutputs();
  (void)b.takeOutputs();

  std::string seen_from;
  REQUIRE(b.setAppHandler("echo", [&](const std::string& from, ByteView req) -> Result<Bytes> {
                seen_from = from;
                Bytes r = bytesOf("re:");
                r.insert(r.end(), req.begin(), req.end());
                return r;
              }).isOk());
  REQUIRE(b.setAppHandler("fail", [](const std::string&, ByteView) -> Result<Bytes> {
                return Status::overloaded("busy now");
              }).isOk());
  CHECK_FALSE(b.setAppHandler("", [](const std::string&, ByteView) -> Result<Bytes> { return Bytes{}; }).isOk());
  CHECK_FALSE(b.setAppHandler(std::string(65, 'x'), [](const std::string&, ByteView) -> Result<Bytes> {
                return Bytes{};
              }).isOk());

  SUBCASE("echo") {
    auto id = a.requestApp(0, "10.0.0.2:7946", "echo", bytesOf("hello"));
    REQUIRE(id.isOk());
    auto replies = exchange(a, "10.0.0.1:40000", b);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].id == *id);
    REQUIRE(replies[0].reply.isOk());
    CHECK(textOf(*replies[0].reply) == "re:hello");
    // The handler sees the sender's advertised address, not the TCP source port.
    CHECK(seen_from == "10.0.0.1:7946");
    CHECK(a.counters().app_requests_out == 1);
    CHECK(a.counters().app_replies_ok == 1);
    CHECK(b.counters().app_requests_in == 1);
  }
  SUBCASE("unknown channel: an error reply, counted") {
    REQUIRE(a.requestApp(0, "10.0.0.2:7946", "nope", bytesOf("x")).isOk());
    auto replies = exchange(a, "10.0.0.1:40000", b);
    REQUIRE(replies.size() == 1);
    REQUIRE_FALSE(replies[0].reply.isOk());
    CHECK(replies[0].reply.status().code() == Code::kNotFound);
    CHECK(b.counters().app_unknown_channel == 1);
    CHECK(a.counters().app_failures == 1);
  }
  SUBCASE("handler error keeps its code") {
    REQUIRE(a.requestApp(0, "10.0.0.2:7946", "fail", bytesOf("x")).isOk());
    auto replies = exchange(a, "10.0.0.1:40000", b);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].reply.status().code() == Code::kOverloaded);
    CHECK(replies[0].reply.status().message().find("busy now") != std::string::npos);
    CHECK(b.counters().app_handler_errors == 1);
  }
  SUBCASE("oversized request refused before sending; bad channel refused") {
    auto r = a.requestApp(0, "10.0.0.2:7946", "echo", Bytes(4097, 7));
    CHECK_FALSE(r.isOk());
    CHECK(a.counters().app_oversized == 1);
    CHECK_FALSE(a.requestApp(0, "10.0.0.2:7946", "", Bytes{}).isOk());
    CHECK(a.takeOutputs().streams.empty());
  }
  SUBCASE("oversized reply becomes an error reply") {
    REQUIRE(b.setAppHandler("big", [](const std::string&, ByteView) -> Result<Bytes> {
                  return Bytes(5000, 1);
                }).isOk());
    REQUIRE(a.requestApp(0, "10.0.0.2:7946", "big", Bytes{}).isOk());
    auto replies = exchange(a, "10.0.0.1:40000", b);
    REQUIRE(replies.size() == 1);
    CHECK_FALSE(replies[0].reply.isOk());
    CHECK(b.counters().app_oversized == 1);
  }
  SUBCASE("a failed stream is one error reply") {
    auto id = a.requestApp(0, "10.0.0.2:7946", "echo", Bytes{});
    REQUIRE(id.isOk());
    Outputs out = a.takeOutputs();
    REQUIRE(out.streams.size() == 1);
    a.handleStreamReply(0, out.streams[0].id, Status::deadline("timed out"));
    auto replies = a.takeOutputs().app_replies;
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].reply.status().code() == Code::kDeadlineExceeded);
    a.handleStreamReply(0, out.streams[0].id, Status::deadline("again"));  // unknown id: ignored
    CHECK(a.takeOutputs().app_replies.empty());
  }
  SUBCASE("truncated and garbage frames are refused and counted") {
    REQUIRE(a.requestApp(0, "10.0.0.2:7946", "echo", bytesOf("hello")).isOk());
    Outputs out = a.takeOutputs();
    REQUIRE(out.streams.size() == 1);
    Bytes cut(out.streams[0].frame.begin(), out.streams[0].frame.begin() + 10);
    CHECK_FALSE(b.handleStream(0, "x:1", cut).isOk());
    Bytes flipped = out.streams[0].frame;
    REQUIRE(flipped.size() > 10);
    flipped[flipped.size() - 1] ^= 1;  // not back(): GCC 12 -O3 warns falsely about it
    CHECK_FALSE(b.handleStream(0, "x:1", flipped).isOk());
    CHECK(b.counters().dropDecodeTotal() == 2);
    CHECK(b.counters().app_requests_in == 0);
    // A garbage reply to A is one error for the request.
    a.handleStreamReply(0, out.streams[0].id, Bytes{1, 2, 3});
    auto replies = a.takeOutputs().app_replies;
    REQUIRE(replies.size() == 1);
    CHECK_FALSE(replies[0].reply.isOk());
  }
}

TEST_CASE("app streams (core): a node with another key cannot call a channel") {
  Membership a(coreOptions(), identity("a", "10.0.0.1:7946", 1), Keyring({generateClusterKey()}), Rng(1), testIdentities());
  Membership b(coreOptions(), identity("b", "10.0.0.2:7946", 2), Keyring({generateClusterKey()}), Rng(2), testIdentities());
  a.start(0);
  b.start(0);
  int called = 0;
  REQUIRE(b.setAppHandler("echo", [&](const std::string&, ByteView) -> Result<Bytes> {
                ++called;
                return Bytes{};
              }).isOk());
  REQUIRE(a.requestApp(0, "10.0.0.2:7946", "echo", bytesOf("hi")).isOk());
  auto replies = exchange(a, "10.0.0.1:40000", b);
  REQUIRE(replies.size() == 1);
  CHECK_FALSE(replies[0].reply.isOk());
  CHECK(called == 0);
  CHECK(b.counters().drop_wrong_cluster_or_key == 1);
}

// ------------------------------------------------------------------ over loopback

namespace {

struct AppStreamHarness {
  uv_loop_t loop{};
  SystemClock clock;
  std::unique_ptr<UvTimers> timers;
  std::unique_ptr<UvPoster> poster;
  std::unique_ptr<UvWorkers> workers;
  PosixFileSystem fs;
  Rng rng{777};
  std::unique_ptr<Env> env;
  MemberIdentityPool pool;
  std::vector<std::unique_ptr<net::GossipTransport>> transports;
  meshos::testing::TempDir tmp{"meshos-gossip-app"};

  AppStreamHarness() {
    REQUIRE(initCrypto().isOk());
    uv_loop_init(&loop);
    timers = std::make_unique<UvTimers>(&loop);
    poster = std::make_unique<UvPoster>(&loop);
    workers = std::make_unique<UvWorkers>(&loop);
    env = std::make_unique<Env>(Env{clock, *timers, *poster, rng, *workers, fs});
  }
  net::GossipTransport& transport() {
    transports.push_back(std::make_unique<net::GossipTransport>(&loop, *timers, clock));
    return *transports.back();
  }
  ~AppStreamHarness() {
    for (auto& t : transports) t->close();
    timers->close();
    poster->close();
    uv_run(&loop, UV_RUN_DEFAULT);
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

GossipServiceOptions serviceOptions(const std::string& name, uint8_t seed, const Keyring& ring) {
  PublicKey pk = keyFromSeed(seed);
  GossipServiceOptions o;
  o.name = name;
  o.id = nodeIdFromPublicKey(pk);
  o.public_key.assign(pk.begin(), pk.end());
  o.bind = "127.0.0.1:0";
  o.gossip.cluster_id = "apptest";
  o.gossip.max_app_body_bytes = 64 * 1024;
  o.gossip.app_timeout_ms = 300;
  o.keyring = ring;
  return o;
}

// A raw TCP client: writes bytes to an address, then closes after a while; counts nothing.
struct RawClient {
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  uv_write_t write{};
  Bytes data;
  bool closed = false;
};

void sendRaw(uv_loop_t* loop, const std::string& address, Bytes data) {
  auto* c = new RawClient();
  c->data = std::move(data);
  c->tcp.data = c;
  uv_tcp_init(loop, &c->tcp);
  sockaddr_storage to{};
  REQUIRE(parseSocketAddress(address, to).isOk());
  c->connect.data = c;
  uv_tcp_connect(&c->connect, &c->tcp, reinterpret_cast<sockaddr*>(&to), [](uv_connect_t* req, int status) {
    auto* rc = static_cast<RawClient*>(req->data);
    auto close = [](RawClient* x) {
      uv_close(reinterpret_cast<uv_handle_t*>(&x->tcp), [](uv_handle_t* h) { delete static_cast<RawClient*>(h->data); });
    };
    if (status != 0) return close(rc);
    rc->write.data = rc;
    uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(rc->data.data()), static_cast<unsigned>(rc->data.size()));
    uv_write(&rc->write, reinterpret_cast<uv_stream_t*>(&rc->tcp), &b, 1, [](uv_write_t* w, int) {
      auto* x = static_cast<RawClient*>(w->data);
      uv_close(reinterpret_cast<uv_handle_t*>(&x->tcp), [](uv_handle_t* h) { delete static_cast<RawClient*>(h->data); });
    });
  });
}

// A TCP listener that accepts and never answers (for the timeout).
struct SilentServer {
  uv_tcp_t tcp{};
  std::vector<uv_tcp_t*> accepted;
  std::string address;
  void start(uv_loop_t* loop) {
    tcp.data = this;
    uv_tcp_init(loop, &tcp);
    sockaddr_in a{};
    uv_ip4_addr("127.0.0.1", 0, &a);
    REQUIRE(uv_tcp_bind(&tcp, reinterpret_cast<sockaddr*>(&a), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&tcp), 16, [](uv_stream_t* s, int st) {
              if (st != 0) return;
              auto* self = static_cast<SilentServer*>(s->data);
              auto* c = new uv_tcp_t();
              uv_tcp_init(s->loop, c);
              if (uv_accept(s, reinterpret_cast<uv_stream_t*>(c)) == 0) self->accepted.push_back(c);
            }) == 0);
    sockaddr_storage bound{};
    int len = sizeof(bound);
    uv_tcp_getsockname(&tcp, reinterpret_cast<sockaddr*>(&bound), &len);
    address = formatSocketAddress(reinterpret_cast<sockaddr*>(&bound));
  }
  void close() {
    for (auto* c : accepted)
      uv_close(reinterpret_cast<uv_handle_t*>(c), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    accepted.clear();
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), [](uv_handle_t* h) { delete static_cast<SilentServer*>(h->data); });
  }
};

}  // namespace

TEST_CASE("app streams over loopback: echo, errors, bounds, bad frames") {
  AppStreamHarness h;
  Keyring ring({generateClusterKey()});
  GossipService a(*h.env, h.transport(), h.pool, serviceOptions("a", 11, ring));
  auto ob = serviceOptions("b", 12, ring);
  GossipService b(*h.env, h.transport(), h.pool, ob);
  // Registered before start(): kept and installed at start.
  b.onAppStream("echo", [](const std::string&, ByteView req) -> Result<Bytes> { return Bytes(req.begin(), req.end()); });
  REQUIRE(a.start().isOk());
  REQUIRE(b.start().isOk());
  std::string seen_from;
  b.onAppStream("who", [&](const std::string& from, ByteView) -> Result<Bytes> {
    seen_from = from;
    return bytesOf("b");
  });

  std::optional<Result<Bytes>> r1, r2, r3;
  bool called_inline = true;
  a.requestApp(b.advertiseAddress(), "echo", Bytes(50'000, 9), [&](Result<Bytes> r) { r1 = std::move(r); });
  a.requestApp(b.advertiseAddress(), "missing", bytesOf("x"), [&](Result<Bytes> r) { r2 = std::move(r); });
  a.requestApp(b.advertiseAddress(), "who", Bytes{}, [&](Result<Bytes> r) { r3 = std::move(r); });
  called_inline = r1.has_value() || r2.has_value() || r3.has_value();
  CHECK_FALSE(called_inline);
  REQUIRE(h.runUntil([&] { return r1 && r2 && r3; }, 5000));
  REQUIRE(r1->isOk());
  CHECK((*r1)->size() == 50'000);
  CHECK(r2->status().code() == Code::kNotFound);
  REQUIRE(r3->isOk());
  CHECK(seen_from == a.advertiseAddress());
  CHECK(b.counters().app_unknown_channel == 1);
  CHECK(a.appInFlight() == 0);

  SUBCASE("oversized request: refused later, never inline") {
    std::optional<Result<Bytes>> r;
    a.requestApp(b.advertiseAddress(), "echo", Bytes(64 * 1024 + 1, 1), [&](Result<Bytes> x) { r = std::move(x); });
    CHECK_FALSE(r.has_value());
    REQUIRE(h.runUntil([&] { return r.has_value(); }, 2000));
    CHECK(r->status().code() == Code::kInvalidArgument);
  }
  SUBCASE("max in flight") {
    auto oc = serviceOptions("c", 13, ring);
    oc.gossip.max_app_in_flight = 1;
    GossipService c(*h.env, h.transport(), h.pool, oc);
    REQUIRE(c.start().isOk());
    std::optional<Result<Bytes>> x, y;
    c.requestApp(b.advertiseAddress(), "echo", bytesOf("1"), [&](Result<Bytes> r) { x = std::move(r); });
    c.requestApp(b.advertiseAddress(), "echo", bytesOf("2"), [&](Result<Bytes> r) { y = std::move(r); });
    REQUIRE(h.runUntil([&] { return x && y; }, 3000));
    CHECK(x->isOk());
    CHECK(y->status().code() == Code::kOverloaded);
    CHECK(c.shellCounters().app_rejected == 1);
    c.close();
  }
  SUBCASE("a peer that never answers: deadline") {
    auto* silent = new SilentServer();  // freed by its close callback
    silent->start(&h.loop);
    std::optional<Result<Bytes>> r;
    a.requestApp(silent->address, "echo", bytesOf("x"), [&](Result<Bytes> x) { r = std::move(x); });
    REQUIRE(h.runUntil([&] { return r.has_value(); }, 3000));
    CHECK(r->status().code() == Code::kDeadlineExceeded);
    silent->close();
  }
  SUBCASE("wrong key: the request fails, the handler never runs") {
    auto od = serviceOptions("d", 14, Keyring({generateClusterKey()}));
    GossipService d(*h.env, h.transport(), h.pool, od);
    REQUIRE(d.start().isOk());
    int calls = 0;
    b.onAppStream("count", [&](const std::string&, ByteView) -> Result<Bytes> {
      ++calls;
      return Bytes{};
    });
    std::optional<Result<Bytes>> r;
    d.requestApp(b.advertiseAddress(), "count", bytesOf("x"), [&](Result<Bytes> x) { r = std::move(x); });
    REQUIRE(h.runUntil([&] { return r.has_value(); }, 3000));
    CHECK_FALSE(r->isOk());
    CHECK(calls == 0);
    CHECK(b.counters().drop_wrong_cluster_or_key >= 1);
    d.close();
  }
  SUBCASE("oversized and truncated raw frames are dropped; the service keeps serving") {
    const uint64_t errors_before = b.shellCounters().tcp_errors;
    sendRaw(&h.loop, b.advertiseAddress(), Bytes{0xff, 0xff, 0xff, 0xff, 1, 2, 3});  // 4 GiB frame
    Bytes cut{0, 0, 0, 100};
    cut.resize(14, 5);  // 10 of the 100 bytes announced, then EOF
    sendRaw(&h.loop, b.advertiseAddress(), cut);
    REQUIRE(h.runUntil([&] { return b.shellCounters().tcp_errors >= errors_before + 2; }, 3000));
    std::optional<Result<Bytes>> r;
    a.requestApp(b.advertiseAddress(), "echo", bytesOf("still"), [&](Result<Bytes> x) { r = std::move(x); });
    REQUIRE(h.runUntil([&] { return r.has_value(); }, 3000));
    REQUIRE(r->isOk());
    CHECK(textOf(**r) == "still");
  }
  a.close();
  b.close();
}
