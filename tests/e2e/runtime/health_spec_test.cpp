// Health checks follow the spec and the process they watch: a changed spec brings its own
// checks, a restarted process does not inherit the previous one's status, and exec checks
// run where the daemon runs (its default working directory, its environment).
#include <string.h>

#include "tests/unit/runtime/harness.h"

using namespace meshos;
using namespace meshos::runtime;
using namespace meshos::runtime::testing;

namespace {

// A tiny HTTP server on the test's loop (127.0.0.1, port 0) that answers every request with
// 200 and counts the GETs it saw.
class CountingHttpServer {
 public:
  explicit CountingHttpServer(uv_loop_t* loop) : server_(new uv_tcp_t) {
    uv_tcp_init(loop, server_);
    server_->data = this;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    REQUIRE(uv_tcp_bind(server_, reinterpret_cast<const sockaddr*>(&addr), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(server_), 16, onConnection) == 0);
    sockaddr_storage bound{};
    int len = sizeof(bound);
    uv_tcp_getsockname(server_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  ~CountingHttpServer() {
    server_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(server_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
  int port() const { return port_; }
  int gets() const { return gets_; }

 private:
  struct Conn {
    uv_tcp_t tcp;
    CountingHttpServer* server;
    std::string in;
    bool answered = false;
    uv_write_t write;
  };
  static void onConnection(uv_stream_t* s, int status) {
    auto* self = static_cast<CountingHttpServer*>(s->data);
    if (status != 0 || self == nullptr) return;
    auto* c = new Conn();
    c->server = self;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
      close(c);
      return;
    }
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t*, size_t, uv_buf_t* b) {
          static char buf[4096];
          *b = uv_buf_init(buf, sizeof(buf));
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* b) {
          auto* conn = static_cast<Conn*>(st->data);
          if (n < 0) return close(conn);
          conn->in.append(b->base, static_cast<size_t>(n));
          if (conn->answered || conn->in.find("\r\n\r\n") == std::string::npos) return;
          conn->answered = true;
          if (conn->in.rfind("GET ", 0) == 0) ++conn->server->gets_;
          static const char kReply[] = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
          uv_buf_t out = uv_buf_init(const_cast<char*>(kReply), sizeof(kReply) - 1);
          conn->write.data = conn;
          uv_write(&conn->write, st, &out, 1,
                   [](uv_write_t* w, int) { close(static_cast<Conn*>(w->data)); });
        });
  }
  static void close(Conn* c) {
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
             [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
  }

  uv_tcp_t* server_;
  int port_ = 0;
  int gets_ = 0;
};

spec::HealthCheck execCheck(std::vector<std::string> argv) {
  spec::HealthCheck c;
  c.type = spec::CheckType::kExec;
  c.command = std::move(argv);
  c.interval_ms = 50;
  c.timeout_ms = 1000;
  c.failure_threshold = 1;
  c.success_threshold = 1;
  return c;
}

std::string readinessOf(Harness& h, const std::string& instance) {
  for (const auto& s : h.sup().snapshot()) {
    if (s.instance == instance) return s.readiness;
  }
  return "";
}

}  // namespace

TEST_CASE("a changed spec brings its own health checks (exec readiness → HTTP readiness)") {
  Harness h;
  CountingHttpServer server(h.loop());
  auto s = service("web", {"/bin/sh", "-c", "exec sleep 60"});
  s.health.readiness = execCheck({"/bin/false"});
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.runUntil([&] { return readinessOf(h, "web#0") == "failing"; }, 5000));
  CHECK(h.stateOf("web#0") == InstanceState::kRunning);
  const int first_pid = h.pidOf("web#0");

  spec::HealthCheck http;
  http.type = spec::CheckType::kHttp;
  http.host = "127.0.0.1";
  http.port = server.port();
  http.path = "/ready";
  http.interval_ms = 50;
  http.failure_threshold = 1;
  s.health.readiness = http;
  REQUIRE(h.sup().apply(one(s)));
  // Restarted for the new spec, and the new spec's check is the one that runs.
  REQUIRE(h.waitState("web#0", InstanceState::kReady, 5000));
  CHECK(server.gets() >= 1);
  CHECK(readinessOf(h, "web#0") == "passing");
  CHECK(h.pidOf("web#0") != first_pid);
  bool restarted_for_spec = false;
  for (const auto& t : h.rec.transitions) {
    if (t.instance == "web#0" && t.reason == "spec changed") restarted_for_spec = true;
  }
  CHECK(restarted_for_spec);
}

TEST_CASE("a restarted process starts with fresh probes (it becomes ready again)") {
  Harness h;
  auto s = service("flaky", {"/bin/sh", "-c", "sleep 0.3; exit 1"});
  s.health.readiness = execCheck({"/bin/true"});
  s.backoff.initial_ms = 1;
  s.backoff.max_ms = 5;
  s.crash_loop.max_crashes = 0;
  REQUIRE(h.sup().apply(one(s)));
  // Ready, crash, restart, ready again: each process is judged by its own checks.
  REQUIRE(h.runUntil([&] { return h.rec.count("flaky#0", InstanceState::kReady) >= 2; }, 8000));
  CHECK(h.rec.count("flaky#0", InstanceState::kBackingOff) >= 1);
}

TEST_CASE("exec checks and operator exec run in the daemon's default working dir and env") {
  Harness h;
  // The daemon leaves a marker in its working directory; the check looks for it there, with
  // the daemon's environment.
  auto s = service("w", {"/bin/sh", "-c", "touch marker; exec sleep 60"});
  s.env["GREETING"] = "hello";
  s.health.readiness = execCheck(
      {"/bin/sh", "-c", "test -f marker && test \"$MESHOS_INSTANCE\" = 'w#0' && test \"$GREETING\" = hello"});
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("w#0", InstanceState::kReady, 5000));
  CHECK(readinessOf(h, "w#0") == "passing");

  std::optional<Result<ExecResult>> out;
  REQUIRE(h.sup().exec("w#0", {"/bin/sh", "-c", "pwd; ls"}, 2000,
                       [&](Result<ExecResult> r) { out = std::move(r); }));
  REQUIRE(h.runUntil([&] { return out.has_value(); }, 5000));
  REQUIRE(*out);
  CHECK((*out)->output == h.dir() + "/runtime/work/w\nmarker\n");
}

TEST_CASE("a re-adopted daemon's exec checks run in its working dir and env too") {
  meshos::testing::TempDir tmp("meshos-rt");
  const std::string dir = tmp.path.string();
  {
    Harness h(nullptr, nullptr, dir);
    auto s = service("adoptee", {"/bin/sh", "-c", "touch marker; exec sleep 60"});
    s.health.readiness = execCheck({"/bin/sh", "-c", "test -f marker && test -n \"$MESHOS_DAEMON\""});
    REQUIRE(h.sup().apply(one(s)));
    REQUIRE(h.waitState("adoptee#0", InstanceState::kReady, 5000));
    const int pid = h.pidOf("adoptee#0");
    h.closeKeepRunning();
    h.open();
    REQUIRE(h.sup().recover());
    REQUIRE(h.sup().apply(one(s)));
    CHECK(h.pidOf("adoptee#0") == pid);
    REQUIRE(h.waitState("adoptee#0", InstanceState::kReady, 5000));
  }
}

TEST_CASE("a default workdir deleted while the agent runs is made again on the next start") {
  Harness h;
  auto s = service("wd", {"/bin/sh", "-c", "sleep 0.2; exit 1"});
  s.crash_loop.max_crashes = 0;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("wd#0", InstanceState::kReady));
  std::filesystem::remove_all(h.dir() + "/runtime/work/wd");
  // The next start may fail once (no such directory); the one after it runs again.
  const int before = h.rec.count("wd#0", InstanceState::kReady);
  REQUIRE(h.runUntil([&] { return h.rec.count("wd#0", InstanceState::kReady) >= before + 1; }, 5000));
  CHECK(std::filesystem::is_directory(h.dir() + "/runtime/work/wd"));
}
