// InstanceStore: where the runtime keeps one InstanceRecord per running instance, so an
// agent that restarts can re-adopt its daemons instead of restarting them.
//
// FileInstanceStore writes one small text file per instance under a directory
// (`<data_dir>/runtime/instances/`), atomically (write a temporary file, then rename). The
// interface is tiny so the lead can move records to the RocksDB state column family later.
// Loop thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/core/status.h"
#include "agent/runtime/runtime.h"

namespace meshos::runtime {

class InstanceStore {
 public:
  virtual ~InstanceStore() = default;
  virtual Status save(const InstanceRecord& record) = 0;
  virtual Status erase(const std::string& instance) = 0;
  // Every record; a corrupt file is skipped and reported in `skipped` (never fatal).
  virtual Result<std::vector<InstanceRecord>> loadAll(std::vector<std::string>* skipped) = 0;
};

class FileInstanceStore final : public InstanceStore {
 public:
  // Creates the directory (and parents) when missing.
  static Result<std::unique_ptr<FileInstanceStore>> open(std::string dir);

  Status save(const InstanceRecord& record) override;
  Status erase(const std::string& instance) override;
  Result<std::vector<InstanceRecord>> loadAll(std::vector<std::string>* skipped) override;
  const std::string& dir() const { return dir_; }

 private:
  explicit FileInstanceStore(std::string dir) : dir_(std::move(dir)) {}
  std::string pathFor(const std::string& instance) const;
  std::string dir_;
};

// Creates a directory and its parents (like mkdir -p).
Status makeDirs(const std::string& path);

}  // namespace meshos::runtime
