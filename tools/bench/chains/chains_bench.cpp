// chains_bench: figures for docs/BENCHMARKS.md.
//
//   chains_bench throughput [--records N] [--payload BYTES]   durable appends/s, group commit
//   chains_bench latency [--rate R] [--seconds S]              append -> ack latency at R/s
//   chains_bench verify [--records N] [--threads T]  verify speed on a chain of N
//   chains_bench all                                           the three with defaults
//
// Each run uses a fresh temporary directory (--dir to choose the parent) on the real disk,
// a real libuv loop, the real ChainWriter (synced WriteBatches) and verifyChain.
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <rocksdb/db.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/crypto.h"
#include "agent/net/uv_loop.h"
#include "chains/chain_store.h"
#include "chains/chain_verify.h"
#include "chains/chain_writer.h"

using namespace meshos;
using namespace meshos::chains;

namespace {

struct Dir {
  std::filesystem::path path;
  explicit Dir(const std::string& parent) {
    std::string tmpl = parent + "/meshos-chains-bench-XXXXXX";
    path = mkdtemp(tmpl.data());
  }
  ~Dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// CPU seconds (user + system, all threads) used by this process so far.
double cpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds per thread name (from /proc/self/task/*/stat and comm), summed over threads
// of the same name: shows where the CPU of a run went (verify workers, RocksDB's flush
// and compaction threads, the loop).
std::map<std::string, double> cpuByThread() {
  std::map<std::string, double> out;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(e.path() / "comm");
    std::string name;
    std::getline(comm, name);
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    out[name] += (utime + stime) / tick;
  }
  return out;
}

// Threads that exited between two snapshots lose their CPU time from /proc; the
// difference then undercounts them (verify workers are joined inside verifyChain), so
// the report also gives the process total.
std::string cpuDiff(const std::map<std::string, double>& before,
                    const std::map<std::string, double>& after) {
  std::string out;
  for (const auto& [name, secs] : after) {
    auto it = before.find(name);
    double d = secs - (it == before.end() ? 0.0 : it->second);
    if (d >= 0.005) out += " " + name + "=" + std::to_string(d).substr(0, 5);
  }
  return out;
}

std::string dbState(ChainStore& store, ChainName chain) {
  auto lock = store.readLock();
  rocksdb::DB* db = store.db();
  std::string out;
  for (const char* prop :
       {"rocksdb.num-immutable-mem-table", "rocksdb.num-running-flushes",
        "rocksdb.num-running-compactions", "rocksdb.num-files-at-level0",
        "rocksdb.num-files-at-level1", "rocksdb.num-files-at-level2",
        "rocksdb.estimate-pending-compaction-bytes"}) {
    std::string v;
    if (db->GetProperty(store.cf(chain), prop, &v)) {
      out += " " + std::string(prop).substr(8) + "=" + v;
    }
  }
  return out;
}

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of the calling thread; sys: the system part only.
double threadCpuSeconds(bool sys_only = false) {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  double sys = static_cast<double>(ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
  if (sys_only) return sys;
  return sys + static_cast<double>(ru.ru_utime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
}

// Where one thread's verify time goes: the steps of the walk, each added to the ones
// before, over the whole chain on this thread (ns of CPU per record).
void profileSteps(ChainStore& store, ChainName chain) {
  auto lock = store.readLock();
  rocksdb::ReadOptions ro;
  ro.readahead_size = 4 << 20;
  ro.fill_cache = false;
  std::string upper(1, static_cast<char>(kRecordPrefix + 1));
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  RecordHasher hasher(chain);
  RecordDecoder decoder;
  std::vector<uint64_t> arena(1 << 16);
  const char* names[] = {"iterate", "+copy", "+decode", "+hash"};
  for (int step = 0; step < 4; ++step) {
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.cf(chain)));
    double c0 = threadCpuSeconds();
    double s0 = threadCpuSeconds(true);
    uint64_t n = 0, sum = 0;
    for (it->Seek(recordKey(1)); it->Valid(); it->Next()) {
      rocksdb::Slice v = it->value();
      sum += v.size() + static_cast<uint8_t>(it->key()[8]);
      ++n;
      if (step >= 1) std::memcpy(arena.data(), v.data(), v.size());
      if (step >= 2) {
        RecordView rec;
        Status st = decoder.decodeView(
            std::string_view(reinterpret_cast<const char*>(arena.data()), v.size()), rec);
        sum += rec.seq;
        if (step >= 3) sum += hasher.hash(rec)[0];
      }
    }
    double c = threadCpuSeconds() - c0;
    double sys = threadCpuSeconds(true) - s0;
    std::printf("  profile %-8s %llu records: %.0f ns CPU/record (%.0f of it system) (%llu)\n",
                names[step], static_cast<unsigned long long>(n),
                c * 1e9 / static_cast<double>(n), sys * 1e9 / static_cast<double>(n),
                static_cast<unsigned long long>(sum % 10));
  }
}

// Appends `records` payloads of `payload_bytes` through a ChainWriter on a libuv loop,
// keeping the queue full, and returns once the last one is acked.
struct Appender {
  uv_loop_t loop{};
  SystemClock clock;
  SigningKey key = SigningKey::generate();
  std::unique_ptr<ChainStore> store;

  explicit Appender(const std::filesystem::path& dir) {
    uv_loop_init(&loop);
    auto s = ChainStore::open(dir);
    if (!s) {
      std::fprintf(stderr, "%s\n", s.status().toString().c_str());
      std::exit(1);
    }
    store = std::move(*s);
  }
  ~Appender() { uv_loop_close(&loop); }

  double run(uint64_t records, size_t payload_bytes, uint64_t& groups) {
    UvPoster poster(&loop);
    ChainWriterOptions opts;
    opts.queue_capacity = 200'000;
    std::unique_ptr<ChainWriter> writer;
    std::string payload(payload_bytes, 'p');
    uint64_t appended = 0;
    groups = 0;
    auto pump = [&] {
      while (appended < records && writer->pendingTotal() < opts.queue_capacity) {
        if (!writer->append(ChainName::kLog, "bench", payload).isOk()) break;
        ++appended;
      }
    };
    ChainWriter::Callbacks cbs;
    cbs.on_acked = [&](const AckEvent& e) {
      ++groups;
      pump();
      if (e.last_seq == records) {
        Status s = writer->close(10'000);
        if (!s) std::fprintf(stderr, "close: %s\n", s.toString().c_str());
        poster.close();
      }
    };
    writer = ChainWriter::create(*store, key, clock, poster, opts, cbs).value();
    auto t0 = std::chrono::steady_clock::now();
    pump();
    uv_run(&loop, UV_RUN_DEFAULT);
    double secs = secondsSince(t0);
    return secs;
  }
};

int throughput(const std::string& parent, uint64_t records, size_t payload) {
  Dir dir(parent);
  Appender a(dir.path);
  uint64_t groups = 0;
  double cpu0 = cpuSeconds();
  double secs = a.run(records, payload, groups);
  double cpu = cpuSeconds() - cpu0;
  std::printf(
      "throughput: %llu durable appends of %zu-byte payloads in %.3f s = %.0f records/s "
      "(%llu synced groups, %.0f records/group; %.2f CPU s = %.2f us CPU/record)\n",
      static_cast<unsigned long long>(records), payload, secs, records / secs,
      static_cast<unsigned long long>(groups), groups ? static_cast<double>(records) / groups : 0.0,
      cpu, cpu * 1e6 / records);
  return 0;
}

int latency(const std::string& parent, int rate, int seconds) {
  Dir dir(parent);
  Appender a(dir.path);
  UvPoster poster(&a.loop);
  ChainWriterOptions opts;
  std::unique_ptr<ChainWriter> writer;
  uint64_t total = static_cast<uint64_t>(rate) * seconds;
  std::vector<int64_t> appended_ns(total + 1, 0);
  std::vector<double> latencies_ms;
  latencies_ms.reserve(total);
  uint64_t sent = 0;
  ChainWriter::Callbacks cbs;
  cbs.on_acked = [&](const AckEvent& e) {
    int64_t now = a.clock.monotonicNs();
    for (uint64_t s = e.first_seq; s <= e.last_seq; ++s) {
      latencies_ms.push_back(static_cast<double>(now - appended_ns[s]) / 1e6);
    }
  };
  writer = ChainWriter::create(*a.store, a.key, a.clock, poster, opts, cbs).value();
  std::string payload(200, 'p');
  // A 1 ms repeating timer appends however many records are due by now.
  uv_timer_t timer;
  uv_timer_init(&a.loop, &timer);
  struct Ctx {
    std::function<void()> tick;
  } ctx;
  int64_t start_ns = a.clock.monotonicNs();
  ctx.tick = [&] {
    int64_t now = a.clock.monotonicNs();
    uint64_t due =
        std::min<uint64_t>(total, static_cast<uint64_t>((now - start_ns) / 1e9 * rate) + 1);
    while (sent < due) {
      auto t = writer->append(ChainName::kAudit, "bench", payload);
      if (!t) break;
      appended_ns[t->seq] = a.clock.monotonicNs();
      ++sent;
    }
    if (sent == total && latencies_ms.size() == total) {
      uv_timer_stop(&timer);
      uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
      Status s = writer->close(10'000);
      if (!s) std::fprintf(stderr, "close: %s\n", s.toString().c_str());
      poster.close();
    }
  };
  timer.data = &ctx;
  uv_timer_start(
      &timer, [](uv_timer_t* t) { static_cast<Ctx*>(t->data)->tick(); }, 1, 1);
  uv_run(&a.loop, UV_RUN_DEFAULT);
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms[std::min(
        latencies_ms.size() - 1,
        static_cast<size_t>(p * static_cast<double>(latencies_ms.size())))];
  };
  std::printf(
      "latency: %llu appends at %d/s for %d s, append->ack: p50 %.3f ms, p99 %.3f ms, "
      "p99.9 %.3f ms, max %.3f ms\n",
      static_cast<unsigned long long>(total), rate, seconds, pct(0.5), pct(0.99), pct(0.999),
      latencies_ms.back());
  return 0;
}

int verify(const std::string& parent, uint64_t records, size_t threads, bool diag) {
  VerifyTuning tuning;
  tuning.threads = threads;
  Dir dir(parent);
  Appender a(dir.path);
  uint64_t groups = 0;
  double wsecs = a.run(records, 200, groups);
  std::printf("verify: built a chain of %llu records (200-byte payloads) in %.2f s\n",
              static_cast<unsigned long long>(records), wsecs);
  for (int pass = 0; pass < 2; ++pass) {
    if (diag) {
      std::printf("  db before pass %d:%s\n", pass + 1,
                  dbState(*a.store, ChainName::kLog).c_str());
    }
    auto threads0 = cpuByThread();
    auto t0 = std::chrono::steady_clock::now();
    double cpu0 = cpuSeconds();
    auto rep = verifyChain(*a.store, ChainName::kLog, {}, a.key.public_key, {}, 1 << 18, tuning);
    double secs = secondsSince(t0);
    double cpu = cpuSeconds() - cpu0;
    if (diag) {
      std::printf("  db after pass %d:%s\n", pass + 1, dbState(*a.store, ChainName::kLog).c_str());
      std::printf("  CPU s by surviving thread during pass %d:%s\n", pass + 1,
                  cpuDiff(threads0, cpuByThread()).c_str());
    }
    if (!rep.ok) {
      std::printf("verify FAILED: %s\n", rep.detail.c_str());
      return 1;
    }
    std::printf(
        "verify (%s): %llu records, %llu checkpoints in %.3f s = %.0f records/s "
        "(%.3f CPU s = %.0f records per CPU second, all threads)\n",
        pass == 0 ? "live store" : "live store, second pass",
        static_cast<unsigned long long>(rep.records),
        static_cast<unsigned long long>(rep.checkpoints), secs, rep.records / secs, cpu,
        rep.records / cpu);
  }
  if (diag) profileSteps(*a.store, ChainName::kLog);
  if (diag) {
    auto lock = a.store->readLock();
    std::string stats;
    for (auto* cf : {a.store->cf(ChainName::kLog), a.store->metaCf(ChainName::kLog)}) {
      if (a.store->db()->GetProperty(cf, "rocksdb.cfstats-no-file-histogram", &stats)) {
        std::printf("%s\n", stats.c_str());
      }
    }
  }
  std::filesystem::path data = dir.path;
  a.store.reset();
  auto ro = ChainStore::openReadOnly(data);
  if (!ro) return 1;
  auto t0 = std::chrono::steady_clock::now();
  double cpu0 = cpuSeconds();
  auto rep = verifyChain(**ro, ChainName::kLog, {}, a.key.public_key, {}, 1 << 18, tuning);
  double secs = secondsSince(t0);
  double cpu = cpuSeconds() - cpu0;
  std::printf(
      "verify (read-only reopen): %llu records in %.3f s = %.0f records/s "
      "(%.3f CPU s = %.0f records per CPU second, all threads) %s\n",
      static_cast<unsigned long long>(rep.records), secs, rep.records / secs, cpu,
      rep.records / cpu, rep.ok ? "OK" : "FAILED");
  return rep.ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (!initCrypto().isOk()) return 1;
  CLI::App app{"chains benchmarks"};
  std::string parent = "/tmp";
  uint64_t records = 1'000'000;
  size_t payload = 200;
  int rate = 1000;
  int seconds = 10;
  app.add_option("--dir", parent, "parent directory for the temporary database");
  auto* tp = app.add_subcommand("throughput", "durable appends/s with group commit");
  tp->add_option("--records", records);
  tp->add_option("--payload", payload);
  auto* lat = app.add_subcommand("latency", "append->ack latency at a steady rate");
  lat->add_option("--rate", rate);
  lat->add_option("--seconds", seconds);
  auto* ver = app.add_subcommand("verify", "verify speed");
  ver->add_option("--records", records);
  size_t threads = 0;
  ver->add_option("--threads", threads, "verify threads (0: one per core, at most 4)");
  bool diag = false;
  ver->add_flag("--diag", diag, "print RocksDB state and CPU per thread around each pass");
  auto* all = app.add_subcommand("all", "all three with defaults");
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  if (tp->parsed()) return throughput(parent, records, payload);
  if (lat->parsed()) return latency(parent, rate, seconds);
  if (ver->parsed()) return verify(parent, records, threads, diag);
  if (all->parsed()) {
    int rc = throughput(parent, records, payload);
    rc |= latency(parent, rate, seconds);
    rc |= verify(parent, records, 0, false);
    return rc;
  }
  return 2;
}
