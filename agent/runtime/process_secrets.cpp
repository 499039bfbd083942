// ProcessRuntime, secrets: what an instance with sealed secrets starts with. The values
// are opened at each start (so a rotation needs no agent restart), handed to the process
// alone, and wiped here: environment entries after the spawn, files when the process ends.
// Files live in <secrets_dir>/<instance>/ (not under the data directory: by default in
// /dev/shm, memory only), the directory 0500 and each file 0400, owned by the daemon's
// user, so another daemon's user cannot read them.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "agent/runtime/process_internal.h"

namespace meshos::runtime {

using namespace detail;

namespace {

Status writeSecretFile(const std::string& path, std::string_view value, std::optional<uint32_t> uid,
                       std::optional<uint32_t> gid) {
  (void)::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
  if (fd < 0) return Status::io(errnoText("create " + path));
  size_t done = 0;
  while (done < value.size()) {
    const ssize_t n = ::write(fd, value.data() + done, value.size() - done);
    if (n <= 0) {
      const Status st = Status::io(errnoText("write " + path));
      ::close(fd);
      (void)::unlink(path.c_str());
      return st;
    }
    done += static_cast<size_t>(n);
  }
  if (uid && ::fchown(fd, *uid, gid.value_or(0)) != 0) {
    const Status st = Status::io(errnoText("chown " + path));
    ::close(fd);
    (void)::unlink(path.c_str());
    return st;
  }
  ::close(fd);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<ProcessRuntime::LaunchSecrets>> ProcessRuntime::openSecrets(const Proc& p) {
  auto out = std::make_unique<LaunchSecrets>();
  const spec::SecretUses& uses = p.spec.secrets;
  if (uses.env.empty() && uses.files.empty()) return out;
  const std::string who = "daemon '" + p.spec.name + "': ";
  auto open = [&](const std::string& name) -> Result<SecretValue> {
    if (!open_secret_) return Status::invalid(who + "secret " + name + ": this runtime has no keys to open secrets");
    auto v = open_secret_(name);
    if (!v) return Status::invalid(who + v.status().message());
    return v;
  };
  for (const auto& [var, name] : uses.env) {
    auto v = open(name);
    if (!v) return v.status();
    std::string entry;
    entry.reserve(var.size() + 1 + v->size());  // one buffer, so wiping it wipes the value
    entry.append(var).append("=").append(v->view());
    out->env.push_back(std::move(entry));
  }
  if (uses.files.empty()) return out;
  auto dir = writeSecretFiles(options_.secrets_dir, open_secret_, p.instance, p.spec, p.uid, p.gid);
  if (!dir) return dir.status();
  out->env.push_back("MESHOS_SECRETS_DIR=" + *dir);
  return out;
}

void ProcessRuntime::removeSecretFiles(const std::string& instance) {
  removeSecretFilesOf(options_.secrets_dir, instance);
}

void removeSecretFilesOf(const std::string& secrets_dir, const std::string& instance) {
  if (secrets_dir.empty()) return;
  const std::filesystem::path dir = secrets_dir + "/" + instance;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return;
  (void)::chmod(dir.c_str(), 0700);
  std::filesystem::remove_all(dir, ec);
  if (ec) spdlog::warn("secrets of {}: cannot remove {}: {}", instance, dir.string(), ec.message());
}

Result<std::string> writeSecretFiles(const std::string& secrets_dir, const Runtime::SecretOpener& opener,
                                     const std::string& instance, const spec::DaemonSpec& spec,
                                     std::optional<uint32_t> uid, std::optional<uint32_t> gid) {
  const std::string who = "daemon '" + spec.name + "': ";
  if (secrets_dir.empty()) return Status::invalid(who + "secret_files: this node has no secrets directory");
  const std::string dir = secrets_dir + "/" + instance;
  std::error_code ec;
  std::filesystem::create_directories(secrets_dir, ec);
  (void)::chmod(secrets_dir.c_str(), 0711);  // daemons may pass through, not list
  removeSecretFilesOf(secrets_dir, instance);
  if (::mkdir(dir.c_str(), 0700) != 0) return Status::io(errnoText("mkdir " + dir)).withContext(who + "secret_files");
  for (const auto& name : spec.secrets.files) {
    if (!opener) return Status::invalid(who + "secret " + name + ": this runtime has no keys to open secrets");
    auto v = opener(name);
    if (!v) return Status::invalid(who + v.status().message());
    MESHOS_RETURN_IF_ERROR(writeSecretFile(dir + "/" + name, v->view(), uid, gid).withContext(who + "secret_files"));
  }
  if (uid && ::chown(dir.c_str(), *uid, gid.value_or(0)) != 0) {
    return Status::io(errnoText("chown " + dir)).withContext(who + "secret_files");
  }
  (void)::chmod(dir.c_str(), 0500);
  return dir;
}

}  // namespace meshos::runtime
