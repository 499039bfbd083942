// The OCI runtime's faults and edges, with the real runc on a busybox root filesystem
// (skipped, saying why, without root, runc or busybox): what cannot run is named at create
// or as the start's exit, never left half made; an exit code is known; a container that
// ignores its stop signal is killed at the end of its grace; a stale container of the same
// name (an agent that died before recording it) does not block a start; a container that
// ended while the agent was down is not adopted, and its state is deleted; logs rotate;
// secret files reach the container alone.
#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "tests/unit/runtime/runtime_fixtures.h"

using namespace meshos;
using namespace meshos::runtime;
using namespace meshos::runtime::testing;

namespace {

struct Oci {
  OciFixture f;
  std::map<std::string, ExitInfo> exits;
  Oci() {
    if (f.skipReason().empty()) {
      f.runtime().setExitCallback([this](const std::string& i, const ExitInfo& e) { exits[i] = e; });
    }
  }
  bool exited(const std::string& instance, int64_t ms = 15'000) {
    return f.runUntil([&] { return exits.count(instance) != 0; }, ms);
  }
  int pidOf(const std::string& instance) {
    auto st = f.runtime().status(instance);
    return st ? st->pid : 0;
  }
  std::string stateDir() const { return f.dataDir() + "/runtime/oci/state"; }
};

#define OCI_OR_SKIP(o)                                      \
  if (const std::string why = (o).f.skipReason(); !why.empty()) { \
    MESSAGE("skipped: " << why);                            \
    return;                                                 \
  }

}  // namespace

TEST_CASE("oci runtime: what cannot run is named at create, nothing made") {
  Oci o;
  OCI_OR_SKIP(o);
  Runtime& rt = o.f.runtime();
  auto s = o.f.service("bad");
  auto refused = [&](spec::DaemonSpec spec, const std::string& what) {
    Status st = rt.create("bad#0", spec);
    INFO(st.toString());
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find(what) != std::string::npos);
    CHECK(rt.status("bad#0").status().code() == Code::kNotFound);
  };
  auto missing_root = s;
  missing_root.container.rootfs = "/nonexistent/rootfs";
  refused(missing_root, "container.rootfs: '/nonexistent/rootfs' is not a directory");
  auto no_program = s;
  no_program.command = {"/bin/nosuch"};
  refused(no_program, "command: '/bin/nosuch' is not in the container's root filesystem");
  auto no_user = s;
  no_user.user = "www-data";
  refused(no_user, "no user 'www-data' in");
  auto process = s;
  process.runtime = spec::RuntimeKind::kProcess;
  process.container = {};
  refused(process, "not a container");
  auto no_layout = s;
  no_layout.container.rootfs.clear();
  no_layout.container.image = "/nonexistent/layout:v1";
  refused(no_layout, "no OCI layout at /nonexistent/layout");
  CHECK(rt.instances().empty());
}

TEST_CASE("oci runtime: a start the OCI runtime refuses is an exit naming its error; an exit code is known") {
  Oci o;
  OCI_OR_SKIP(o);
  Runtime& rt = o.f.runtime();
  auto s = o.f.service("nowhere");
  // A program that is there (a link) but cannot be run: runc itself fails the start.
  std::filesystem::create_symlink("/no/such/program", s.container.rootfs + "/bin/ghost");
  s.command = {"/bin/ghost"};
  REQUIRE(rt.create("nowhere#0", s));
  REQUIRE(rt.start("nowhere#0"));
  REQUIRE(o.exited("nowhere#0"));
  const ExitInfo& e = o.exits["nowhere#0"];
  INFO(e.detail);
  CHECK(e.exit_code == 126);
  CHECK(e.detail.find("container not started: ") == 0);
  CHECK(e.detail.find("ghost") != std::string::npos);
  CHECK(rt.status("nowhere#0")->state == ProcessState::kExited);

  auto job = o.f.service("job");
  job.kind = spec::DaemonKind::kJob;
  job.restart = spec::RestartPolicy::kNever;
  job.command = {"/bin/sh", "-c", "echo working; exit 3"};
  REQUIRE(rt.create("job#0", job));
  REQUIRE(rt.start("job#0"));
  REQUIRE(o.exited("job#0"));
  CHECK(o.exits["job#0"].code_known);
  CHECK(o.exits["job#0"].exit_code == 3);
  CHECK(!o.exits["job#0"].stopped_by_us);
  CHECK(rt.logs("job#0", LogQuery{})->data == "working\n");
}

TEST_CASE("oci runtime: pid 1 without a TERM handler is killed at the end of its grace") {
  Oci o;
  OCI_OR_SKIP(o);
  Runtime& rt = o.f.runtime();
  auto s = o.f.service("deaf");
  s.command = {"/bin/sleep", "3600"};  // pid 1 of its namespace: SIGTERM is ignored
  REQUIRE(rt.create("deaf#0", s));
  REQUIRE(rt.start("deaf#0"));
  REQUIRE(o.f.runUntil([&] { return o.pidOf("deaf#0") > 0; }, 10'000));
  SystemClock clock;
  const int64_t t0 = clock.monotonicMs();
  REQUIRE(rt.stop("deaf#0", 400));
  REQUIRE(o.exited("deaf#0"));
  const int64_t took = clock.monotonicMs() - t0;
  CHECK(took >= 350);
  CHECK(o.exits["deaf#0"].term_signal == SIGKILL);
  CHECK(o.exits["deaf#0"].stopped_by_us);
}

TEST_CASE("oci runtime: a stale container of the same name does not block a start") {
  Oci o;
  OCI_OR_SKIP(o);
  Runtime& rt = o.f.runtime();
  auto s = o.f.service("stale");
  REQUIRE(rt.create("stale#0", s));
  REQUIRE(rt.start("stale#0"));
  REQUIRE(o.f.runUntil([&] { return o.pidOf("stale#0") > 0; }, 10'000));
  const int first = o.pidOf("stale#0");
  // The agent dies before it could record the container: its record is gone, the
  // container runs on under runc's state.
  REQUIRE(o.f.store().erase("stale#0"));
  o.f.restartAgent();
  o.f.runtime().setExitCallback([&](const std::string& i, const ExitInfo& e) { o.exits[i] = e; });
  REQUIRE(o.f.runtime().create("stale#0", s));
  REQUIRE(o.f.runtime().start("stale#0"));
  REQUIRE(o.f.runUntil([&] { return o.pidOf("stale#0") > 0; }, 15'000));
  CHECK(o.pidOf("stale#0") != first);
  CHECK(!pidAliveForTest(first));
}

TEST_CASE("oci runtime: a container that ended while the agent was down is not adopted; its state goes") {
  Oci o;
  OCI_OR_SKIP(o);
  auto s = o.f.service("gone");
  REQUIRE(o.f.runtime().create("gone#0", s));
  REQUIRE(o.f.runtime().start("gone#0"));
  REQUIRE(o.f.runUntil([&] { return o.pidOf("gone#0") > 0; }, 10'000));
  const int pid = o.pidOf("gone#0");
  o.f.restartAgent();
  ::kill(pid, SIGKILL);
  REQUIRE(o.f.runUntil([&] { return !pidAliveForTest(pid); }, 5'000));
  std::vector<std::string> skipped;
  auto records = o.f.store().loadAll(&skipped);
  REQUIRE(records);
  REQUIRE(records->size() == 1);
  Status adopted = o.f.runtime().adopt(records->front(), s);
  CHECK(adopted.code() == Code::kNotFound);
  CHECK(o.f.runUntil([&] { return !std::filesystem::exists(o.stateDir() + "/gone+0"); }, 10'000));
  CHECK(o.f.store().loadAll(&skipped)->empty());
}

TEST_CASE("oci runtime: a container's log rotates like a process's") {
  Oci o;
  OCI_OR_SKIP(o);
  auto s = o.f.service("chatty");
  s.logs.max_bytes = 4'096;
  s.logs.keep_files = 2;
  s.command = {"/bin/sh", "-c", "i=0; while [ $i -lt 800 ]; do echo line $i; i=$((i+1)); done; exec sleep 3600"};
  REQUIRE(o.f.runtime().create("chatty#0", s));
  REQUIRE(o.f.runtime().start("chatty#0"));
  REQUIRE(o.f.runUntil([&] { return o.f.runtime().logs("chatty#0", LogQuery{})->data.find("line 799") != std::string::npos; }, 10'000));
  auto* oci = dynamic_cast<OciRuntime*>(&o.f.runtime());
  REQUIRE(oci != nullptr);
  oci->rotateLogsNow();
  const std::string log = o.f.dataDir() + "/runtime/logs/chatty#0.log";
  CHECK(std::filesystem::exists(log + ".1"));
  CHECK(std::filesystem::file_size(log) == 0);
  LogQuery tail;
  tail.tail_lines = 1;
  CHECK(o.f.runtime().logs("chatty#0", tail)->data == "line 799\n");
}

TEST_CASE("oci runtime: secret_files are mounted read-only at /run/secrets, written nowhere else, gone at the end") {
  Oci o;
  OCI_OR_SKIP(o);
  auto* oci = dynamic_cast<OciRuntime*>(&o.f.runtime());
  REQUIRE(oci != nullptr);
  const std::string value = "correct horse battery staple";
  oci->setSecretOpener([&](const std::string& name) -> Result<SecretValue> {
    if (name != "db") return Status::notFound("no secret " + name);
    return SecretValue(Bytes(value.begin(), value.end()));
  });
  auto s = o.f.service("reader");
  s.user = "nobody";
  s.secrets.files = {"db"};
  REQUIRE(o.f.runtime().create("reader#0", s));
  REQUIRE(o.f.runtime().start("reader#0"));
  REQUIRE(o.f.runUntil([&] { return o.pidOf("reader#0") > 0; }, 10'000));
  std::optional<ExecResult> out;
  REQUIRE(o.f.runtime().exec("reader#0", {"/bin/sh", "-c", "id -u; cat $MESHOS_SECRETS_DIR/db; echo; echo x 2>/dev/null > /run/secrets/db || echo read-only"},
                             20'000, 4096, [&](Result<ExecResult> r) { out = *r; }));
  REQUIRE(o.f.runUntil([&] { return out.has_value(); }, 25'000));
  INFO("exec said: " << out->output);
  CHECK(out->output.find("65534\n" + value + "\n") == 0);
  CHECK(out->output.find("read-only") != std::string::npos);
  // Not in the bundle, runc's state or the instance records.
  for (const auto& dir : {o.f.dataDir() + "/runtime/oci", o.f.dataDir() + "/runtime/instances"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path());
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      CHECK_MESSAGE(text.find(value) == std::string::npos, e.path());
    }
  }
  REQUIRE(o.f.runtime().stop("reader#0"));
  REQUIRE(o.exited("reader#0"));
  CHECK(!std::filesystem::exists(o.f.secretsDir() + "/reader#0"));
}
