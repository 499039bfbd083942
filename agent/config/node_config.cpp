#include "agent/config/node_config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <tuple>
#include <sstream>
#include <toml++/toml.h>

#include "agent/core/crypto.h"
#include "agent/core/logging.h"

namespace meshos::config {

namespace {

// Reads typed values out of toml tables; every error names the file, line and key.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  Status error(const toml::node* n, std::string_view key, std::string_view what) const {
    std::string m(source_);
    if (n != nullptr && n->source().begin.line > 0) m += ":" + std::to_string(n->source().begin.line);
    m += ": ";
    m += key;
    m += ": ";
    m += what;
    return Status::invalid(std::move(m));
  }

  Status onlyKeys(const toml::table& t, std::string_view section,
                  std::initializer_list<std::string_view> allowed) const {
    for (auto&& [k, v] : t) {
      bool known = false;
      for (auto a : allowed) known = known || a == k.str();
      if (!known) {
        std::string key = section.empty() ? std::string(k.str())
                                          : std::string(section) + "." + std::string(k.str());
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return error(&v, key, "unknown key (known keys here: " + list + ")");
      }
    }
    return Status::ok();
  }

  static std::string path(std::string_view section, std::string_view key) {
    return std::string(section) + "." + std::string(key);
  }

  // Leaves out untouched when the key is absent.
  Status str(const toml::table& t, std::string_view section, std::string_view key,
             std::string& out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return Status::ok();
    if (!n->is_string()) return error(n, path(section, key), "expected a string");
    out = n->as_string()->get();
    return Status::ok();
  }

  Status boolean(const toml::table& t, std::string_view section, std::string_view key, bool& out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return Status::ok();
    if (!n->is_boolean()) return error(n, path(section, key), "expected true or false");
    out = n->as_boolean()->get();
    return Status::ok();
  }

  Status integer(const toml::table& t, std::string_view section, std::string_view key,
                 int64_t& out, int64_t lo, int64_t hi) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return Status::ok();
    if (!n->is_integer()) return error(n, path(section, key), "expected an integer");
    int64_t v = n->as_integer()->get();
    if (v < lo || v > hi) {
      return error(n, path(section, key),
                   "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                       ", got " + std::to_string(v));
    }
    out = v;
    return Status::ok();
  }

  Status hostPort(const toml::table& t, std::string_view section, std::string_view key,
                  bool allow_port_zero, std::optional<HostPort>& out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return Status::ok();
    if (!n->is_string()) return error(n, path(section, key), "expected a \"host:port\" string");
    auto hp = parseHostPort(n->as_string()->get(), allow_port_zero);
    if (!hp) return error(n, path(section, key), hp.status().message());
    out = *hp;
    return Status::ok();
  }

  Status stringList(const toml::table& t, std::string_view section, std::string_view key,
                    std::vector<std::pair<std::string, const toml::node*>>& out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return Status::ok();
    if (!n->is_array()) return error(n, path(section, key), "expected an array of strings");
    out.clear();
    size_t i = 0;
    for (const toml::node& e : *n->as_array()) {
      if (!e.is_string()) {
        return error(&e, path(section, key) + "[" + std::to_string(i) + "]", "expected a string");
      }
      out.emplace_back(e.as_string()->get(), &e);
      ++i;
    }
    return Status::ok();
  }

  Result<const toml::table*> section(const toml::table& root, std::string_view name) const {
    const toml::node* n = root.get(name);
    if (n == nullptr) return static_cast<const toml::table*>(nullptr);
    if (!n->is_table()) return error(n, name, "expected a table ([" + std::string(name) + "])");
    return n->as_table();
  }

 private:
  std::string source_;
};

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

Status readNode(const Reader& r, const toml::table* t, NodeSection& s) {
  s.name = hostName();
  if (t == nullptr) return Status::ok();
  MESHOS_RETURN_IF_ERROR(r.onlyKeys(*t, "node", {"name", "data_dir", "labels", "tick_interval_ms", "capabilities",
                                                 "cpu_millicores", "memory_bytes", "handoff_deadline_ms"}));
  MESHOS_RETURN_IF_ERROR(r.str(*t, "node", "name", s.name));
  if (!validNodeName(s.name)) {
    return r.error(t->get("name"), "node.name",
                   "must be 1-64 characters of letters, digits, '.', '_' or '-'");
  }
  std::string dir = s.data_dir.string();
  MESHOS_RETURN_IF_ERROR(r.str(*t, "node", "data_dir", dir));
  if (dir.empty()) return r.error(t->get("data_dir"), "node.data_dir", "must not be empty");
  s.data_dir = dir;
  MESHOS_RETURN_IF_ERROR(r.integer(*t, "node", "tick_interval_ms", s.tick_interval_ms, 10, 60000));
  MESHOS_RETURN_IF_ERROR(r.integer(*t, "node", "cpu_millicores", s.cpu_millicores, 0, 100'000'000));
  MESHOS_RETURN_IF_ERROR(r.integer(*t, "node", "memory_bytes", s.memory_bytes, 0, int64_t{1} << 50));
  MESHOS_RETURN_IF_ERROR(
      r.integer(*t, "node", "handoff_deadline_ms", s.handoff_deadline_ms, 1000, 3'600'000));
  std::vector<std::pair<std::string, const toml::node*>> caps;
  MESHOS_RETURN_IF_ERROR(r.stringList(*t, "node", "capabilities", caps));
  for (const auto& [c, n] : caps) {
    bool ok = !c.empty() && c.size() <= 64 && std::all_of(c.begin(), c.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-' || ch == ':';
    });
    if (!ok) {
      return r.error(n, "node.capabilities",
                     "\"" + c + "\": a capability is 1-64 characters of letters, digits, '.', '_', '-' or ':'");
    }
    s.capabilities.push_back(c);
  }
  if (const toml::node* n = t->get("labels")) {
    if (!n->is_table()) return r.error(n, "node.labels", "expected a table of strings");
    for (auto&& [k, v] : *n->as_table()) {
      std::string key = "node.labels." + std::string(k.str());
      if (!v.is_string()) return r.error(&v, key, "expected a string");
      if (k.str().empty() || k.str().size() > 63) {
        return r.error(&v, key, "label names must be 1-63 characters");
      }
      s.labels[std::string(k.str())] = v.as_string()->get();
    }
  }
  return Status::ok();
}

Status readGossip(const Reader& r, const toml::table* t, GossipSection& s) {
  if (t == nullptr) return Status::ok();
  MESHOS_RETURN_IF_ERROR(
      r.onlyKeys(*t, "gossip", {"cluster", "bind", "advertise", "seeds", "keyring", "probe_interval_ms",
                                "probe_timeout_ms", "indirect_checks", "gossip_interval_ms",
                                "gossip_nodes", "suspicion_mult", "retransmit_mult",
                                "push_pull_interval_ms", "max_packet_bytes"}));
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
    MESHOS_RETURN_IF_ERROR(r.integer(*t, "gossip", key, *field, lo, hi));
  }
  if (s.probe_timeout_ms >= s.probe_interval_ms) {
    const toml::node* n = t->get("probe_timeout_ms") ? t->get("probe_timeout_ms") : t->get("probe_interval_ms");
    return r.error(n, "gossip.probe_timeout_ms", "must be less than gossip.probe_interval_ms (" +
                                                    std::to_string(s.probe_interval_ms) + ")");
  }
  MESHOS_RETURN_IF_ERROR(r.str(*t, "gossip", "cluster", s.cluster));
  if (!validClusterName(s.cluster)) {
    return r.error(t->get("cluster"), "gossip.cluster",
                   "must be 1-64 characters of letters, digits, '.', '_' or '-'");
  }
  std::optional<HostPort> bind;
  MESHOS_RETURN_IF_ERROR(r.hostPort(*t, "gossip", "bind", true, bind));
  if (bind) {
    in6_addr a6{};
    in_addr a4{};
    if (inet_pton(AF_INET, bind->host.c_str(), &a4) != 1 &&
        inet_pton(AF_INET6, bind->host.c_str(), &a6) != 1) {
      return r.error(t->get("bind"), "gossip.bind", "the host must be an IP address");
    }
    s.bind = *bind;
  }
  MESHOS_RETURN_IF_ERROR(r.hostPort(*t, "gossip", "advertise", false, s.advertise));
  std::vector<std::pair<std::string, const toml::node*>> seeds;
  MESHOS_RETURN_IF_ERROR(r.stringList(*t, "gossip", "seeds", seeds));
  for (size_t i = 0; i < seeds.size(); ++i) {
    auto hp = parseHostPort(seeds[i].first, false);
    if (!hp) {
      return r.error(seeds[i].second, "gossip.seeds[" + std::to_string(i) + "]",
                     hp.status().message());
    }
    s.seeds.push_back(*hp);
  }
  std::string keyring;
  MESHOS_RETURN_IF_ERROR(r.str(*t, "gossip", "keyring", keyring));
  if (t->get("keyring") != nullptr) {
    if (keyring.empty()) return r.error(t->get("keyring"), "gossip.keyring", "must not be empty");
    s.keyring = keyring;
  }
  return Status::ok();
}

Status readControl(const Reader& r, const toml::table* t, ControlSection& s) {
  if (t == nullptr) return Status::ok();
  MESHOS_RETURN_IF_ERROR(r.onlyKeys(*t, "control", {"socket", "mode", "metrics_http"}));
  std::string socket = s.socket.string();
  MESHOS_RETURN_IF_ERROR(r.str(*t, "control", "socket", socket));
  // sockaddr_un holds 108 bytes including the NUL.
  if (socket.empty() || socket.size() > 107) {
    return r.error(t->get("socket"), "control.socket", "must be a path of 1-107 characters");
  }
  s.socket = socket;
  if (const toml::node* n = t->get("mode")) {
    if (!n->is_string()) {
      return r.error(n, "control.mode", "expected an octal string such as \"0660\"");
    }
    const std::string& m = n->as_string()->get();
    char* end = nullptr;
    unsigned long v = std::strtoul(m.c_str(), &end, 8);
    if (m.empty() || *end != '\0' || v > 0777) {
      return r.error(n, "control.mode", "expected an octal mode from \"0000\" to \"0777\", got \"" + m + "\"");
    }
    s.mode = static_cast<uint32_t>(v);
  }
  MESHOS_RETURN_IF_ERROR(r.hostPort(*t, "control", "metrics_http", true, s.metrics_http));
  return Status::ok();
}

Status readTrust(const Reader& r, const toml::table* t, TrustSection& s) {
  if (t == nullptr) return Status::ok();
  MESHOS_RETURN_IF_ERROR(r.onlyKeys(*t, "trust", {"admins", "threshold"}));
  std::vector<std::pair<std::string, const toml::node*>> admins;
  MESHOS_RETURN_IF_ERROR(r.stringList(*t, "trust", "admins", admins));
  for (size_t i = 0; i < admins.size(); ++i) {
    std::string key = "trust.admins[" + std::to_string(i) + "]";
    auto pk = publicKeyFromBase64(admins[i].first);
    if (!pk) return r.error(admins[i].second, key, pk.status().message());
    for (const auto& prev : s.admins) {
      if (prev == admins[i].first) return r.error(admins[i].second, key, "listed twice");
    }
    s.admins.push_back(admins[i].first);
  }
  int64_t max_threshold = std::max<int64_t>(1, static_cast<int64_t>(s.admins.size()));
  MESHOS_RETURN_IF_ERROR(r.integer(*t, "trust", "threshold", s.threshold, 1, max_threshold));
  return Status::ok();
}

Status readExecutor(const Reader& r, const toml::table* t, ExecutorSection& s) {
  if (t == nullptr) return Status::ok();
  MESHOS_RETURN_IF_ERROR(r.onlyKeys(*t, "executor",
                                    {"queue_capacity", "action_deadline_ms", "max_attempts",
                                     "retry_initial_ms", "retry_max_ms"}));
  MESHOS_RETURN_IF_ERROR(r.integer(*t, "executor", "queue_capacity", s.queue_capacity, 1, 1'000'000));
  MESHOS_RETURN_IF_ERROR(
      r.integer(*t, "executor", "action_deadline_ms", s.action_deadline_ms, 100, 3'600'000));
  MESHOS_RETURN_IF_ERROR(r.integer(*t, "executor", "max_attempts", s.max_attempts, 1, 100));
  MESHOS_RETURN_IF_ERROR(
      r.integer(*t, "executor", "retry_initial_ms", s.retry_initial_ms, 1, 600'000));
  MESHOS_RETURN_IF_ERROR(
      r.integer(*t, "executor", "retry_max_ms", s.retry_max_ms, s.retry_initial_ms, 3'600'000));
  return Status::ok();
}

Status readRuntime(const Reader& r, const toml::table* t, RuntimeSection& s) {
  if (t == nullptr) return Status::ok();
  MESHOS_RETURN_IF_ERROR(r.onlyKeys(*t, "runtime", {"local", "cgroup_parent"}));
  std::string local;
  MESHOS_RETURN_IF_ERROR(r.str(*t, "runtime", "local", local));
  if (t->get("local") != nullptr) {
    if (local.empty()) return r.error(t->get("local"), "runtime.local", "must not be empty");
    s.local = local;
  }
  MESHOS_RETURN_IF_ERROR(r.str(*t, "runtime", "cgroup_parent", s.cgroup_parent));
  {
    // Segments of [A-Za-z0-9._-], separated by single '/', none "." or "..".
    const std::string& p = s.cgroup_parent;
    std::string why;
    if (p.empty()) why = "must not be empty";
    if (p.size() > 255) why = "must be at most 255 characters";
    size_t start = 0;
    while (why.empty() && start <= p.size()) {
      size_t end = p.find('/', start);
      if (end == std::string::npos) end = p.size();
      const std::string seg = p.substr(start, end - start);
      if (seg.empty()) {
        why = "must be a relative path without empty segments (no leading, trailing or double '/')";
      } else if (seg == "." || seg == "..") {
        why = "must not contain '.' or '..' segments";
      } else {
        for (char ch : seg) {
          const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
          if (!ok) {
            why = "segments may use only A-Z a-z 0-9 . _ -";
            break;
          }
        }
      }
      start = end + 1;
    }
    if (!why.empty()) {
      return r.error(t->get("cgroup_parent"), "runtime.cgroup_parent",
                     why + ", got \"" + p + "\"");
    }
  }
  return Status::ok();
}

Status readLog(const Reader& r, const toml::table* t, LogSection& s) {
  if (t == nullptr) return Status::ok();
  MESHOS_RETURN_IF_ERROR(r.onlyKeys(*t, "log", {"level", "format"}));
  MESHOS_RETURN_IF_ERROR(r.str(*t, "log", "level", s.level));
  if (auto lvl = parseLogLevel(s.level); !lvl) {
    return r.error(t->get("level"), "log.level", lvl.status().message());
  }
  MESHOS_RETURN_IF_ERROR(r.str(*t, "log", "format", s.format));
  if (s.format != "text" && s.format != "json") {
    return r.error(t->get("format"), "log.format", "must be \"text\" or \"json\", got \"" + s.format + "\"");
  }
  return Status::ok();
}

Status readProbes(const Reader& r, const toml::table* t, ProbesSection& s) {
  if (t == nullptr) return Status::ok();
  MESHOS_RETURN_IF_ERROR(r.onlyKeys(*t, "probes", {"inventory_interval_ms"}));
  MESHOS_RETURN_IF_ERROR(
      r.integer(*t, "probes", "inventory_interval_ms", s.inventory_interval_ms, 500, 3'600'000));
  return Status::ok();
}

Status readPlacement(const Reader& r, const toml::table* t, PlacementSection& s) {
  if (t == nullptr) return Status::ok();
  MESHOS_RETURN_IF_ERROR(r.onlyKeys(*t, "placement", {"rebalance", "rebalance_interval_ms", "rebalance_cooldown_ms",
                                                      "rebalance_hysteresis_percent"}));
  MESHOS_RETURN_IF_ERROR(r.boolean(*t, "placement", "rebalance", s.rebalance));
  MESHOS_RETURN_IF_ERROR(
      r.integer(*t, "placement", "rebalance_interval_ms", s.rebalance_interval_ms, 1000, 3'600'000));
  MESHOS_RETURN_IF_ERROR(
      r.integer(*t, "placement", "rebalance_cooldown_ms", s.rebalance_cooldown_ms, 0, 86'400'000));
  MESHOS_RETURN_IF_ERROR(
      r.integer(*t, "placement", "rebalance_hysteresis_percent", s.rebalance_hysteresis_percent, 1, 400));
  return Status::ok();
}

Status readChains(const Reader& r, const toml::table* t, ChainsSection& s) {
  if (t == nullptr) return Status::ok();
  MESHOS_RETURN_IF_ERROR(r.onlyKeys(
      *t, "chains", {"checkpoint_every", "max_records_audit", "max_records_log", "max_records_failure"}));
  MESHOS_RETURN_IF_ERROR(r.integer(*t, "chains", "checkpoint_every", s.checkpoint_every, 1, 1'000'000));
  for (auto [key, field] : {std::pair{"max_records_audit", &s.max_records_audit},
                            std::pair{"max_records_log", &s.max_records_log},
                            std::pair{"max_records_failure", &s.max_records_failure}}) {
    MESHOS_RETURN_IF_ERROR(r.integer(*t, "chains", key, *field, 0, 1'000'000'000'000));
    if (*field != 0 && *field < 1000) {
      return r.error(t->get(key), std::string("chains.") + key,
                     "must be 0 (keep every record) or at least 1000, got " + std::to_string(*field));
    }
  }
  return Status::ok();
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
  Reader r(source_name);
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
  MESHOS_RETURN_IF_ERROR(r.onlyKeys(root, "", {"node", "gossip", "control", "trust", "executor",
                                               "runtime", "log", "probes", "placement", "chains"}));
#define MESHOS_SECTION(name, reader, field)          \
  {                                                  \
    auto t = r.section(root, name);                  \
    if (!t) return t.status();                       \
    MESHOS_RETURN_IF_ERROR(reader(r, *t, c.field));  \
  }
  MESHOS_SECTION("node", readNode, node)
  MESHOS_SECTION("gossip", readGossip, gossip)
  MESHOS_SECTION("control", readControl, control)
  MESHOS_SECTION("trust", readTrust, trust)
  MESHOS_SECTION("executor", readExecutor, executor)
  MESHOS_SECTION("runtime", readRuntime, runtime)
  MESHOS_SECTION("log", readLog, log)
  MESHOS_SECTION("probes", readProbes, probes)
  MESHOS_SECTION("placement", readPlacement, placement)
  MESHOS_SECTION("chains", readChains, chains)
#undef MESHOS_SECTION
  // Relative paths in the file are relative to the file, so a cluster directory can move.
  auto base = std::filesystem::path(source_name).parent_path();
  auto anchor = [&](std::filesystem::path& p) {
    if (p.is_relative() && !base.empty()) p = base / p;
  };
  anchor(c.node.data_dir);
  anchor(c.control.socket);
  if (c.gossip.keyring) anchor(*c.gossip.keyring);
  if (c.runtime.local) anchor(*c.runtime.local);
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
  std::ostringstream o;
  o << "# node.toml: every key with its default. Relative paths are relative to this file.\n"
    << "[node]\n"
    << "name = \"" << name << "\"           # unique in the cluster; default: the host name\n"
    << "data_dir = \"" << data_dir.string() << "\"  # node key, RocksDB, runtime state\n"
    << "labels = {}                  # e.g. { zone = \"a\", disk = \"ssd\" }\n"
    << "tick_interval_ms = 500       # 10 .. 60000\n"
    << "capabilities = []            # offered to placement, e.g. [\"gpu\"]; arch:, os:, cpus: are added\n"
    << "cpu_millicores = 0           # capacity offered to placement; 0: the CPU count x 1000\n"
    << "memory_bytes = 0             # 0: the memory of the host\n"
    << "handoff_deadline_ms = 60000  # a moving instance stops after this even if its successor is not ready\n\n"
    << "[gossip]\n"
    << "cluster = \"meshos\"           # peers of another cluster are refused\n"
    << "bind = \"127.0.0.1:7946\"      # UDP and TCP; port 0 lets the OS choose\n"
    << "seeds = []                   # [\"10.0.0.1:7946\"]\n\n"
    << "[control]\n"
    << "socket = \"" << socket.string() << "\"\n"
    << "mode = \"0660\"\n\n"
    << "[trust]\n"
    << "admins = []                  # base64 ed25519 public keys (meshos-admin keygen)\n"
    << "threshold = 1\n\n"
    << "[executor]\n"
    << "queue_capacity = 1024        # 1 .. 1000000\n"
    << "action_deadline_ms = 30000\n"
    << "max_attempts = 5\n"
    << "retry_initial_ms = 200\n"
    << "retry_max_ms = 10000\n\n"
    << "[log]\n"
    << "level = \"info\"               # trace debug info warn error off\n"
    << "format = \"text\"              # text json\n\n"
    << "[probes]\n"
    << "inventory_interval_ms = 5000\n\n"
    << "[placement]\n"
    << "rebalance = true                   # move instances off hot nodes (load1 per CPU or memory)\n"
    << "rebalance_interval_ms = 10000      # how often loads are compared\n"
    << "rebalance_cooldown_ms = 300000     # per daemon, between two moves\n"
    << "rebalance_hysteresis_percent = 25  # hot minus cool load must exceed this\n\n"
    << "[chains]\n"
    << "checkpoint_every = 1000      # sign a checkpoint every K records\n"
    << "max_records_audit = 0        # 0 keeps every record\n"
    << "max_records_log = 1000000\n"
    << "max_records_failure = 1000000\n";
  return o.str();
}

}  // namespace meshos::config
