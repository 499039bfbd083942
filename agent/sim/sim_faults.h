// FaultPlan: faults scheduled by the seed over a window of a simulation run, and a
// Workload of signed commits that keeps the cluster busy meanwhile.
//
// Fault kinds (meshos-sim cluster --faults):
//   crash      an agent crashes (its memory is lost; processes and disk stay) or the whole
//              machine does (processes lost too), and comes back after a while
//   partition  a random split into two or three groups, one host cut off, or a one-way cut;
//              healed after a while
//   loss       every link loses, duplicates and reorders datagrams for a while
//   disk-full  one host's disk refuses every write for a while
//   clock      one host's wall clock steps forward or back (up to an hour)
//   slow       one host handles everything late (a CPU-starved machine) for a while
//   kill       a daemon's process dies on its own (exit 1)
// At most a minority of hosts is down at once, one partition at a time; every fault ends
// by the window's end, so the run can finish quiet and be judged converged.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "agent/core/rng.h"
#include "agent/core/status.h"
#include "agent/sim/agent_cluster.h"

namespace meshos::sim {

enum class FaultKind { kCrash, kPartition, kLoss, kDiskFull, kClock, kSlow, kKill, kHostile };
std::string_view faultKindName(FaultKind k);
// "crash,partition,loss,disk-full,clock" (also "all", "none"); an unknown name is an error.
Result<std::set<FaultKind>> parseFaultKinds(std::string_view text);

struct FaultPlanOptions {
  std::set<FaultKind> kinds;
  int64_t begin_ms = 0;         // no fault starts before
  int64_t end_ms = 0;           // every fault has ended by
  int64_t mean_gap_ms = 8000;   // between two fault starts (uniform in [gap/2, 3*gap/2])
  int64_t min_duration_ms = 3000;
  int64_t max_duration_ms = 25'000;
};

class FaultPlan {
 public:
  FaultPlan(AgentCluster& cluster, Rng rng, FaultPlanOptions options);
  // Puts every fault on the world's timers (run the clock to see them).
  void schedule();
  size_t scheduled() const { return scheduled_; }

 private:
  void begin(FaultKind kind, int64_t duration_ms);
  void crash(int64_t duration_ms);
  void partition(int64_t duration_ms);
  void loss(int64_t duration_ms);
  void diskFull(int64_t duration_ms);
  void slow(int64_t duration_ms);
  void kill();
  void endLater(int64_t after_ms, std::function<void()> fn);
  size_t downNow() const;

  AgentCluster& cluster_;
  Rng rng_;
  FaultPlanOptions options_;
  size_t scheduled_ = 0;
  bool partitioned_ = false, lossy_ = false;
};

// Workload: the admin's commits during a run. begin() puts `daemons` services (replicas
// 1..3, a readiness check); then every ~period_ms one change: scale, a new daemon, a
// removal, a pause or a resume, each through a random up host.
struct WorkloadOptions {
  size_t daemons = 6;
  int64_t period_ms = 25'000;
  int64_t end_ms = 0;  // no change after
  bool versions_only = false;  // every change a new version of a spec (rolling updates)
};

class Workload {
 public:
  Workload(AgentCluster& cluster, Rng rng, WorkloadOptions options) : cluster_(cluster), rng_(rng), options_(options) {}
  Status begin();
  void schedule();
  uint64_t changes() const { return changes_; }

 private:
  void change();
  AgentCluster& cluster_;
  Rng rng_;
  WorkloadOptions options_;
  size_t next_daemon_ = 0;
  uint64_t changes_ = 0;
  uint64_t versions_ = 0;  // spec versions put (rolling updates)
};

// A daemon the simulated runtime runs: a service with an HTTP readiness check.
spec::DaemonSpec simService(const std::string& name, int64_t replicas);

}  // namespace meshos::sim
