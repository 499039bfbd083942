#include "agent/runtime/instance_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace meshos::runtime {

// On-disk format, one "key=value" line each, in this order:
//   instance, daemon, spec_hash, pid, pgid, start_ticks, started_wall_ms, cgroup_path, log_path
// Values never hold a newline (instance names are [A-Za-z0-9._-#], paths are ours).

Status makeDirs(const std::string& path) {
  if (path.empty()) return Status::invalid("empty directory path");
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::io("mkdir " + cur + ": " + std::strerror(errno));
    }
  }
  return Status::ok();
}

Result<std::unique_ptr<FileInstanceStore>> FileInstanceStore::open(std::string dir) {
  MESHOS_RETURN_IF_ERROR(makeDirs(dir));
  return std::unique_ptr<FileInstanceStore>(new FileInstanceStore(std::move(dir)));
}

std::string FileInstanceStore::pathFor(const std::string& instance) const {
  return dir_ + "/" + instance + ".inst";
}

Status FileInstanceStore::save(const InstanceRecord& r) {
  std::ostringstream o;
  o << "instance=" << r.instance << "\n"
    << "daemon=" << r.daemon << "\n"
    << "spec_hash=" << r.spec_hash << "\n"
    << "pid=" << r.pid << "\n"
    << "pgid=" << r.pgid << "\n"
    << "start_ticks=" << r.start_ticks << "\n"
    << "started_wall_ms=" << r.started_wall_ms << "\n"
    << "cgroup_path=" << r.cgroup_path << "\n"
    << "log_path=" << r.log_path << "\n";
  const std::string data = o.str();
  const std::string final_path = pathFor(r.instance);
  const std::string tmp = final_path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io("open " + tmp + ": " + std::strerror(errno));
  ssize_t n = ::write(fd, data.data(), data.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(data.size())) {
    ::unlink(tmp.c_str());
    return Status::io("write " + tmp + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    return Status::io("rename " + tmp + ": " + std::strerror(errno));
  }
  return Status::ok();
}

Status FileInstanceStore::erase(const std::string& instance) {
  if (::unlink(pathFor(instance).c_str()) != 0 && errno != ENOENT) {
    return Status::io("unlink " + pathFor(instance) + ": " + std::strerror(errno));
  }
  return Status::ok();
}

Result<std::vector<InstanceRecord>> FileInstanceStore::loadAll(std::vector<std::string>* skipped) {
  std::vector<InstanceRecord> out;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return Status::io("opendir " + dir_ + ": " + std::strerror(errno));
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 6 || name.substr(name.size() - 5) != ".inst") continue;
    std::ifstream in(dir_ + "/" + name);
    InstanceRecord r;
    std::string line;
    int fields = 0;
    bool bad = false;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq == std::string::npos) {
        bad = true;
        break;
      }
      std::string k = line.substr(0, eq);
      std::string v = line.substr(eq + 1);
      try {
        if (k == "instance") r.instance = v;
        else if (k == "daemon") r.daemon = v;
        else if (k == "spec_hash") r.spec_hash = v;
        else if (k == "pid") r.pid = std::stoi(v);
        else if (k == "pgid") r.pgid = std::stoi(v);
        else if (k == "start_ticks") r.start_ticks = std::stoll(v);
        else if (k == "started_wall_ms") r.started_wall_ms = std::stoll(v);
        else if (k == "cgroup_path") r.cgroup_path = v;
        else if (k == "log_path") r.log_path = v;
        else continue;
      } catch (const std::exception&) {
        bad = true;
        break;
      }
      ++fields;
    }
    if (bad || fields != 9 || r.pid <= 0 || r.instance.empty()) {
      if (skipped != nullptr) skipped->push_back(name);
      continue;
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace meshos::runtime
