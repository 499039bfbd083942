// BroadcastQueue: the updates this node still has to spread, piggybacked on probes, acks
// and gossip rounds. Keyed by subject: a newer update about a subject replaces the older
// one. Each update is sent at most retransmit_mult * ceil(log10(N + 1)) times; the ones sent
// fewest times go first, newest first among equals. Bounded: past max_entries the most
// transmitted / oldest update is dropped and counted.
// Owned by Membership; loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/gossip/messages.h"

namespace meshos::gossip {

int retransmitLimit(int retransmit_mult, size_t num_nodes);

class BroadcastQueue {
 public:
  explicit BroadcastQueue(size_t max_entries) : max_entries_(max_entries) {}

  void queue(const std::string& subject, Message msg);
  // Takes updates that fit in budget_bytes (by encodedSizeHint), counting a transmit for
  // each and retiring those that reached the limit.
  std::vector<Message> take(size_t budget_bytes, int transmit_limit);
  // Removes the update about subject, if any.
  void forget(const std::string& subject);
  bool contains(const std::string& subject) const { return by_subject_.count(subject) != 0; }
  size_t size() const { return by_subject_.size(); }
  bool empty() const { return by_subject_.empty(); }
  uint64_t dropped() const { return dropped_; }
  // The size hints of every queued update: what one packet would need to carry them all.
  size_t pendingBytes() const { return pending_bytes_; }

 private:
  struct Entry {
    Message msg;
    size_t size_hint = 0;
    int transmits = 0;
    uint64_t id = 0;  // higher is newer
  };
  using Order = std::pair<int, uint64_t>;  // (transmits, ~id): fewest sent, then newest
  static Order orderOf(const Entry& e) { return {e.transmits, ~e.id}; }
  void erase(std::map<std::string, Entry>::iterator it);

  size_t max_entries_;
  uint64_t next_id_ = 1;
  uint64_t dropped_ = 0;
  size_t pending_bytes_ = 0;
  std::map<std::string, Entry> by_subject_;
  // Send order; ids are unique so an Order names one entry.
  std::map<Order, std::map<std::string, Entry>::iterator> order_;
};

}  // namespace meshos::gossip
