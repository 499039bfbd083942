// Wall-clock deadlines held on the monotonic clock (wall_deadlines.h).
#include "agent/reconcile/wall_deadlines.h"

namespace meshos::reconcile {

bool WallDeadlines::passed(const std::string& key, int64_t deadline_wall_ms, int64_t now_wall_ms,
                           int64_t now_mono_ms) {
  auto it = mono_deadline_.find(key);
  if (it == mono_deadline_.end()) {
    it = mono_deadline_.emplace(key, now_mono_ms + (deadline_wall_ms - now_wall_ms)).first;
  }
  return now_mono_ms >= it->second;
}

void WallDeadlines::retain(const std::set<std::string>& keep) {
  for (auto it = mono_deadline_.begin(); it != mono_deadline_.end();) {
    it = keep.count(it->first) > 0 ? std::next(it) : mono_deadline_.erase(it);
  }
}

}  // namespace meshos::reconcile
