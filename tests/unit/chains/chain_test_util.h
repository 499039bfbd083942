// Helpers shared by the chains unit tests: a temp dir, polling the ManualPoster with a
// deadline, and writing records straight into a store.
#pragma once

#include "tests/temp_dir.h"
#include <doctest/doctest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "agent/core/timers.h"
#include "chains/chain_format.h"
#include "chains/chain_store.h"

namespace meshos::chains::testing {

using TempDir = meshos::testing::TempDir;

// Runs posted functions until cond() holds or the deadline passes.
template <class Cond>
bool pollUntil(ManualPoster& poster, Cond cond, int timeout_ms = 10'000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    poster.runPending();
    if (cond()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Raw access for tamper tests: record keys ('r') go to the chain's records column family,
// the head, checkpoints and genesis to its meta column family.
inline rocksdb::ColumnFamilyHandle* familyOf(ChainStore& store, ChainName chain,
                                             const std::string& key) {
  return !key.empty() && key[0] == kRecordPrefix ? store.cf(chain) : store.metaCf(chain);
}
inline void rawPut(ChainStore& store, ChainName chain, const std::string& key,
                   const std::string& value) {
  rocksdb::WriteOptions wo;
  REQUIRE(store.db()->Put(wo, familyOf(store, chain, key), key, value).ok());
}
inline void rawDelete(ChainStore& store, ChainName chain, const std::string& key) {
  rocksdb::WriteOptions wo;
  REQUIRE(store.db()->Delete(wo, familyOf(store, chain, key), key).ok());
}
inline std::string rawGet(ChainStore& store, ChainName chain, const std::string& key) {
  std::string v;
  REQUIRE(store.db()->Get(rocksdb::ReadOptions(), familyOf(store, chain, key), key, &v).ok());
  return v;
}

}  // namespace meshos::chains::testing
