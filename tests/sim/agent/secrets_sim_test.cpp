// Sealed secrets in the whole-agent simulation (docs/SECRETS.md): the admin seals a secret
// to three of five machines and rotates it every 8 s while agents and machines crash, disks
// fill and the network splits. From ground truth (the simulated processes and disks):
//   - at every 100 ms step, every live process of the daemon that uses it runs on a machine
//     the secret is sealed to, and started with a value the admin sealed;
//   - every second, no disk of any machine (its files and every file of its RocksDB
//     database, log included) holds any value ever sealed;
//   - at the end, once quiet, the daemon runs at its replicas with the last value.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "agent/core/logging.h"
#include "agent/sim/agent_cluster.h"
#include "agent/sim/sim_faults.h"
#include "tests/sim/sim_seeds.h"

using namespace meshos;
using namespace meshos::sim;
using meshos::sim::testing::replayCommand;
using meshos::sim::testing::simSeeds;

namespace {

constexpr size_t kHosts = 5;
constexpr size_t kHolders = 3;  // n0, n1, n2 may open it
constexpr int64_t kRotateEveryMs = 8'000;
constexpr int64_t kFaultsMs = 60'000;

spec::DaemonSpec reader() {
  spec::DaemonSpec s;
  s.name = "reader";
  s.command = {"/usr/bin/reader"};
  s.replicas = 2;
  s.placement.max_per_node = 1;
  s.restart = spec::RestartPolicy::kAlways;
  s.secrets.env["DB_PASSWORD"] = "db";
  s.secrets.files = {"db"};
  return s;
}

class SecretRun {
 public:
  SecretRun(AgentCluster& c, Rng rng) : c_(c), rng_(std::move(rng)) {}

  commits::Operation seal() {
    const std::string value = "plaintext-" + std::to_string(rng_.next());
    SealedSecret s{"db", {}};
    for (size_t i = 0; i < kHolders; ++i) {
      s.copies.push_back(*sealSecret(SecretRecipient::kNode, c_.host(i).publicKey(), "db", asBytes(value)));
    }
    values_.push_back(value);
    sealed_.insert(blake2b256(asBytes(value)));
    return commits::OpPutSecret{std::move(s)};
  }

  Status check(bool scan_disks) {
    ++checks_;
    for (size_t i = 0; i < c_.size(); ++i) {
      SimHost& h = c_.host(i);
      for (const auto& [pid, p] : h.runtime().processes()) {
        if (!p.alive || p.daemon != "reader") continue;
        if (i >= kHolders) return Status::internal(h.name() + " runs reader, but db is not sealed to it");
        auto it = p.secret_hashes.find("db");
        if (it == p.secret_hashes.end() || !sealed_.count(it->second)) {
          return Status::internal(h.name() + " pid " + std::to_string(pid) +
                                  " started with a value of db the admin never sealed");
        }
      }
      if (!scan_disks) continue;
      ++disk_scans_;
      const std::string db_dir = (h.config().node.data_dir / "db").string();
      for (size_t v = 0; v < values_.size(); ++v) {
        if (h.disk().holds(values_[v], db_dir)) {
          return Status::internal("the plaintext of db (value " + std::to_string(v + 1) + ") is on " + h.name() +
                                  "'s disk");
        }
      }
    }
    return Status::ok();
  }

  // The daemon at its replicas, ready, every instance with the last value sealed.
  bool current() const {
    const Hash256 last = blake2b256(asBytes(values_.back()));
    uint32_t ready = 0;
    for (size_t i = 0; i < c_.size(); ++i) {
      for (const auto& [pid, p] : c_.host(i).runtime().processes()) {
        if (!p.alive || p.daemon != "reader") continue;
        if (p.secret_hashes.at("db") != last) return false;
        ready += c_.nowMs() >= p.ready_at_ms ? 1 : 0;
      }
    }
    return ready == 2;
  }

  uint64_t checks() const { return checks_; }
  uint64_t diskScans() const { return disk_scans_; }
  size_t rotations() const { return values_.size(); }

 private:
  AgentCluster& c_;
  Rng rng_;
  std::vector<std::string> values_;
  std::set<Hash256> sealed_;
  uint64_t checks_ = 0, disk_scans_ = 0;
};

}  // namespace

TEST_CASE("sim-agent secrets: sealed to 3 of 5 nodes, rotated every 8 s under faults, seeds 1..200") {
  (void)setupLogging("off", "text");
  const char* name = "sim-agent secrets: sealed to 3 of 5 nodes, rotated every 8 s under faults, seeds 1..200";
  uint64_t checks = 0, scans = 0, rotations = 0, faults = 0;
  for (uint64_t seed : simSeeds(200)) {
    INFO("replay: " << replayCommand(seed, name));
    AgentCluster c(seed);
    c.addHosts(kHosts);
    c.startAll();
    REQUIRE(c.runFor(5'000));
    SecretRun run(c, c.forkRng());
    REQUIRE(c.commit({run.seal(), commits::OpPutDaemon{reader()}}, "secret db and its reader"));
    FaultPlanOptions fo;
    fo.kinds = *parseFaultKinds("crash,partition,disk-full");
    fo.begin_ms = c.nowMs();
    fo.end_ms = c.nowMs() + kFaultsMs;
    FaultPlan plan(c, c.forkRng(), fo);
    plan.schedule();
    int64_t last_scan = 0;
    auto extra = [&] {
      const bool scan = c.nowMs() - last_scan >= 1'000;
      if (scan) last_scan = c.nowMs();
      return run.check(scan);
    };
    while (c.nowMs() < fo.end_ms) {
      Status s = c.runFor(kRotateEveryMs, extra);
      REQUIRE_MESSAGE(s.isOk(), s.message());
      (void)c.commit({run.seal()}, "rotate db");  // kept and retried when no host takes it now
    }
    c.heal();
    Status settled = c.runUntil([&] { return c.checkConverged().isOk() && run.current(); }, 120'000);
    REQUIRE_MESSAGE(settled.isOk(), settled.message());
    Status last = run.check(true);
    REQUIRE_MESSAGE(last.isOk(), c.failure(last.message()));
    checks += run.checks();
    scans += run.diskScans();
    rotations += run.rotations();
    for (const auto& [kind, n] : c.figures().faults) faults += n;
  }
  MESSAGE(checks << " checks, " << scans << " disk scans, " << rotations << " values sealed, " << faults
                 << " faults injected");
  CHECK(faults > 0);
}
