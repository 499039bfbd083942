#include "agent/core/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace meshos {

std::string describeErrno(int err) {
  if (err == ENOSPC || err == EDQUOT) return "disk full";
  return std::strerror(err);
}

namespace {

Status ioError(const std::string& what, const std::filesystem::path& path, int err) {
  return Status::io(what + " " + path.string() + ": " + describeErrno(err));
}

Status writeAll(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t w = ::write(fd, data.data() + off, data.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::io(describeErrno(w < 0 ? errno : EIO));
    off += static_cast<size_t>(w);
  }
  return Status::ok();
}

class PosixAppendFile final : public AppendFile {
 public:
  PosixAppendFile(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  ~PosixAppendFile() override { ::close(fd_); }
  Status append(std::string_view data) override {
    // One write() of the whole line: O_APPEND makes it land whole at the end.
    ssize_t w = ::write(fd_, data.data(), data.size());
    if (w == static_cast<ssize_t>(data.size())) return Status::ok();
    int err = w < 0 ? errno : ENOSPC;  // a short write on a regular file means no space
    // A torn line would run into the next one appended: cut it off again.
    if (w > 0) {
      struct stat st {};
      if (::fstat(fd_, &st) == 0 && st.st_size >= w) (void)::ftruncate(fd_, st.st_size - w);
    }
    return ioError("cannot append to", path_, err);
  }

 private:
  int fd_;
  std::filesystem::path path_;
};

}  // namespace

Status writeFileAtomically(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  const std::string tmp = path.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ioError("cannot create", tmp, errno);
  ::fchmod(fd, mode);  // the umask must not widen or narrow a key file's mode
  Status s = writeAll(fd, data);
  if (s && ::fsync(fd) != 0) s = Status::io(describeErrno(errno));
  if (::close(fd) != 0 && s) s = Status::io(describeErrno(errno));
  if (s && ::rename(tmp.c_str(), path.c_str()) != 0) s = Status::io(describeErrno(errno));
  if (!s) {
    ::unlink(tmp.c_str());
    return Status::io("cannot write " + path.string() + ": " + s.message());
  }
  // The rename is durable only once the directory is.
  auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

Result<std::string> PosixFileSystem::read(const std::filesystem::path& path) const {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::notFound(path.string() + ": no such file");
    return ioError("cannot open", path, errno);
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ioError("cannot read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status PosixFileSystem::writeAtomically(const std::filesystem::path& path, std::string_view data,
                                        mode_t mode) {
  return writeFileAtomically(path, data, mode);
}

Result<std::unique_ptr<AppendFile>> PosixFileSystem::openAppend(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return ioError("cannot open", path, errno);
  return std::unique_ptr<AppendFile>(new PosixAppendFile(fd, path));
}

Status PosixFileSystem::remove(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ioError("cannot remove", path, errno);
  return Status::ok();
}

Status PosixFileSystem::makeDirs(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::io("cannot create directory " + path.string() + ": " + ec.message());
  return Status::ok();
}

Result<std::vector<std::string>> PosixFileSystem::list(const std::filesystem::path& dir) const {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return Status::notFound(dir.string() + ": no such directory");
    return ioError("cannot list", dir, errno);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool PosixFileSystem::exists(const std::filesystem::path& path) const {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result<mode_t> PosixFileSystem::mode(const std::filesystem::path& path) const {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::notFound(path.string() + ": no such file");
    return ioError("cannot stat", path, errno);
  }
  return static_cast<mode_t>(st.st_mode & 07777);
}

}  // namespace meshos
