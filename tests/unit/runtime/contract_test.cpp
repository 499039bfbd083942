// One suite for every runtime::Runtime: the process runtime, the OCI container runtime
// (runc, on a busybox root filesystem; skipped, saying why, without root, runc or
// busybox) and the simulated one. What the Supervisor relies on holds for each: a start
// runs it and gives a pid; a second start or create is refused; an exec check passes and
// fails by the command's exit; a stop ends it within its grace and reports the exit as
// ours; a kill from outside is reported with its signal; a running instance cannot be
// removed, an exited one can; and a new agent re-adopts a running instance from its
// record, with the same pid, and still sees it end.
#include <doctest/doctest.h>
#include <signal.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "tests/unit/runtime/runtime_fixtures.h"

using namespace meshos;
using namespace meshos::runtime;

namespace {

using namespace meshos::runtime::testing;

template <typename F>
struct Watched {
  F& f;
  std::map<std::string, std::vector<ExitInfo>> exits;
  explicit Watched(F& fixture) : f(fixture) {
    f.runtime().setExitCallback([this](const std::string& i, const ExitInfo& e) { exits[i].push_back(e); });
  }
  int pidOf(const std::string& instance) {
    auto st = f.runtime().status(instance);
    return st ? st->pid : 0;
  }
  bool running(const std::string& instance, int64_t ms = 10'000) {
    const bool ok = f.runUntil([&] { return pidOf(instance) > 0 || !exits[instance].empty(); }, ms) && pidOf(instance) > 0;
    if (!ok && !exits[instance].empty()) MESSAGE(instance << " ended before it ran: " << exits[instance].front().detail);
    return ok;
  }
  std::optional<bool> checkOnce(const std::string& instance, std::vector<std::string> argv) {
    spec::HealthCheck c;
    c.type = spec::CheckType::kExec;
    c.command = std::move(argv);
    c.timeout_ms = 5'000;
    std::optional<bool> result;
    f.runtime().check(instance, c, [&](bool ok, const std::string&) { result = ok; });
    f.runUntil([&] { return result.has_value(); }, 10'000);
    return result;
  }
};

}  // namespace

#define SKIP_UNLESS_SUPPORTED(f)                           \
  if (const std::string why = (f).skipReason(); !why.empty()) { \
    MESSAGE("skipped: " << why);                           \
    return;                                                \
  }

TEST_CASE_TEMPLATE("runtime contract: start, checks, stop, kill, remove", F, ProcessFixture, OciFixture, SimFixture) {
  F f;
  SKIP_UNLESS_SUPPORTED(f);
  Watched<F> w(f);
  Runtime& rt = f.runtime();
  const spec::DaemonSpec s = f.service("svc");
  REQUIRE(rt.create("svc#0", s));
  CHECK(rt.create("svc#0", s).code() == Code::kAlreadyExists);
  REQUIRE(rt.start("svc#0"));
  CHECK(rt.start("svc#0").code() == Code::kAlreadyExists);
  REQUIRE(w.running("svc#0"));
  CHECK(rt.status("svc#0")->state == ProcessState::kRunning);
  CHECK(!rt.status("svc#0")->adopted);

  // An exec check: its exit decides (the simulated one passes once the process is ready).
  CHECK(f.runUntil([&] { return w.checkOnce("svc#0", {"/bin/true"}) == true; }, 5'000));
  if constexpr (!std::is_same_v<F, SimFixture>) CHECK(w.checkOnce("svc#0", {"/bin/false"}) == false);

  CHECK(!rt.remove("svc#0"));  // running
  REQUIRE(rt.stop("svc#0"));
  REQUIRE(f.runUntil([&] { return !w.exits["svc#0"].empty(); }, 10'000));
  CHECK(w.exits["svc#0"].front().stopped_by_us);
  CHECK(rt.status("svc#0")->state == ProcessState::kExited);
  CHECK(rt.remove("svc#0"));
  CHECK(rt.status("svc#0").status().code() == Code::kNotFound);

  // Killed from outside the runtime's stop: reported, with the signal.
  REQUIRE(rt.create("svc#1", s));
  REQUIRE(rt.start("svc#1"));
  REQUIRE(w.running("svc#1"));
  REQUIRE(rt.signal("svc#1", SIGKILL));
  REQUIRE(f.runUntil([&] { return !w.exits["svc#1"].empty(); }, 10'000));
  CHECK(w.exits["svc#1"].front().term_signal == SIGKILL);
}

TEST_CASE_TEMPLATE("runtime contract: a new agent re-adopts a running instance with its pid", F, ProcessFixture, OciFixture, SimFixture) {
  F f;
  SKIP_UNLESS_SUPPORTED(f);
  const spec::DaemonSpec s = f.service("keep");
  int pid = 0;
  {
    Watched<F> w(f);
    REQUIRE(f.runtime().create("keep#0", s));
    REQUIRE(f.runtime().start("keep#0"));
    REQUIRE(w.running("keep#0"));
    pid = w.pidOf("keep#0");
  }
  f.restartAgent();
  Watched<F> w(f);
  std::vector<InstanceRecord> records;
  {
    std::vector<std::string> skipped;
    auto loaded = f.store().loadAll(&skipped);
    REQUIRE(loaded);
    records = *loaded;
  }
  REQUIRE(records.size() == 1);
  CHECK(records.front().pid == pid);
  REQUIRE(f.runtime().adopt(records.front(), s));
  CHECK(w.pidOf("keep#0") == pid);
  CHECK(f.runtime().status("keep#0")->adopted);
  REQUIRE(f.runtime().stop("keep#0"));
  REQUIRE(f.runUntil([&] { return !w.exits["keep#0"].empty(); }, 10'000));
  CHECK(w.exits["keep#0"].front().stopped_by_us);
}
