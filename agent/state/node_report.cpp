#include "agent/state/node_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "proto/flat_message.h"
#include "proto/node_state.capnp.h"

namespace meshos::state {

namespace {

constexpr size_t kMaxCoordinateDims = 16;

proto::Maintenance toProto(Maintenance m) {
  switch (m) {
    case Maintenance::kActive: return proto::Maintenance::ACTIVE;
    case Maintenance::kDraining: return proto::Maintenance::DRAINING;
    case Maintenance::kInMaintenance: return proto::Maintenance::IN_MAINTENANCE;
  }
  return proto::Maintenance::ACTIVE;
}

Result<Maintenance> fromProto(proto::Maintenance m) {
  switch (m) {
    case proto::Maintenance::ACTIVE: return Maintenance::kActive;
    case proto::Maintenance::DRAINING: return Maintenance::kDraining;
    case proto::Maintenance::IN_MAINTENANCE: return Maintenance::kInMaintenance;
  }
  return Status::invalid("unknown maintenance state");
}

bool finite(double v) { return std::isfinite(v); }

}  // namespace

std::string_view maintenanceName(Maintenance m) {
  switch (m) {
    case Maintenance::kActive: return "active";
    case Maintenance::kDraining: return "draining";
    case Maintenance::kInMaintenance: return "in-maintenance";
  }
  return "?";
}

Bytes encodeNodeReport(const NodeReport& r) {
  capnp::MallocMessageBuilder msg;
  auto b = msg.initRoot<proto::NodeState>();
  b.setVersion(r.version);
  auto labels = b.initLabels(static_cast<unsigned>(r.labels.size()));
  unsigned i = 0;
  for (const auto& [k, v] : r.labels) {
    labels[i].setKey(k);
    labels[i].setValue(v);
    ++i;
  }
  auto caps = b.initCapabilities(static_cast<unsigned>(r.capabilities.size()));
  for (i = 0; i < r.capabilities.size(); ++i) caps.set(i, r.capabilities[i]);
  b.setCpuMillicores(r.cpu_millicores);
  b.setMemoryBytes(r.memory_bytes);
  b.setMaintenance(toProto(r.maintenance));
  b.setMaintenanceSeq(r.maintenance_seq);
  if (r.coordinate) {
    auto c = b.initCoordinate();
    auto vec = c.initVec(static_cast<unsigned>(r.coordinate->vec.size()));
    for (i = 0; i < r.coordinate->vec.size(); ++i) vec.set(i, r.coordinate->vec[i]);
    c.setHeight(r.coordinate->height);
    c.setAdjustment(r.coordinate->adjustment);
    c.setError(r.coordinate->error);
  }
  b.setCommitSeq(r.commit_seq);
  b.setCommitHash(capnp::Data::Reader(r.commit_hash.data(), r.commit_hash.size()));
  auto daemons = b.initDaemons(static_cast<unsigned>(r.daemons.size()));
  i = 0;
  for (const auto& [name, d] : r.daemons) {
    daemons[i].setName(name);
    daemons[i].setRunning(d.running);
    daemons[i].setReady(d.ready);
    daemons[i].setGeneration(d.generation);
    daemons[i].setReadySince(d.ready_since_ms);
    daemons[i].setVersion(d.version);
    daemons[i].setFailedVersion(d.failed_version);
    ++i;
  }
  auto inv = b.initInventory();
  inv.setCpuCount(r.inventory.cpu_count);
  inv.setLoad1(r.inventory.load1);
  inv.setMemoryTotalBytes(r.inventory.memory_total_bytes);
  inv.setMemoryUsedBytes(r.inventory.memory_used_bytes);
  inv.setDiskTotalBytes(r.inventory.disk_total_bytes);
  inv.setDiskUsedBytes(r.inventory.disk_used_bytes);
  inv.setArch(r.inventory.arch);
  inv.setOs(r.inventory.os);
  b.setInstances(r.instances);
  b.setReady(r.ready);
  b.setIsolated(r.isolated);
  b.setViewDigest(r.view_digest);
  b.setStorageFailing(r.storage_failing);
  if (!r.unhealthy.empty()) b.setUnhealthy(r.unhealthy);
  auto moves = b.initMoves(static_cast<unsigned>(r.moves.size()));
  i = 0;
  for (const auto& [daemon, to] : r.moves) {
    moves[i].setDaemon(daemon);
    moves[i].setTo(to);
    ++i;
  }
  return proto::flatBytes(msg);
}

namespace {

// Every name and label ends up in JSON (the members and placement views); one that is not
// UTF-8 would make rendering them fail on every node.
bool allTextUtf8(const NodeReport& r) {
  bool ok = isWireText(r.version) && isWireText(r.inventory.arch) && isWireText(r.inventory.os) && isWireText(r.unhealthy);
  for (const auto& [k, v] : r.labels) ok = ok && isWireText(k) && isWireText(v);
  for (const auto& c : r.capabilities) ok = ok && isWireText(c);
  for (const auto& [name, d] : r.daemons) ok = ok && isWireText(name);
  for (const auto& [daemon, to] : r.moves) ok = ok && isWireText(daemon) && isWireText(to);
  return ok;
}

}  // namespace

Result<NodeReport> decodeNodeReport(ByteView bytes) {
  return proto::readFlat(bytes, kMaxNodeReportBytes, "node state", [](capnp::FlatArrayMessageReader& reader) -> Result<NodeReport> {
    auto m = reader.getRoot<proto::NodeState>();
    NodeReport r;
    r.version = m.getVersion();
    for (auto l : m.getLabels()) r.labels[l.getKey()] = l.getValue();
    for (auto c : m.getCapabilities()) r.capabilities.emplace_back(c);
    if (!std::is_sorted(r.capabilities.begin(), r.capabilities.end()) ||
        std::adjacent_find(r.capabilities.begin(), r.capabilities.end()) != r.capabilities.end()) {
      return Status::invalid("node state capabilities are not sorted and unique");
    }
    r.cpu_millicores = m.getCpuMillicores();
    r.memory_bytes = m.getMemoryBytes();
    if (r.cpu_millicores < 0 || r.memory_bytes < 0) return Status::invalid("node state has a negative capacity");
    auto maint = fromProto(m.getMaintenance());
    if (!maint) return maint.status();
    r.maintenance = *maint;
    r.maintenance_seq = m.getMaintenanceSeq();
    if (m.hasCoordinate()) {
      auto c = m.getCoordinate();
      Coordinate coord;
      if (c.getVec().size() > kMaxCoordinateDims) return Status::invalid("node state coordinate has too many dimensions");
      for (double v : c.getVec()) coord.vec.push_back(v);
      coord.height = c.getHeight();
      coord.adjustment = c.getAdjustment();
      coord.error = c.getError();
      bool ok = finite(coord.height) && finite(coord.adjustment) && finite(coord.error) && coord.height >= 0;
      for (double v : coord.vec) ok = ok && finite(v);
      if (!ok) return Status::invalid("node state coordinate is not finite");
      r.coordinate = std::move(coord);
    }
    r.commit_seq = m.getCommitSeq();
    auto hash = m.getCommitHash();
    if (hash.size() != 0 && hash.size() != 32) return Status::invalid("node state commit hash is not 32 bytes");
    r.commit_hash.assign(hash.begin(), hash.end());
    for (auto d : m.getDaemons()) {
      std::string name = d.getName();
      if (name.empty()) return Status::invalid("node state daemon without a name");
      if (d.getReady() > d.getRunning()) return Status::invalid("node state daemon " + name + " has more ready than running");
      if (d.getReadySince() < 0) return Status::invalid("node state daemon " + name + " ready since a negative time");
      auto [it, fresh] = r.daemons.emplace(name, DaemonReport{d.getRunning(), d.getReady(), d.getGeneration(), d.getReadySince(), d.getVersion(), d.getFailedVersion()});
      if (!fresh) return Status::invalid("node state lists daemon " + name + " twice");
    }
    auto inv = m.getInventory();
    r.inventory.cpu_count = inv.getCpuCount();
    r.inventory.load1 = inv.getLoad1();
    r.inventory.memory_total_bytes = inv.getMemoryTotalBytes();
    r.inventory.memory_used_bytes = inv.getMemoryUsedBytes();
    r.inventory.disk_total_bytes = inv.getDiskTotalBytes();
    r.inventory.disk_used_bytes = inv.getDiskUsedBytes();
    r.inventory.arch = inv.getArch();
    r.inventory.os = inv.getOs();
    if (!finite(r.inventory.load1)) return Status::invalid("node state load is not finite");
    r.instances = m.getInstances();
    r.ready = m.getReady();
    r.isolated = m.getIsolated();
    r.view_digest = m.getViewDigest();
    r.storage_failing = m.getStorageFailing();
    r.unhealthy = std::string(m.getUnhealthy().cStr(), m.getUnhealthy().size());
    if (m.getMoves().size() > kMaxReportMoves) return Status::invalid("node state has too many moves");
    for (auto mv : m.getMoves()) {
      std::string daemon = mv.getDaemon(), to = mv.getTo();
      if (daemon.empty() || to.empty()) return Status::invalid("node state move without a daemon or a target");
      if (!r.moves.emplace(daemon, to).second) return Status::invalid("node state moves daemon " + daemon + " twice");
    }
    if (!allTextUtf8(r)) return Status::invalid("node state text is not UTF-8 or holds a NUL");
    return r;
  });
}

std::string versionText(uint64_t version) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(version));
  return buf;
}

nlohmann::json nodeReportToJson(const NodeReport& r) {
  nlohmann::json j = {{"version", r.version},
                      {"labels", r.labels},
                      {"capabilities", r.capabilities},
                      {"cpu_millicores", r.cpu_millicores},
                      {"memory_bytes", r.memory_bytes},
                      {"maintenance", maintenanceName(r.maintenance)},
                      {"maintenance_seq", r.maintenance_seq},
                      {"commit_head", {{"seq", r.commit_seq}, {"hash", toHex(r.commit_hash)}}},
                      {"instances", r.instances},
                      {"ready", r.ready},
                      {"isolated", r.isolated},
                      {"storage_failing", r.storage_failing},
                      {"unhealthy", r.unhealthy}};
  if (r.coordinate) {
    j["coordinate"] = {{"vec", r.coordinate->vec}, {"height", r.coordinate->height},
                       {"adjustment", r.coordinate->adjustment}, {"error", r.coordinate->error}};
  }
  nlohmann::json daemons = nlohmann::json::object();
  for (const auto& [name, d] : r.daemons) {
    daemons[name] = {{"running", d.running}, {"ready", d.ready}, {"generation", d.generation}};
    if (d.ready_since_ms > 0) daemons[name]["ready_since_ms"] = d.ready_since_ms;
    if (d.version != 0) daemons[name]["version"] = versionText(d.version);
    if (d.failed_version != 0) daemons[name]["failed_version"] = versionText(d.failed_version);
  }
  j["daemons"] = std::move(daemons);
  if (!r.moves.empty()) j["moves"] = r.moves;
  j["view_digest"] = r.view_digest;
  const auto& inv = r.inventory;
  j["inventory"] = {{"cpu_count", inv.cpu_count}, {"load1", inv.load1},
                    {"memory_total_bytes", inv.memory_total_bytes}, {"memory_used_bytes", inv.memory_used_bytes},
                    {"disk_total_bytes", inv.disk_total_bytes}, {"disk_used_bytes", inv.disk_used_bytes},
                    {"arch", inv.arch}, {"os", inv.os}};
  return j;
}

namespace {

bool usedMoved(int64_t published, int64_t now, int64_t total) {
  if (total <= 0) return published != now;
  return static_cast<double>(std::llabs(now - published)) >= kReportUsedFractionStep * static_cast<double>(total);
}

bool coordinateMoved(const std::optional<Coordinate>& published, const std::optional<Coordinate>& now) {
  if (published.has_value() != now.has_value()) return true;
  if (!now) return false;
  if (published->vec.size() != now->vec.size()) return true;
  double sq = 0;
  for (size_t i = 0; i < now->vec.size(); ++i) sq += (now->vec[i] - published->vec[i]) * (now->vec[i] - published->vec[i]);
  const double moved = std::sqrt(sq) + std::fabs(now->height - published->height) +
                       std::fabs(now->adjustment - published->adjustment);
  return moved >= kReportCoordinateStepMs;
}

}  // namespace

ReportChange reportChange(const NodeReport& published, const NodeReport& now) {
  // Compare everything with the live measurements taken from `published`, then those alone.
  NodeReport same = now;
  same.coordinate = published.coordinate;
  same.inventory.load1 = published.inventory.load1;
  same.inventory.memory_used_bytes = published.inventory.memory_used_bytes;
  same.inventory.disk_used_bytes = published.inventory.disk_used_bytes;
  if (!(same == published)) return ReportChange::kOther;
  const Inventory& a = published.inventory;
  const Inventory& b = now.inventory;
  const bool moved = std::fabs(b.load1 - a.load1) >= kReportLoadStep * std::max<uint32_t>(b.cpu_count, 1) ||
                     usedMoved(a.memory_used_bytes, b.memory_used_bytes, b.memory_total_bytes) ||
                     usedMoved(a.disk_used_bytes, b.disk_used_bytes, b.disk_total_bytes) ||
                     coordinateMoved(published.coordinate, now.coordinate);
  return moved ? ReportChange::kMeasurements : ReportChange::kNone;
}

int64_t measurementsRepublishMs(size_t members) {
  return std::max<int64_t>(kMeasurementsRepublishMinMs, static_cast<int64_t>(members) * kClusterMeasurementsPeriodMs);
}

}  // namespace meshos::state
