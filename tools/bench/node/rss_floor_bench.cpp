// rss_floor_bench: the resident memory that the chain store alone costs any process, the floor
// under meshos-agent's RSS. A program that links only chains/ (RocksDB, libstdc++) prints
// VmRSS, RssAnon and RssFile (from /proc/self/status) on entry to main(), and again after
// opening a chain store in a scratch directory with the agent's options, then the resident
// size of each mapped file.
//
//   build/tools/bench/node/rss_floor_bench
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "chains/chain_store.h"

namespace {

void printStatus(const char* when) {
  std::ifstream in("/proc/self/status");
  std::string line;
  std::printf("%-28s", when);
  while (std::getline(in, line)) {
    for (const char* key : {"VmRSS:", "RssAnon:", "RssFile:"}) {
      if (line.rfind(key, 0) == 0) {
        std::istringstream v(line.substr(std::string(key).size()));
        long kib = 0;
        v >> kib;
        std::printf("  %s %6.1f MiB", key, static_cast<double>(kib) / 1024.0);
      }
    }
  }
  std::printf("\n");
}

// Resident KiB per mapped file (anonymous mappings under their bracketed names).
void printMappings() {
  std::ifstream in("/proc/self/smaps");
  std::map<std::string, long> by_file;
  std::string line, current;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string range, perms, offset, dev, inode, path;
    if (line.rfind("Rss:", 0) == 0) {
      long kib = 0;
      std::istringstream(line.substr(4)) >> kib;
      by_file[current] += kib;
    } else if (f >> range >> perms >> offset >> dev >> inode && range.find('-') != std::string::npos) {
      std::getline(f >> std::ws, path);
      current = path.empty() ? "[anonymous]" : std::filesystem::path(path).filename().string();
    }
  }
  std::multimap<long, std::string, std::greater<>> ranked;
  for (const auto& [file, kib] : by_file) ranked.emplace(kib, file);
  for (const auto& [kib, file] : ranked) {
    if (kib >= 64) std::printf("  %7.1f MiB  %s\n", static_cast<double>(kib) / 1024.0, file.c_str());
  }
}

}  // namespace

int main() {
  printStatus("entry to main()");
  char tmpl[] = "/tmp/meshos-rss-floor-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::filesystem::path dir(tmpl);
  {
    auto store = meshos::chains::ChainStore::open(dir);
    if (!store.isOk()) {
      std::fprintf(stderr, "open: %s\n", store.status().toString().c_str());
      return 1;
    }
    printStatus("chain store open");
    std::printf("resident per mapping, chain store open:\n");
    printMappings();
  }
  std::filesystem::remove_all(dir);
  return 0;
}
