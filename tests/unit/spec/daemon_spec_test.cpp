#include "agent/spec/daemon_spec.h"
#include "tests/unit/spec/spec_test_util.h"

#include <capnp/message.h>

#include <algorithm>
#include <doctest/doctest.h>

using namespace meshos::spec;
using meshos::spec::testing::contains;
using meshos::spec::testing::errorOf;

namespace {

const char* kFull = R"(
[[daemon]]
name = "db"
command = ["/usr/bin/db", "--port", "5432"]
env = { MODE = "primary" }
workdir = "/srv/db"
restart = "always"
stop_signal = "SIGINT"
stop_grace_ms = 2000
[daemon.resources]
cpu_millicores = 500
memory_bytes = 268435456
[daemon.placement]
strategy = "near"
near = "zone=a"
capabilities = ["ssd", "gpu"]
max_per_node = 1
constraints = [ { label = "zone", in = ["a", "b"] }, { label = "tier", not_in = ["test"] },
                { label = "os", equals = "linux" } ]
[daemon.backoff]
initial_ms = 50
factor = 1.5
max_ms = 5000
jitter = 0.1
[daemon.crash_loop]
max_crashes = 3
window_ms = 10000
cooldown_ms = 60000
[daemon.health.readiness]
type = "tcp"
port = 5432
interval_ms = 500
[daemon.health.liveness]
type = "http"
port = 8080
path = "/healthz"
failure_threshold = 2
[daemon.limits]
open_files = 4096
core_size = 0
memory_max = 536870912
cpu_max_millicores = 1000
pids_max = 128
limits = "best-effort"
[daemon.logs]
max_bytes = 1048576
keep_files = 5

[[daemon]]
name = "web"
command = ["/usr/bin/web"]
success_exit_codes = [0, 3]
depends_on = ["db", { name = "cache", condition = "ready", timeout_ms = 5000, on_timeout = "warn" }]

[[daemon]]
name = "cache"
command = ["/usr/bin/cache"]

[[daemon]]
name = "report"
kind = "cron"
schedule = "*/5 * * * *"
command = ["/usr/bin/report"]
job_retries = 2
missed_runs = "run-once"

[[daemon]]
name = "migrate"
kind = "job"
command = ["/usr/bin/migrate"]
job_retries = 1
)";


}  // namespace

TEST_CASE("spec: a full file parses into specs") {
  auto r = parseDaemonsToml(kFull, "local.toml");
  REQUIRE_MESSAGE(r, r.status().toString());
  REQUIRE(r->size() == 5);
  const DaemonSpec& db = (*r)[0];
  CHECK(db.name == "db");
  CHECK(db.command == std::vector<std::string>{"/usr/bin/db", "--port", "5432"});
  CHECK(db.env.at("MODE") == "primary");
  CHECK(db.restart == RestartPolicy::kAlways);
  CHECK(db.stop_signal == "SIGINT");
  CHECK(db.resources.memory_bytes == 268435456);
  CHECK(db.placement.strategy == PlacementStrategy::kNear);
  REQUIRE(db.placement.constraints.size() == 3);
  CHECK(db.placement.constraints[1].op == ConstraintOp::kNotIn);
  CHECK(db.backoff.factor == doctest::Approx(1.5));
  REQUIRE(db.health.readiness);
  CHECK(db.health.readiness->type == CheckType::kTcp);
  CHECK(db.health.readiness->interval_ms == 500);
  REQUIRE(db.health.liveness);
  CHECK(db.health.liveness->path == "/healthz");
  CHECK(!db.health.startup);
  CHECK(db.limits.pids_max == 128);
  CHECK(db.limits.core_size == 0);
  CHECK(db.logs.keep_files == 5);
  const DaemonSpec& web = (*r)[1];
  REQUIRE(web.depends_on.size() == 2);
  CHECK(web.depends_on[1].condition == DependencyCondition::kReady);
  CHECK(web.depends_on[1].on_timeout == OnTimeout::kWarn);
  CHECK(web.limits.open_files == std::nullopt);
  CHECK(db.limits.mode == LimitsMode::kBestEffort);
  CHECK(web.limits.mode == LimitsMode::kEnforce);  // the default
  CHECK((*r)[3].kind == DaemonKind::kCron);
  CHECK((*r)[3].missed_runs == MissedRunPolicy::kRunOnce);
  CHECK((*r)[4].kind == DaemonKind::kJob);

  auto order = startOrder(*r);
  REQUIRE(order);
  auto pos = [&](const std::string& n) {
    return std::find(order->begin(), order->end(), n) - order->begin();
  };
  CHECK(pos("db") < pos("web"));
  CHECK(pos("cache") < pos("web"));
}

TEST_CASE("spec: Cap'n Proto round trip and canonical bytes") {
  auto r = parseDaemonsToml(kFull, "local.toml");
  REQUIRE(r);
  for (const DaemonSpec& s : *r) {
    capnp::MallocMessageBuilder msg;
    toCapnp(msg.initRoot<meshos::proto::DaemonSpec>(), s);
    auto back = fromCapnp(msg.getRoot<meshos::proto::DaemonSpec>().asReader());
    REQUIRE_MESSAGE(back, back.status().toString());
    CHECK(*back == s);
    auto bytes = canonicalBytes(s);
    auto again = fromBytes(bytes);
    REQUIRE_MESSAGE(again, again.status().toString());
    CHECK(canonicalEqual(*again, s));
    CHECK(canonicalBytes(*again) == bytes);
  }
  // Order of capabilities and success codes does not matter canonically.
  DaemonSpec a = (*r)[0];
  DaemonSpec b = a;
  std::reverse(b.placement.capabilities.begin(), b.placement.capabilities.end());
  b.stop_signal = "INT";
  CHECK(!(a == b));
  CHECK(canonicalEqual(a, b));
  CHECK(canonicalBytes(a) == canonicalBytes(b));
  // The limits mode is part of the spec: a changed mode is a changed spec.
  DaemonSpec c = a;
  c.limits.mode = a.limits.mode == LimitsMode::kEnforce ? LimitsMode::kBestEffort : LimitsMode::kEnforce;
  CHECK(canonicalBytes(a) != canonicalBytes(c));
  b.command.push_back("--more");
  CHECK(!canonicalEqual(a, b));
  CHECK(canonicalBytes(a) != canonicalBytes(b));
  {
    // A mode this agent does not know (from a newer writer) is refused, not guessed.
    capnp::MallocMessageBuilder msg;
    auto root = msg.initRoot<meshos::proto::DaemonSpec>();
    toCapnp(root, a);
    root.setLimitsMode(static_cast<meshos::proto::LimitsMode>(7));
    auto bad = fromCapnp(root.asReader());
    REQUIRE(!bad);
    CHECK(contains(bad.status().message(), "limits.limits: unknown enum value 7"));
  }
  // Garbage bytes are an error, not a crash.
  std::vector<uint8_t> junk(24, 0xff);
  CHECK(!fromBytes(junk));
  CHECK(!fromBytes(std::vector<uint8_t>(7, 0)));
}

TEST_CASE("spec: strict TOML errors name the key and the line") {
  auto e = errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"/bin/true\"]\nbogus = 1\n");
  CHECK(contains(e, "local.toml:4:"));
  CHECK(contains(e, "bogus: unknown key"));
  e = errorOf("[[daemon]]\nname = \"a\"\ncommand = \"/bin/true\"\n");
  CHECK(contains(e, "local.toml:3:"));
  CHECK(contains(e, "command: expected an array of strings"));
  e = errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"/bin/true\"]\n[daemon.limits]\n"
              "open_files = -5\n");
  CHECK(contains(e, "local.toml:5:"));
  CHECK(contains(e, "limits.open_files"));
  e = errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"/bin/true\"]\n[daemon.limits]\n"
              "memory_max = 65536\nlimits = \"maybe\"\n");
  CHECK(contains(e, "local.toml:6:"));
  CHECK(contains(e, "limits.limits: 'maybe' is not one of enforce | best-effort"));
  e = errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"/bin/true\"]\n[daemon.permissions]\n"
              "allowed_signals = [\"HUP\", \"SIGNOPE\"]\n");
  CHECK(contains(e, "local.toml:5:"));
  CHECK(contains(e, "permissions.allowed_signals: unknown signal 'SIGNOPE'"));
  e = errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"/bin/true\"]\n[daemon.permissions]\nallow_stop = 1\n");
  CHECK(contains(e, "permissions.allow_stop"));
  e = errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"/bin/true\"]\n[daemon.permissions]\nallow_kill = false\n");
  CHECK(contains(e, "allow_kill: unknown key"));
  e = errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"/bin/true\"]\nrestart = \"sometimes\"\n");
  CHECK(contains(e, "restart"));
  CHECK(contains(e, "always | on-failure | never"));
  e = errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"/bin/true\"]\n[daemon.health.liveness]\n"
              "type = \"http\"\nport = 80\nwhatever = true\n");
  CHECK(contains(e, "health.liveness.whatever: unknown key"));
  CHECK(contains(e, "local.toml:7:"));
  e = errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"/bin/true\"\n");
  CHECK(contains(e, "local.toml:"));
  e = errorOf("[node]\nname = 1\n");
  CHECK(contains(e, "unknown key"));
}

TEST_CASE("spec: bad specs are rejected with clear errors") {
  CHECK(contains(errorOf("[[daemon]]\nname = \"a\"\ncommand = []\n"), "argv is empty"));
  CHECK(contains(errorOf("[[daemon]]\nname = \"a b\"\ncommand = [\"x\"]\n"),
                 "not a valid daemon name"));
  CHECK(contains(errorOf("[[daemon]]\nname = \"c\"\nkind = \"cron\"\nschedule = \"61 * * * *\"\n"
                         "command = [\"x\"]\n"),
                 "minute"));
  CHECK(contains(errorOf("[[daemon]]\nname = \"c\"\nkind = \"cron\"\ncommand = [\"x\"]\n"),
                 "needs a schedule"));
  CHECK(contains(errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"x\"]\n"
                         "[[daemon]]\nname = \"a\"\ncommand = [\"y\"]\n"),
                 "defined twice"));
  std::string cycle = errorOf(
      "[[daemon]]\nname = \"a\"\ncommand = [\"x\"]\ndepends_on = [\"b\"]\n"
      "[[daemon]]\nname = \"b\"\ncommand = [\"x\"]\ndepends_on = [\"c\"]\n"
      "[[daemon]]\nname = \"c\"\ncommand = [\"x\"]\ndepends_on = [\"a\"]\n");
  CHECK(contains(cycle, "dependency cycle: a -> b -> c -> a"));
  CHECK(contains(errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"x\"]\ndepends_on = [\"zz\"]\n"),
                 "unknown daemon 'zz'"));
  CHECK(contains(errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"x\"]\nstop_signal = \"SIGFOO\"\n"),
                 "unknown signal"));

  DaemonSpec s;
  s.name = "x";
  s.command = {"/bin/true"};
  CHECK(validate(s));
  s.limits.memory_max = -1;
  CHECK(!validate(s));
  s.limits.memory_max.reset();
  s.stop_grace_ms = -1;
  meshos::Status st = validate(s);
  CHECK(!st);
  CHECK(contains(st.message(), "stop_grace_ms"));
  s.stop_grace_ms = 0;
  s.backoff.max_ms = 10;
  s.backoff.initial_ms = 20;
  CHECK(!validate(s));
}

TEST_CASE("a spec whose text is not UTF-8 is refused, and the error quotes only UTF-8") {
  // Found by the daemon_spec fuzz target: a commit's spec (Cap'n Proto Text) may hold any
  // bytes, and the snapshot renders specs and their errors as JSON.
  DaemonSpec s;
  s.name = "web";
  s.command = {"/bin/echo", "caf\xe9"};
  CHECK_FALSE(validate(s).isOk());
  CHECK_FALSE(fromBytes(canonicalBytes(s)).isOk());
  s.command[1] = "caf\xc3\xa9";
  CHECK(validate(s).isOk());
  s.name = "w\xff";
  const auto st = validate(s);
  CHECK_FALSE(st.isOk());
  CHECK(st.message().find('\xff') == std::string::npos);
}
