// KvStore: a small durable key/value area beside the chains (the "state" column family of
// the node's database): the commit log, the gossip incarnation. Cores that persist
// something take a KvStore and never learn it is RocksDB (chains::ChainStore implements
// it; tests use MemoryKvStore).
//
// putState()/deleteState() are synced writes: they block for one fsync, so the loop calls
// them only for rare records. Thread-safety is the implementation's (ChainStore: any
// thread).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/status.h"

namespace meshos {

class KvStore {
 public:
  virtual ~KvStore() = default;
  virtual Status putState(std::string_view key, std::string_view value) = 0;
  virtual Result<std::optional<std::string>> getState(std::string_view key) const = 0;
  // Deleting a missing key is OK.
  virtual Status deleteState(std::string_view key) = 0;
  // Calls fn for each key starting with prefix, in key order, until fn returns false.
  virtual Status scanState(std::string_view prefix,
                           const std::function<bool(std::string_view key, std::string_view value)>& fn) const = 0;
};

// In memory, for tests.
class MemoryKvStore final : public KvStore {
 public:
  Status putState(std::string_view key, std::string_view value) override {
    map_[std::string(key)] = std::string(value);
    return Status::ok();
  }
  Result<std::optional<std::string>> getState(std::string_view key) const override {
    auto it = map_.find(std::string(key));
    if (it == map_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status deleteState(std::string_view key) override {
    map_.erase(std::string(key));
    return Status::ok();
  }
  Status scanState(std::string_view prefix,
                   const std::function<bool(std::string_view, std::string_view)>& fn) const override {
    for (auto it = map_.lower_bound(std::string(prefix)); it != map_.end(); ++it) {
      if (it->first.compare(0, prefix.size(), prefix) != 0) break;
      if (!fn(it->first, it->second)) break;
    }
    return Status::ok();
  }

 private:
  std::map<std::string, std::string> map_;
};

}  // namespace meshos
