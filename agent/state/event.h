// Event: every input of the node loop, as one variant (DESIGN.md section 4). Shells turn
// what they see (timers, gossip, runtime callbacks, control requests, chain acks) into
// Events; Node folds them into State. Values only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "agent/state/node_report.h"

namespace meshos::state {

struct Tick {
  int64_t now_ms = 0;
};

enum class MemberState { kAlive, kSuspect, kDead, kLeft };
std::string_view memberStateName(MemberState s);

struct Member {
  std::string id;
  std::string name;
  std::string address;
  MemberState state = MemberState::kAlive;
  uint64_t incarnation = 0;
  int64_t last_heard_ms = 0;
  double rtt_ms = -1;  // -1: not measured
  friend bool operator==(const Member&, const Member&) = default;
};

struct MembershipChanged {
  Member member;
};

struct PeerStateUpdated {
  std::string node_id;
  uint64_t version = 0;
  NodeReport report;  // the peer's node state, decoded by the shell (bad bodies never get here)
};

struct CommitReceived {
  uint64_t seq = 0;
  std::string hash_hex;
};

enum class InstanceState {
  kWaiting, kStarting, kRunning, kReady, kStopping, kStopped, kExited, kFailed, kBackingOff,
  kQuarantined, kPaused,
};
std::string_view instanceStateName(InstanceState s);

struct Instance {
  std::string id;
  std::string daemon;
  uint64_t generation = 0;
  InstanceState state = InstanceState::kStarting;
  int pid = 0;
  uint32_t restarts = 0;
  std::string health;  // "", "healthy", "unhealthy"
  int64_t since_ms = 0;
  friend bool operator==(const Instance&, const Instance&) = default;
};

// Started / exited / crashed / health changed: the instance as the runtime now sees it.
struct DaemonSignal {
  Instance instance;
  bool removed = false;  // the runtime forgot the instance (stopped and removed)
};

struct DesiredDaemonsChanged {
  // The full desired set from one source ("local" or "commit"); daemons of that source
  // not listed are removed.
  std::string source;
  struct Entry {
    std::string name;
    uint64_t generation = 0;
    uint32_t replicas = 1;
    bool paused = false;
  };
  std::vector<Entry> daemons;
};

// The supervisor accepted the desired set of this generation.
struct DesiredApplied {
  uint64_t generation = 0;
};

// Hand the supervisor the same set again (a new generation of it): after a restart, the
// instances a previous agent left are adopted or stopped only by an apply.
struct DesiredReapply {
  std::string why;
};

struct ProbeSample {
  std::string probe;
  int64_t at_ms = 0;
  bool ok = true;
  std::string error;
  std::map<std::string, double> values;
};

struct ControlCommand {
  std::string command;
  std::string reason;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t at_ms = 0;
};

struct ChainFlushed {
  std::string chain;
  uint64_t seq = 0;
};

struct Shutdown {
  std::string why;
};

using Event = std::variant<Tick, MembershipChanged, PeerStateUpdated, CommitReceived,
                           DaemonSignal, DesiredDaemonsChanged, DesiredApplied, DesiredReapply, ProbeSample,
                           ControlCommand,
                           ChainFlushed, Shutdown>;

}  // namespace meshos::state
