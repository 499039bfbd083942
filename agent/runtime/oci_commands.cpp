#include "agent/runtime/oci_commands.h"

#include <algorithm>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/runtime/instance_files.h"
#include "agent/runtime/process_internal.h"

extern char** environ;

namespace meshos::runtime {

std::vector<std::string> OciCommands::argv(const std::vector<std::string>& args, const std::string& log_path) const {
  std::vector<std::string> out{binary_, "--root", root_};
  if (!log_path.empty()) {
    out.insert(out.end(), {"--log", log_path, "--log-format", "json"});
  }
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

bool OciCommands::hasState(const std::string& id) const {
  struct stat st{};
  return ::lstat((root_ + "/" + id).c_str(), &st) == 0;
}

namespace {

struct Launch {
  uv_process_t proc;
  std::string log_path;
  std::function<void(const OciCommandResult&)> done;
};

// The last 64 KiB of a command's error log: where its last error is.
std::string logTail(const std::string& path) {
  constexpr int64_t kMax = 64 * 1024;
  const int64_t size = std::max<int64_t>(0, detail::fileSize(path));
  return detail::readRange(path, std::max<int64_t>(0, size - kMax), kMax);
}

}  // namespace

std::string containerId(const std::string& instance) {
  std::string id = instance;
  for (char& c : id) {
    if (c == '#') c = '+';
  }
  return id;
}

std::string lastOciError(const std::string& log_text) {
  std::istringstream lines(log_text);
  std::string line, last;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("msg") && j["msg"].is_string() &&
        j.value("level", std::string()) != "debug" && j.value("level", std::string()) != "info") {
      last = j["msg"].get<std::string>();
    } else if (!j.is_object() && !line.empty()) {
      last = line;  // a program that writes plain text (umoci)
    }
  }
  return last;
}

Status OciCommands::run(uv_loop_t* loop, const std::vector<std::string>& args, int out_fd,
                        const std::string& log_path, std::function<void(const OciCommandResult&)> done) const {
  return runProgram(loop, argv(args, log_path), out_fd, log_path, std::move(done));
}

Status runProgram(uv_loop_t* loop, const std::vector<std::string>& argv, int out_fd, const std::string& err_path,
                  std::function<void(const OciCommandResult&)> done) {
  int err_fd = -1;
  if (!err_path.empty()) {
    err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (err_fd < 0) return Status::io("open " + err_path + ": " + std::strerror(errno));
  }
  std::vector<char*> cargs;
  for (const auto& a : argv) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  const int to = out_fd >= 0 ? out_fd : err_fd;
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  for (int i = 1; i <= 2; ++i) {
    stdio[i].flags = to >= 0 ? UV_INHERIT_FD : UV_IGNORE;
    stdio[i].data.fd = to;
  }
  uv_process_options_t opts{};
  opts.file = argv.front().c_str();
  opts.args = cargs.data();
  opts.stdio = stdio;
  opts.stdio_count = 3;
  opts.exit_cb = [](uv_process_t* p, int64_t status, int sig) {
    auto* l = static_cast<Launch*>(p->data);
    OciCommandResult r;
    r.exit_code = sig != 0 ? -1 : static_cast<int>(status);
    r.term_signal = sig;
    if (!r.ok()) {
      r.error = l->log_path.empty() ? "" : lastOciError(logTail(l->log_path));
      if (r.error.empty()) r.error = sig != 0 ? "killed by signal " + std::to_string(sig) : "exited " + std::to_string(status);
    }
    auto done = std::move(l->done);
    uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) { delete static_cast<Launch*>(h->data); });
    done(r);
  };
  auto* l = new Launch{{}, err_path, std::move(done)};
  l->proc.data = l;
  const int rc = uv_spawn(loop, &l->proc, &opts);
  if (err_fd >= 0) ::close(err_fd);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&l->proc), [](uv_handle_t* h) { delete static_cast<Launch*>(h->data); });
    return Status::unavailable("spawn " + argv.front() + ": " + uv_strerror(rc));
  }
  return Status::ok();
}

Result<std::string> OciCommands::runAndWait(const std::vector<std::string>& args, int64_t timeout_ms) const {
  const std::vector<std::string> full = argv(args);
  std::vector<char*> cargs;
  for (const auto& a : full) cargs.push_back(const_cast<char*>(a.c_str()));
  cargs.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Status::io("pipe: " + std::string(std::strerror(errno)));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, binary_.c_str(), &fa, nullptr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return Status::unavailable("spawn " + binary_ + ": " + std::strerror(rc));
  }
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{out[0], POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    if (text.size() < 64 * 1024) text.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return Status::unavailable(binary_ + " " + args.front() + ": no answer in " + std::to_string(timeout_ms) + " ms");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::notFound(binary_ + " " + args.front() + " failed (status " + std::to_string(status) + ")");
  }
  return text;
}

std::string findExecutable(const std::string& name) {
  const char* env = std::getenv("PATH");
  return detail::findInPath(name, env != nullptr ? env : detail::kDefaultPath);
}


namespace {

bool parseId(std::string_view text, uint32_t& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size() && !text.empty();
}

}  // namespace

Result<std::pair<uint32_t, uint32_t>> containerUser(const std::string& rootfs, const std::string& user) {
  if (user.empty()) return std::pair<uint32_t, uint32_t>{0, 0};
  const size_t colon = user.find(':');
  uint32_t uid = 0, gid = 0;
  if (parseId(std::string_view(user).substr(0, colon), uid)) {
    if (colon == std::string::npos) return std::pair{uid, uid};
    if (parseId(std::string_view(user).substr(colon + 1), gid)) return std::pair{uid, gid};
    return Status::invalid("user: '" + user + "': expected a name, a uid or uid:gid");
  }
  // name:x:uid:gid:...
  std::ifstream passwd(rootfs + "/etc/passwd");
  std::string line;
  while (std::getline(passwd, line)) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    std::string part;
    while (std::getline(fields, part, ':')) f.push_back(part);
    if (f.size() >= 4 && f[0] == user && parseId(f[2], uid) && parseId(f[3], gid)) return std::pair{uid, gid};
  }
  return Status::invalid("user: no user '" + user + "' in " + rootfs + "/etc/passwd (give a uid, or uid:gid)");
}

}  // namespace meshos::runtime
