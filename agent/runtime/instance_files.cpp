#include "agent/runtime/instance_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <sys/stat.h>

#include "agent/runtime/process_internal.h"

namespace meshos::runtime::detail {

LogChunk readLogChunk(const std::string& path, const LogQuery& q) {
  const int64_t max = std::max<int64_t>(1, std::min<int64_t>(q.max_bytes, 16 << 20));
  LogChunk c;
  int64_t size = std::max<int64_t>(0, fileSize(path));
  if (q.tail_lines >= 0) {
    // The last N lines: from the current file, then the newest rotated one if needed.
    std::string data = readRange(path, std::max<int64_t>(0, size - max), std::min(size, max));
    auto countLines = [](const std::string& d) {
      return static_cast<int64_t>(std::count(d.begin(), d.end(), '\n'));
    };
    if (countLines(data) < q.tail_lines && static_cast<int64_t>(data.size()) < max) {
      const std::string older = path + ".1";
      int64_t osize = std::max<int64_t>(0, fileSize(older));
      int64_t room = max - static_cast<int64_t>(data.size());
      data = readRange(older, std::max<int64_t>(0, osize - room), std::min(osize, room)) + data;
    }
    // Keep the last tail_lines lines (a final unterminated line counts as one).
    int64_t lines = 0;
    size_t cut = 0;
    for (size_t i = data.size(); i-- > 0;) {
      if (data[i] == '\n' && i != data.size() - 1) {
        if (++lines == q.tail_lines) {
          cut = i + 1;
          break;
        }
      }
    }
    if (q.tail_lines == 0) cut = data.size();
    c.data = data.substr(cut);
    c.next_offset = size;
    return c;
  }
  int64_t offset = q.offset;
  if (offset > size) {
    c.rotated = true;
    offset = 0;
  }
  c.data = readRange(path, offset, std::min(max, size - offset));
  c.next_offset = offset + static_cast<int64_t>(c.data.size());
  return c;
}

void rotateLogFile(const std::string& path, const spec::LogRotation& rotation) {
  int64_t size = fileSize(path);
  if (size < 0 || size <= rotation.max_bytes) return;
  const int64_t keep = rotation.keep_files;
  if (keep > 0) {
    ::unlink((path + "." + std::to_string(keep)).c_str());
    for (int64_t k = keep - 1; k >= 1; --k) {
      ::rename((path + "." + std::to_string(k)).c_str(), (path + "." + std::to_string(k + 1)).c_str());
    }
    // Copy then truncate: the daemon keeps its O_APPEND descriptor to the current file.
    int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    int out = ::open((path + ".1").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (in >= 0 && out >= 0) {
      loff_t remaining = size;
      while (remaining > 0) {
        ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(remaining), 0);
        if (n <= 0) break;
        remaining -= n;
      }
    }
    if (in >= 0) ::close(in);
    if (out >= 0) ::close(out);
  }
  (void)::truncate(path.c_str(), 0);
}

Result<ResourceStats> readResourceStats(int pid, const StatsFiles& files) {
  ResourceStats s;
  auto f = statFields(pid);
  if (f.empty()) return Status::unavailable("no /proc entry for pid " + std::to_string(pid));
  const int64_t tick = ::sysconf(_SC_CLK_TCK);
  const int64_t page = ::sysconf(_SC_PAGESIZE);
  s.cpu_user_ms = field(f, 14) * 1000 / tick;
  s.cpu_system_ms = field(f, 15) * 1000 / tick;
  s.rss_bytes = field(f, 24) * page;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++s.open_fds;
    }
    ::closedir(d);
  }
  s.processes = 1;
  if (!files.procs_group.empty()) {
    std::string procs = readSmallFile(files.procs_group + "/cgroup.procs");
    s.processes = static_cast<int64_t>(std::count(procs.begin(), procs.end(), '\n'));
  }
  try {
    if (!files.memory_usage_file.empty()) s.cgroup_memory_bytes = std::stoll(readSmallFile(files.memory_usage_file));
  } catch (const std::exception&) {
  }
  if (!files.cpu_stat_group.empty()) {
    std::istringstream cpu(readSmallFile(files.cpu_stat_group + "/cpu.stat"));
    std::string k;
    int64_t v = 0;
    while (cpu >> k >> v) {
      if (k == "usage_usec") s.cgroup_cpu_usage_us = v;
    }
  }
  return s;
}

std::string findInPath(const std::string& name, const std::string& search_path) {
  auto executable = [](const std::string& p) {
    struct stat st{};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) return executable(name) ? name : "";
  std::stringstream path(search_path);
  std::string dir;
  while (std::getline(path, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (executable(candidate)) return candidate;
  }
  return "";
}

ExecResult toExecResult(const probes::CommandResult& r) {
  ExecResult e;
  e.exit_code = r.exit_code;
  e.term_signal = r.term_signal;
  e.output = r.output;
  e.truncated = r.truncated;
  e.timed_out = r.timed_out;
  return e;
}

void closePidfdWatch(uv_poll_t* poll, int pidfd) {
  poll->data = reinterpret_cast<void*>(static_cast<intptr_t>(pidfd));
  uv_close(reinterpret_cast<uv_handle_t*>(poll), [](uv_handle_t* h) {
    ::close(static_cast<int>(reinterpret_cast<intptr_t>(h->data)));
    delete reinterpret_cast<uv_poll_t*>(h);
  });
}

}  // namespace meshos::runtime::detail
