#include "agent/core/timers.h"

namespace meshos {

TimerId ManualTimers::after(int64_t delay_ms, std::function<void()> fn) {
  if (delay_ms < 0) delay_ms = 0;
  TimerId id = next_id_++;
  int64_t deadline = clock_.monotonicNs() + delay_ms * 1'000'000;
  queue_.emplace(std::make_pair(deadline, id), std::move(fn));
  deadline_by_id_[id] = deadline;
  return id;
}

void ManualTimers::cancel(TimerId id) {
  auto it = deadline_by_id_.find(id);
  if (it == deadline_by_id_.end()) return;
  queue_.erase({it->second, id});
  deadline_by_id_.erase(it);
}

size_t ManualTimers::advanceToNs(int64_t target_ns) {
  size_t ran = 0;
  while (!queue_.empty() && queue_.begin()->first.first <= target_ns) {
    auto node = queue_.extract(queue_.begin());
    deadline_by_id_.erase(node.key().second);
    clock_.advanceToNs(node.key().first);
    node.mapped()();
    ++ran;
  }
  clock_.advanceToNs(target_ns);
  return ran;
}

void ManualPoster::post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.push_back(std::move(fn));
}

size_t ManualPoster::runPending() {
  size_t ran = 0;
  for (;;) {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(pending_);
    }
    if (batch.empty()) return ran;
    for (auto& fn : batch) {
      fn();
      ++ran;
    }
  }
}

}  // namespace meshos
