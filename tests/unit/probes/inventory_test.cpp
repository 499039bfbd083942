// Inventory: the procfs parsers on real-looking and malformed text, statvfs arithmetic,
// capabilities and capacity, and a real sample of this host (plus a fake procfs root).
#include "probes/inventory.h"

#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "tests/temp_dir.h"

using namespace meshos;
using namespace meshos::probes;

namespace {

const char* kMeminfo =
    "MemTotal:       16318412 kB\n"
    "MemFree:         1204000 kB\n"
    "MemAvailable:    9876544 kB\n"
    "Buffers:          345600 kB\n"
    "Cached:          7654320 kB\n"
    "HugePages_Total:       0\n"
    "Hugepagesize:       2048 kB\n";

using meshos::testing::writeFile;

}  // namespace

TEST_CASE("parseLoadAvg reads the three averages") {
  auto r = parseLoadAvg("0.52 0.58 1.59 1/1234 56789\n");
  REQUIRE(r.isOk());
  CHECK(r->load1 == doctest::Approx(0.52));
  CHECK(r->load5 == doctest::Approx(0.58));
  CHECK(r->load15 == doctest::Approx(1.59));
  // Large but finite loads are fine.
  auto big = parseLoadAvg("1024.00 512.00 256.00 5/99999 1");
  REQUIRE(big.isOk());
  CHECK(big->load1 == doctest::Approx(1024));
}

TEST_CASE("parseLoadAvg refuses malformed text with a clear error") {
  struct Case {
    const char* text;
    const char* mentions;
  };
  for (Case c : {Case{"", "three load averages"}, Case{"0.5 0.4\n", "three load averages"},
                 Case{"abc 0.4 0.3 1/2 3", "1-minute load is not a number"},
                 Case{"0.5 0.4x 0.3 1/2 3", "5-minute load is not a number"},
                 Case{"0.5 0.4 -0.3 1/2 3", "15-minute load is out of range"},
                 Case{"inf 0.4 0.3 1/2 3", "1-minute load is out of range"},
                 Case{"nan 0.4 0.3 1/2 3", "1-minute load is out of range"},
                 Case{"1e999 0.4 0.3 1/2 3", "1-minute load is not a number"},
                 Case{"\n0.5 0.4 0.3", "three load averages"}}) {
    CAPTURE(c.text);
    auto r = parseLoadAvg(c.text);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message().find(c.mentions) != std::string::npos);
  }
}

TEST_CASE("parseMemInfo reads MemTotal and MemAvailable in bytes") {
  auto r = parseMemInfo(kMeminfo);
  REQUIRE(r.isOk());
  CHECK(r->total_bytes == 16318412LL * 1024);
  CHECK(r->available_bytes == 9876544LL * 1024);
  CHECK(r->usedBytes() == (16318412LL - 9876544LL) * 1024);
  // Order does not matter, and no trailing newline is fine.
  auto r2 = parseMemInfo("MemAvailable: 10 kB\nMemTotal: 20 kB");
  REQUIRE(r2.isOk());
  CHECK(r2->usedBytes() == 10 * 1024);
}

TEST_CASE("parseMemInfo refuses missing fields, garbage and huge numbers") {
  struct Case {
    std::string text;
    const char* mentions;
  };
  for (const Case& c : {Case{"", "no MemTotal line"}, Case{"MemTotal: 100 kB\n", "no MemAvailable line"},
                        Case{"MemAvailable: 100 kB\n", "no MemTotal line"},
                        Case{"MemTotal: lots kB\nMemAvailable: 1 kB\n", "is not a whole number"},
                        Case{"MemTotal: -5 kB\nMemAvailable: 1 kB\n", "is not a whole number"},
                        Case{"MemTotal: 100 MB\nMemAvailable: 1 kB\n", "is not kB"},
                        Case{"MemTotal: 100\nMemAvailable: 1 kB\n", "expected \"<n> kB\""},
                        Case{"MemTotal: 100 kB extra\nMemAvailable: 1 kB\n", "expected \"<n> kB\""},
                        Case{"MemTotal: 99999999999999999999999 kB\nMemAvailable: 1 kB\n", "too large"},
                        Case{"MemTotal: 18014398509481984 kB\nMemAvailable: 1 kB\n", "overflows"},
                        Case{"MemTotal: 0 kB\nMemAvailable: 0 kB\n", "MemTotal is 0"},
                        Case{"MemTotal: 10 kB\nMemAvailable: 11 kB\n", "exceeds MemTotal"},
                        Case{"MemTotal: 10 kB\nMemTotal: 10 kB\nMemAvailable: 1 kB\n", "appears twice"},
                        Case{std::string("MemTotal: 1\x01 kB\nMemAvailable: 1 kB\n"), "\\x01"}}) {
    CAPTURE(c.text);
    auto r = parseMemInfo(c.text);
    REQUIRE_FALSE(r.isOk());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message().find(c.mentions) != std::string::npos);
  }
}

TEST_CASE("diskUsageFrom multiplies blocks by the fragment size and checks bounds") {
  auto r = diskUsageFrom(1000, 250, 4096);
  REQUIRE(r.isOk());
  CHECK(r->total_bytes == 1000 * 4096);
  CHECK(r->used_bytes == 750 * 4096);
  CHECK(diskUsageFrom(0, 0, 4096).isOk());
  CHECK(diskUsageFrom(10, 11, 4096).status().message().find("free blocks") != std::string::npos);
  CHECK(diskUsageFrom(10, 1, 0).status().message().find("fragment size is 0") != std::string::npos);
  CHECK(diskUsageFrom(UINT64_MAX / 2, 0, 4096).status().message().find("overflow") != std::string::npos);
}

TEST_CASE("cpu count, os and arch names") {
  CHECK(*cpuCountFrom(8) == 8u);
  CHECK_FALSE(cpuCountFrom(0).isOk());
  CHECK_FALSE(cpuCountFrom(-1).isOk());
  CHECK_FALSE(cpuCountFrom(1L << 40).isOk());
  CHECK(*osNameFrom("Linux") == "linux");
  CHECK(*archNameFrom("x86_64") == "x86_64");
  CHECK(*archNameFrom("aarch64") == "aarch64");
  CHECK_FALSE(osNameFrom("").isOk());
  CHECK_FALSE(archNameFrom("x86 64").isOk());
  CHECK_FALSE(archNameFrom(std::string(65, 'a')).isOk());
}

TEST_CASE("capabilities: configured plus detected, sorted and unique") {
  state::Inventory inv;
  inv.arch = "x86_64";
  inv.os = "linux";
  inv.cpu_count = 4;
  auto caps = capabilitiesFor({"gpu", "ssd", "gpu", "arch:arm64", "cpus:128"}, inv);
  CHECK(caps == std::vector<std::string>{"arch:x86_64", "cpus:4", "gpu", "os:linux", "ssd"});
  // Nothing detected yet: only the configured ones.
  CHECK(capabilitiesFor({"b", "a"}, state::Inventory{}) == std::vector<std::string>{"a", "b"});
  // What the runtime can run: runtime:oci from the agent, never from the config.
  CHECK(capabilitiesFor({"runtime:oci", "a"}, state::Inventory{}) == std::vector<std::string>{"a"});
  CHECK(capabilitiesFor({"a"}, state::Inventory{}, {"runtime:oci", "gpu"}) == std::vector<std::string>{"a", "runtime:oci"});

  CHECK(validateCapability("gpu").isOk());
  CHECK(validateCapability("net/10g").isOk());
  CHECK(validateCapability("zone=a").isOk());
  CHECK_FALSE(validateCapability("").isOk());
  CHECK_FALSE(validateCapability("GPU").isOk());
  CHECK_FALSE(validateCapability("-x").isOk());
  CHECK_FALSE(validateCapability("has space").isOk());
  CHECK_FALSE(validateCapability(std::string(65, 'a')).isOk());
  CHECK(isDetectedCapability("arch:x86_64"));
  CHECK(isDetectedCapability("os:linux"));
  CHECK(isDetectedCapability("cpus:2"));
  CHECK_FALSE(isDetectedCapability("gpu"));
}

TEST_CASE("capacity: cpu_count x 1000 and MemTotal unless overridden") {
  state::Inventory inv;
  inv.cpu_count = 6;
  inv.memory_total_bytes = 8LL << 30;
  auto c = capacityFor(inv, {});
  CHECK(c.cpu_millicores == 6000);
  CHECK(c.memory_bytes == 8LL << 30);
  auto o = capacityFor(inv, {.cpu_millicores = 2500, .memory_bytes = 1LL << 30});
  CHECK(o.cpu_millicores == 2500);
  CHECK(o.memory_bytes == 1LL << 30);
  CHECK(capacityFor(state::Inventory{}, {}).cpu_millicores == 0);
}

TEST_CASE("inventory as probe-sample values") {
  state::Inventory inv;
  inv.cpu_count = 2;
  inv.load1 = 0.75;
  inv.memory_total_bytes = 1000;
  inv.memory_used_bytes = 400;
  inv.disk_total_bytes = 5000;
  inv.disk_used_bytes = 1200;
  auto v = inventoryValues(inv);
  CHECK(v.size() == 6);
  CHECK(v.at("cpu_count") == 2);
  CHECK(v.at("load1") == 0.75);
  CHECK(v.at("memory_used_bytes") == 400);
  CHECK(v.at("disk_total_bytes") == 5000);
}

TEST_CASE("sampleInventory reads this host") {
  testing::TempDir dir("meshos-inventory");
  auto r = sampleInventory(dir.path);
  REQUIRE_MESSAGE(r.isOk(), r.status().toString());
  CHECK(r->cpu_count >= 1);
  CHECK(r->load1 >= 0);
  CHECK(r->memory_total_bytes > 0);
  CHECK(r->memory_used_bytes >= 0);
  CHECK(r->memory_used_bytes <= r->memory_total_bytes);
  CHECK(r->disk_total_bytes > 0);
  CHECK(r->disk_used_bytes <= r->disk_total_bytes);
  CHECK(r->os == "linux");
  CHECK_FALSE(r->arch.empty());
  CHECK(!softwareVersion().empty());
}

TEST_CASE("sampleInventory names the part that failed") {
  testing::TempDir dir("meshos-inventory");
  auto proc = dir.path / "proc";
  std::filesystem::create_directory(proc);

  // No procfs files at all.
  auto missing = sampleInventory(dir.path, proc);
  REQUIRE_FALSE(missing.isOk());
  CHECK(missing.status().code() == Code::kIoError);
  CHECK(missing.status().message().find("loadavg") != std::string::npos);

  writeFile(proc / "loadavg", "0.25 0.20 0.10 1/100 42\n");
  writeFile(proc / "meminfo", "MemTotal: 100 kB\n");
  auto bad_mem = sampleInventory(dir.path, proc);
  REQUIRE_FALSE(bad_mem.isOk());
  CHECK(bad_mem.status().message().find("meminfo") != std::string::npos);
  CHECK(bad_mem.status().message().find("no MemAvailable line") != std::string::npos);

  writeFile(proc / "meminfo", kMeminfo);
  auto bad_dir = sampleInventory(dir.path / "absent", proc);
  REQUIRE_FALSE(bad_dir.isOk());
  CHECK(bad_dir.status().message().find("statvfs") != std::string::npos);

  auto ok = sampleInventory(dir.path, proc);
  REQUIRE_MESSAGE(ok.isOk(), ok.status().toString());
  CHECK(ok->load1 == doctest::Approx(0.25));
  CHECK(ok->memory_total_bytes == 16318412LL * 1024);
  CHECK(ok->memory_used_bytes == (16318412LL - 9876544LL) * 1024);

  // A procfs file that is far too large is refused, not read whole.
  writeFile(proc / "loadavg", std::string(100 * 1024, '1'));
  auto big = sampleInventory(dir.path, proc);
  REQUIRE_FALSE(big.isOk());
  CHECK(big.status().message().find("larger than") != std::string::npos);
}
