#include "probes/inventory.h"

#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

namespace meshos::probes {

namespace {

constexpr uint32_t kMaxCpuCount = 65536;
constexpr size_t kMaxNameLength = 64;

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Splits on blanks; returns at most `max` fields.
std::vector<std::string_view> fields(std::string_view line, size_t max) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size() && out.size() < max) {
    while (i < line.size() && isSpace(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !isSpace(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::string quoted(std::string_view s) {
  constexpr size_t kShown = 40;
  std::string out = "\"";
  for (char c : s.substr(0, kShown)) {
    if (std::isprint(static_cast<unsigned char>(c)) != 0) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  if (s.size() > kShown) out += "...";
  return out + "\"";
}

Result<double> parseLoadField(std::string_view field, std::string_view what) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
  if (ec != std::errc() || ptr != field.data() + field.size()) {
    return Status::invalid(std::string(what) + " is not a number: " + quoted(field));
  }
  if (!std::isfinite(v) || v < 0) {
    return Status::invalid(std::string(what) + " is out of range: " + quoted(field));
  }
  return v;
}

// "<n> kB" after the colon of a /proc/meminfo line, in bytes.
Result<int64_t> parseKilobytes(std::string_view rest, std::string_view key) {
  auto f = fields(rest, 3);
  if (f.size() != 2) {
    return Status::invalid(std::string(key) + ": expected \"<n> kB\", got " + quoted(rest));
  }
  if (f[1] != "kB") {
    return Status::invalid(std::string(key) + ": unit " + quoted(f[1]) + " is not kB");
  }
  uint64_t kb = 0;
  auto [ptr, ec] = std::from_chars(f[0].data(), f[0].data() + f[0].size(), kb);
  if (ec == std::errc::result_out_of_range) {
    return Status::invalid(std::string(key) + ": " + quoted(f[0]) + " kB is too large");
  }
  if (ec != std::errc() || ptr != f[0].data() + f[0].size()) {
    return Status::invalid(std::string(key) + ": " + quoted(f[0]) + " is not a whole number");
  }
  if (kb > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / 1024) {
    return Status::invalid(std::string(key) + ": " + quoted(f[0]) + " kB overflows a byte count");
  }
  return static_cast<int64_t>(kb * 1024);
}

Result<std::string> printableName(std::string_view s, std::string_view what) {
  if (s.empty()) return Status::invalid(std::string(what) + " is empty");
  if (s.size() > kMaxNameLength) return Status::invalid(std::string(what) + " is too long: " + quoted(s));
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) == 0 && c != '_' && c != '-' && c != '.') {
      return Status::invalid(std::string(what) + " has an unexpected character: " + quoted(s));
    }
  }
  return std::string(s);
}

constexpr std::string_view kDetectedPrefixes[] = {"arch:", "os:", "cpus:", "runtime:"};

}  // namespace

std::string_view softwareVersion() { return MESHOS_VERSION; }

Result<LoadAvg> parseLoadAvg(std::string_view text) {
  auto f = fields(text.substr(0, text.find('\n')), 3);
  if (f.size() < 3) {
    return Status::invalid("loadavg: expected three load averages, got " + quoted(text));
  }
  LoadAvg out;
  auto l1 = parseLoadField(f[0], "loadavg: 1-minute load");
  if (!l1) return l1.status();
  auto l5 = parseLoadField(f[1], "loadavg: 5-minute load");
  if (!l5) return l5.status();
  auto l15 = parseLoadField(f[2], "loadavg: 15-minute load");
  if (!l15) return l15.status();
  out.load1 = *l1;
  out.load5 = *l5;
  out.load15 = *l15;
  return out;
}

Result<MemInfo> parseMemInfo(std::string_view text) {
  std::optional<int64_t> total, available;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // not a key line; meminfo has none, skip
    std::string_view key = line.substr(0, colon);
    std::optional<int64_t>* slot = nullptr;
    if (key == "MemTotal") slot = &total;
    if (key == "MemAvailable") slot = &available;
    if (slot == nullptr) continue;
    if (slot->has_value()) return Status::invalid("meminfo: " + std::string(key) + " appears twice");
    auto v = parseKilobytes(line.substr(colon + 1), "meminfo: " + std::string(key));
    if (!v) return v.status();
    *slot = *v;
  }
  if (!total) return Status::invalid("meminfo: no MemTotal line");
  if (!available) return Status::invalid("meminfo: no MemAvailable line");
  if (*total == 0) return Status::invalid("meminfo: MemTotal is 0");
  if (*available > *total) {
    return Status::invalid("meminfo: MemAvailable (" + std::to_string(*available) + " bytes) exceeds MemTotal (" +
                           std::to_string(*total) + " bytes)");
  }
  return MemInfo{*total, *available};
}

Result<DiskUsage> diskUsageFrom(uint64_t blocks, uint64_t bfree, uint64_t frsize) {
  if (frsize == 0) return Status::invalid("statvfs: fragment size is 0");
  if (bfree > blocks) {
    return Status::invalid("statvfs: " + std::to_string(bfree) + " free blocks of " + std::to_string(blocks));
  }
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (blocks > kMax / frsize) {
    return Status::invalid("statvfs: " + std::to_string(blocks) + " blocks of " + std::to_string(frsize) +
                           " bytes overflow a byte count");
  }
  return DiskUsage{static_cast<int64_t>(blocks * frsize), static_cast<int64_t>((blocks - bfree) * frsize)};
}

Result<uint32_t> cpuCountFrom(long online) {
  if (online < 1 || online > static_cast<long>(kMaxCpuCount)) {
    return Status::invalid("online CPU count " + std::to_string(online) + " is outside [1, " +
                           std::to_string(kMaxCpuCount) + "]");
  }
  return static_cast<uint32_t>(online);
}

Result<std::string> osNameFrom(std::string_view sysname) {
  auto name = printableName(sysname, "uname sysname");
  if (!name) return name.status();
  std::string out = std::move(name).value();
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  return out;
}

Result<std::string> archNameFrom(std::string_view machine) { return printableName(machine, "uname machine"); }

Result<std::string> readSmallFile(const std::filesystem::path& path, size_t max_bytes) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Status::io(path.string() + ": cannot open");
  std::string out;
  char buf[4096];
  bool too_large = false;
  for (;;) {
    size_t n = std::fread(buf, 1, sizeof buf, f);
    if (n == 0) break;
    if (out.size() + n > max_bytes) {
      too_large = true;
      break;
    }
    out.append(buf, n);
  }
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (too_large) return Status::invalid(path.string() + ": larger than " + std::to_string(max_bytes) + " bytes");
  if (failed) return Status::io(path.string() + ": read failed");
  return out;
}

Result<state::Inventory> sampleInventory(const std::filesystem::path& data_dir) {
  return sampleInventory(data_dir, "/proc");
}

Result<state::Inventory> sampleInventory(const std::filesystem::path& data_dir,
                                         const std::filesystem::path& proc_root) {
  state::Inventory inv;

  auto cpus = cpuCountFrom(sysconf(_SC_NPROCESSORS_ONLN));
  if (!cpus) return cpus.status();
  inv.cpu_count = *cpus;

  const auto loadavg_path = proc_root / "loadavg";
  auto loadavg_text = readSmallFile(loadavg_path);
  if (!loadavg_text) return loadavg_text.status();
  auto load = parseLoadAvg(*loadavg_text);
  if (!load) return load.status().withContext(loadavg_path.string());
  inv.load1 = load->load1;

  const auto meminfo_path = proc_root / "meminfo";
  auto meminfo_text = readSmallFile(meminfo_path);
  if (!meminfo_text) return meminfo_text.status();
  auto mem = parseMemInfo(*meminfo_text);
  if (!mem) return mem.status().withContext(meminfo_path.string());
  inv.memory_total_bytes = mem->total_bytes;
  inv.memory_used_bytes = mem->usedBytes();

  struct statvfs vfs {};
  if (statvfs(data_dir.c_str(), &vfs) != 0) {
    return Status::io("statvfs " + data_dir.string() + ": " + std::strerror(errno));
  }
  auto disk = diskUsageFrom(vfs.f_blocks, vfs.f_bfree, vfs.f_frsize);
  if (!disk) return disk.status().withContext(data_dir.string());
  inv.disk_total_bytes = disk->total_bytes;
  inv.disk_used_bytes = disk->used_bytes;

  struct utsname uts {};
  if (uname(&uts) != 0) return Status::io(std::string("uname: ") + std::strerror(errno));
  auto os = osNameFrom(uts.sysname);
  if (!os) return os.status();
  auto arch = archNameFrom(uts.machine);
  if (!arch) return arch.status();
  inv.os = std::move(os).value();
  inv.arch = std::move(arch).value();
  return inv;
}

std::map<std::string, double> inventoryValues(const state::Inventory& inv) {
  return {{"cpu_count", static_cast<double>(inv.cpu_count)},
          {"load1", inv.load1},
          {"memory_total_bytes", static_cast<double>(inv.memory_total_bytes)},
          {"memory_used_bytes", static_cast<double>(inv.memory_used_bytes)},
          {"disk_total_bytes", static_cast<double>(inv.disk_total_bytes)},
          {"disk_used_bytes", static_cast<double>(inv.disk_used_bytes)}};
}

Status validateCapability(std::string_view name) {
  if (name.empty()) return Status::invalid("capability is empty");
  if (name.size() > kMaxNameLength) {
    return Status::invalid("capability " + quoted(name) + " is longer than " + std::to_string(kMaxNameLength));
  }
  auto first = static_cast<unsigned char>(name[0]);
  if (std::islower(first) == 0 && std::isdigit(first) == 0) {
    return Status::invalid("capability " + quoted(name) + " must start with a lower-case letter or a digit");
  }
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    bool ok = std::islower(u) != 0 || std::isdigit(u) != 0 || c == '.' || c == '_' || c == ':' || c == '/' ||
              c == '=' || c == '-';
    if (!ok) {
      return Status::invalid("capability " + quoted(name) + " has a character outside [a-z0-9._:/=-]");
    }
  }
  return Status::ok();
}

bool isDetectedCapability(std::string_view name) {
  for (auto prefix : kDetectedPrefixes) {
    if (name.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

std::vector<std::string> capabilitiesFor(const std::vector<std::string>& configured,
                                         const state::Inventory& inventory,
                                         const std::vector<std::string>& from_runtime) {
  std::vector<std::string> out;
  out.reserve(configured.size() + 3 + from_runtime.size());
  for (const auto& c : from_runtime) {
    if (c.rfind("runtime:", 0) == 0) out.push_back(c);
  }
  for (const auto& c : configured) {
    if (!isDetectedCapability(c)) out.push_back(c);
  }
  if (!inventory.arch.empty()) out.push_back("arch:" + inventory.arch);
  if (!inventory.os.empty()) out.push_back("os:" + inventory.os);
  if (inventory.cpu_count > 0) out.push_back("cpus:" + std::to_string(inventory.cpu_count));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Capacity capacityFor(const state::Inventory& inventory, const CapacityOverride& override_) {
  Capacity c;
  c.cpu_millicores = override_.cpu_millicores.value_or(static_cast<int64_t>(inventory.cpu_count) * 1000);
  c.memory_bytes = override_.memory_bytes.value_or(inventory.memory_total_bytes);
  return c;
}

}  // namespace meshos::probes
