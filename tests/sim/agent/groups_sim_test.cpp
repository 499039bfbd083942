// Supervision groups in the whole-agent simulation (docs/RUNTIME.md "Supervision groups"):
// every machine runs three groups from its local daemons file, one per strategy, each a
// dependency chain (x1 <- x2 <- x3), while their processes are killed every second or so and
// agents and machines crash and disks fill. Group c's restart intensity is low enough that
// it is often quarantined. From ground truth (the simulated processes):
//   - strategy order, at every process start: a member of a one-for-all or rest-for-one group
//     starts only while no member after it in the group's order runs (the ones restarted with
//     it stopped first, dependents first, and start again in order);
//   - one-for-one, at every 100 ms step: the agent never stops a member (a kill restarts the
//     killed member alone);
//   - at every step: a group its agent holds quarantined runs nothing (after a 1 s stop);
//   - at the end: every process of a member the strategy names, alive when a member was
//     killed, has ended; and each group either runs all its members, ready, or is
//     quarantined with none running.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "agent/core/logging.h"
#include "agent/sim/agent_cluster.h"
#include "agent/sim/sim_faults.h"
#include "tests/sim/sim_seeds.h"

using namespace meshos;
using namespace meshos::sim;
using meshos::sim::testing::replayCommand;
using meshos::sim::testing::simSeeds;

namespace {

constexpr size_t kGroupHosts = 3;
constexpr int64_t kGroupFaultsMs = 60'000;
constexpr int64_t kQuarantineStopMs = 1'000;

struct GroupDef {
  std::string name;
  std::string strategy;
  int64_t intensity;  // 0: never quarantined
};

const std::vector<GroupDef> kGroups = {{"a", "one-for-one", 0}, {"b", "one-for-all", 8}, {"c", "rest-for-one", 3}};

std::string member(const GroupDef& g, int i) { return g.name + std::to_string(i); }

// x1, x2 (depends on x1), x3 (depends on x2), for each group.
std::string localDaemonsToml() {
  std::string out;
  for (const auto& g : kGroups) {
    for (int i = 1; i <= 3; ++i) {
      out += "[[daemon]]\nname = \"" + member(g, i) + "\"\ncommand = [\"/usr/bin/" + member(g, i) +
             "\"]\nrestart = \"always\"\n";
      if (i > 1) out += "depends_on = [\"" + member(g, i - 1) + "\"]\n";
      out += "[daemon.backoff]\ninitial_ms = 100\nmax_ms = 2000\n";
      out += "[daemon.crash_loop]\nmax_crashes = 0\n";
      out += "[daemon.supervision]\ngroup = \"" + g.name + "\"\nstrategy = \"" + g.strategy +
             "\"\nrestart_intensity = " + std::to_string(g.intensity) + "\nrestart_window_ms = 10000\n\n";
    }
  }
  return out;
}

// The member's group and its place in the group's order (1..3), from the daemon's name.
std::pair<const GroupDef*, int> memberOf(const std::string& daemon) {
  for (const auto& g : kGroups)
    if (daemon.size() == 2 && daemon[0] == g.name[0]) return {&g, daemon[1] - '0'};
  return {nullptr, 0};
}

struct Kill {
  size_t host;
  std::string daemon;
  std::vector<int> must_end;  // the live processes the strategy restarts with it
};

class GroupRun {
 public:
  GroupRun(AgentCluster& c, Rng rng) : c_(c), rng_(std::move(rng)) {}

  // Checks the order at every start on every host (the simulated runtime's trace).
  void watchStarts() {
    for (size_t i = 0; i < c_.size(); ++i) {
      SimRuntime& rt = c_.host(i).runtime();
      auto traced = rt.on_trace;
      rt.on_trace = [this, i, traced](const char* what, const std::string& instance, int pid) {
        if (traced) traced(what, instance, pid);
        if (std::string_view(what) == "start") onStart(i, pid);
      };
    }
  }

  // Kills one live member process on a random host; remembers what its strategy restarts.
  void killOne() {
    const size_t h = rng_.uniform(c_.size());
    std::vector<const SimProcess*> live;
    for (const auto& [pid, p] : c_.host(h).runtime().processes())
      if (p.alive && memberOf(p.daemon).first != nullptr) live.push_back(&p);
    if (live.empty()) return;
    const SimProcess& victim = *live[rng_.uniform(live.size())];
    const auto [g, at] = memberOf(victim.daemon);
    Kill k{h, victim.daemon, {}};
    for (const SimProcess* p : live) {
      const auto [pg, pat] = memberOf(p->daemon);
      if (pg != g || p == &victim) continue;
      if (g->strategy == "one-for-all" || (g->strategy == "rest-for-one" && pat > at)) k.must_end.push_back(p->pid);
    }
    c_.killProcess(h, victim.pid);
    kills_.push_back(std::move(k));
  }

  Status check() {
    ++checks_;
    if (!violation_.empty()) return Status::internal(violation_);
    for (size_t i = 0; i < c_.size(); ++i) {
      const SimHost& h = c_.host(i);
      for (const auto& [pid, p] : h.runtime().processes()) {
        const auto [g, at] = memberOf(p.daemon);
        if (g == nullptr || g->strategy != "one-for-one" || p.alive || !p.stop_requested) continue;
        return Status::internal(h.name() + " stopped " + p.instance + " (pid " + std::to_string(pid) +
                                ") of one-for-one group a: only the killed member restarts");
      }
      MESHOS_RETURN_IF_ERROR(checkQuarantined(i));
    }
    return Status::ok();
  }

  // Every process the strategy named at a kill has ended; each group whole or quarantined.
  Status checkEnd() {
    for (const Kill& k : kills_) {
      for (int pid : k.must_end) {
        const SimProcess& p = c_.host(k.host).runtime().processes().at(pid);
        if (p.alive) {
          return Status::internal(c_.host(k.host).name() + ": " + p.instance + " (pid " + std::to_string(pid) +
                                  ") still runs, but its group's strategy restarts it when " + k.daemon + " is killed");
        }
      }
    }
    for (size_t i = 0; i < c_.size(); ++i) {
      for (const auto& g : kGroups) {
        if (quarantined(i, g.name)) {
          ++quarantines_;
          continue;
        }
        for (int m = 1; m <= 3; ++m) {
          if (readyProcesses(i, member(g, m)) != 1)
            return Status::internal(c_.host(i).name() + ": " + member(g, m) + " is not running once, ready");
        }
      }
    }
    return Status::ok();
  }

  bool whole() const {
    for (size_t i = 0; i < c_.size(); ++i)
      for (const auto& g : kGroups)
        for (int m = 1; m <= 3; ++m)
          if (!quarantined(i, g.name) && readyProcesses(i, member(g, m)) != 1) return false;
    return true;
  }

  uint64_t checks() const { return checks_; }
  uint64_t starts() const { return starts_; }
  size_t kills() const { return kills_.size(); }
  uint64_t quarantines() const { return quarantines_; }

 private:
  void onStart(size_t host, int pid) {
    ++starts_;
    const SimRuntime& rt = c_.host(host).runtime();
    const SimProcess& started = rt.processes().at(pid);
    const auto [g, at] = memberOf(started.daemon);
    if (g == nullptr || g->strategy == "one-for-one" || !violation_.empty()) return;
    for (const auto& [other, p] : rt.processes()) {
      const auto [pg, pat] = memberOf(p.daemon);
      if (!p.alive || pg != g || pat <= at) continue;
      violation_ = (c_.host(host).name() + " started " + started.instance + " while " + p.instance +
                              " (pid " + std::to_string(other) + "), after it in group " + g->name + " (" +
                              g->strategy + "), still runs") + history(host);
    }
  }

  // The members' processes of the last minute on a host, for a failure message.
  std::string history(size_t host) const {
    std::string out;
    for (const auto& [pid, p] : c_.host(host).runtime().processes()) {
      if (memberOf(p.daemon).first == nullptr || p.started_ms < c_.nowMs() - 60000) continue;
      out += "\n  " + p.instance + " pid " + std::to_string(pid) + " started " + std::to_string(p.started_ms) +
             (p.alive ? "" : " exited " + std::to_string(p.exited_ms) + (p.stop_requested ? " (stopped)" : " (died)"));
    }
    return out;
  }

  bool quarantined(size_t host, const std::string& group) const {
    const node::Node* n = c_.host(host).node();
    if (n == nullptr || n->supervisor() == nullptr) return false;
    for (const auto& g : n->supervisor()->groups())
      if (g.name == group) return g.quarantined;
    return false;
  }

  Status checkQuarantined(size_t host) {
    for (const auto& g : kGroups) {
      auto& since = quarantined_since_[{host, g.name}];
      if (!quarantined(host, g.name)) {
        since = -1;
        continue;
      }
      if (since < 0) since = c_.nowMs();
      if (c_.nowMs() - since < kQuarantineStopMs) continue;
      for (const auto& [pid, p] : c_.host(host).runtime().processes()) {
        if (p.alive && memberOf(p.daemon).first == &g)
          return Status::internal(c_.host(host).name() + " holds group " + g.name + " quarantined, yet " + p.instance +
                                  " runs");
      }
    }
    return Status::ok();
  }

  uint32_t readyProcesses(size_t host, const std::string& daemon) const {
    uint32_t n = 0;
    for (const auto& [pid, p] : c_.host(host).runtime().processes())
      n += p.alive && p.daemon == daemon && c_.nowMs() >= p.ready_at_ms;
    return n;
  }

  AgentCluster& c_;
  Rng rng_;
  std::vector<Kill> kills_;
  std::map<std::pair<size_t, std::string>, int64_t> quarantined_since_;
  std::string violation_;
  uint64_t checks_ = 0, starts_ = 0, quarantines_ = 0;
};

}  // namespace

TEST_CASE("sim-agent groups: one group per strategy on 3 nodes, members killed under faults, seeds 1..200") {
  (void)setupLogging("off", "text");
  const char* name = "sim-agent groups: one group per strategy on 3 nodes, members killed under faults, seeds 1..200";
  uint64_t checks = 0, starts = 0, kills = 0, quarantines = 0, faults = 0;
  for (uint64_t seed : simSeeds(200)) {
    INFO("replay: " << replayCommand(seed, name));
    AgentClusterOptions options;
    options.configure = [](size_t, config::NodeConfig& cfg) { cfg.runtime.local = cfg.node.data_dir / "local.toml"; };
    AgentCluster c(seed, options);
    c.addHosts(kGroupHosts);
    for (size_t i = 0; i < kGroupHosts; ++i) {
      SimHost& h = c.host(i);
      REQUIRE(h.disk().files().writeAtomically(*h.config().runtime.local, localDaemonsToml(), 0644));
    }
    GroupRun run(c, c.forkRng());
    run.watchStarts();
    c.startAll();
    REQUIRE(c.runUntil([&] { return run.whole(); }, 20'000).isOk());
    FaultPlanOptions fo;
    fo.kinds = *parseFaultKinds("crash,disk-full,kill");
    fo.begin_ms = c.nowMs();
    fo.end_ms = c.nowMs() + kGroupFaultsMs;
    FaultPlan plan(c, c.forkRng(), fo);
    plan.schedule();
    Rng pace = c.forkRng();
    auto extra = [&] { return run.check(); };
    while (c.nowMs() < fo.end_ms) {
      Status s = c.runFor(pace.between(200, 2'000), extra);
      REQUIRE_MESSAGE(s.isOk(), s.message());
      run.killOne();
    }
    c.heal();
    Status settled = c.runUntil([&] { return c.checkAllUp().isOk() && run.whole(); }, 60'000);
    REQUIRE_MESSAGE(settled.isOk(), c.failure(settled.message()));
    Status end = run.checkEnd();
    REQUIRE_MESSAGE(end.isOk(), c.failure(end.message()));
    checks += run.checks();
    starts += run.starts();
    kills += run.kills();
    quarantines += run.quarantines();
    for (const auto& [kind, n] : c.figures().faults) faults += n;
  }
  MESSAGE(checks << " checks, " << starts << " process starts checked for order, " << kills << " members killed, "
                 << quarantines << " groups quarantined at the end, " << faults << " faults injected");
  CHECK(kills > 0);
}
