// InstanceStore: where the runtime keeps one InstanceRecord per running instance, so an
// agent that restarts can re-adopt its daemons instead of restarting them.
//
// FileInstanceStore keeps the records in an append-only journal under a directory
// (`<data_dir>/runtime/instances/instances.journal`) on the node's FileSystem: one line per
// save or erase, each a single append, so saving a record creates no file (creating an
// inode per spawn was the largest cost of a spawn on ext4). The journal is rewritten
// (atomically) when it holds four times more lines than live records. No fsync: a record
// only matters while its process lives, i.e. across an agent restart, and the page cache
// survives that; after a host crash the processes are gone too (and a torn last line is
// skipped). One small file per cron daemon holds the time of its last fire.
// Loop thread only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/core/file_system.h"
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
  // Cron: the wall time (ms) of a cron daemon's last handled fire, so a restarted agent
  // applies the missed-runs policy from it. NotFound when none was saved.
  virtual Status saveLastFire(const std::string& daemon, int64_t wall_ms) = 0;
  virtual Result<int64_t> lastFire(const std::string& daemon) = 0;
  virtual Status eraseLastFire(const std::string& daemon) = 0;
};

class FileInstanceStore final : public InstanceStore {
 public:
  // Creates the directory (and parents) when missing; reads the journal.
  static Result<std::unique_ptr<FileInstanceStore>> open(FileSystem& fs, std::string dir);
  ~FileInstanceStore() override;
  FileInstanceStore(const FileInstanceStore&) = delete;
  FileInstanceStore& operator=(const FileInstanceStore&) = delete;

  Status save(const InstanceRecord& record) override;
  Status erase(const std::string& instance) override;
  Result<std::vector<InstanceRecord>> loadAll(std::vector<std::string>* skipped) override;
  // <dir>/<daemon>.cron: "last_fire_ms=<n>\n", written atomically like the records.
  Status saveLastFire(const std::string& daemon, int64_t wall_ms) override;
  Result<int64_t> lastFire(const std::string& daemon) override;
  Status eraseLastFire(const std::string& daemon) override;
  const std::string& dir() const { return dir_; }
  // Lines in the journal now (for tests: compaction keeps it bounded).
  size_t journalLines() const { return journal_lines_; }

 private:
  FileInstanceStore(FileSystem& fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}
  Status loadJournal();
  Status append(const std::string& line);
  Status compactIfNeeded();
  std::string journalPath() const { return dir_ + "/instances.journal"; }
  std::string cronPathFor(const std::string& daemon) const;
  FileSystem& fs_;
  std::string dir_;
  std::unique_ptr<AppendFile> journal_;
  std::map<std::string, std::string> live_;     // instance → its "S" line
  std::vector<std::string> journal_skipped_;    // unreadable journal lines, from loading
  size_t journal_lines_ = 0;
};

// Creates a directory and its parents (like mkdir -p).
Status makeDirs(const std::string& path);

}  // namespace meshos::runtime
