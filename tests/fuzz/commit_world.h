// The commit log the commit and commit-sync targets run against: cluster "fuzz", two fixed
// admin keys (threshold 1), holding one valid commit (seq 1). Defined in commit_fuzz.cpp.
#pragma once

#include "agent/commits/commit_log.h"

namespace meshos::fuzz {

commits::CommitLog seededCommitLog();

}  // namespace meshos::fuzz
