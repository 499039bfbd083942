// SyncLedgerFs: a RocksDB FileSystem wrapper for the crash test's power-cut rounds. For
// every WAL file it appends to a ledger file, before the call returns, "create <path>"
// when the file is made and "sync <path> <bytes>" when a sync of its first <bytes> bytes
// succeeded. The process is then SIGKILLed, which keeps the page cache (so everything it
// wrote would survive); the test reads the ledger and cuts each WAL back to its last
// synced length, which is what a power cut may leave. Nothing acknowledged may be lost:
// the writer acks only after the sync the ledger records.
#pragma once

#include <fcntl.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

namespace meshos::chains::testing {

class SyncLedgerFs : public rocksdb::FileSystemWrapper {
 public:
  explicit SyncLedgerFs(const std::string& ledger)
      : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()),
        fd_(::open(ledger.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) {}
  ~SyncLedgerFs() override {
    if (fd_ >= 0) ::close(fd_);
  }
  const char* Name() const override { return "MeshosSyncLedgerFs"; }
  bool ok() const { return fd_ >= 0; }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> base;
    auto s = target()->NewWritableFile(fname, opts, &base, dbg);
    if (!s.ok()) return s;
    if (!isWal(fname)) {
      *result = std::move(base);
      return s;
    }
    note("create " + fname);
    result->reset(new WalFile(std::move(base), this, fname));
    return s;
  }

 private:
  class WalFile : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    WalFile(std::unique_ptr<rocksdb::FSWritableFile>&& t, SyncLedgerFs* fs, std::string name)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(t)), fs_(fs), name_(std::move(name)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      auto s = target()->Append(data, o, dbg);
      if (s.ok()) size_ += data.size();
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& info, rocksdb::IODebugContext* dbg) override {
      auto s = target()->Append(data, o, info, dbg);
      if (s.ok()) size_ += data.size();
      return s;
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      return synced(target()->Sync(o, dbg));
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      return synced(target()->Fsync(o, dbg));
    }

   private:
    rocksdb::IOStatus synced(rocksdb::IOStatus s) {
      if (s.ok()) fs_->note("sync " + name_ + " " + std::to_string(size_.load()));
      return s;
    }
    SyncLedgerFs* fs_;
    std::string name_;
    std::atomic<uint64_t> size_{0};
  };

  static bool isWal(const std::string& name) { return name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0; }
  void note(const std::string& line) {
    const std::string l = line + "\n";
    if (fd_ >= 0) (void)!::write(fd_, l.data(), l.size());  // one write: lands whole
  }

  int fd_;
};

}  // namespace meshos::chains::testing
