// meshos-inspect recover: the offline recovery of a damaged chain database (see
// chains/chain_recover.h), and the words for a damaged store found by `chain verify`.
#pragma once

#include <filesystem>
#include <string>

#include "agent/core/status.h"

namespace meshos::tools {

// The libraries' log (RocksDB's, through spdlog) goes to stderr, errors only: stdout is
// the command's answer (often JSON).
void libraryLogsToStderr();

// `meshos-inspect recover --data-dir D --reason R`. Returns the exit code.
int recoverCommand(const std::filesystem::path& data_dir, const std::string& reason, bool json);

// A store that would not open for `chain verify --data-dir`: prints what is wrong (and,
// when it is damaged, what to run). Returns the exit code: 3 damaged, 1 otherwise.
int reportUnopenable(const std::filesystem::path& data_dir, const Status& why, bool json);

}  // namespace meshos::tools
