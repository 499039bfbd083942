#include "agent/gossip/broadcast_queue.h"

#include <cmath>

namespace meshos::gossip {

int retransmitLimit(int retransmit_mult, size_t num_nodes) {
  double scale = std::ceil(std::log10(static_cast<double>(num_nodes) + 1.0));
  return retransmit_mult * static_cast<int>(scale);
}

void BroadcastQueue::queue(const std::string& subject, Message msg) {
  if (auto it = by_subject_.find(subject); it != by_subject_.end()) erase(it);
  Entry e;
  e.size_hint = encodedSizeHint(msg);
  pending_bytes_ += e.size_hint;
  e.msg = std::move(msg);
  e.id = next_id_++;
  Order key = orderOf(e);
  auto inserted = by_subject_.emplace(subject, std::move(e)).first;
  order_.emplace(key, inserted);
  while (by_subject_.size() > max_entries_) {
    erase(std::prev(order_.end())->second);  // most transmitted, oldest
    ++dropped_;
  }
}

void BroadcastQueue::forget(const std::string& subject) {
  if (auto it = by_subject_.find(subject); it != by_subject_.end()) erase(it);
}

void BroadcastQueue::erase(std::map<std::string, Entry>::iterator it) {
  pending_bytes_ -= it->second.size_hint;
  order_.erase(orderOf(it->second));
  by_subject_.erase(it);
}

std::vector<Message> BroadcastQueue::take(size_t budget_bytes, int transmit_limit) {
  std::vector<Message> out;
  std::vector<std::map<Order, std::map<std::string, Entry>::iterator>::iterator> taken;
  size_t used = 0;
  // Skip a few that do not fit (a smaller one may), but never walk the whole queue.
  int misses = 0;
  for (auto it = order_.begin(); it != order_.end() && misses < 16; ++it) {
    const Entry& e = it->second->second;
    if (used + e.size_hint > budget_bytes) {
      ++misses;
      continue;
    }
    used += e.size_hint;
    out.push_back(e.msg);
    taken.push_back(it);
    if (budget_bytes - used < 48) break;
  }
  for (auto oit : taken) {
    auto entry = oit->second;
    order_.erase(oit);
    if (++entry->second.transmits >= transmit_limit) {
      pending_bytes_ -= entry->second.size_hint;
      by_subject_.erase(entry);
    } else {
      order_.emplace(orderOf(entry->second), entry);
    }
  }
  return out;
}

}  // namespace meshos::gossip
