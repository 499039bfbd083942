// Rebalancer: lets live load move work, slowly. assign() never sees live load (it would make
// the assignment flap); the Rebalancer looks at it after the fact and proposes moves of one
// instance from a hot node to a cool one, at most one per daemon per cooldown and only when
// the load difference passes a hysteresis threshold. Accepted moves stay active as an
// overlay on later assignments (apply()) until their source no longer holds the daemon or
// their target stops being feasible for it.
//
// Sans-IO: the caller passes now_ms and the loads (node id -> load fraction, 0 idle, 1
// saturated: e.g. max(cpu load / cpus, memory used / total) from the probes). Targets are
// only nodes the assignment lists as feasible for the daemon, so a move never breaks a
// constraint; with Detail::kInfeasible on large views feasible lists are empty and nothing
// moves. Two nodes agree on a move only when they saw the same loads: the make-before-break
// handoff in reconcile covers a short disagreement. One owner (the node loop); not
// thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "placement/placement.h"

namespace meshos::placement {

struct RebalanceOptions {
  int64_t cooldown_ms = 300'000;  // per daemon, between two moves of it
  double hysteresis = 0.25;       // source load - target load must exceed this
  uint32_t max_moves_per_plan = 4;  // bound on the moves one plan() returns
  size_t max_active_moves = 1024;   // bound on the overlay; the oldest are dropped past it
  // Set (a node id): only moves away from this node are proposed. In the mesh each node
  // proposes moves of its own instances and publishes them in its node state; every node
  // then applies the same published moves (applyMoves), so all agree on the overlay.
  std::string only_from;
};

struct Move {
  std::string daemon;
  std::string from;  // node id
  std::string to;    // node id
  double from_load = 0;
  double to_load = 0;
  int64_t at_ms = 0;
};

// `assignment` with `moves` applied in order (each daemon's nodes). A move applies when its
// source holds the daemon, its target does not and the target is in the daemon's feasible
// list; `applied` (optional) gets whether each move applied, by index.
Assignment applyMoves(const Assignment& assignment, const std::vector<Move>& moves,
                      std::vector<bool>* applied = nullptr);

class Rebalancer {
 public:
  explicit Rebalancer(RebalanceOptions options = {});

  // New moves for this assignment and these loads (daemons in name order; nodes without a
  // load are left alone). They are returned and join the active overlay.
  std::vector<Move> plan(int64_t now_ms, const Assignment& assignment, const std::map<std::string, double>& load);

  // `assignment` with the active moves applied (each daemon's nodes); a move whose source no
  // longer holds the daemon, or whose target is no longer in its feasible list, is dropped.
  Assignment apply(const Assignment& assignment);

  // Drops the active move of `daemon` to `to` (its target did not take it); true if found.
  bool cancel(const std::string& daemon, const std::string& to);

  const std::vector<Move>& active() const { return active_; }
  uint64_t droppedMoves() const { return dropped_; }

 private:
  RebalanceOptions options_;
  std::map<std::string, int64_t> last_move_ms_;  // daemon -> time of its last move
  std::vector<Move> active_;                     // in the order they were made
  uint64_t dropped_ = 0;
};

}  // namespace meshos::placement
