#include <doctest/doctest.h>

#include <string>

#include "agent/config/node_config.h"
#include "agent/core/crypto.h"

using namespace meshos;
using namespace meshos::config;

namespace {
std::string errorOf(std::string_view text) {
  auto c = parseNodeConfig(text, "node.toml");
  REQUIRE_FALSE(c.isOk());
  CHECK(c.status().code() == Code::kInvalidArgument);
  return c.status().message();
}
bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("an empty file gives every default") {
  auto c = parseNodeConfig("", "/etc/meshos/node.toml");
  REQUIRE(c.isOk());
  CHECK_FALSE(c->node.name.empty());
  CHECK(c->node.data_dir == "/var/lib/meshos");
  CHECK(c->node.tick_interval_ms == 500);
  CHECK(c->gossip.bind.port == 7946);
  CHECK(c->control.mode == 0660);
  CHECK(c->executor.queue_capacity == 1024);
  CHECK(c->log.level == "info");
  CHECK(c->trust.threshold == 1);
}

TEST_CASE("a full file is read into every field") {
  REQUIRE(initCrypto().isOk());
  std::string admin = publicKeyToBase64(SigningKey::generate().public_key);
  std::string text = R"(
[node]
name = "web-1"
data_dir = "data"
labels = { zone = "a", disk = "ssd" }
tick_interval_ms = 250
[gossip]
cluster = "prod"
bind = "0.0.0.0:7946"
advertise = "10.0.0.5:7946"
seeds = ["10.0.0.1:7946", "[fe80::1]:7000", "seed.example:7946"]
keyring = "/etc/meshos/keyring"
[control]
socket = "agent.sock"
mode = "0600"
http = "127.0.0.1:9464"
[trust]
admins = [")" + admin + R"("]
threshold = 1
[executor]
queue_capacity = 16
[runtime]
local = "local.toml"
[log]
level = "debug"
format = "json"
[probes]
inventory_interval_ms = 1000
)";
  auto c = parseNodeConfig(text, "/srv/cluster/n1/node.toml");
  REQUIRE_MESSAGE(c.isOk(), c.status().toString());
  CHECK(c->node.name == "web-1");
  CHECK(c->node.data_dir == "/srv/cluster/n1/data");  // relative to the file
  CHECK(c->node.labels.at("zone") == "a");
  CHECK(c->node.tick_interval_ms == 250);
  CHECK(c->gossip.cluster == "prod");
  CHECK(c->gossip.advertise->port == 7946);
  REQUIRE(c->gossip.seeds.size() == 3);
  CHECK(c->gossip.seeds[1].host == "fe80::1");
  CHECK(c->gossip.seeds[1].toString() == "[fe80::1]:7000");
  CHECK(c->control.socket == "/srv/cluster/n1/agent.sock");
  CHECK(c->control.mode == 0600);
  CHECK(c->control.http->port == 9464);
  CHECK(c->trust.admins.size() == 1);
  CHECK(c->executor.queue_capacity == 16);
  CHECK(*c->runtime.local == "/srv/cluster/n1/local.toml");
  CHECK(c->log.format == "json");
  CHECK(c->probes.inventory_interval_ms == 1000);
}

TEST_CASE("[secrets]: paths are anchored to the file, and files_dir may not be under data_dir") {
  auto c = parseNodeConfig("[node]\ndata_dir = \"data\"\n[secrets]\ncluster_key_file = \"cluster.secret\"\nfiles_dir = \"/dev/shm/x\"\n",
                           "/srv/n1/node.toml");
  REQUIRE(c.isOk());
  CHECK(*c->secrets.cluster_key_file == "/srv/n1/cluster.secret");
  CHECK(*c->secrets.files_dir == "/dev/shm/x");
  auto under = errorOf("[node]\ndata_dir = \"/var/lib/m\"\n[secrets]\nfiles_dir = \"/var/lib/m/secrets\"\n");
  CHECK(under.find("secrets.files_dir: must not be under node.data_dir") != std::string::npos);
}

TEST_CASE("unknown keys are named with their line") {
  auto m = errorOf("[node]\nname = \"a\"\ncolour = \"blue\"\n");
  CHECK(contains(m, "node.toml:3: node.colour: unknown key"));
  CHECK(contains(errorOf("[nodes]\nname = \"a\"\n"), "nodes: unknown key"));
  CHECK(contains(errorOf("[gossip]\nbind_addr = \"1.2.3.4:1\"\n"), "gossip.bind_addr"));
}

TEST_CASE("wrong types are named") {
  CHECK(contains(errorOf("[node]\ntick_interval_ms = \"fast\"\n"),
                 "node.toml:2: node.tick_interval_ms: expected an integer"));
  CHECK(contains(errorOf("[node]\nname = 5\n"), "node.name: expected a string"));
  CHECK(contains(errorOf("[gossip]\nseeds = \"1.2.3.4:5\"\n"), "gossip.seeds: expected an array"));
  CHECK(contains(errorOf("[gossip]\nseeds = [\"1.2.3.4:5\", 7]\n"), "gossip.seeds[1]: expected a string"));
  CHECK(contains(errorOf("node = 3\n"), "node: expected a table"));
  CHECK(contains(errorOf("[node]\nlabels = { zone = 1 }\n"), "node.labels.zone: expected a string"));
  CHECK(contains(errorOf("[control]\nmode = 660\n"), "control.mode: expected an octal string"));
}

TEST_CASE("out-of-range values are named") {
  CHECK(contains(errorOf("[node]\ntick_interval_ms = 0\n"),
                 "node.tick_interval_ms: must be between 10 and 60000, got 0"));
  CHECK(contains(errorOf("[gossip]\nbind = \"0.0.0.0:99999\"\n"), "gossip.bind: port must be between 0 and 65535"));
  CHECK(contains(errorOf("[gossip]\nbind = \"0.0.0.0:http\"\n"), "gossip.bind: port must be a number"));
  CHECK(contains(errorOf("[gossip]\nbind = \"0.0.0.0\"\n"), "gossip.bind: expected \"host:port\""));
  CHECK(contains(errorOf("[gossip]\nbind = \"example.com:1\"\n"), "gossip.bind: the host must be an IP"));
  CHECK(contains(errorOf("[gossip]\nseeds = [\"10.0.0.1:0\"]\n"), "gossip.seeds[0]: port must be between 1"));
  CHECK(contains(errorOf("[gossip]\nseeds = [\"::1:80\"]\n"), "needs brackets"));
  CHECK(contains(errorOf("[gossip]\ncluster = \"a b\"\n"), "gossip.cluster"));
  CHECK(contains(errorOf("[executor]\nqueue_capacity = -1\n"), "executor.queue_capacity"));
  CHECK(contains(errorOf("[executor]\nretry_initial_ms = 500\nretry_max_ms = 100\n"), "executor.retry_max_ms"));
  CHECK(contains(errorOf("[control]\nmode = \"0999\"\n"), "control.mode: expected an octal mode"));
  CHECK(contains(errorOf("[control]\noperators = [\"ali ce\"]\n"), "control.operators: expected \"*\", a user"));
  CHECK(contains(errorOf("[control]\nadmins = [\"%\"]\n"), "control.admins"));
  CHECK(contains(errorOf("[control]\nreaders = \"*\"\n"), "control.readers"));
  CHECK(contains(errorOf("[log]\nlevel = \"loud\"\n"), "log.level"));
  CHECK(contains(errorOf("[log]\nformat = \"xml\"\n"), "log.format"));
  CHECK(contains(errorOf("[trust]\nadmins = [\"nope\"]\n"), "trust.admins[0]"));
  CHECK(contains(errorOf("[trust]\nthreshold = 2\n"), "trust.threshold: must be between 1 and 1"));
  CHECK(contains(errorOf("[node]\nname = \"\"\n"), "node.name"));
  CHECK(contains(errorOf("[chains]\ncheckpoint_every = 0\n"), "chains.checkpoint_every"));
  CHECK(contains(errorOf("[gossip]\nprobe_interval_ms = 5\n"), "gossip.probe_interval_ms"));
  CHECK(contains(errorOf("[gossip]\nprobe_timeout_ms = 2000\n"), "must be less than gossip.probe_interval_ms"));
  CHECK(contains(errorOf("[gossip]\ngossip_nodes = 0\n"), "gossip.gossip_nodes"));
  CHECK(contains(errorOf("[gossip]\nmax_packet_bytes = 100\n"), "gossip.max_packet_bytes"));
  CHECK(contains(errorOf("[chains]\nmax_records_log = 10\n"), "chains.max_records_log: must be 0"));
  CHECK(contains(errorOf("[chains]\nkeep = 1\n"), "chains.keep: unknown key"));
  CHECK(contains(errorOf(std::string("[control]\nsocket = \"") + std::string(200, 'x') + "\"\n"),
                 "control.socket"));
}

TEST_CASE("syntax errors carry the line") {
  CHECK(contains(errorOf("[node]\nname = \n"), "node.toml:2:"));
}

TEST_CASE("a missing file is not found, with the path") {
  auto c = loadNodeConfig("/nonexistent/node.toml");
  REQUIRE_FALSE(c.isOk());
  CHECK(c.status().code() == Code::kNotFound);
  CHECK(contains(c.status().message(), "/nonexistent/node.toml"));
}

TEST_CASE("the default config text parses to the defaults") {
  auto c = parseNodeConfig(defaultConfigText("n1", "/tmp/d", "/tmp/d/agent.sock"), "x.toml");
  REQUIRE_MESSAGE(c.isOk(), c.status().toString());
  CHECK(c->node.name == "n1");
  CHECK(c->control.socket == "/tmp/d/agent.sock");
  const NodeConfig d;
  CHECK(c->gossip.bind == d.gossip.bind);
  CHECK(c->gossip.probe_interval_ms == d.gossip.probe_interval_ms);
  CHECK(c->gossip.suspicion_mult == d.gossip.suspicion_mult);
  CHECK(c->runtime.cgroup_parent == d.runtime.cgroup_parent);
  CHECK(c->chains.max_records_log == d.chains.max_records_log);
  CHECK(!c->control.http);
}

// The keys the parser knows in one table, from its own "unknown key" message.
std::vector<std::string> knownKeys(const std::string& table) {
  const std::string text = table.empty() ? "zz_unknown = 1\n" : "[" + table + "]\nzz_unknown = 1\n";
  const std::string err = errorOf(text);
  const std::string marker = "known keys here: ";
  auto at = err.find(marker);
  REQUIRE_MESSAGE(at != std::string::npos, err);
  std::string list = err.substr(at + marker.size());
  list = list.substr(0, list.find(')'));
  std::vector<std::string> keys;
  for (size_t start = 0; start <= list.size();) {
    size_t comma = list.find(", ", start);
    keys.push_back(list.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 2;
  }
  return keys;
}

TEST_CASE("--print-default-config names every key the parser knows") {
  const std::string text = defaultConfigText("n1", "/tmp/d", "/tmp/d/agent.sock");
  for (const std::string& table : knownKeys("")) {
    CAPTURE(table);
    auto header = text.find("[" + table + "]\n");
    REQUIRE(header != std::string::npos);
    auto end = text.find("\n[", header + 1);
    const std::string body = text.substr(header, end == std::string::npos ? std::string::npos : end - header);
    for (const std::string& key : knownKeys(table)) {
      CAPTURE(key);
      // Set, or shown commented out where it has no default.
      CHECK((body.find("\n" + key + " = ") != std::string::npos || body.find("\n# " + key + " = ") != std::string::npos));
    }
  }
}

TEST_CASE("placement keys of [node]: capabilities, capacity, handoff deadline") {
  auto c = parseNodeConfig("[node]\ncapabilities = [\"gpu\", \"zone:a\"]\ncpu_millicores = 1500\n"
                           "memory_bytes = 1073741824\nhandoff_deadline_ms = 5000\n",
                           "node.toml");
  REQUIRE(c);
  CHECK(c->node.capabilities == std::vector<std::string>{"gpu", "zone:a"});
  CHECK(c->node.cpu_millicores == 1500);
  CHECK(c->node.memory_bytes == 1073741824);
  CHECK(c->node.handoff_deadline_ms == 5000);
  CHECK(contains(errorOf("[node]\ncapabilities = [\"has space\"]\n"), "node.toml:2: node.capabilities: \"has space\""));
  CHECK(contains(errorOf("[node]\ncapabilities = [\"\"]\n"), "node.capabilities"));
  CHECK(contains(errorOf("[node]\ncapabilities = [\"runtime:oci\"]\n"),
                 "node.toml:2: node.capabilities: \"runtime:oci\": runtime: capabilities are detected by the agent"));
  CHECK(contains(errorOf("[node]\ncapabilities = [\"arch:arm64\"]\n"), "arch: capabilities are detected"));
  CHECK(contains(errorOf("[node]\ncapabilities = [3]\n"), "node.capabilities[0]: expected a string"));
  CHECK(contains(errorOf("[node]\ncpu_millicores = -1\n"), "node.cpu_millicores: must be between 0"));
  CHECK(contains(errorOf("[node]\nmemory_bytes = \"1G\"\n"), "node.memory_bytes: expected an integer"));
  CHECK(contains(errorOf("[node]\nhandoff_deadline_ms = 10\n"), "node.handoff_deadline_ms: must be between 1000"));
}

TEST_CASE("[runtime] cgroup_parent: default, nested paths, clear errors for bad ones") {
  auto d = parseNodeConfig("", "node.toml");
  REQUIRE(d);
  CHECK(d->runtime.cgroup_parent == "meshos");
  auto c = parseNodeConfig("[runtime]\ncgroup_parent = \"meshos/agent-2.b_c\"\n", "node.toml");
  REQUIRE(c);
  CHECK(c->runtime.cgroup_parent == "meshos/agent-2.b_c");
  CHECK(contains(errorOf("[runtime]\ncgroup_parent = \"\"\n"), "node.toml:2: runtime.cgroup_parent: must not be empty"));
  CHECK(contains(errorOf("[runtime]\ncgroup_parent = \"/meshos\"\n"), "runtime.cgroup_parent: must be a relative path"));
  CHECK(contains(errorOf("[runtime]\ncgroup_parent = \"a//b\"\n"), "runtime.cgroup_parent: must be a relative path"));
  CHECK(contains(errorOf("[runtime]\ncgroup_parent = \"a/\"\n"), "runtime.cgroup_parent: must be a relative path"));
  CHECK(contains(errorOf("[runtime]\ncgroup_parent = \"a/../b\"\n"), "runtime.cgroup_parent: must not contain '.' or '..'"));
  CHECK(contains(errorOf("[runtime]\ncgroup_parent = \"..\"\n"), "runtime.cgroup_parent: must not contain"));
  CHECK(contains(errorOf("[runtime]\ncgroup_parent = \"a b\"\n"), "runtime.cgroup_parent: segments may use only"));
  CHECK(contains(errorOf("[runtime]\ncgroup_parent = 3\n"), "runtime.cgroup_parent: expected a string"));
}

TEST_CASE("[placement] rebalancing keys: defaults, values, wrong types and ranges") {
  auto d = parseNodeConfig("", "node.toml");
  REQUIRE(d);
  CHECK(d->placement.rebalance);
  CHECK(d->placement.rebalance_interval_ms == 10'000);
  CHECK(d->placement.rebalance_cooldown_ms == 300'000);
  CHECK(d->placement.rebalance_hysteresis_percent == 25);
  auto c = parseNodeConfig(
      "[placement]\nrebalance = false\nrebalance_interval_ms = 2000\nrebalance_cooldown_ms = 0\n"
      "rebalance_hysteresis_percent = 50\n",
      "node.toml");
  REQUIRE_MESSAGE(c, c.status().toString());
  CHECK_FALSE(c->placement.rebalance);
  CHECK(c->placement.rebalance_interval_ms == 2000);
  CHECK(c->placement.rebalance_cooldown_ms == 0);
  CHECK(c->placement.rebalance_hysteresis_percent == 50);
  CHECK(contains(errorOf("[placement]\nrebalance = \"yes\"\n"), "node.toml:2: placement.rebalance: expected true or false"));
  CHECK(contains(errorOf("[placement]\nrebalance_interval_ms = 10\n"), "placement.rebalance_interval_ms: must be between 1000"));
  CHECK(contains(errorOf("[placement]\nrebalance_cooldown_ms = -1\n"), "placement.rebalance_cooldown_ms"));
  CHECK(contains(errorOf("[placement]\nrebalance_hysteresis_percent = 0\n"), "placement.rebalance_hysteresis_percent"));
  CHECK(contains(errorOf("[placement]\nrebalance_hysteresis_percent = 0.3\n"), "expected an integer"));
  CHECK(contains(errorOf("[placement]\nstrategy = \"spread\"\n"), "placement.strategy: unknown key"));
}
