// Recovery of a damaged chain database (a truncated or corrupted table file, a missing
// file): the damaged store is kept aside as it is, and new chains start whose first record
// ("chain.recovered") names the last head that still verified in the old one, so the
// break is itself on record.
//
// How the last verified head is found: the damaged store is copied, RocksDB's repair runs
// on the copy (it rebuilds the manifest from the files that are left and drops what cannot
// be read), and each chain of the copy is verified from its start; the head is the last
// record before the first one that does not hold. The copy is deleted afterwards. The
// state area (stored commits, the gossip incarnation, runtime records) is carried over
// from the copy, as far as it reads; commits lost with it are fetched again from peers.
//
// Offline only: the agent must be stopped (its lock on the database is checked).
#pragma once

#include <array>
#include <filesystem>
#include <string>

#include "agent/core/clock.h"
#include "agent/core/crypto.h"
#include "agent/core/status.h"
#include "chains/chain_format.h"

namespace meshos::chains {

// True for a status that means the database itself is damaged (corruption, a file it
// lists is missing), not that it is busy, full or unreadable for another reason.
bool looksDamaged(const Status& status);
// What to tell an operator whose database at data_dir is damaged: the command to run.
std::string recoveryHint(const std::filesystem::path& data_dir);

struct RecoveredHead {
  ChainName chain = ChainName::kAudit;
  uint64_t seq = 0;  // 0: nothing in the old chain verified (or it was empty)
  Hash256 hash{};
  bool whole = false;  // the old chain verified to its stored head
  std::string detail;  // why it stopped where it did
};

struct Recovery {
  std::filesystem::path damaged;  // where the damaged store now is
  std::string salvage_error;      // the repair or the reading of the copy failed: why
  std::array<RecoveredHead, kChainCount> heads{};
  uint64_t state_keys = 0;  // state entries carried over
};

// Sets <data_dir>/db aside as <data_dir>/db.damaged-<wall ms> and starts new chains there.
Result<Recovery> recoverStore(const std::filesystem::path& data_dir, const SigningKey& key, const Clock& clock,
                              const std::string& reason);

}  // namespace meshos::chains
