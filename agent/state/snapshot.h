// Snapshot: an immutable picture of the node, published after each tick and read by the
// control socket (meshos-inspect) without touching the loop's State.
//
// The lists (members, desired daemons, instances) are shared between consecutive snapshots
// while nothing structural changed, so a quiet tick costs little; they are rebuilt when the
// structural generation moves, or every `refresh_ms` for the figures that change in place
// (RTT, last heard). Subsystems (executor, gossip, chains, commits, runtime) add their own
// JSON sections. Built on the loop thread; shared_ptr<const Snapshot> may be read anywhere.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/state/state.h"

namespace meshos::state {

struct LoopLag {
  int64_t last_us = 0;  // how late the last tick ran against its schedule
  int64_t max_us = 0;
  int64_t p99_us = 0;   // over the last kWindow ticks
  uint64_t samples = 0;
};

// Tick-to-tick delay beyond the tick interval, over a fixed window (bounded memory).
class LoopLagMeter {
 public:
  static constexpr size_t kWindow = 1024;
  void record(int64_t lag_us);
  LoopLag summary() const;

 private:
  std::vector<int64_t> window_ = std::vector<int64_t>(kWindow, 0);
  size_t next_ = 0;
  uint64_t count_ = 0;
  int64_t max_us_ = 0;
  int64_t last_us_ = 0;
};

struct Snapshot {
  uint64_t generation = 0;   // moves only when something structural changed
  std::string node_id;
  std::string node_name;
  std::string version;
  std::string cluster;
  int64_t uptime_ms = 0;
  int64_t wall_ms = 0;
  uint64_t ticks = 0;
  uint64_t events_folded = 0;
  bool shutting_down = false;
  LoopLag loop_lag;
  CommitReceived commit_head;
  std::shared_ptr<const std::vector<Member>> members;
  std::shared_ptr<const std::vector<DesiredDaemon>> desired;
  std::shared_ptr<const std::vector<Instance>> instances;
  nlohmann::json sections = nlohmann::json::object();  // "executor", "gossip", "chains", ...
};

struct SnapshotInputs {
  std::string version;
  std::string cluster;
  int64_t wall_ms = 0;
  LoopLag loop_lag;
  nlohmann::json sections = nlohmann::json::object();
  int64_t refresh_ms = 1000;
};

// Builds the next snapshot, reusing previous's lists where they are still current.
std::shared_ptr<const Snapshot> makeSnapshot(const State& state, SnapshotInputs inputs,
                                             const std::shared_ptr<const Snapshot>& previous,
                                             int64_t& lists_built_at_ms);

nlohmann::json snapshotToJson(const Snapshot& s);
nlohmann::json membersToJson(const Snapshot& s);
nlohmann::json daemonsToJson(const Snapshot& s);

}  // namespace meshos::state
