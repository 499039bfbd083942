// Executor: the bounded queue between reconcile() and the runtime.
//
// offer() admits an action, or refuses it with a reason that is counted: the queue is full
// (dropped: the next reconcile emits it again), an action for the same instance is already
// queued, waiting to retry or in flight (duplicate), or the gate is closed (gated: during
// shutdown every action, during a freeze the actions caused by a change; see ActionCause). poll(now) moves retries that fell due back into the queue, expires
// actions whose deadline passed, and dispatches up to max_in_flight actions. The Dispatcher
// reports each outcome through complete(): OK ends it (succeeded); a retryable error
// (unavailable, overloaded, i/o, deadline) defers it to the retry heap with exponential
// backoff; anything else, or the last attempt, ends it as failed. Every action ends in one
// recorded disposition.
//
// Sans-IO and single-threaded: the loop thread calls everything, passing `now_ms`.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <string>
#include <vector>

#include "agent/core/status.h"
#include "agent/state/action.h"

namespace meshos::executor {

using ActionId = uint64_t;

// Carries an action out. dispatch() starts the work; the dispatcher calls the executor's
// complete(id, status, now) when it ends (later, or before dispatch() returns).
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  virtual void dispatch(ActionId id, const state::Action& action) = 0;
};

struct Options {
  size_t queue_capacity = 1024;
  size_t max_in_flight = 64;
  int64_t action_deadline_ms = 30000;
  uint32_t max_attempts = 5;
  int64_t retry_initial_ms = 200;
  int64_t retry_max_ms = 10000;
};

enum class Admission { kAdmitted, kDuplicate, kDropped, kGated };
std::string_view admissionName(Admission a);

enum class Disposition { kSucceeded, kFailed, kExpired, kAbandoned };
std::string_view dispositionName(Disposition d);

struct Counters {
  uint64_t offered = 0;
  uint64_t admitted = 0;
  uint64_t duplicates = 0;
  uint64_t dropped = 0;
  uint64_t gated = 0;
  uint64_t dispatched = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  uint64_t deferred = 0;  // retries scheduled
  uint64_t expired = 0;
  uint64_t abandoned = 0;
};

struct Outcome {
  ActionId id = 0;
  state::Action action;
  Disposition disposition = Disposition::kSucceeded;
  uint32_t attempts = 0;
  std::string error;
  int64_t ended_ms = 0;
};

class Executor {
 public:
  static constexpr size_t kRecentOutcomesMax = 128;

  Executor(Options options, Dispatcher& dispatcher);

  Admission offer(const state::Action& action, int64_t now_ms);
  void poll(int64_t now_ms);
  void complete(ActionId id, const Status& status, int64_t now_ms);

  // While closed, offer() refuses with kGated. Queued work stays.
  void setGate(bool open) { gate_open_ = open; }
  bool gateOpen() const { return gate_open_; }
  // While set (a freeze), offer() refuses actions caused by a change with kGated, and those
  // already queued or waiting to retry wait (until their deadline) instead of dispatching.
  void holdChanges(bool hold) { holding_changes_ = hold; }
  bool holdingChanges() const { return holding_changes_; }
  // Ends everything queued or waiting to retry as abandoned (shutdown); in-flight actions
  // still complete. Returns how many were abandoned.
  size_t abandonPending(int64_t now_ms);

  size_t queued() const { return queue_.size(); }
  size_t retrying() const { return retries_.size(); }
  size_t inFlight() const { return in_flight_.size(); }
  bool idle() const { return queue_.empty() && retries_.empty() && in_flight_.empty(); }
  bool busyWith(const std::string& target) const { return targets_.count(target) > 0; }
  const Counters& counters() const { return counters_; }
  const std::deque<Outcome>& recentOutcomes() const { return recent_; }
  // Sets the callback that sees every final outcome (the node logs it to the chains).
  void onOutcome(std::function<void(const Outcome&)> fn) { on_outcome_ = std::move(fn); }

  nlohmann::json toJson() const;

 private:
  struct Entry {
    ActionId id = 0;
    state::Action action;
    uint32_t attempts = 0;
    int64_t deadline_ms = 0;
  };
  void finish(Entry entry, Disposition d, std::string error, int64_t now_ms);
  int64_t backoffMs(uint32_t attempts) const;

  Options options_;
  Dispatcher& dispatcher_;
  bool held(const state::Action& a) const;

  bool gate_open_ = true;
  bool holding_changes_ = false;
  ActionId next_id_ = 1;
  std::deque<Entry> queue_;
  // Retry heap: (due time, id) → entry.
  std::map<std::pair<int64_t, ActionId>, Entry> retries_;
  std::map<ActionId, Entry> in_flight_;
  std::map<std::string, ActionId> targets_;  // every target queued, retrying or in flight
  Counters counters_;
  std::deque<Outcome> recent_;
  std::function<void(const Outcome&)> on_outcome_;
};

}  // namespace meshos::executor
