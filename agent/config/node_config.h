// NodeConfig: node.toml, parsed and validated. Every key has a default except where the
// README says otherwise; loadNodeConfig() either returns a complete, valid config or one
// error that names the file, the line and the key ("node.toml:7: gossip.bind: ...").
// A value type; built once by main() and copied into the components that need parts of it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/status.h"

namespace meshos::config {

struct HostPort {
  std::string host;  // IP literal or host name (IPv6 without brackets)
  uint16_t port = 0;
  std::string toString() const;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// "1.2.3.4:7946", "[::1]:7946", "host.example:7946". Port 0 is allowed only when
// allow_port_zero (bind addresses: the OS picks a port).
Result<HostPort> parseHostPort(std::string_view text, bool allow_port_zero);

struct NodeSection {
  std::string name;                       // default: the host name
  std::filesystem::path data_dir = "/var/lib/meshos";
  std::map<std::string, std::string> labels;
  int64_t tick_interval_ms = 500;         // 10 .. 60000
  std::vector<std::string> capabilities;  // [A-Za-z0-9._:-]{1,64}; detected ones are added
  int64_t cpu_millicores = 0;             // 0 .. 10^8; 0: detected (CPU count x 1000)
  int64_t memory_bytes = 0;               // 0 .. 2^50; 0: detected (host memory)
  int64_t handoff_deadline_ms = 60'000;   // 1000 .. 3600000: make-before-break gives up after this
  bool operator==(const NodeSection&) const = default;
};

struct GossipSection {
  std::string cluster = "meshos";         // [A-Za-z0-9._-]{1,64}
  HostPort bind{"0.0.0.0", 7946};
  std::optional<HostPort> advertise;
  std::vector<HostPort> seeds;
  std::optional<std::filesystem::path> keyring;
  // Timings (memberlist's LAN defaults). Cross-checks (timeout < interval, budgets within
  // the packet) are made by the gossip options when the agent starts.
  int64_t probe_interval_ms = 1000;       // 10 .. 600000
  int64_t probe_timeout_ms = 500;         // 1 .. 600000
  int64_t indirect_checks = 3;            // 0 .. 16
  int64_t gossip_interval_ms = 200;       // 1 .. 600000
  int64_t gossip_nodes = 3;               // 1 .. 32
  int64_t suspicion_mult = 3;             // 1 .. 32
  int64_t retransmit_mult = 4;            // 1 .. 32
  int64_t push_pull_interval_ms = 30000;  // 1 .. 3600000
  int64_t max_packet_bytes = 1400;        // 512 .. 65000
  bool operator==(const GossipSection&) const = default;
};

struct ControlSection {
  std::filesystem::path socket = "/run/meshos/agent.sock";
  uint32_t mode = 0660;                   // written as an octal string, "0660"
  // Who may read, operate and administer through the socket: "*" (anyone who can open
  // it), a user ("alice", "1001") or a group ("%ops", "%1001"). Resolved to ids at start.
  std::vector<std::string> readers = {"*"};
  std::vector<std::string> operators;
  std::vector<std::string> admins;
  // The HTTP endpoint (/metrics, /v1/, /v1/events, the status page); off when unset.
  std::optional<HostPort> http;
  bool operator==(const ControlSection&) const = default;
};

struct TrustSection {
  std::vector<std::string> admins;        // base64 ed25519 public keys (validated)
  int64_t threshold = 1;                  // 1 .. max(1, admins)
  bool operator==(const TrustSection&) const = default;
};

struct ExecutorSection {
  int64_t queue_capacity = 1024;          // 1 .. 1000000
  int64_t action_deadline_ms = 30000;     // 100 .. 3600000
  int64_t max_attempts = 5;               // 1 .. 100: tries per action before it fails
  int64_t retry_initial_ms = 200;         // 1 .. 600000
  int64_t retry_max_ms = 10000;           // retry_initial_ms .. 3600000
  bool operator==(const ExecutorSection&) const = default;
};

struct RuntimeSection {
  std::optional<std::filesystem::path> local;  // a file of [[daemon]] tables
  // cgroup v2 sub-tree for this agent's instances, under the cgroup root: a relative path of
  // [A-Za-z0-9._-] segments, no "." or ".." (several agents on one host: one each).
  std::string cgroup_parent = "meshos";
  // The OCI runtime binary for `runtime = "oci"` daemons (runc or crun): a name in PATH
  // or an absolute path.
  std::string oci = "runc";
  bool operator==(const RuntimeSection&) const = default;
};

struct LogSection {
  std::string level = "info";             // trace debug info warn error off
  std::string format = "text";            // text json
  bool operator==(const LogSection&) const = default;
};

struct ProbesSection {
  int64_t inventory_interval_ms = 5000;   // 500 .. 3600000
  bool operator==(const ProbesSection&) const = default;
};

struct PlacementSection {                 // rebalancing on live load (docs/PLACEMENT.md)
  bool rebalance = true;                  // move instances off hot nodes, slowly
  int64_t rebalance_interval_ms = 10'000; // 1000 .. 3600000: how often loads are compared
  int64_t rebalance_cooldown_ms = 300'000;  // 0 .. 86400000: per daemon, between two moves
  int64_t rebalance_hysteresis_percent = 25;  // 1 .. 400: load difference a move needs
  bool operator==(const PlacementSection&) const = default;
};

struct ChainsSection {
  int64_t checkpoint_every = 1000;        // 1 .. 1000000: sign a checkpoint every K records
  int64_t max_records_audit = 0;          // 0 (keep all) or 1000 .. 10^12
  int64_t max_records_log = 1'000'000;
  int64_t max_records_failure = 1'000'000;
  bool operator==(const ChainsSection&) const = default;
};

// DNS for discovery (docs/DISCOVERY.md): <daemon>.service.<cluster>. and SRV records of
// the ready instances, over UDP; off when bind is unset.
struct DnsSection {
  std::optional<HostPort> bind;
  int64_t ttl_s = 5;                      // 0 .. 3600: short, so a moved replica leaves caches soon
  bool operator==(const DnsSection&) const = default;
};

// Sealed secrets (docs/SECRETS.md). Secrets sealed to this node open with its node key;
// those sealed to the cluster need the cluster key file.
struct SecretsSection {
  std::optional<std::filesystem::path> cluster_key_file;  // meshos-admin secret cluster-key
  // Where `secret_files` are written, one directory per instance; "" = /dev/shm/meshos-<node
  // id> (memory, never the disk). Never under data_dir.
  std::optional<std::filesystem::path> files_dir;
  bool operator==(const SecretsSection&) const = default;
};

struct NodeConfig {
  std::filesystem::path source;           // the file it came from ("" for defaults)
  NodeSection node;
  GossipSection gossip;
  ControlSection control;
  TrustSection trust;
  ExecutorSection executor;
  RuntimeSection runtime;
  LogSection log;
  ProbesSection probes;
  PlacementSection placement;
  ChainsSection chains;
  DnsSection dns;
  SecretsSection secrets;
};

// Reads and validates a file. Errors: kNotFound (missing file), kInvalidArgument (syntax,
// unknown key, wrong type, out-of-range value), with "<file>:<line>: <key>: <what>".
Result<NodeConfig> loadNodeConfig(const std::filesystem::path& path);
// The same for text already in memory; source_name is used in messages.
Result<NodeConfig> parseNodeConfig(std::string_view text, std::string_view source_name);

// A commented node.toml holding every key at its default (what `meshos-agent
// --print-default-config` writes), with data_dir and socket set as given.
std::string defaultConfigText(const std::string& name, const std::filesystem::path& data_dir,
                              const std::filesystem::path& socket);

}  // namespace meshos::config
