// Log capture: stdout and stderr into the instance's file, tail N lines, follow by offset,
// rotation by size keeping N files.
#include "tests/unit/runtime/harness.h"

using namespace meshos;
using namespace meshos::runtime;
using namespace meshos::runtime::testing;

TEST_CASE("logs: tail, follow by offset, rotation keeps N files") {
  Harness h;
  auto s = service("talker", {"/bin/sh", "-c",
                              "i=0; while [ $i -lt 5 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; "
                              "exec sleep 30"});
  s.logs.max_bytes = 4096;
  s.logs.keep_files = 2;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.runUntil([&] {
    auto l = h.sup().logs("talker#0", LogQuery{.tail_lines = 100});
    return l && l->data.find("err4") != std::string::npos;
  }, 5000));
  auto tail = h.sup().logs("talker#0", LogQuery{.tail_lines = 2});
  REQUIRE(tail);
  CHECK(tail->data == "out4\nerr4\n");
  auto all = h.sup().logs("talker#0", LogQuery{.offset = 0});
  REQUIRE(all);
  CHECK(all->data.rfind("out0\nerr0\n", 0) == 0);
  auto more = h.sup().logs("talker#0", LogQuery{.offset = all->next_offset});
  REQUIRE(more);
  CHECK(more->data.empty());

  // Rotation: a daemon writing past max_bytes.
  auto big = service("big", {"/bin/sh", "-c",
                             "i=0; while [ $i -lt 400 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; "
                             "i=$((i+1)); done; exec sleep 30"});
  big.logs.max_bytes = 4096;
  big.logs.keep_files = 2;
  REQUIRE(h.sup().apply({s, big}));
  const std::string path = h.dir() + "/runtime/logs/big#0.log";
  REQUIRE(h.runUntil([&] {
    h.runtime().rotateLogsNow();
    return std::filesystem::exists(path + ".1");
  }, 5000));
  // The writer may still be going: wait for its last line, rotating as we go.
  CHECK(h.runUntil([&] {
    h.runtime().rotateLogsNow();
    auto t = h.sup().logs("big#0", LogQuery{.tail_lines = 1});
    return t && t->data == "line-399-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
  }, 5000));
  h.runtime().rotateLogsNow();
  CHECK(std::filesystem::file_size(path) <= 4096);
  CHECK(std::filesystem::exists(path + ".1"));
  CHECK(!std::filesystem::exists(path + ".3"));
}

TEST_CASE("bad specs: clear errors and nothing started") {
  Harness h;
  auto ok = service("fine", {"sleep", "30"});
  auto missing = service("missing", {"/no/such/binary"});
  Status st = h.sup().apply({ok, missing});
  CHECK(!st);
  CHECK(st.message().find("/no/such/binary") != std::string::npos);
  auto notfound = service("nf", {"no-such-program-xyz"});
  st = h.sup().apply({ok, notfound});
  CHECK(st.message().find("not found in PATH") != std::string::npos);
  auto empty = service("empty", {});
  st = h.sup().apply({ok, empty});
  CHECK(st.message().find("argv is empty") != std::string::npos);
  auto cron = service("c", {"true"});
  cron.kind = spec::DaemonKind::kCron;
  cron.schedule = "* * * 13 *";
  st = h.sup().apply({ok, cron});
  CHECK(st.message().find("month") != std::string::npos);
  auto a = service("a", {"true"});
  auto b = service("b", {"true"});
  a.depends_on.push_back({"b"});
  b.depends_on.push_back({"a"});
  st = h.sup().apply({ok, a, b});
  CHECK(st.message().find("dependency cycle: a -> b -> a") != std::string::npos);
  auto neg = service("neg", {"true"});
  neg.limits.open_files = -1;
  st = h.sup().apply({ok, neg});
  CHECK(st.message().find("limits.open_files") != std::string::npos);
  CHECK(h.sup().snapshot().empty());
  CHECK(h.rec.transitions.empty());
  CHECK(h.runtime().instances().empty());
}

TEST_CASE("cgroup_parent: a bad one is a clear error from init, nothing created") {
  CHECK(validateCgroupParent("meshos"));
  CHECK(validateCgroupParent("meshos/agent-2.b_c"));
  for (const char* bad : {"", "/meshos", "a//b", "a/", "..", "a/../b", "./a", "a b", "a$b"}) {
    Status s = validateCgroupParent(bad);
    CHECK_MESSAGE(!s, bad);
    CHECK(s.message().find("cgroup_parent") != std::string::npos);
  }
  meshos::testing::TempDir tmp("meshos-rt");
  const std::string dir = tmp.path.string();
  auto store = FileInstanceStore::open(posixFs(), dir + "/runtime/instances");
  REQUIRE(store);
  uv_loop_t loop;
  uv_loop_init(&loop);
  SystemClock clock;
  {
    RuntimeOptions o;
    o.data_dir = dir;
    o.cgroup_root = "/sys/fs/cgroup";
    o.cgroup_parent = "../escape";
    o.subreaper = false;
    ProcessRuntime rt(&loop, clock, **store, o);
    Status s = rt.init();
    CHECK(!s);
    CHECK(s.message().find("must not contain '.' or '..'") != std::string::npos);
    CHECK(!rt.cgroupsEnabled());
    rt.close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
