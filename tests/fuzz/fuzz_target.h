// The fuzz targets: one entry point per decoder that takes untrusted bytes (from the
// network, a control socket, a file an operator or a crash left behind), and the seed
// inputs each starts from. An entry point feeds arbitrary bytes through the decoder and
// whatever the agent does next with a decoded value (round trips, folds), and aborts on a
// broken invariant; it never catches an exception the agent itself would not catch, so a
// decoder that throws out of its boundary is a crash here too.
//
// Shared by the replay driver (fuzz_replay.cpp: every build, suite unit, also under
// ASan+UBSan in tools/dev test) and the libFuzzer mains (fuzz_main.cpp, -Dfuzz=true, clang).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "agent/core/bytes.h"

namespace meshos::fuzz {

using FuzzEntry = int (*)(const uint8_t* data, size_t size);

struct FuzzTarget {
  const char* name;            // also the corpus folder: tests/fuzz/corpus/<name>/
  FuzzEntry entry;             // returns 0 (libFuzzer's convention)
  std::vector<Bytes> (*seeds)();  // valid inputs and a few invalid ones
};

const std::vector<FuzzTarget>& allTargets();
const FuzzTarget* findTarget(std::string_view name);

// Aborts when an invariant does not hold: the fuzzer reports the input.
// An invariant of a target; a failure names its line, then aborts (a finding).
// (__builtin_FILE/LINE, not std::source_location: clang 14 with libstdc++ 12 lacks it.)
inline void check(bool ok, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  if (ok) return;
  std::fprintf(stderr, "fuzz check failed at %s:%d\n", file, line);
  std::abort();
}

inline Bytes bytesOf(std::string_view text) { return Bytes(text.begin(), text.end()); }

// The entry points.
int fuzzCommitOne(const uint8_t* data, size_t size);
int fuzzGossipPacket(const uint8_t* data, size_t size);
int fuzzGossipStream(const uint8_t* data, size_t size);
int fuzzKeyring(const uint8_t* data, size_t size);
int fuzzControlFrame(const uint8_t* data, size_t size);
int fuzzNodeConfig(const uint8_t* data, size_t size);
int fuzzDaemonSpec(const uint8_t* data, size_t size);
int fuzzNodeReport(const uint8_t* data, size_t size);
int fuzzCommitSync(const uint8_t* data, size_t size);
int fuzzChainRecord(const uint8_t* data, size_t size);
int fuzzInstanceJournal(const uint8_t* data, size_t size);
int fuzzHttpRequest(const uint8_t* data, size_t size);
int fuzzDnsQuery(const uint8_t* data, size_t size);
int fuzzRolloutRecord(const uint8_t* data, size_t size);

// Their seeds.
std::vector<Bytes> commitSeedCorpus();
std::vector<Bytes> gossipPacketSeeds();
std::vector<Bytes> gossipStreamSeeds();
std::vector<Bytes> keyringSeeds();
std::vector<Bytes> controlFrameSeeds();
std::vector<Bytes> nodeConfigSeeds();
std::vector<Bytes> daemonSpecSeeds();
std::vector<Bytes> nodeReportSeeds();
std::vector<Bytes> commitSyncSeeds();
std::vector<Bytes> chainRecordSeeds();
std::vector<Bytes> instanceJournalSeeds();
std::vector<Bytes> httpRequestSeeds();
std::vector<Bytes> dnsQuerySeeds();
std::vector<Bytes> rolloutRecordSeeds();

}  // namespace meshos::fuzz
