// sim::SimRuntime: the simulated process runtime of one simulated node. It is told, each
// tick, the commit daemons to run here (specs with replicas = instances wanted here) and
// makes it so: a started instance runs at once and turns ready after a delay (with jitter
// from the node's seeded Rng); a stopped instance stops being ready at once and is gone
// after a grace delay; a crash loses every instance at once. Pure bookkeeping over virtual
// time (the caller passes now); no timers, no I/O. Owned by its MeshNode; single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/core/rng.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::sim {

struct SimRuntimeOptions {
  int64_t ready_delay_ms = 500;
  int64_t ready_jitter_ms = 100;
  int64_t stop_grace_ms = 300;
};

struct SimInstance {
  uint64_t id = 0;
  int64_t started_ms = 0;
  int64_t ready_at_ms = 0;
  int64_t stopped_ms = -1;  // >= 0: stopping since then (not ready, not counted running)
  uint64_t generation = 0;
  spec::Resources resources;
};

struct SimDaemonCounts {
  uint32_t running = 0;   // started and not stopping
  uint32_t ready = 0;     // running and past its readiness delay
  uint32_t stopping = 0;  // within their stop grace
  uint64_t generation = 0;
};

struct SimRuntimeCounters {
  uint64_t starts = 0, stops = 0, lost = 0;
};

class SimRuntime {
 public:
  SimRuntime(Rng rng, SimRuntimeOptions options) : rng_(rng), options_(options) {}

  // Makes the instances here match `run`; daemons absent from it are stopped.
  // generations: daemon -> the desired entry's updated_seq (reported back).
  void apply(int64_t now_ms, const std::vector<spec::DaemonSpec>& run,
             const std::map<std::string, uint64_t>& generations);
  // Every instance gone at once (the host died).
  void crash();
  // Forgets instances whose stop grace has passed.
  void prune(int64_t now_ms);

  std::map<std::string, SimDaemonCounts> counts(int64_t now_ms) const;
  const std::map<std::string, std::vector<SimInstance>>& instances() const { return instances_; }
  const SimRuntimeCounters& counters() const { return counters_; }

 private:
  Rng rng_;
  SimRuntimeOptions options_;
  uint64_t next_id_ = 1;
  std::map<std::string, std::vector<SimInstance>> instances_;
  SimRuntimeCounters counters_;
};

}  // namespace meshos::sim
