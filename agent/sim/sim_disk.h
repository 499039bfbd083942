// SimDisk: the disk of one simulated machine, in memory. It holds the node's small files
// (a FileSystem: node key, keyring, local daemons file, instance journal) and its RocksDB
// database (a rocksdb::Env over RocksDB's in-memory file system), and it can fill up: while
// full, every write to either fails with "disk full" (ENOSPC, as the kernel says it), reads
// go on, and nothing already written is lost. The disk outlives the agent: a crashed
// agent's successor reopens what its predecessor wrote.
//
// RocksDB's own threads may touch the database files, so the fault switch is atomic; the
// simulation keeps them idle (no automatic flush or compaction) so a run stays repeatable.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "agent/core/file_system.h"

namespace rocksdb {
class Env;
class FileSystem;
}  // namespace rocksdb

namespace meshos::sim {

class SimDisk;

// The small files, in a map.
class MemFileSystem final : public FileSystem {
 public:
  explicit MemFileSystem(const SimDisk& disk) : disk_(disk) {}
  Result<std::string> read(const std::filesystem::path& path) const override;
  Status writeAtomically(const std::filesystem::path& path, std::string_view data, mode_t mode = 0600) override;
  Result<std::unique_ptr<AppendFile>> openAppend(const std::filesystem::path& path) override;
  Status remove(const std::filesystem::path& path) override;
  Status makeDirs(const std::filesystem::path& path) override;
  Result<std::vector<std::string>> list(const std::filesystem::path& dir) const override;
  bool exists(const std::filesystem::path& path) const override;
  Result<mode_t> mode(const std::filesystem::path& path) const override;
  // Bytes held, all files.
  size_t bytes() const;
  // Whether any file holds these bytes.
  bool holds(std::string_view needle) const;

 private:
  friend class MemAppendFile;
  struct File {
    std::string data;
    mode_t mode = 0600;
  };
  const SimDisk& disk_;
  std::map<std::string, File> files_;
  std::map<std::string, bool> dirs_;
};

class SimDisk {
 public:
  SimDisk();
  ~SimDisk();
  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  FileSystem& files() { return files_; }
  const MemFileSystem& memFiles() const { return files_; }
  // For chains::ChainStoreOptions::env: the database's files, with the fault switch.
  rocksdb::Env* databaseEnv() const { return db_env_.get(); }

  // Whether any small file, or any file of the database at db_dir (its log included),
  // holds these bytes: the simulator's "no plaintext on any disk".
  bool holds(std::string_view needle, const std::string& db_dir) const;

  void setFull(bool full) { full_ = full; }
  bool full() const { return full_; }
  // Writes refused while full (small files and database).
  uint64_t refusedWrites() const { return refused_writes_; }
  void countRefused() const { ++refused_writes_; }

 private:
  std::atomic<bool> full_{false};
  mutable std::atomic<uint64_t> refused_writes_{0};
  MemFileSystem files_;
  std::unique_ptr<rocksdb::Env> mem_env_;
  std::shared_ptr<rocksdb::FileSystem> fault_fs_;
  std::unique_ptr<rocksdb::Env> db_env_;
};

}  // namespace meshos::sim
