// State: everything the node loop knows, folded from Events: this node, the members it
// sees, the desired daemons (from commits and local daemons) and the local instances.
// Owned by Node on the loop thread; fold() is the only writer. reconcile() and the
// snapshot read it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/state/event.h"

namespace meshos::state {

struct DesiredDaemon {
  std::string name;
  uint64_t generation = 0;   // bumps when the spec changes; a running older one restarts
  uint32_t replicas = 1;     // instances wanted on this node
  bool paused = false;
  std::string source;        // "local" (runtime.local) or "commit"
};

struct State {
  std::string node_id;
  std::string node_name;
  int64_t started_ms = 0;          // monotonic
  int64_t now_ms = 0;              // time of the last event folded (monotonic)
  uint64_t ticks = 0;
  uint64_t events_folded = 0;
  uint64_t structural_generation = 0;  // bumps when members/desired/instances change shape
  bool shutting_down = false;

  std::map<std::string, Member> members;         // by node id
  std::map<std::string, DesiredDaemon> desired;  // by daemon name
  uint64_t desired_set_generation = 0;           // bumps whenever `desired` changes
  uint64_t applied_set_generation = 0;           // the newest one the supervisor accepted
  std::map<std::string, Instance> instances;     // by instance id
  std::map<std::string, ProbeSample> probes;     // latest sample by probe name
  std::map<std::string, PeerStateUpdated> peer_states;  // newest version by node id
  CommitReceived commit_head;                    // the newest commit accepted
  std::map<std::string, uint64_t> chain_flushed; // newest durable seq by chain
  std::vector<ControlCommand> recent_commands;   // bounded, newest last
};

inline constexpr size_t kRecentCommandsMax = 64;

// Folds one event into the state. Returns true if the change is structural (the snapshot
// generation must move): membership, desired set or instance set or their states.
bool fold(State& state, const Event& event);

}  // namespace meshos::state
