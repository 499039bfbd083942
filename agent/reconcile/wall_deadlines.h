// WallDeadlines: a deadline that a signed commit states in wall-clock time (a freeze's
// expiry, a drain's deadline) held on this node's monotonic clock. The first time the node
// sees a deadline it notes how far away it is by the wall clock then, and from that moment
// counts that distance on the monotonic clock. A wall-clock step afterwards (NTP, an
// operator's date, a VM resumed) neither ends a freeze early nor stretches it, nor moves a
// drain deadline.
//
// Keyed by what the deadline belongs to ("freeze/12", "drain/n3/15"); a new commit is a new
// key, so a changed deadline is anchored afresh. Keys not used by a plan are forgotten
// (retain), so the table holds what the current desired state names. Pure; one thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace meshos::reconcile {

class WallDeadlines {
 public:
  // True once the deadline has passed, on the monotonic clock from the key's first sight.
  bool passed(const std::string& key, int64_t deadline_wall_ms, int64_t now_wall_ms, int64_t now_mono_ms);
  // Forgets every key not in keep.
  void retain(const std::set<std::string>& keep);
  size_t size() const { return mono_deadline_.size(); }

 private:
  std::map<std::string, int64_t> mono_deadline_;
};

}  // namespace meshos::reconcile
