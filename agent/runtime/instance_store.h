// InstanceStore: where the runtime keeps one InstanceRecord per running instance, so an
// agent that restarts can re-adopt its daemons instead of restarting them.
//
// FileInstanceStore keeps the records in an append-only journal under a directory
// (`<data_dir>/runtime/instances/instances.journal`): one line per save or erase, each a
// single O_APPEND write(), so saving a record creates no file (creating an inode per spawn
// was the largest cost of a spawn on ext4). The journal is rewritten (temporary file, then
// rename) when it holds four times more lines than live records. No fsync: a record only
// matters while its process lives, i.e. across an agent restart, and the page cache
// survives that; after a host crash the processes are gone too (and a torn last line is
// skipped). Records of the older one-file-per-instance format (`<instance>.inst`) are still
// read, and removed when their instance is saved again or erased. One small file per cron
// daemon holds the time of its last fire (temporary file, then rename). The
// interface is tiny so the lead can move records to the RocksDB state column family later.
// Loop thread only.
#pragma once

#include <map>
#include <memory>
#include <set>
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
  // Cron: the wall time (ms) of a cron daemon's last handled fire, so a restarted agent
  // applies the missed-runs policy from it. NotFound when none was saved.
  virtual Status saveLastFire(const std::string& daemon, int64_t wall_ms) = 0;
  virtual Result<int64_t> lastFire(const std::string& daemon) = 0;
  virtual Status eraseLastFire(const std::string& daemon) = 0;
};

class FileInstanceStore final : public InstanceStore {
 public:
  // Creates the directory (and parents) when missing; reads the journal.
  static Result<std::unique_ptr<FileInstanceStore>> open(std::string dir);
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
  explicit FileInstanceStore(std::string dir) : dir_(std::move(dir)) {}
  Status loadJournal();
  Status append(const std::string& line);
  Status compactIfNeeded();
  std::string journalPath() const { return dir_ + "/instances.journal"; }
  std::string pathFor(const std::string& instance) const;  // legacy <instance>.inst
  std::string cronPathFor(const std::string& daemon) const;
  // Writes `data` to a temporary file and renames it over `final_path`.
  Status writeAtomically(const std::string& final_path, const std::string& data);
  std::string dir_;
  int fd_ = -1;                                 // the journal, O_APPEND
  std::map<std::string, std::string> live_;     // instance → its "S" line
  std::vector<std::string> journal_skipped_;    // unreadable journal lines, from loading
  std::set<std::string> legacy_;                // instances with a legacy .inst file
  size_t journal_lines_ = 0;
};

// Creates a directory and its parents (like mkdir -p).
Status makeDirs(const std::string& path);

}  // namespace meshos::runtime
