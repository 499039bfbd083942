#include "agent/sim/sim_disk.h"

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

namespace meshos::sim {

namespace {

Status diskFull(const std::filesystem::path& path, const char* what) {
  return Status::io(std::string("cannot ") + what + " " + path.string() + ": disk full");
}

// The database's files over RocksDB's in-memory file system; while the disk is full, every
// write, sync and new file fails with NoSpace.
class FaultFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultFileSystem(const std::shared_ptr<rocksdb::FileSystem>& target, const SimDisk& disk)
      : rocksdb::FileSystemWrapper(target), disk_(disk) {}
  const char* Name() const override { return "MeshosSimDisk"; }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    if (auto s = refuse(); !s.ok()) return s;
    std::unique_ptr<rocksdb::FSWritableFile> base;
    auto s = target()->NewWritableFile(fname, opts, &base, dbg);
    if (s.ok()) result->reset(new File(std::move(base), *this));
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    if (auto s = refuse(); !s.ok()) return s;
    std::unique_ptr<rocksdb::FSWritableFile> base;
    auto s = target()->ReopenWritableFile(fname, opts, &base, dbg);
    if (s.ok()) result->reset(new File(std::move(base), *this));
    return s;
  }

  // A full simulated disk has nothing free; otherwise plenty.
  rocksdb::IOStatus GetFreeSpace(const std::string&, const rocksdb::IOOptions&, uint64_t* free,
                                 rocksdb::IODebugContext*) override {
    *free = disk_.full() ? 0 : (uint64_t{1} << 40);
    return rocksdb::IOStatus::OK();
  }

  rocksdb::IOStatus refuse() const {
    if (!disk_.full()) return rocksdb::IOStatus::OK();
    disk_.countRefused();
    return rocksdb::IOStatus::NoSpace("disk full");
  }

 private:
  class File final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile>&& t, const FaultFileSystem& fs)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(t)), fs_(fs) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (auto s = fs_.refuse(); !s.ok()) return s;
      return target()->Append(data, o, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& info, rocksdb::IODebugContext* dbg) override {
      if (auto s = fs_.refuse(); !s.ok()) return s;
      return target()->Append(data, o, info, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (auto s = fs_.refuse(); !s.ok()) return s;
      return target()->Sync(o, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (auto s = fs_.refuse(); !s.ok()) return s;
      return target()->Fsync(o, dbg);
    }

   private:
    const FaultFileSystem& fs_;
  };

  const SimDisk& disk_;
};


}  // namespace

class MemAppendFile final : public AppendFile {
 public:
  MemAppendFile(MemFileSystem& fs, std::string path) : fs_(fs), path_(std::move(path)) {}
  Status append(std::string_view data) override {
    if (fs_.disk_.full()) {
      fs_.disk_.countRefused();
      return diskFull(path_, "append to");
    }
    fs_.files_[path_].data.append(data);
    return Status::ok();
  }

 private:
  MemFileSystem& fs_;
  std::string path_;
};

Result<std::string> MemFileSystem::read(const std::filesystem::path& path) const {
  auto it = files_.find(path.lexically_normal().string());
  if (it == files_.end()) return Status::notFound(path.string() + ": no such file");
  return it->second.data;
}

Status MemFileSystem::writeAtomically(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  if (disk_.full()) {
    disk_.countRefused();
    return diskFull(path, "write");
  }
  files_[path.lexically_normal().string()] = File{std::string(data), mode};
  return Status::ok();
}

Result<std::unique_ptr<AppendFile>> MemFileSystem::openAppend(const std::filesystem::path& path) {
  const std::string key = path.lexically_normal().string();
  if (files_.count(key) == 0) {
    if (disk_.full()) {
      disk_.countRefused();
      return diskFull(path, "create");
    }
    files_[key] = File{};
  }
  return std::unique_ptr<AppendFile>(new MemAppendFile(*this, key));
}

Status MemFileSystem::remove(const std::filesystem::path& path) {
  files_.erase(path.lexically_normal().string());
  return Status::ok();
}

Status MemFileSystem::makeDirs(const std::filesystem::path& path) {
  for (auto p = path.lexically_normal(); !p.empty() && p != p.root_path(); p = p.parent_path()) dirs_[p.string()] = true;
  return Status::ok();
}

Result<std::vector<std::string>> MemFileSystem::list(const std::filesystem::path& dir) const {
  const std::string prefix = dir.lexically_normal().string() + "/";
  std::vector<std::string> names;
  for (auto it = files_.lower_bound(prefix); it != files_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it) {
    std::string rest = it->first.substr(prefix.size());
    if (rest.find('/') == std::string::npos) names.push_back(rest);
  }
  if (names.empty() && dirs_.count(dir.lexically_normal().string()) == 0)
    return Status::notFound(dir.string() + ": no such directory");
  return names;
}

bool MemFileSystem::exists(const std::filesystem::path& path) const {
  const std::string key = path.lexically_normal().string();
  return files_.count(key) != 0 || dirs_.count(key) != 0;
}

Result<mode_t> MemFileSystem::mode(const std::filesystem::path& path) const {
  auto it = files_.find(path.lexically_normal().string());
  if (it == files_.end()) return Status::notFound(path.string() + ": no such file");
  return it->second.mode;
}

size_t MemFileSystem::bytes() const {
  size_t n = 0;
  for (const auto& [path, f] : files_) n += f.data.size();
  return n;
}

bool MemFileSystem::holds(std::string_view needle) const {
  for (const auto& [path, f] : files_)
    if (f.data.find(needle) != std::string::npos) return true;
  return false;
}

bool SimDisk::holds(std::string_view needle, const std::string& db_dir) const {
  if (files_.holds(needle)) return true;
  std::vector<std::string> names;
  if (!mem_env_->GetChildren(db_dir, &names).ok()) return false;
  for (const auto& name : names) {
    std::string data;
    if (!rocksdb::ReadFileToString(mem_env_.get(), db_dir + "/" + name, &data).ok()) continue;
    if (data.find(needle) != std::string::npos) return true;
  }
  return false;
}

SimDisk::SimDisk() : files_(*this) {
  mem_env_.reset(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  fault_fs_ = std::make_shared<FaultFileSystem>(mem_env_->GetFileSystem(), *this);
  db_env_ = rocksdb::NewCompositeEnv(fault_fs_);
}

SimDisk::~SimDisk() = default;

}  // namespace meshos::sim
