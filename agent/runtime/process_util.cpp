// /proc and small-file helpers of the process runtime (process_internal.h).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/runtime/process_internal.h"

namespace meshos::runtime::detail {

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// Fields of /proc/<pid>/stat after the command name (which may hold spaces and parens).
std::vector<std::string> statFields(int pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return {};
  std::string_view line(buf, static_cast<size_t>(n));
  auto close = line.rfind(')');
  if (close == std::string_view::npos || close + 2 > line.size()) return {};
  std::vector<std::string> f;
  f.reserve(52);
  size_t i = close + 2;
  while (i < line.size()) {
    size_t j = line.find_first_of(" \n", i);
    if (j == std::string_view::npos) j = line.size();
    if (j > i) f.emplace_back(line.substr(i, j - i));
    i = j + 1;
  }
  return f;  // f[0] is field 3 (state)
}

int64_t field(const std::vector<std::string>& f, int n) {  // n: 1-based field number
  size_t i = static_cast<size_t>(n - 3);
  if (i >= f.size()) return -1;
  try {
    return std::stoll(f[i]);
  } catch (const std::exception&) {
    return -1;
  }
}

// Pids whose process group is pgid (zombies included).
std::vector<int> groupMembers(int pgid) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    int pid = std::atoi(e->d_name);
    auto f = statFields(pid);
    if (!f.empty() && field(f, 5) == pgid) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

bool writeFile(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::write(fd, data.data(), data.size());
  ::close(fd);
  return n == static_cast<ssize_t>(data.size());
}

// 'text' for /bin/sh, whatever text holds.
std::string shellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The exit code the shim recorded; nullopt when there is none (or it is unreadable).
std::optional<int> readExitFile(const std::string& path) {
  if (path.empty()) return std::nullopt;
  std::ifstream in(path);
  int rc = -1;
  if (!(in >> rc) || rc < 0 || rc > 255) return std::nullopt;
  return rc;
}

std::string readSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t fileSize(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return st.st_size;
}

std::string readRange(const std::string& path, int64_t offset, int64_t max) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  out.resize(static_cast<size_t>(max));
  ssize_t n = ::pread(fd, out.data(), out.size(), offset);
  ::close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

std::string signalName(int sig) {
  const char* d = sigabbrev_np(sig);
  return d != nullptr ? std::string("SIG") + d : std::to_string(sig);
}

}  // namespace meshos::runtime::detail
