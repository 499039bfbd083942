// NodeReport: the node state each node disseminates about itself by gossip (DESIGN.md
// section 5): labels, capabilities and capacity for placement, the maintenance state, the
// network coordinate, the commit head, the commit daemons it runs (and how many are ready)
// and its inventory. Encoded with Cap'n Proto (proto/node_state.capnp); decoding is bounded
// and a malformed body is an error, never a crash. Values only; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/core/bytes.h"
#include "agent/core/status.h"

namespace meshos::state {

// Moves only forward: active -> draining -> in-maintenance; exit returns to active.
enum class Maintenance { kActive, kDraining, kInMaintenance };
std::string_view maintenanceName(Maintenance m);  // "active" | "draining" | "in-maintenance"

struct Coordinate {
  std::vector<double> vec;  // milliseconds
  double height = 0;
  double adjustment = 0;
  double error = 0;
  friend bool operator==(const Coordinate&, const Coordinate&) = default;
};

struct Inventory {
  uint32_t cpu_count = 0;
  double load1 = 0;
  int64_t memory_total_bytes = 0, memory_used_bytes = 0;
  int64_t disk_total_bytes = 0, disk_used_bytes = 0;
  std::string arch, os;
  friend bool operator==(const Inventory&, const Inventory&) = default;
};

struct DaemonReport {
  uint32_t running = 0;
  uint32_t ready = 0;
  uint64_t generation = 0;  // the desired entry's updated_seq this node runs
  int64_t ready_since_ms = 0;  // wall clock: since when ready > 0 without a break; 0 when not
  uint64_t version = 0;         // the spec version it runs (reconcile::specVersion); 0: unknown
  uint64_t failed_version = 0;  // a version that missed its progress deadline here (rollouts)
  friend bool operator==(const DaemonReport&, const DaemonReport&) = default;
};

struct NodeReport {
  std::string version;
  std::map<std::string, std::string> labels;
  std::vector<std::string> capabilities;  // sorted, unique
  int64_t cpu_millicores = 0;             // capacity offered to placement; 0 = unknown
  int64_t memory_bytes = 0;
  Maintenance maintenance = Maintenance::kActive;
  uint64_t maintenance_seq = 0;
  std::optional<Coordinate> coordinate;
  uint64_t commit_seq = 0;
  Bytes commit_hash;  // 32 bytes, or empty for the empty log
  std::map<std::string, DaemonReport> daemons;  // commit daemons by name
  Inventory inventory;
  uint32_t instances = 0;
  uint32_t ready = 0;
  bool isolated = false;
  // Rebalancing on live load: daemon -> node id this node hands one instance of it to.
  // Published by the source only; every node applies it (placement::applyMoves).
  std::map<std::string, std::string> moves;
  // A digest of the placement view this node plans from (members alive and what
  // placement reads of their reports; reconcile::viewDigest). Nodes start new instances
  // only while a majority reports the digest they compute themselves.
  uint64_t view_digest = 0;
  // Its chain writes fail (disk full, an I/O error): it runs, degraded, and refuses the
  // requests it would have to audit.
  bool storage_failing = false;
  // Not "" while a critical daemon is quarantined here ("critical daemon db is quarantined:
  // ..."): placement puts nothing on the node meanwhile.
  std::string unhealthy;
  friend bool operator==(const NodeReport&, const NodeReport&) = default;
};

inline constexpr size_t kMaxNodeReportBytes = 256 * 1024;
inline constexpr size_t kMaxReportMoves = 1024;

// How `now` differs from `published`, the report the other nodes hold. Every field must
// match exactly except the live measurements (load, memory and disk in use, the network
// coordinate): they move a little with every sample, and each publish is a broadcast every
// node receives, so a cluster that republished them on every tick would never be idle.
// They count once they have moved far enough from the published value to matter to
// placement (kReportLoadStep...).
inline constexpr double kReportLoadStep = 0.1;          // load1 per CPU
inline constexpr double kReportUsedFractionStep = 0.02;  // memory or disk in use, of the total
inline constexpr double kReportCoordinateStepMs = 0.25;  // how far the coordinate moved
enum class ReportChange { kNone, kMeasurements, kOther };
ReportChange reportChange(const NodeReport& published, const NodeReport& now);

// How long a node waits after its last publish before it republishes measurements alone.
// Every member receives and passes on each publish, so the wait grows with the cluster:
// the cluster as a whole sends about one measurement broadcast per
// kClusterMeasurementsPeriodMs however many members it has, and each member's share of
// that traffic stays the same as the cluster grows. Rebalancing, the one reader of live
// load, waits minutes between moves (placement::RebalanceOptions::cooldown_ms).
inline constexpr int64_t kMeasurementsRepublishMinMs = 10'000;
inline constexpr int64_t kClusterMeasurementsPeriodMs = 3'000;
int64_t measurementsRepublishMs(size_t members);

// A spec version as people read it: 16 hex digits.
std::string versionText(uint64_t version);

Bytes encodeNodeReport(const NodeReport& report);
// Refuses bodies over kMaxNodeReportBytes, bad framing, out-of-range values.
Result<NodeReport> decodeNodeReport(ByteView bytes);
nlohmann::json nodeReportToJson(const NodeReport& report);

}  // namespace meshos::state
