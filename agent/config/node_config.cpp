#include "agent/config/node_config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <tuple>
#include <sstream>
#include <toml++/toml.h>

#include "agent/config/toml_table.h"
#include "agent/core/crypto.h"
#include "agent/core/logging.h"

namespace meshos::config {

namespace {

bool validClusterName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

bool validNodeName(std::string_view s) { return validClusterName(s); }

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "meshos-node";
  std::string name(buf);
  return validNodeName(name) ? name : "meshos-node";
}

// A "host:port" key; absent leaves out as it was.
void hostPort(TomlTable& r, std::string_view key, bool allow_port_zero, std::optional<HostPort>& out) {
  const toml::node* n = r.get(key);
  if (n == nullptr || r.failed()) return;
  if (!n->is_string()) return r.fail(n, key, "expected a \"host:port\" string");
  auto hp = parseHostPort(n->as_string()->get(), allow_port_zero);
  if (!hp) return r.fail(n, key, hp.status().message());
  out = *hp;
}

// A string key that, when present, must not be empty.
void nonEmptyPath(TomlTable& r, std::string_view key, std::optional<std::filesystem::path>& out) {
  std::string v;
  r.str(key, v);
  if (r.failed() || r.raw().get(key) == nullptr) return;
  if (v.empty()) return r.failHere(key, "must not be empty");
  out = v;
}

void readLabels(TomlTable& r, NodeSection& s) {
  const toml::node* n = r.get("labels");
  if (n == nullptr || r.failed()) return;
  if (!n->is_table()) return r.fail(n, "labels", "expected a table of strings");
  for (auto&& [k, v] : *n->as_table()) {
    const std::string key = "labels." + std::string(k.str());
    if (!v.is_string()) return r.fail(&v, key, "expected a string");
    if (k.str().empty() || k.str().size() > 63) return r.fail(&v, key, "label names must be 1-63 characters");
    s.labels[std::string(k.str())] = v.as_string()->get();
  }
}

void readNode(TomlTable& r, NodeSection& s) {
  r.str("name", s.name);
  if (!r.failed() && !validNodeName(s.name)) r.failHere("name", "must be 1-64 characters of letters, digits, '.', '_' or '-'");
  std::string dir = s.data_dir.string();
  r.str("data_dir", dir);
  if (!r.failed() && dir.empty()) r.failHere("data_dir", "must not be empty");
  s.data_dir = dir;
  r.integer("tick_interval_ms", s.tick_interval_ms, {10, 60000});
  r.integer("cpu_millicores", s.cpu_millicores, {0, 100'000'000});
  r.integer("memory_bytes", s.memory_bytes, {0, int64_t{1} << 50});
  r.integer("handoff_deadline_ms", s.handoff_deadline_ms, {1000, 3'600'000});
  std::vector<std::pair<std::string, const toml::node*>> caps;
  r.stringNodes("capabilities", caps);
  for (const auto& [c, n] : caps) {
    bool ok = !c.empty() && c.size() <= 64 && std::all_of(c.begin(), c.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-' || ch == ':';
    });
    if (!ok) return r.fail(n, "capabilities", "\"" + c + "\": a capability is 1-64 characters of letters, digits, '.', '_', '-' or ':'");
    // The agent detects these (probes::capabilitiesFor): a node cannot claim them.
    for (std::string_view detected : {"arch:", "os:", "cpus:", "runtime:"}) {
      if (c.rfind(detected, 0) == 0) {
        return r.fail(n, "capabilities", "\"" + c + "\": " + std::string(detected) + " capabilities are detected by the agent, not configured");
      }
    }
    s.capabilities.push_back(c);
  }
  readLabels(r, s);
}

void readGossip(TomlTable& r, GossipSection& s) {
  for (auto [key, field, lo, hi] :
       {std::tuple{"probe_interval_ms", &s.probe_interval_ms, 10L, 600'000L},
        std::tuple{"probe_timeout_ms", &s.probe_timeout_ms, 1L, 600'000L},
        std::tuple{"indirect_checks", &s.indirect_checks, 0L, 16L},
        std::tuple{"gossip_interval_ms", &s.gossip_interval_ms, 1L, 600'000L},
        std::tuple{"gossip_nodes", &s.gossip_nodes, 1L, 32L},
        std::tuple{"suspicion_mult", &s.suspicion_mult, 1L, 32L},
        std::tuple{"retransmit_mult", &s.retransmit_mult, 1L, 32L},
        std::tuple{"push_pull_interval_ms", &s.push_pull_interval_ms, 1L, 3'600'000L},
        std::tuple{"max_packet_bytes", &s.max_packet_bytes, 512L, 65'000L}}) {
    r.integer(key, *field, {lo, hi});
  }
  if (!r.failed() && s.probe_timeout_ms >= s.probe_interval_ms) {
    const toml::node* n = r.raw().get("probe_timeout_ms") ? r.raw().get("probe_timeout_ms") : r.raw().get("probe_interval_ms");
    r.fail(n, "probe_timeout_ms", "must be less than gossip.probe_interval_ms (" + std::to_string(s.probe_interval_ms) + ")");
  }
  r.str("cluster", s.cluster);
  if (!r.failed() && !validClusterName(s.cluster)) r.failHere("cluster", "must be 1-64 characters of letters, digits, '.', '_' or '-'");
  std::optional<HostPort> bind;
  hostPort(r, "bind", true, bind);
  if (bind && !r.failed()) {
    in6_addr a6{};
    in_addr a4{};
    if (inet_pton(AF_INET, bind->host.c_str(), &a4) != 1 && inet_pton(AF_INET6, bind->host.c_str(), &a6) != 1) {
      return r.failHere("bind", "the host must be an IP address");
    }
    s.bind = *bind;
  }
  hostPort(r, "advertise", false, s.advertise);
  std::vector<std::pair<std::string, const toml::node*>> seeds;
  r.stringNodes("seeds", seeds);
  for (size_t i = 0; i < seeds.size() && !r.failed(); ++i) {
    auto hp = parseHostPort(seeds[i].first, false);
    if (!hp) return r.fail(seeds[i].second, "seeds[" + std::to_string(i) + "]", hp.status().message());
    s.seeds.push_back(*hp);
  }
  nonEmptyPath(r, "keyring", s.keyring);
}

// A role list of [control]: "*", user names or ids, "%group" names or ids.
void principals(TomlTable& r, std::string_view key, std::vector<std::string>& out) {
  std::vector<std::pair<std::string, const toml::node*>> entries;
  r.stringNodes(key, entries);
  if (r.get(key) == nullptr || r.failed()) return;
  out.clear();
  for (const auto& [entry, node] : entries) {
    std::string_view name = entry;
    if (!name.empty() && name[0] == '%') name.remove_prefix(1);
    bool ok = !name.empty() && name.size() <= 64;
    for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
    ok = ok || entry == "*";
    if (!ok) {
      return r.fail(node, key, "expected \"*\", a user (\"alice\", \"1001\") or a group (\"%ops\", \"%1001\"), got \"" +
                                   entry + "\"");
    }
    out.push_back(entry);
  }
}

void readControl(TomlTable& r, ControlSection& s) {
  std::string socket = s.socket.string();
  r.str("socket", socket);
  // sockaddr_un holds 108 bytes including the NUL.
  if (!r.failed() && (socket.empty() || socket.size() > 107)) r.failHere("socket", "must be a path of 1-107 characters");
  s.socket = socket;
  if (const toml::node* n = r.get("mode"); n != nullptr && !r.failed()) {
    if (!n->is_string()) return r.fail(n, "mode", "expected an octal string such as \"0660\"");
    const std::string& m = n->as_string()->get();
    char* end = nullptr;
    unsigned long v = std::strtoul(m.c_str(), &end, 8);
    if (m.empty() || *end != '\0' || v > 0777) {
      return r.fail(n, "mode", "expected an octal mode from \"0000\" to \"0777\", got \"" + m + "\"");
    }
    s.mode = static_cast<uint32_t>(v);
  }
  // Not a known key: only its rename is explained.
  if (const toml::node* n = r.raw().get("metrics_http"); n != nullptr && !r.failed()) {
    return r.fail(n, "metrics_http", "renamed to http (it serves /metrics, /v1/ and the status page)");
  }
  hostPort(r, "http", true, s.http);
  principals(r, "readers", s.readers);
  principals(r, "operators", s.operators);
  principals(r, "admins", s.admins);
}

void readDns(TomlTable& r, DnsSection& s) {
  hostPort(r, "bind", true, s.bind);
  r.integer("ttl_s", s.ttl_s, {0, 3'600});
}

void readTrust(TomlTable& r, TrustSection& s) {
  std::vector<std::pair<std::string, const toml::node*>> admins;
  r.stringNodes("admins", admins);
  for (size_t i = 0; i < admins.size() && !r.failed(); ++i) {
    const std::string key = "admins[" + std::to_string(i) + "]";
    auto pk = publicKeyFromBase64(admins[i].first);
    if (!pk) return r.fail(admins[i].second, key, pk.status().message());
    if (std::find(s.admins.begin(), s.admins.end(), admins[i].first) != s.admins.end())
      return r.fail(admins[i].second, key, "listed twice");
    s.admins.push_back(admins[i].first);
  }
  r.integer("threshold", s.threshold, {1, std::max<int64_t>(1, static_cast<int64_t>(s.admins.size()))});
}

void readExecutor(TomlTable& r, ExecutorSection& s) {
  r.integer("queue_capacity", s.queue_capacity, {1, 1'000'000});
  r.integer("action_deadline_ms", s.action_deadline_ms, {100, 3'600'000});
  r.integer("max_attempts", s.max_attempts, {1, 100});
  r.integer("retry_initial_ms", s.retry_initial_ms, {1, 600'000});
  r.integer("retry_max_ms", s.retry_max_ms, {s.retry_initial_ms, 3'600'000});
}

// Segments of [A-Za-z0-9._-], separated by single '/', none "." or "..": why not, or "".
std::string cgroupParentProblem(const std::string& p) {
  if (p.empty()) return "must not be empty";
  if (p.size() > 255) return "must be at most 255 characters";
  for (size_t start = 0; start <= p.size();) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    const std::string seg = p.substr(start, end - start);
    if (seg.empty()) return "must be a relative path without empty segments (no leading, trailing or double '/')";
    if (seg == "." || seg == "..") return "must not contain '.' or '..' segments";
    for (char ch : seg) {
      const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                      ch == '_' || ch == '-';
      if (!ok) return "segments may use only A-Z a-z 0-9 . _ -";
    }
    start = end + 1;
  }
  return "";
}

void readRuntime(TomlTable& r, RuntimeSection& s) {
  nonEmptyPath(r, "local", s.local);
  r.str("cgroup_parent", s.cgroup_parent);
  r.str("oci", s.oci);
  if (r.failed()) return;
  if (s.oci.empty() || (s.oci.find('/') != std::string::npos && s.oci[0] != '/')) {
    r.failHere("oci", "expected a program name or an absolute path, got \"" + s.oci + "\"");
  }
  if (std::string why = cgroupParentProblem(s.cgroup_parent); !why.empty()) {
    r.failHere("cgroup_parent", why + (s.cgroup_parent.empty() ? "" : ", got \"" + s.cgroup_parent + "\""));
  }
}

void readSecrets(TomlTable& r, SecretsSection& s) {
  nonEmptyPath(r, "cluster_key_file", s.cluster_key_file);
  nonEmptyPath(r, "files_dir", s.files_dir);
}

void readLog(TomlTable& r, LogSection& s) {
  r.str("level", s.level);
  if (r.failed()) return;
  if (auto lvl = parseLogLevel(s.level); !lvl) return r.failHere("level", lvl.status().message());
  r.str("format", s.format);
  if (!r.failed() && s.format != "text" && s.format != "json")
    r.failHere("format", "must be \"text\" or \"json\", got \"" + s.format + "\"");
}

void readProbes(TomlTable& r, ProbesSection& s) {
  r.integer("inventory_interval_ms", s.inventory_interval_ms, {500, 3'600'000});
}

void readPlacement(TomlTable& r, PlacementSection& s) {
  r.boolean("rebalance", s.rebalance);
  r.integer("rebalance_interval_ms", s.rebalance_interval_ms, {1000, 3'600'000});
  r.integer("rebalance_cooldown_ms", s.rebalance_cooldown_ms, {0, 86'400'000});
  r.integer("rebalance_hysteresis_percent", s.rebalance_hysteresis_percent, {1, 400});
}

void readChains(TomlTable& r, ChainsSection& s) {
  r.integer("checkpoint_every", s.checkpoint_every, {1, 1'000'000});
  for (auto [key, field] : {std::pair{"max_records_audit", &s.max_records_audit},
                            std::pair{"max_records_log", &s.max_records_log},
                            std::pair{"max_records_failure", &s.max_records_failure}}) {
    r.integer(key, *field, {0, 1'000'000'000'000});
    if (!r.failed() && *field != 0 && *field < 1000)
      r.failHere(key, "must be 0 (keep every record) or at least 1000, got " + std::to_string(*field));
  }
}

// One [section] of node.toml, read by `read` when present.
template <class Section>
void readSection(TomlTable& root, std::string_view name, void (*read)(TomlTable&, Section&), Section& out,
                 Status* err) {
  const toml::table* t = root.table(name);
  if (t == nullptr || root.failed()) return;
  TomlTable r(*t, root.source(), root.childPath(name), err);
  read(r, out);
  r.finish();
}

}  // namespace

std::string HostPort::toString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<HostPort> parseHostPort(std::string_view text, bool allow_port_zero) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::invalid("expected \"[ipv6]:port\", got \"" + std::string(text) + "\"");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::invalid("expected \"host:port\", got \"" + std::string(text) + "\"");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Status::invalid("an IPv6 address needs brackets: \"[addr]:port\", got \"" +
                             std::string(text) + "\"");
    }
  }
  if (host.empty()) return Status::invalid("missing host in \"" + std::string(text) + "\"");
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos) {
    return Status::invalid("port must be a number, got \"" + std::string(port) + "\"");
  }
  int p = std::stoi(std::string(port));
  if (p > 65535 || (p == 0 && !allow_port_zero)) {
    return Status::invalid("port must be between " + std::string(allow_port_zero ? "0" : "1") +
                           " and 65535, got " + std::string(port));
  }
  return HostPort{std::string(host), static_cast<uint16_t>(p)};
}

Result<NodeConfig> parseNodeConfig(std::string_view text, std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    std::string m(source_name);
    m += ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description());
    return Status::invalid(std::move(m));
  }
  NodeConfig c;
  c.source = std::string(source_name);
  c.node.name = hostName();
  Status err;
  TomlTable r(root, source_name, "", &err);
  readSection(r, "node", readNode, c.node, &err);
  readSection(r, "gossip", readGossip, c.gossip, &err);
  readSection(r, "control", readControl, c.control, &err);
  readSection(r, "trust", readTrust, c.trust, &err);
  readSection(r, "executor", readExecutor, c.executor, &err);
  readSection(r, "runtime", readRuntime, c.runtime, &err);
  readSection(r, "log", readLog, c.log, &err);
  readSection(r, "probes", readProbes, c.probes, &err);
  readSection(r, "placement", readPlacement, c.placement, &err);
  readSection(r, "chains", readChains, c.chains, &err);
  readSection(r, "dns", readDns, c.dns, &err);
  readSection(r, "secrets", readSecrets, c.secrets, &err);
  r.finish();
  if (!err) return err;
  // Relative paths in the file are relative to the file, so a cluster directory can move.
  auto base = std::filesystem::path(source_name).parent_path();
  auto anchor = [&](std::filesystem::path& p) {
    if (p.is_relative() && !base.empty()) p = base / p;
  };
  anchor(c.node.data_dir);
  anchor(c.control.socket);
  if (c.gossip.keyring) anchor(*c.gossip.keyring);
  if (c.runtime.local) anchor(*c.runtime.local);
  if (c.secrets.cluster_key_file) anchor(*c.secrets.cluster_key_file);
  if (c.secrets.files_dir) {
    anchor(*c.secrets.files_dir);
    const auto rel = c.secrets.files_dir->lexically_normal().lexically_relative(c.node.data_dir.lexically_normal());
    if (!rel.empty() && *rel.begin() != "..") {
      return Status::invalid(std::string(source_name) + ": secrets.files_dir: must not be under node.data_dir (" +
                             c.node.data_dir.string() + "): the data directory is on disk and copied in backups");
    }
  }
  return c;
}

Result<NodeConfig> loadNodeConfig(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::notFound(path.string() + ": cannot read the config file: " +
                            std::strerror(errno));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return parseNodeConfig(buf.str(), path.string());
}

std::string defaultConfigText(const std::string& name, const std::filesystem::path& data_dir,
                              const std::filesystem::path& socket) {
  // Values come from a default NodeConfig, so the text cannot drift from the parser; a test
  // (node_config_test.cpp) checks that every key the parser knows is here.
  const NodeConfig d;
  const auto& g = d.gossip;
  std::ostringstream o;
  o << "# node.toml: every key with its default. Relative paths are relative to this file.\n"
    << "# A commented-out key has no default: it is off until set.\n\n"
    << "[node]\n"
    << "name = \"" << name << "\"  # unique in the cluster; default: the host name\n"
    << "data_dir = \"" << data_dir.string() << "\"  # node key, RocksDB, runtime state\n"
    << "labels = {}                  # e.g. { zone = \"a\", disk = \"ssd\" }\n"
    << "tick_interval_ms = " << d.node.tick_interval_ms << "       # 10 .. 60000\n"
    << "capabilities = []            # offered to placement, e.g. [\"gpu\"]; arch:, os:, cpus:, runtime:oci are added\n"
    << "cpu_millicores = " << d.node.cpu_millicores << "           # capacity offered to placement; 0: the CPU count x 1000\n"
    << "memory_bytes = " << d.node.memory_bytes << "             # 0: the memory of the host\n"
    << "handoff_deadline_ms = " << d.node.handoff_deadline_ms
    << "  # a moving instance stops after this even if its successor is not ready\n\n"
    << "[gossip]\n"
    << "cluster = \"" << g.cluster << "\"           # peers of another cluster are refused\n"
    << "bind = \"" << g.bind.toString() << "\"      # UDP and TCP; port 0 lets the OS choose\n"
    << "# advertise = \"10.0.0.5:7946\" # the address peers use, when bind is 0.0.0.0 or behind NAT\n"
    << "seeds = []                   # [\"10.0.0.1:7946\"]: members to join at start\n"
    << "# keyring = \"keyring.json\"   # cluster keys: encrypts and authenticates gossip (docs/GOSSIP.md)\n"
    << "probe_interval_ms = " << g.probe_interval_ms << "      # failure detection: one probe per interval\n"
    << "probe_timeout_ms = " << g.probe_timeout_ms << "        # less than probe_interval_ms\n"
    << "indirect_checks = " << g.indirect_checks << "          # members asked to probe for us\n"
    << "gossip_interval_ms = " << g.gossip_interval_ms << "     # how often queued messages go out\n"
    << "gossip_nodes = " << g.gossip_nodes << "             # members each gossip round sends to\n"
    << "suspicion_mult = " << g.suspicion_mult << "           # suspicion timeout, in probe intervals x log(N)\n"
    << "retransmit_mult = " << g.retransmit_mult << "          # each message is sent retransmit_mult x log(N+1) times\n"
    << "push_pull_interval_ms = " << g.push_pull_interval_ms << " # full state exchange with one member\n"
    << "max_packet_bytes = " << g.max_packet_bytes << "      # 512 .. 65000\n\n"
    << "[control]\n"
    << "socket = \"" << socket.string() << "\"\n"
    << "mode = \"0660\"                # the socket file's mode: who can connect at all\n"
    << "readers = [\"*\"]               # snapshot, members, daemons, logs, metrics, chains, watch\n"
    << "operators = []               # daemon restart/stop/start/signal..., commit submission\n"
    << "admins = []                  # daemon exec, keyring, join, leave, force-leave (root and the agent's user always)\n"
    << "# http = \"127.0.0.1:9464\"    # HTTP: /metrics, /v1/, /v1/events and the status page at /\n\n"
    << "[trust]\n"
    << "admins = []                  # base64 ed25519 public keys (meshos-admin keygen)\n"
    << "threshold = " << d.trust.threshold << "\n\n"
    << "[executor]\n"
    << "queue_capacity = " << d.executor.queue_capacity << "        # 1 .. 1000000\n"
    << "action_deadline_ms = " << d.executor.action_deadline_ms << "\n"
    << "max_attempts = " << d.executor.max_attempts << "\n"
    << "retry_initial_ms = " << d.executor.retry_initial_ms << "\n"
    << "retry_max_ms = " << d.executor.retry_max_ms << "\n\n"
    << "[runtime]\n"
    << "# local = \"daemons.toml\"      # daemons this node runs outside placement ([[daemon]] tables)\n"
    << "cgroup_parent = \"" << d.runtime.cgroup_parent << "\"      # the cgroup sub-tree of this agent's daemons\n"
    << "oci = \"" << d.runtime.oci << "\"                  # OCI runtime for runtime = \"oci\" daemons (runc, crun)\n\n"
    << "[log]\n"
    << "level = \"" << d.log.level << "\"               # trace debug info warn error off\n"
    << "format = \"" << d.log.format << "\"              # text json\n\n"
    << "[probes]\n"
    << "inventory_interval_ms = " << d.probes.inventory_interval_ms << "\n\n"
    << "[placement]\n"
    << "rebalance = " << (d.placement.rebalance ? "true" : "false")
    << "                   # move instances off hot nodes (load1 per CPU or memory)\n"
    << "rebalance_interval_ms = " << d.placement.rebalance_interval_ms << "      # how often loads are compared\n"
    << "rebalance_cooldown_ms = " << d.placement.rebalance_cooldown_ms << "     # per daemon, between two moves\n"
    << "rebalance_hysteresis_percent = " << d.placement.rebalance_hysteresis_percent
    << "  # hot minus cool load must exceed this\n\n"
    << "[chains]\n"
    << "checkpoint_every = " << d.chains.checkpoint_every << "      # sign a checkpoint every K records\n"
    << "max_records_audit = " << d.chains.max_records_audit << "        # 0 keeps every record\n"
    << "max_records_log = " << d.chains.max_records_log << "\n"
    << "max_records_failure = " << d.chains.max_records_failure << "\n\n"
    << "[dns]\n"
    << "# bind = \"127.0.0.1:8600\"    # answers <daemon>.service.<cluster>. (A) and _<port>._tcp.<daemon>... (SRV)\n"
    << "ttl_s = " << d.dns.ttl_s << "                    # seconds resolvers may cache an answer\n\n"
    << "[secrets]\n"
    << "# cluster_key_file = \"cluster.secret\"  # opens secrets sealed --to-cluster (meshos-admin secret cluster-key)\n"
    << "# files_dir = \"/dev/shm/meshos\"      # secret_files go here, one directory per instance (default: /dev/shm/meshos-<node id>)\n";
  return o.str();
}

}  // namespace meshos::config
