// The Supervisor's decision core, sans-IO: instance states, restart backoff with jitter,
// the crash-loop gate and what to do when a process ends. No clock, no I/O: the caller
// passes `now_ms` and an Rng, so these are unit-tested without processes. Value types; any
// thread, one owner.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "agent/core/rng.h"
#include "agent/runtime/runtime.h"
#include "agent/state/event.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::runtime {

// The instance states are the node state's (agent/state/event.h), so the snapshot, the log
// chain and the supervisor speak of one lifecycle.
using InstanceState = state::InstanceState;
using state::instanceStateName;

// Delay before restart number `attempt` (1-based): initial * factor^(attempt-1), capped at
// max, then scaled by a uniform factor in [1 - jitter, 1 + jitter] (and capped again).
int64_t backoffDelayMs(const spec::Backoff& b, int64_t attempt, Rng& rng);

// N crashes within a sliding window → quarantine. Bounded: keeps at most max_crashes times.
class CrashLoopGate {
 public:
  explicit CrashLoopGate(spec::CrashLoop c = {}) : c_(c) {}
  // Records a crash at now_ms; true when the gate trips (the history is then cleared).
  bool recordCrash(int64_t now_ms);
  size_t crashesInWindow(int64_t now_ms) const;
  void reset() { crashes_.clear(); }
  void configure(spec::CrashLoop c) { c_ = c; }

 private:
  spec::CrashLoop c_;
  std::deque<int64_t> crashes_;
};

struct RestartTracker {
  int64_t attempt = 0;  // restarts since the last stable run
  int64_t restarts = 0; // total, for display
  CrashLoopGate gate;
};

struct ExitDecision {
  bool success = false;     // the exit counts as success
  bool restart = false;     // start again after delay_ms
  int64_t delay_ms = 0;
  bool quarantine = false;  // the crash-loop gate tripped: delay_ms is the cooldown
  InstanceState state = InstanceState::kExited;  // state to enter now
  std::string reason;
};

// A service instance's process ended (not on purpose). forced_failure: we killed it because
// a liveness or startup check failed. run_ms: how long it ran (a stable run resets backoff).
ExitDecision decideServiceExit(const spec::DaemonSpec& spec, const ExitInfo& exit,
                               bool forced_failure, int64_t run_ms, int64_t now_ms,
                               RestartTracker& tracker, Rng& rng);

bool isSuccessExit(const spec::DaemonSpec& spec, const ExitInfo& exit);

}  // namespace meshos::runtime
