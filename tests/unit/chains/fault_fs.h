// FaultFs: a RocksDB FileSystem wrapper for tests that fails writes or syncs on demand and
// can throw away everything written since the last sync, as a power cut would. Flags may
// be flipped from the test thread while RocksDB's threads write.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace meshos::chains::testing {

class FaultFs : public rocksdb::FileSystemWrapper {
 public:
  FaultFs() : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "MeshosFaultFs"; }

  std::atomic<bool> fail_writes{false};  // Append() fails with an I/O error
  std::atomic<bool> fail_syncs{false};   // Sync()/Fsync() fail with an I/O error
  // Creating a file, appending and syncing fail with ENOSPC, as on a full disk.
  std::atomic<bool> disk_full{false};
  std::atomic<uint64_t> injected{0};     // how many failures were injected

  // Cuts every WAL file back to what was synced. Call after the DB is closed.
  void dropUnsyncedWal() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [path, f] : files_) {
      if (path.size() < 4 || path.substr(path.size() - 4) != ".log") continue;
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) continue;
      auto size = std::filesystem::file_size(path, ec);
      if (!ec && size > f.synced) std::filesystem::resize_file(path, f.synced, ec);
    }
    files_.clear();
  }
  uint64_t unsyncedBytes() {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t n = 0;
    for (auto& [path, f] : files_) n += f.size - f.synced;
    return n;
  }

  // A full disk has nothing free; otherwise the real file system's answer.
  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& o, uint64_t* free,
                                 rocksdb::IODebugContext* dbg) override {
    if (!disk_full) return target()->GetFreeSpace(path, o, free, dbg);
    *free = 0;
    return rocksdb::IOStatus::OK();
  }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    if (disk_full) return full();
    std::unique_ptr<rocksdb::FSWritableFile> base;
    auto s = target()->NewWritableFile(fname, opts, &base, dbg);
    if (!s.ok()) return s;
    {
      std::lock_guard<std::mutex> lock(mu_);
      files_[fname] = FileState{};
    }
    result->reset(new File(std::move(base), this, fname));
    return s;
  }

 private:
  struct FileState {
    uint64_t size = 0;
    uint64_t synced = 0;
  };

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile>&& t, FaultFs* fs, std::string name)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(t)), fs_(fs), name_(std::move(name)) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->fail_writes) return fs_->inject("injected write failure");
      if (fs_->disk_full) return fs_->full();
      auto s = target()->Append(data, o, dbg);
      if (s.ok()) fs_->grew(name_, data.size());
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->fail_writes) return fs_->inject("injected write failure");
      if (fs_->disk_full) return fs_->full();
      auto s = target()->Append(data, o, info, dbg);
      if (s.ok()) fs_->grew(name_, data.size());
      return s;
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->fail_syncs) return fs_->inject("injected sync failure");
      if (fs_->disk_full) return fs_->full();
      auto s = target()->Sync(o, dbg);
      if (s.ok()) fs_->synced(name_);
      return s;
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->fail_syncs) return fs_->inject("injected sync failure");
      if (fs_->disk_full) return fs_->full();
      auto s = target()->Fsync(o, dbg);
      if (s.ok()) fs_->synced(name_);
      return s;
    }
    rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                                rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::OK();  // not a durability point for our purposes
    }

   private:
    FaultFs* fs_;
    std::string name_;
  };

  rocksdb::IOStatus inject(const char* what) {
    ++injected;
    return rocksdb::IOStatus::IOError(what);
  }
  rocksdb::IOStatus full() {
    ++injected;
    return rocksdb::IOStatus::NoSpace("No space left on device");
  }
  void grew(const std::string& name, uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[name].size += n;
  }
  void synced(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& f = files_[name];
    f.synced = f.size;
  }

  std::mutex mu_;
  std::map<std::string, FileState> files_;
};

}  // namespace meshos::chains::testing
