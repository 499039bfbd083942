// The `meshos-sim gossip` scenario: a seeded cluster run that measures join convergence,
// update dissemination, failure detection, false positives and bandwidth. A library so the
// benchmark and the CLI share it. Single-threaded.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "agent/core/status.h"

namespace meshos::sim {

struct GossipScenarioOptions {
  size_t nodes = 100;
  double loss = 0.0;
  uint64_t seed = 1;
  int64_t duration_s = 120;       // steady-state window (false positives, bandwidth)
  double starved_fraction = 0.0;  // CPU-starved nodes
  int64_t starve_ms = 500;
  int64_t latency_ms = 1;
  int64_t jitter_ms = 2;
  bool encrypt = false;
  std::string csv_path;
  int64_t max_converge_s = 600;
  size_t join_seeds = 3;           // every node joins the first join_seeds nodes
  bool join_only = false;          // stop after the join (seed sweeps)
  // Start from a converged membership (GossipCluster::startAllPrejoined) instead of the
  // all-at-once join; join_converged_ms is then 0.
  bool prejoined = false;
  // Nodes start at random times over [0, start_spread_ms) (0: all in the same millisecond,
  // so their gossip rounds start in lockstep). Either mode.
  int64_t start_spread_ms = 0;
  int64_t push_pull_interval_ms = 0;  // 0: the gossip default (30 s, scaled past 32 nodes)
};

struct GossipScenarioResult {
  int64_t join_converged_ms = -1;
  int64_t disseminate_999_ms = -1;  // node-state update to 99.9 % of nodes
  int64_t disseminate_all_ms = -1;
  int64_t first_suspect_ms = -1, first_dead_ms = -1, all_dead_ms = -1;
  uint64_t false_dead = 0, false_suspect = 0;
  double bytes_per_node_per_s = 0, stream_bytes_per_node_per_s = 0, packets_per_node_per_s = 0;
  double wall_s = 0;
  long peak_rss_kb = 0;  // of this process, after the run (getrusage)
};

Result<GossipScenarioResult> runGossipScenario(const GossipScenarioOptions& o, std::ostream& log);

}  // namespace meshos::sim
