// Inventory: what this host has and how busy it is (CPU count and load, memory, disk of the
// data directory, architecture and OS), the capabilities it advertises, and the capacity it
// offers to placement.
//
// Two layers, as everywhere in meshos:
//   - pure parsers (parseLoadAvg, parseMemInfo, diskUsageFrom, ...) take the text or numbers
//     the kernel gave and return a value or an error naming what was wrong; tests feed them
//     malformed input;
//   - sampleInventory() does the I/O (sysconf, /proc/loadavg, /proc/meminfo, statvfs, uname).
//     It may block (statvfs on a hung mount), so the shell runs it off the loop thread
//     (InventoryProbe in inventory_probe.h does that) and posts the result back.
// Values only; any thread. docs/PROBES.md describes the formats and the naming.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"
#include "agent/state/node_report.h"

namespace meshos::probes {

// The agent's own version, as it is published in node state.
std::string_view softwareVersion();

struct LoadAvg {
  double load1 = 0, load5 = 0, load15 = 0;
};
// "/proc/loadavg": "0.52 0.58 0.59 1/1234 56789". The three averages must be finite,
// non-negative numbers; the rest of the line is ignored.
Result<LoadAvg> parseLoadAvg(std::string_view text);

struct MemInfo {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;
  int64_t usedBytes() const { return total_bytes - available_bytes; }
};
// "/proc/meminfo": needs "MemTotal:" and "MemAvailable:" lines, each "<n> kB". Missing
// lines, other units, garbage, values that overflow int64 bytes, a zero total or more
// available than total are errors.
Result<MemInfo> parseMemInfo(std::string_view text);

struct DiskUsage {
  int64_t total_bytes = 0;
  int64_t used_bytes = 0;
};
// From statvfs fields: total = blocks * frsize, used = (blocks - bfree) * frsize.
Result<DiskUsage> diskUsageFrom(uint64_t blocks, uint64_t bfree, uint64_t frsize);

// sysconf(_SC_NPROCESSORS_ONLN) -> a count in [1, 65536].
Result<uint32_t> cpuCountFrom(long online);

// uname fields -> the names we publish: os is sysname lower-cased ("linux"), arch is machine
// as the kernel says it ("x86_64", "aarch64"). Empty or non-printable names are errors.
Result<std::string> osNameFrom(std::string_view sysname);
Result<std::string> archNameFrom(std::string_view machine);

// Reads a small (procfs) file whole; files over max_bytes are an error.
Result<std::string> readSmallFile(const std::filesystem::path& path, size_t max_bytes = 64 * 1024);

// Samples everything. Any part that fails fails the whole sample, with the part named in
// the message ("/proc/meminfo: no MemAvailable line"); the caller keeps its last good one.
Result<state::Inventory> sampleInventory(const std::filesystem::path& data_dir);
// Same, with the procfs root moved (tests point it at a directory of fake files).
Result<state::Inventory> sampleInventory(const std::filesystem::path& data_dir,
                                         const std::filesystem::path& proc_root);

// The inventory as probe-sample values (state::ProbeSample::values), keyed by field name:
// cpu_count, load1, memory_total_bytes, memory_used_bytes, disk_total_bytes, disk_used_bytes.
std::map<std::string, double> inventoryValues(const state::Inventory& inventory);

// Capability names: 1..64 characters of [a-z0-9._:/=-], starting with a letter or digit.
// Config validates the configured ones with this.
Status validateCapability(std::string_view name);
// Prefixes only the agent sets; a configured capability with one of them is refused by
// config (a node cannot claim an architecture it does not have).
bool isDetectedCapability(std::string_view name);

// Sorted, unique: the configured capabilities (those with a detected prefix are dropped)
// plus "arch:<arch>", "os:<os>", "cpus:<n>" (each only when known) and what the node's
// runtime can run ("runtime:oci"; other entries of from_runtime are ignored).
std::vector<std::string> capabilitiesFor(const std::vector<std::string>& configured,
                                         const state::Inventory& inventory,
                                         const std::vector<std::string>& from_runtime = {});

// Capacity offered to placement (NodeReport.cpu_millicores / memory_bytes).
struct CapacityOverride {
  std::optional<int64_t> cpu_millicores;  // [node] cpu_millicores
  std::optional<int64_t> memory_bytes;    // [node] memory_bytes
};
struct Capacity {
  int64_t cpu_millicores = 0;  // 0 = unknown (placement treats it as offering nothing)
  int64_t memory_bytes = 0;
};
// cpu_millicores = cpu_count * 1000 and memory_bytes = memory_total_bytes, unless overridden.
Capacity capacityFor(const state::Inventory& inventory, const CapacityOverride& override_);

}  // namespace meshos::probes
