// The commit fuzz entry point, shared by the libFuzzer target (commit_fuzz_main.cpp, built
// with -Dfuzz=true and clang) and the corpus replay run in the unit suite
// (commit_fuzz_replay.cpp). Feeds arbitrary bytes through decodeCommit(), the desired
// state fold and a CommitLog (single submit and batch), which must never crash and
// never change the log for bytes that are not a validly signed commit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent/core/bytes.h"

namespace meshos::fuzz {

// Returns 0 (libFuzzer's convention). Aborts on a broken invariant.
int fuzzCommitOne(const uint8_t* data, size_t size);

// Valid signed commits (every operation kind) to start a corpus from.
std::vector<Bytes> commitSeedCorpus();

}  // namespace meshos::fuzz
