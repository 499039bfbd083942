// TOML targets: node.toml (parseNodeConfig) and daemon files (parseDaemonsToml), the two
// files an operator writes. A daemon spec also travels inside commits as Cap'n Proto bytes
// (fromBytes), so the daemon target feeds the same input to that decoder too. A parsed spec
// survives its canonical encoding and the node-variable interpolation the node runs on it.
#include <map>
#include <string>

#include "agent/commits/commit_json.h"
#include "agent/config/node_config.h"
#include "agent/spec/daemon_spec.h"
#include "agent/spec/interpolate.h"
#include "tests/fuzz/fuzz_target.h"

namespace meshos::fuzz {

namespace {

std::string_view textOf(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// What a node does with a decoded spec: canonical bytes for the desired-state hash, and the
// ${node.*} variables filled in before it starts an instance.
void useSpec(const spec::DaemonSpec& s) {
  const Bytes canonical = spec::canonicalBytes(s);
  auto back = spec::fromBytes(canonical);
  check(back.isOk() && spec::canonicalEqual(*back, s));
  check(spec::canonicalBytes(*back) == canonical);
  const std::map<std::string, std::string> vars = {
      {"node.name", "n1"}, {"node.id", "00000000000000a1"}, {"node.host", "127.0.0.1"}};
  (void)spec::interpolate(s, vars);
  (void)commits::daemonSpecToJson(s).dump();  // the desired-state view of the snapshot
}

}  // namespace

int fuzzNodeConfig(const uint8_t* data, size_t size) {
  auto config = config::parseNodeConfig(textOf(data, size), "fuzz.toml");
  if (config) check(config->source == "fuzz.toml");
  return 0;
}

int fuzzDaemonSpec(const uint8_t* data, size_t size) {
  if (auto specs = spec::parseDaemonsToml(textOf(data, size), "fuzz.toml")) {
    check(spec::validateSet(*specs).isOk());
    check(spec::startOrder(*specs).isOk());
    for (const auto& s : *specs) useSpec(s);
  }
  if (auto s = spec::fromBytes(ByteView(data, size))) useSpec(*s);
  return 0;
}

std::vector<Bytes> nodeConfigSeeds() {
  return {
      bytesOf(config::defaultConfigText("n1", "/var/lib/meshos", "/run/meshos/control.sock")),
      bytesOf("[node]\nname = \"n2\"\n[gossip]\nbind = \"127.0.0.1:0\"\nseeds = [\"127.0.0.1:7946\"]\n"),
      bytesOf("[node]\nlabels = { zone = \"a\", rack = \"r1\" }\n"),
      bytesOf("[gossip]\nbind = \"[::1]:7946\"\n"),
      bytesOf("[node]\nname = 3\n"),
      bytesOf("[nosuch]\nkey = 1\n"),
      bytesOf("[gossip]\nbind = \"127.0.0.1:99999\"\n"),
      bytesOf("[node\n"),
  };
}

std::vector<Bytes> daemonSpecSeeds() {
  std::vector<Bytes> out = {
      bytesOf(R"([[daemon]]
name = "web"
kind = "service"
command = ["/usr/bin/web", "--bind", "${node.host}"]
env = { A = "1", NODE = "${node.name}" }
replicas = 3
restart = "always"
stop_signal = "SIGINT"
stop_grace_ms = 2000
[daemon.placement]
strategy = "spread"
max_per_node = 1
[daemon.health.readiness]
type = "http"
host = "${node.host}"
port = 8080
path = "/"
interval_ms = 500
[daemon.limits]
open_files = 1024
memory_max = 104857600

[[daemon]]
name = "worker"
command = ["/bin/sh", "-c", "exit 3"]
restart = "on-failure"
depends_on = [{ name = "web", condition = "ready", timeout_ms = 5000 }]
[daemon.backoff]
initial_ms = 50
factor = 1.5
)"),
      bytesOf(R"([[daemon]]
name = "report"
kind = "cron"
schedule = "*/5 1-3 * * mon-fri"
missed_runs = "run-once"
command = ["/bin/true"]
job_retries = 1
)"),
      bytesOf("[[daemon]]\nname = \"migrate\"\nkind = \"job\"\ncommand = [\"/bin/true\"]\njob_retries = 2\n"),
      bytesOf("[[daemon]]\nname = \"a\"\ncommand = [\"/bin/true\"]\ndepends_on = [\"b\"]\n"
              "[[daemon]]\nname = \"b\"\ncommand = [\"/bin/true\"]\ndepends_on = [\"a\"]\n"),
      bytesOf("[[daemon]]\nname = \"x\"\ncommand = []\n"),
      bytesOf("[[daemon]]\nname = \"x\"\ncommand = [\"/bin/true\"]\nkind = \"cron\"\nschedule = \"61 * * * *\"\n"),
      bytesOf("[[daemon]]\nname = \"x\"\ncommand = [\"${nosuch.var}\"]\n"),
      bytesOf("daemon = 1\n"),
  };
  // The Cap'n Proto form, as a commit carries it.
  for (size_t i = 0; i < 3; ++i) {
    auto specs = spec::parseDaemonsToml(std::string_view(reinterpret_cast<const char*>(out[i].data()), out[i].size()), "seed");
    if (!specs) std::abort();  // the seeds above must stay valid
    for (const auto& s : *specs) out.push_back(spec::canonicalBytes(s));
  }
  return out;
}

}  // namespace meshos::fuzz
