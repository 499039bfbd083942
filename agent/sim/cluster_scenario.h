// The whole-agent scenario that `meshos-sim cluster` runs and the simulation tests sweep:
// N agents start and converge, the admin commits daemons, faults drawn from the seed break
// things for most of the run while the workload keeps committing changes, then the run ends
// quiet and must converge — one membership, one commit head, every daemon at its replica
// count, every chain verifying with nothing acknowledged lost. The invariants hold at every
// 100 ms step throughout (AgentCluster::checkInvariants).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/sim/sim_faults.h"

namespace meshos::sim {

struct ScenarioOptions {
  size_t nodes = 20;
  uint64_t seed = 1;
  int64_t duration_ms = 600'000;   // virtual time, start to end
  std::set<FaultKind> faults;
  size_t daemons = 6;
  int64_t quiet_end_ms = 120'000;  // the last part of the run has no fault: it must converge in it
  int64_t workload_period_ms = 25'000;  // a commit about this often
  bool versions_only = false;           // every commit a new version of a spec (rollouts)
  LinkProfile link;
};

struct ScenarioResult {
  Status status;                 // the first invariant or final check that failed
  uint64_t trace_hash = 0;
  uint64_t trace_events = 0;
  int64_t sim_ms = 0;
  int64_t wall_ms = 0;           // real time the run took
  uint64_t commits = 0, workload_changes = 0, faults_scheduled = 0;
  AgentCluster::Figures figures;
  nlohmann::json nodes = nlohmann::json::array();       // per host: up, commit head, members seen alive
  nlohmann::json placements = nlohmann::json::object();  // daemon -> {wanted, running_on}
};

ScenarioResult runClusterScenario(const ScenarioOptions& options);
nlohmann::json scenarioToJson(const ScenarioOptions& options, const ScenarioResult& r);
std::string scenarioToText(const ScenarioOptions& options, const ScenarioResult& r);
// The command line that replays a run.
std::string replayCommand(const ScenarioOptions& options);

}  // namespace meshos::sim
