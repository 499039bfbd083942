#include "agent/runtime/instance_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <sstream>

namespace meshos::runtime {

// Journal format, one line per operation, fields separated by a tab:
//   S<TAB>instance=..<TAB>daemon=..<TAB>spec_hash=..<TAB>pid=..<TAB>pgid=..<TAB>
//     start_ticks=..<TAB>started_wall_ms=..<TAB>cgroup_path=..<TAB>log_path=..   (saved)
//     [<TAB>runtime=oci]                                        (a container; absent otherwise)
//   E<TAB>instance=..                                                             (erased)
// The last line about an instance wins. Values never hold a tab or a newline (save()
// refuses them).

namespace {

// One key=value into a record; false for a bad value. Counts the known keys.
bool applyField(InstanceRecord& r, const std::string& k, const std::string& v, int& fields) {
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
    else if (k == "runtime") {
      r.runtime = v;  // optional: absent for a host process
      return true;
    } else return true;  // unknown keys are ignored (a newer agent's)
  } catch (const std::exception&) {
    return false;
  }
  ++fields;
  return true;
}

bool complete(const InstanceRecord& r, int fields) {
  return fields == 9 && r.pid > 0 && !r.instance.empty();
}

std::vector<std::string> splitTabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t t = line.find('\t', start);
    out.push_back(line.substr(start, t == std::string::npos ? std::string::npos : t - start));
    if (t == std::string::npos) break;
    start = t + 1;
  }
  return out;
}

// A journal "S" line into a record; false when it is not a complete one.
bool parseSaveLine(const std::string& line, InstanceRecord& r) {
  auto parts = splitTabs(line);
  if (parts.empty() || parts[0] != "S") return false;
  int fields = 0;
  for (size_t i = 1; i < parts.size(); ++i) {
    auto eq = parts[i].find('=');
    if (eq == std::string::npos) return false;
    if (!applyField(r, parts[i].substr(0, eq), parts[i].substr(eq + 1), fields)) return false;
  }
  return complete(r, fields);
}

}  // namespace

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

Result<std::unique_ptr<FileInstanceStore>> FileInstanceStore::open(FileSystem& fs, std::string dir) {
  MESHOS_RETURN_IF_ERROR(fs.makeDirs(dir));
  std::unique_ptr<FileInstanceStore> store(new FileInstanceStore(fs, std::move(dir)));
  MESHOS_RETURN_IF_ERROR(store->loadJournal());
  return store;
}

FileInstanceStore::~FileInstanceStore() = default;

Status FileInstanceStore::loadJournal() {
  bool ends_with_newline = true;
  auto text = fs_.read(journalPath());
  if (!text && text.status().code() != Code::kNotFound) return text.status();
  if (text) {
    std::istringstream in(*text);
    std::string line;
    size_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      ends_with_newline = !in.eof() || (!text->empty() && text->back() == '\n');
      ++journal_lines_;
      auto parts = splitTabs(line);
      InstanceRecord r;
      if (!parts.empty() && parts[0] == "E" && parts.size() == 2 &&
          parts[1].rfind("instance=", 0) == 0 && ends_with_newline) {
        live_.erase(parts[1].substr(9));
      } else if (ends_with_newline && parseSaveLine(line, r)) {
        live_[r.instance] = line + "\n";
      } else {
        journal_skipped_.push_back("instances.journal:" + std::to_string(lineno));
      }
    }
  }
  // A torn last line (a host crash mid-write) is cut off, not ended: ended with a newline,
  // a line torn after a whole field ("...\tpid=43" of pid=4321) would read as a record.
  if (!ends_with_newline) {
    MESHOS_RETURN_IF_ERROR(fs_.writeAtomically(journalPath(), text->substr(0, text->rfind('\n') + 1), 0644));
    --journal_lines_;
  }
  return compactIfNeeded();
}

Status FileInstanceStore::append(const std::string& line) {
  // Opened at the first write: an agent that starts nothing leaves nothing behind.
  if (!journal_) {
    auto file = fs_.openAppend(journalPath());
    if (!file) return file.status();
    journal_ = std::move(*file);
  }
  MESHOS_RETURN_IF_ERROR(journal_->append(line));
  ++journal_lines_;
  return Status::ok();
}

Status FileInstanceStore::compactIfNeeded() {
  if (journal_lines_ <= 256 || journal_lines_ <= 4 * live_.size()) return Status::ok();
  std::string data;
  for (const auto& [i, line] : live_) data += line;
  journal_.reset();
  MESHOS_RETURN_IF_ERROR(fs_.writeAtomically(journalPath(), data, 0644));
  journal_lines_ = live_.size();
  return Status::ok();
}

Status FileInstanceStore::save(const InstanceRecord& r) {
  for (const std::string* v : {&r.instance, &r.daemon, &r.spec_hash, &r.cgroup_path, &r.log_path, &r.runtime}) {
    if (v->find_first_of("\t\n") != std::string::npos) {
      return Status::invalid("instance record of " + r.instance + ": a value holds a tab or newline");
    }
  }
  if (r.instance.empty()) return Status::invalid("instance record without an instance name");
  std::string line = "S\tinstance=" + r.instance + "\tdaemon=" + r.daemon +
                     "\tspec_hash=" + r.spec_hash + "\tpid=" + std::to_string(r.pid) +
                     "\tpgid=" + std::to_string(r.pgid) +
                     "\tstart_ticks=" + std::to_string(r.start_ticks) +
                     "\tstarted_wall_ms=" + std::to_string(r.started_wall_ms) +
                     "\tcgroup_path=" + r.cgroup_path + "\tlog_path=" + r.log_path +
                     (r.runtime.empty() ? "" : "\truntime=" + r.runtime) + "\n";
  MESHOS_RETURN_IF_ERROR(append(line));
  live_[r.instance] = std::move(line);
  return compactIfNeeded();
}

std::string FileInstanceStore::cronPathFor(const std::string& daemon) const {
  return dir_ + "/" + daemon + ".cron";
}

Status FileInstanceStore::saveLastFire(const std::string& daemon, int64_t wall_ms) {
  return fs_.writeAtomically(cronPathFor(daemon), "last_fire_ms=" + std::to_string(wall_ms) + "\n", 0644);
}

Result<int64_t> FileInstanceStore::lastFire(const std::string& daemon) {
  const std::string path = cronPathFor(daemon);
  auto text = fs_.read(path);
  if (!text) {
    if (text.status().code() == Code::kNotFound) return Status::notFound("no last fire recorded for '" + daemon + "'");
    return text.status();
  }
  std::string line = text->substr(0, text->find('\n'));
  if (line.rfind("last_fire_ms=", 0) != 0) return Status::corruption(path + ": unreadable");
  try {
    size_t used = 0;
    const int64_t v = std::stoll(line.substr(13), &used);
    if (used != line.size() - 13 || v < 0) return Status::corruption(path + ": unreadable");
    return v;
  } catch (const std::exception&) {
    return Status::corruption(path + ": unreadable");
  }
}

Status FileInstanceStore::eraseLastFire(const std::string& daemon) { return fs_.remove(cronPathFor(daemon)); }

Status FileInstanceStore::erase(const std::string& instance) {
  if (live_.erase(instance) == 0) return Status::ok();  // nothing recorded: nothing to write
  MESHOS_RETURN_IF_ERROR(append("E\tinstance=" + instance + "\n"));
  return compactIfNeeded();
}

Result<std::vector<InstanceRecord>> FileInstanceStore::loadAll(std::vector<std::string>* skipped) {
  std::vector<InstanceRecord> out;
  if (skipped != nullptr) skipped->insert(skipped->end(), journal_skipped_.begin(), journal_skipped_.end());
  for (const auto& [instance, line] : live_) {
    InstanceRecord r;
    if (parseSaveLine(line.substr(0, line.size() - 1), r)) out.push_back(std::move(r));
  }
  return out;
}

}  // namespace meshos::runtime
