// Health checks against real sockets and processes: an in-test TCP/HTTP server on port 0
// (libuv), exec commands, timeouts, thresholds, and the probe's schedule on ManualTimers.
#include "probes/health_check.h"
#include "probes/health_probe.h"

#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <string>

#include "agent/core/clock.h"
#include "agent/net/uv_loop.h"

using namespace meshos;
using namespace meshos::probes;

namespace {

// A tiny HTTP server: answers every connection with `reply` (or keeps it silent).
struct Server {
  uv_tcp_t listener;
  std::string reply;
  bool silent = false;
  int port = 0;
  int connections = 0;

  explicit Server(uv_loop_t* loop, std::string r) : reply(std::move(r)) {
    uv_tcp_init(loop, &listener);
    listener.data = this;
    sockaddr_in a{};
    uv_ip4_addr("127.0.0.1", 0, &a);
    REQUIRE(uv_tcp_bind(&listener, reinterpret_cast<sockaddr*>(&a), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 16, [](uv_stream_t* s, int) {
      auto* self = static_cast<Server*>(s->data);
      auto* c = new uv_tcp_t;
      uv_tcp_init(s->loop, c);
      c->data = self;
      uv_accept(s, reinterpret_cast<uv_stream_t*>(c));
      ++self->connections;
      if (self->silent) {
        uv_read_start(reinterpret_cast<uv_stream_t*>(c),
                      [](uv_handle_t*, size_t, uv_buf_t* b) {
                        static char buf[256];
                        *b = uv_buf_init(buf, sizeof(buf));
                      },
                      [](uv_stream_t* st, ssize_t n, const uv_buf_t*) {
                        if (n < 0) uv_close(reinterpret_cast<uv_handle_t*>(st), [](uv_handle_t* h) {
                          delete reinterpret_cast<uv_tcp_t*>(h);
                        });
                      });
        return;
      }
      auto* w = new uv_write_t;
      uv_buf_t b = uv_buf_init(self->reply.data(), static_cast<unsigned>(self->reply.size()));
      uv_write(w, reinterpret_cast<uv_stream_t*>(c), &b, 1, [](uv_write_t* req, int) {
        uv_close(reinterpret_cast<uv_handle_t*>(req->handle),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
        delete req;
      });
    }) == 0);
    sockaddr_storage ss{};
    int len = sizeof(ss);
    uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&ss), &len);
    port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  void close() { uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr); }
};

struct Loop {
  uv_loop_t loop;
  uv_timer_t tick;
  Loop() {
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, [](uv_timer_t*) {}, 5, 5);
  }
  ~Loop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  bool runUntil(const std::function<bool()>& pred, int64_t timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    bool ok = true;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ok = false;
        break;
      }
      uv_run(&loop, UV_RUN_ONCE);
    }
    return ok;
  }
};

struct Outcome {
  bool done = false;
  bool ok = false;
  std::string detail;
};

Outcome runCheck(Loop& l, const spec::HealthCheck& c) {
  Outcome o;
  checkOnce(&l.loop, c, {}, [&](bool ok, const std::string& d) {
    o.done = true;
    o.ok = ok;
    o.detail = d;
  });
  CHECK(!o.done);  // never inside the call
  REQUIRE(l.runUntil([&] { return o.done; }, 5000));
  return o;
}

spec::HealthCheck netCheck(spec::CheckType t, int port) {
  spec::HealthCheck c;
  c.type = t;
  c.port = port;
  c.path = "/healthz";
  c.timeout_ms = 300;
  return c;
}

}  // namespace

TEST_CASE("http check: 2xx/3xx pass, 5xx and garbage fail, silence times out") {
  Loop l;
  Server ok(&l.loop, "HTTP/1.1 204 No Content\r\n\r\n");
  Server redirect(&l.loop, "HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n");
  Server broken(&l.loop, "HTTP/1.1 503 Service Unavailable\r\n\r\n");
  Server garbage(&l.loop, "hello there\r\n");
  Server silent(&l.loop, "");
  silent.silent = true;
  auto o = runCheck(l, netCheck(spec::CheckType::kHttp, ok.port));
  CHECK(o.ok);
  CHECK(o.detail == "HTTP 204");
  CHECK(runCheck(l, netCheck(spec::CheckType::kHttp, redirect.port)).ok);
  o = runCheck(l, netCheck(spec::CheckType::kHttp, broken.port));
  CHECK(!o.ok);
  CHECK(o.detail == "HTTP 503");
  CHECK(!runCheck(l, netCheck(spec::CheckType::kHttp, garbage.port)).ok);
  o = runCheck(l, netCheck(spec::CheckType::kHttp, silent.port));
  CHECK(!o.ok);
  CHECK(o.detail == "timed out");
  // TCP: connects to the silent server; refused on a closed port.
  CHECK(runCheck(l, netCheck(spec::CheckType::kTcp, silent.port)).ok);
  const int closed_port = ok.port;
  ok.close();
  l.runUntil([] { return false; }, 20);
  o = runCheck(l, netCheck(spec::CheckType::kTcp, closed_port));
  CHECK(!o.ok);
  CHECK(o.detail.find("connect") != std::string::npos);
  auto bad = netCheck(spec::CheckType::kTcp, 80);
  bad.host = "not-an-ip";
  CHECK(!runCheck(l, bad).ok);
  redirect.close();
  broken.close();
  garbage.close();
  silent.close();
}

TEST_CASE("exec check: exit 0 passes, non-zero fails, timeout kills, missing binary fails") {
  Loop l;
  spec::HealthCheck c;
  c.type = spec::CheckType::kExec;
  c.timeout_ms = 2000;
  c.command = {"/bin/true"};
  CHECK(runCheck(l, c).ok);
  c.command = {"/bin/sh", "-c", "exit 2"};
  auto o = runCheck(l, c);
  CHECK(!o.ok);
  CHECK(o.detail == "exit 2");
  c.command = {"sleep", "5"};
  c.timeout_ms = 100;
  auto t0 = std::chrono::steady_clock::now();
  o = runCheck(l, c);
  CHECK(!o.ok);
  CHECK(o.detail == "timed out");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  c.command = {"/no/such/check"};
  CHECK(!runCheck(l, c).ok);
}

TEST_CASE("runCommand: output captured and bounded, environment passed") {
  Loop l;
  std::optional<CommandResult> r;
  CommandContext ctx;
  ctx.env = {"PATH=/usr/bin:/bin", "WHO=meshos"};
  ctx.cwd = "/tmp";
  REQUIRE(runCommand(&l.loop, {"/bin/sh", "-c", "echo $WHO; pwd; echo err >&2; head -c 5000 /dev/zero"},
                     ctx, 5000, 100, [&](const CommandResult& x) { r = x; }));
  REQUIRE(l.runUntil([&] { return r.has_value(); }, 5000));
  CHECK(r->exit_code == 0);
  CHECK(r->output.rfind("meshos\n/tmp\nerr\n", 0) == 0);
  CHECK(r->output.size() == 100);
  CHECK(r->truncated);
}

TEST_CASE("HealthTracker thresholds") {
  HealthTracker t(3, 2);
  CHECK(t.status() == HealthStatus::kUnknown);
  CHECK(!t.record(true));
  CHECK(t.record(true));
  CHECK(t.status() == HealthStatus::kPassing);
  CHECK(!t.record(false));
  CHECK(!t.record(false));
  CHECK(t.record(false));
  CHECK(t.status() == HealthStatus::kFailing);
  CHECK(!t.record(true));
  CHECK(t.record(true));
  CHECK(t.status() == HealthStatus::kPassing);
}

TEST_CASE("HealthProbe: initial delay and interval on manual timers") {
  Loop l;
  ManualClock clock;
  ManualTimers timers(clock);
  spec::HealthCheck c;
  c.type = spec::CheckType::kExec;
  c.command = {"/bin/true"};
  c.initial_delay_ms = 1000;
  c.interval_ms = 500;
  c.failure_threshold = 1;
  c.success_threshold = 2;
  std::vector<HealthStatus> changes;
  HealthProbe p(
      timers, c,
      [&](std::function<void(bool, std::string)> done) {
        checkOnce(&l.loop, c, {}, [done](bool ok, const std::string& detail) { done(ok, detail); });
      },
      [&](HealthStatus s, const std::string&) { changes.push_back(s); });
  p.start();
  timers.advanceMs(999);
  CHECK(p.attempts() == 0);
  timers.advanceMs(1);
  CHECK(p.attempts() == 1);
  REQUIRE(l.runUntil([&] { return timers.pending() == 1; }, 5000));  // result in, next scheduled
  CHECK(changes.empty());  // one success of two
  timers.advanceMs(500);
  CHECK(p.attempts() == 2);
  REQUIRE(l.runUntil([&] { return changes.size() == 1; }, 5000));
  CHECK(changes[0] == HealthStatus::kPassing);
  p.stop();
  CHECK(timers.pending() == 0);
}
