#include "agent/executor/executor.h"

#include <algorithm>

namespace meshos::executor {

std::string_view admissionName(Admission a) {
  switch (a) {
    case Admission::kAdmitted: return "admitted";
    case Admission::kDuplicate: return "duplicate";
    case Admission::kDropped: return "dropped";
    case Admission::kGated: return "gated";
  }
  return "unknown";
}

std::string_view dispositionName(Disposition d) {
  switch (d) {
    case Disposition::kSucceeded: return "succeeded";
    case Disposition::kFailed: return "failed";
    case Disposition::kExpired: return "expired";
    case Disposition::kAbandoned: return "abandoned";
  }
  return "unknown";
}

namespace {
bool retryable(Code c) {
  return c == Code::kUnavailable || c == Code::kOverloaded || c == Code::kIoError ||
         c == Code::kDeadlineExceeded;
}
}  // namespace

Executor::Executor(Options options, Dispatcher& dispatcher)
    : options_(options), dispatcher_(dispatcher) {
  options_.max_attempts = std::max<uint32_t>(1, options_.max_attempts);
  options_.max_in_flight = std::max<size_t>(1, options_.max_in_flight);
}

Admission Executor::offer(const state::Action& action, int64_t now_ms) {
  ++counters_.offered;
  if (!gate_open_ || held(action)) {
    ++counters_.gated;
    return Admission::kGated;
  }
  if (targets_.count(action.target()) > 0) {
    ++counters_.duplicates;
    return Admission::kDuplicate;
  }
  if (queue_.size() >= options_.queue_capacity) {
    ++counters_.dropped;
    return Admission::kDropped;
  }
  Entry e{next_id_++, action, 0, now_ms + options_.action_deadline_ms};
  targets_.emplace(action.target(), e.id);
  queue_.push_back(std::move(e));
  ++counters_.admitted;
  return Admission::kAdmitted;
}

bool Executor::held(const state::Action& a) const {
  return holding_changes_ && a.cause == state::ActionCause::kChange;
}

int64_t Executor::backoffMs(uint32_t attempts) const {
  int64_t d = options_.retry_initial_ms;
  for (uint32_t i = 1; i < attempts && d < options_.retry_max_ms; ++i) d *= 2;
  return std::min(d, options_.retry_max_ms);
}

void Executor::poll(int64_t now_ms) {
  // Retries that fell due go back to the queue, ahead of new work they have waited longer.
  while (!retries_.empty() && retries_.begin()->first.first <= now_ms) {
    auto node = retries_.extract(retries_.begin());
    queue_.push_front(std::move(node.mapped()));
  }
  // Expire anything whose deadline passed, wherever it waits.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->deadline_ms <= now_ms) {
      Entry e = std::move(*it);
      it = queue_.erase(it);
      finish(std::move(e), Disposition::kExpired, "deadline passed before dispatch", now_ms);
    } else {
      ++it;
    }
  }
  for (auto it = retries_.begin(); it != retries_.end();) {
    if (it->second.deadline_ms <= now_ms) {
      Entry e = std::move(it->second);
      it = retries_.erase(it);
      finish(std::move(e), Disposition::kExpired, "deadline passed while waiting to retry", now_ms);
    } else {
      ++it;
    }
  }
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->second.deadline_ms <= now_ms) {
      Entry e = std::move(it->second);
      it = in_flight_.erase(it);
      finish(std::move(e), Disposition::kExpired, "deadline passed in flight", now_ms);
    } else {
      ++it;
    }
  }
  for (auto it = queue_.begin(); it != queue_.end() && in_flight_.size() < options_.max_in_flight;) {
    if (held(it->action)) {
      ++it;
      continue;
    }
    Entry e = std::move(*it);
    it = queue_.erase(it);
    ++e.attempts;
    ActionId id = e.id;
    state::Action action = e.action;
    in_flight_.emplace(id, std::move(e));
    ++counters_.dispatched;
    // May call complete() before returning, and never touches the queue (offer() appends
    // to it, which would invalidate `it`: dispatchers post new work to the loop instead).
    dispatcher_.dispatch(id, action);
  }
}

void Executor::complete(ActionId id, const Status& status, int64_t now_ms) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;  // expired or unknown: its outcome is already recorded
  Entry e = std::move(it->second);
  in_flight_.erase(it);
  if (status.isOk()) {
    finish(std::move(e), Disposition::kSucceeded, "", now_ms);
    return;
  }
  if (retryable(status.code()) && e.attempts < options_.max_attempts) {
    int64_t due = now_ms + backoffMs(e.attempts);
    ++counters_.deferred;
    ActionId key = e.id;
    retries_.emplace(std::make_pair(due, key), std::move(e));
    return;
  }
  finish(std::move(e), Disposition::kFailed, status.toString(), now_ms);
}

size_t Executor::abandonPending(int64_t now_ms) {
  size_t n = queue_.size() + retries_.size();
  while (!queue_.empty()) {
    Entry e = std::move(queue_.front());
    queue_.pop_front();
    finish(std::move(e), Disposition::kAbandoned, "agent shutting down", now_ms);
  }
  while (!retries_.empty()) {
    auto node = retries_.extract(retries_.begin());
    finish(std::move(node.mapped()), Disposition::kAbandoned, "agent shutting down", now_ms);
  }
  return n;
}

void Executor::finish(Entry entry, Disposition d, std::string error, int64_t now_ms) {
  targets_.erase(entry.action.target());
  switch (d) {
    case Disposition::kSucceeded: ++counters_.succeeded; break;
    case Disposition::kFailed: ++counters_.failed; break;
    case Disposition::kExpired: ++counters_.expired; break;
    case Disposition::kAbandoned: ++counters_.abandoned; break;
  }
  Outcome o{entry.id, std::move(entry.action), d, entry.attempts, std::move(error), now_ms};
  if (on_outcome_) on_outcome_(o);
  if (recent_.size() >= kRecentOutcomesMax) recent_.pop_front();
  recent_.push_back(std::move(o));
}

nlohmann::json Executor::toJson() const {
  const auto& c = counters_;
  return {{"queued", queue_.size()},       {"retrying", retries_.size()},
          {"in_flight", in_flight_.size()}, {"capacity", options_.queue_capacity},
          {"offered", c.offered},           {"admitted", c.admitted},
          {"duplicates", c.duplicates},     {"dropped", c.dropped},
          {"gated", c.gated},               {"dispatched", c.dispatched},
          {"succeeded", c.succeeded},       {"failed", c.failed},
          {"deferred", c.deferred},         {"expired", c.expired},
          {"abandoned", c.abandoned},       {"holding_changes", holding_changes_}};
}

}  // namespace meshos::executor
