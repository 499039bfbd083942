// Instance journal target: the journal file (and a cron daemon's last-fire file) as a crash
// or a damaged disk may leave them. Opening never fails on content; what it loads is stable
// across a reopen (the torn-line repair and the compaction keep the same records), and a
// record saved after it is there on the next open.
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "agent/runtime/instance_store.h"
#include "tests/fuzz/fuzz_target.h"

namespace meshos::fuzz {

using namespace meshos::runtime;

namespace {

constexpr const char* kDir = "/fuzz/instances";

// Files in a map: the journal is the only state, and each input starts from it.
class MapFileSystem final : public FileSystem {
 public:
  std::map<std::string, std::string> files;

  Result<std::string> read(const std::filesystem::path& path) const override {
    auto it = files.find(path.string());
    if (it == files.end()) return Status::notFound(path.string());
    return it->second;
  }
  Status writeAtomically(const std::filesystem::path& path, std::string_view data, mode_t) override {
    files[path.string()] = std::string(data);
    return Status::ok();
  }
  Result<std::unique_ptr<AppendFile>> openAppend(const std::filesystem::path& path) override {
    class Append final : public AppendFile {
     public:
      explicit Append(std::string& file) : file_(file) {}
      Status append(std::string_view data) override {
        file_.append(data);
        return Status::ok();
      }

     private:
      std::string& file_;
    };
    return std::unique_ptr<AppendFile>(new Append(files[path.string()]));
  }
  Status remove(const std::filesystem::path& path) override {
    files.erase(path.string());
    return Status::ok();
  }
  Status makeDirs(const std::filesystem::path&) override { return Status::ok(); }
  Result<std::vector<std::string>> list(const std::filesystem::path&) const override {
    return Status::notFound("no listing here");
  }
  bool exists(const std::filesystem::path& path) const override { return files.count(path.string()) > 0; }
  Result<mode_t> mode(const std::filesystem::path&) const override { return mode_t{0600}; }
};

using RecordKey = std::tuple<std::string, std::string, std::string, int, int, int64_t, int64_t, std::string, std::string>;

std::set<RecordKey> loaded(FileSystem& fs) {
  auto store = FileInstanceStore::open(fs, kDir);
  check(store.isOk());  // a journal's content never stops the agent
  auto records = (*store)->loadAll(nullptr);
  check(records.isOk());
  std::set<RecordKey> out;
  std::set<std::string> instances;
  for (const auto& r : *records) {
    check(r.pid > 0 && !r.instance.empty());
    check(instances.insert(r.instance).second);
    out.insert({r.instance, r.daemon, r.spec_hash, r.pid, r.pgid, r.start_ticks, r.started_wall_ms,
                r.cgroup_path, r.log_path});
  }
  return out;
}

InstanceRecord someRecord() {
  InstanceRecord r;
  r.instance = "web-1";
  r.daemon = "web";
  r.spec_hash = "ab12";
  r.pid = 4242;
  r.pgid = 4242;
  r.start_ticks = 123456;
  r.started_wall_ms = 1'700'000'000'000;
  r.cgroup_path = "/sys/fs/cgroup/meshos/web-1";
  r.log_path = "/var/lib/meshos/logs/web-1.log";
  return r;
}

}  // namespace

int fuzzInstanceJournal(const uint8_t* data, size_t size) {
  const std::string content(reinterpret_cast<const char*>(data), size);
  MapFileSystem fs;
  fs.files[std::string(kDir) + "/instances.journal"] = content;
  fs.files[std::string(kDir) + "/report.cron"] = content;
  const auto first = loaded(fs);
  check(loaded(fs) == first);
  InstanceRecord extra = someRecord();
  extra.instance = "fuzz-extra";
  {
    auto store = FileInstanceStore::open(fs, kDir);
    check(store.isOk());
    check((*store)->save(extra).isOk());
    auto fire = (*store)->lastFire("report");
    if (fire) check(*fire >= 0);
  }
  // What was there, with the saved record in place of any older one of that instance.
  std::set<RecordKey> expected;
  for (const auto& k : first) {
    if (std::get<0>(k) != extra.instance) expected.insert(k);
  }
  expected.insert({extra.instance, extra.daemon, extra.spec_hash, extra.pid, extra.pgid, extra.start_ticks,
                   extra.started_wall_ms, extra.cgroup_path, extra.log_path});
  check(loaded(fs) == expected);
  return 0;
}

std::vector<Bytes> instanceJournalSeeds() {
  // Journals written by the store itself: saves, an erase, a save over an earlier one.
  MapFileSystem fs;
  std::vector<Bytes> out;
  {
    auto store = FileInstanceStore::open(fs, kDir);
    check(store.isOk());
    InstanceRecord r = someRecord();
    check((*store)->save(r).isOk());
    r.instance = "web-2";
    r.pid = 4343;
    check((*store)->save(r).isOk());
    check((*store)->erase("web-1").isOk());
    r.started_wall_ms += 5;
    check((*store)->save(r).isOk());
    check((*store)->saveLastFire("report", 1'700'000'000'000).isOk());
  }
  const std::string journal = fs.files[std::string(kDir) + "/instances.journal"];
  out.push_back(bytesOf(journal));
  out.push_back(bytesOf(journal.substr(0, journal.size() - 7)));  // torn last line
  out.push_back(bytesOf(fs.files[std::string(kDir) + "/report.cron"]));
  out.push_back(bytesOf("S\tinstance=x\tpid=notanumber\n"));
  out.push_back(bytesOf("S\tinstance=x\tdaemon=d\tspec_hash=h\tpid=99999999999\tpgid=1\tstart_ticks=1\t"
                        "started_wall_ms=1\tcgroup_path=\tlog_path=\n"));
  out.push_back(bytesOf("E\tinstance=web-2\nE\n\n"));
  out.push_back(bytesOf("last_fire_ms=-5\n"));
  return out;
}

}  // namespace meshos::fuzz
