// ProcessRuntime: logs (read and rotated), exec, resource stats.
#include "agent/runtime/process_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <set>
#include <string_view>
#include <cstring>
#include <fstream>
#include <sstream>

#include "probes/health_check.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace meshos::runtime {

using namespace detail;

Result<LogChunk> ProcessRuntime::logs(const std::string& instance, const LogQuery& q) const {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  const std::string& path = it->second->log_path;
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

void ProcessRuntime::rotateLogsNow() {
  for (auto& [name, pp] : procs_) {
    Proc& p = *pp;
    int64_t size = fileSize(p.log_path);
    if (size < 0 || size <= p.spec.logs.max_bytes) continue;
    const int64_t keep = p.spec.logs.keep_files;
    if (keep > 0) {
      ::unlink((p.log_path + "." + std::to_string(keep)).c_str());
      for (int64_t k = keep - 1; k >= 1; --k) {
        ::rename((p.log_path + "." + std::to_string(k)).c_str(),
                 (p.log_path + "." + std::to_string(k + 1)).c_str());
      }
      // Copy then truncate: the daemon keeps its O_APPEND descriptor to the current file.
      int in = ::open(p.log_path.c_str(), O_RDONLY | O_CLOEXEC);
      int out = ::open((p.log_path + ".1").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
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
    (void)::truncate(p.log_path.c_str(), 0);
  }
}

Status ProcessRuntime::exec(const std::string& instance, std::vector<std::string> argv,
                            int64_t timeout_ms, size_t max_output,
                            std::function<void(Result<ExecResult>)> done) {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  if (argv.empty()) return Status::invalid("exec: empty command");
  const Proc& p = *it->second;
  const probes::CommandContext ctx{p.env, p.cwd, p.uid, p.gid};
  return probes::runCommand(loop_, argv, ctx, timeout_ms, max_output,
                            [done = std::move(done)](const probes::CommandResult& r) {
                              ExecResult e;
                              e.exit_code = r.exit_code;
                              e.term_signal = r.term_signal;
                              e.output = r.output;
                              e.truncated = r.truncated;
                              e.timed_out = r.timed_out;
                              done(e);
                            });
}

Result<ResourceStats> ProcessRuntime::stats(const std::string& instance) const {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  const Proc& p = *it->second;
  if (p.state != ProcessState::kRunning && p.state != ProcessState::kStopping) {
    return Status::unavailable("instance " + instance + " is not running");
  }
  ResourceStats s;
  auto f = statFields(p.pid);
  if (f.empty()) return Status::unavailable("no /proc entry for pid " + std::to_string(p.pid));
  const int64_t tick = ::sysconf(_SC_CLK_TCK);
  const int64_t page = ::sysconf(_SC_PAGESIZE);
  s.cpu_user_ms = field(f, 14) * 1000 / tick;
  s.cpu_system_ms = field(f, 15) * 1000 / tick;
  s.rss_bytes = field(f, 24) * page;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(p.pid) + "/fd").c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++s.open_fds;
    }
    ::closedir(d);
  }
  s.processes = 1;
  if (p.cgroup) {
    std::string procs = readSmallFile(p.cgroup_path + "/cgroup.procs");
    s.processes = static_cast<int64_t>(std::count(procs.begin(), procs.end(), '\n'));
    try {
      if (!p.memory_usage_file.empty()) s.cgroup_memory_bytes = std::stoll(readSmallFile(p.memory_usage_file));
    } catch (const std::exception&) {
    }
    std::istringstream cpu(readSmallFile(p.cgroup_path + "/cpu.stat"));
    std::string k;
    int64_t v = 0;
    while (cpu >> k >> v) {
      if (k == "usage_usec") s.cgroup_cpu_usage_us = v;
    }
  }
  return s;
}

}  // namespace meshos::runtime
