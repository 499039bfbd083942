// sim::GossipCluster: N gossip nodes in one process over sim::Network and a virtual clock,
// all randomness from one seed. Each SimNode runs the real gossip::Membership code; the
// harness only moves bytes and time. Nodes can crash, restart (at a new address too), be
// CPU-starved, and be partitioned; tests check invariants between steps.
//
// Reusable: SimNode is an Endpoint and exposes the shared clock/timers/network, so a later
// component (commit spreading, placement) can run on the same nodes through
// SimNode::onEvent / onState hooks or by attaching its own endpoints to the Network.
// Single-threaded; the test or tool that builds the cluster owns it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/rng.h"
#include "agent/core/timers.h"
#include "agent/gossip/membership.h"
#include "agent/sim/network.h"

namespace meshos::sim {

class GossipCluster;

class SimNode final : public Endpoint {
 public:
  SimNode(GossipCluster& cluster, size_t index, std::string name, gossip::LocalIdentity identity);

  void start();
  // Stops all processing (no goodbye). Its address stops answering.
  void crash();
  // Comes back with the persisted incarnation, optionally at a new address.
  void restart(const std::string& new_address = "");
  void join(const std::vector<std::string>& addresses);
  void leave();
  // Seeds a started node's table (GossipCluster::startAllPrejoined).
  void adoptConverged(const std::vector<gossip::MemberRecord>& records);
  // Delays everything this node does by up to max_delay_ms (a CPU-starved host).
  void setStarved(int64_t max_delay_ms);

  bool up() const { return up_; }
  bool started() const { return membership_ != nullptr; }
  size_t index() const { return index_; }
  const std::string& name() const { return name_; }
  const std::string& id() const { return identity_.id; }
  const std::string& address() const { return identity_.address; }
  gossip::Membership& membership() { return *membership_; }
  const gossip::Membership& membership() const { return *membership_; }

  // Hooks for tests and for components layered on top.
  std::function<void(int64_t now_ms, const gossip::MemberEvent&)> on_event;
  std::function<void(int64_t now_ms, const gossip::NodeStateUpdate&)> on_state;

  void onDatagram(const std::string& from, Bytes bytes) override;
  Result<Bytes> onStream(const std::string& from, Bytes request) override;

 private:
  void flush();
  void schedule();
  int64_t now() const;
  int64_t nowUs() const;

  GossipCluster& cluster_;
  size_t index_;
  std::string name_;
  gossip::LocalIdentity identity_;
  std::unique_ptr<gossip::Membership> membership_;
  bool up_ = false;
  uint64_t generation_ = 0;  // bumps on crash/restart so stale callbacks are ignored
  TimerId wake_timer_ = 0;
  int64_t wake_at_ms_ = -1;
  int64_t starve_ms_ = 0;
};

struct ClusterOptions {
  gossip::Options gossip;
  LinkProfile link;
  bool encrypt = false;  // seal with a keyring (costs CPU; the protocol is the same)
  uint16_t port = 7946;
};

class GossipCluster {
 public:
  GossipCluster(uint64_t seed, ClusterOptions options);
  ~GossipCluster();

  // Adds a node named n<index> at "10.<a>.<b>.<c>:port"; not started.
  SimNode& addNode();
  void addNodes(size_t n) {
    for (size_t i = 0; i < n; ++i) addNode();
  }
  // Starts every node and joins each to the first `seeds` nodes. With spread_ms > 0 each
  // node starts and joins at its own random time in [0, spread_ms) (scheduled on the timers:
  // run the clock to see it); 0 starts them all in this same millisecond, so their gossip
  // rounds begin in lockstep (the join traffic later shifts some of them).
  void startAll(size_t seeds = 1, int64_t spread_ms = 0);
  // Starts every node already converged (--prejoined): each node's table is seeded with every
  // other node alive through Membership::adoptConvergedMembers (the push-pull merge path,
  // minus the broadcasts a converged cluster would have finished spreading). No join
  // traffic, no seeds remembered. For measuring dissemination and failure detection at
  // sizes where simulating the O(N^2)-message all-at-once join is too slow. With
  // spread_ms > 0 the nodes start at random times over [0, spread_ms) and the tables are
  // adopted at spread_ms (the clock is run that far); 0 starts them all now, in lockstep
  // (every gossip round of every node at the same instant, which nothing here ever shifts).
  void startAllPrejoined(int64_t spread_ms = 0);

  // Runs the simulation for duration_ms of virtual time. If invariant is given it is checked
  // every check_every_ms; the first failure stops the run and is returned.
  Status runFor(int64_t duration_ms, const std::function<Status()>& invariant = {}, int64_t check_every_ms = 100);
  // Runs until pred() holds (checked every check_every_ms) or max_ms passes; returns whether it held.
  bool runUntil(const std::function<bool()>& pred, int64_t max_ms, int64_t check_every_ms = 50);

  int64_t nowMs() const { return clock_.monotonicNs() / 1'000'000; }
  uint64_t seed() const { return seed_; }
  size_t size() const { return nodes_.size(); }
  SimNode& node(size_t i) { return *nodes_[i]; }
  ManualClock& clock() { return clock_; }
  ManualTimers& timers() { return timers_; }
  Network& network() { return *network_; }
  const ClusterOptions& options() const { return options_; }
  Rng forkRng() { return rng_.fork(); }

  // How many up nodes see `subject` in state s (subject excluded).
  size_t countSeeing(const std::string& subject_id, gossip::MemberState s) const;
  // Every up node sees every other up node alive, and every down node not alive.
  bool converged() const;
  // What stands between the cluster and converged(): up to `limit` "viewer: subject state"
  // pairs, and how many there are in all. Empty when converged.
  std::string divergence(size_t limit = 6) const;
  // Cuts the cluster between nodes [0, split) and [split, N), both ways (or one way).
  void partition(size_t split, bool both_ways = true);
  void heal() { network_->healAll(); }
  std::string newAddress();

 private:
  uint64_t seed_;
  ClusterOptions options_;
  gossip::MemberIdentityPool identities_;  // shared by every node: one copy of each identity
  ManualClock clock_;
  ManualTimers timers_;
  Rng rng_;
  std::unique_ptr<Network> network_;
  gossip::Keyring keyring_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  uint32_t next_host_ = 1;
  friend class SimNode;
};

}  // namespace meshos::sim
