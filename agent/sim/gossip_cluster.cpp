#include "agent/sim/gossip_cluster.h"

#include <sodium.h>

#include <algorithm>

#include "agent/core/crypto.h"
#include "agent/core/node_identity.h"

namespace meshos::sim {

using gossip::MemberState;

// ---------------------------------------------------------------- SimNode

SimNode::SimNode(GossipCluster& cluster, size_t index, std::string name, gossip::LocalIdentity identity)
    : cluster_(cluster), index_(index), name_(std::move(name)), identity_(std::move(identity)) {}

int64_t SimNode::now() const { return cluster_.nowMs(); }
int64_t SimNode::nowUs() const { return cluster_.clock().monotonicNs() / 1000; }

void SimNode::start() {
  membership_ = std::make_unique<gossip::Membership>(cluster_.options_.gossip, identity_, cluster_.keyring_,
                                                     cluster_.forkRng(), cluster_.identities_);
  up_ = true;
  ++generation_;
  wake_at_ms_ = -1;
  cluster_.network().attach(identity_.address, this);
  membership_->start(now());
  flush();
}

void SimNode::crash() {
  if (!up_) return;
  up_ = false;
  ++generation_;
  identity_.incarnation = membership_->incarnation();  // what the node had persisted
  cluster_.network().detach(identity_.address);
  if (wake_timer_ != 0) cluster_.timers().cancel(wake_timer_);
  wake_timer_ = 0;
}

void SimNode::restart(const std::string& new_address) {
  if (up_) crash();
  if (!new_address.empty()) identity_.address = new_address;
  start();
}

void SimNode::join(const std::vector<std::string>& addresses) {
  if (!up_) return;
  membership_->join(now(), addresses);
  flush();
}

void SimNode::adoptConverged(const std::vector<gossip::MemberRecord>& records) {
  if (!up_) return;
  membership_->adoptConvergedMembers(now(), records);
  flush();
}

void SimNode::leave() {
  if (!up_) return;
  membership_->leave(now());
  flush();
}

void SimNode::setStarved(int64_t max_delay_ms) {
  starve_ms_ = max_delay_ms;
  cluster_.network().setProcessingDelay(Network::hostOf(identity_.address), max_delay_ms);
}

void SimNode::onDatagram(const std::string& from, Bytes bytes) {
  if (!up_) return;
  membership_->handlePacketUs(nowUs(), from, bytes);
  flush();
}

Result<Bytes> SimNode::onStream(const std::string& from, Bytes request) {
  if (!up_) return Status::unavailable("node down");
  auto reply = membership_->handleStream(now(), from, request);
  flush();
  return reply;
}

void SimNode::flush() {
  if (!up_) return;
  gossip::Outputs out = membership_->takeOutputs();
  for (auto& p : out.packets) cluster_.network().sendDatagram(identity_.address, p.to, std::move(p.bytes));
  for (auto& s : out.streams) {
    uint64_t gen = generation_;
    uint64_t id = s.id;
    cluster_.network().openStream(identity_.address, s.to, std::move(s.frame),
                                  cluster_.options_.gossip.stream_timeout_ms,
                                  [this, gen, id](Result<Bytes> reply) {
                                    if (!up_ || gen != generation_) return;
                                    membership_->handleStreamReply(now(), id, std::move(reply));
                                    flush();
                                  });
  }
  for (const auto& e : out.events)
    if (on_event) on_event(now(), e);
  for (const auto& st : out.states)
    if (on_state) on_state(now(), st);
  schedule();
}

void SimNode::schedule() {
  int64_t wake = membership_->nextWakeMs();
  // A starved node's timers fire late too.
  if (wake == wake_at_ms_ && wake_timer_ != 0) return;
  if (wake_timer_ != 0) cluster_.timers().cancel(wake_timer_);
  wake_at_ms_ = wake;
  int64_t delay = std::max<int64_t>(0, wake - now());
  if (starve_ms_ > 0) delay += static_cast<int64_t>(cluster_.rng_.uniform(static_cast<uint64_t>(starve_ms_) + 1));
  uint64_t gen = generation_;
  wake_timer_ = cluster_.timers().after(delay, [this, gen] {
    if (!up_ || gen != generation_) return;
    wake_timer_ = 0;
    wake_at_ms_ = -1;
    membership_->tickUs(nowUs());
    flush();
  });
}

// ---------------------------------------------------------------- GossipCluster

GossipCluster::GossipCluster(uint64_t seed, ClusterOptions options)
    : seed_(seed), options_(std::move(options)), timers_(clock_), rng_(seed) {
  (void)initCrypto();
  network_ = std::make_unique<Network>(timers_, rng_.fork());
  network_->setClock(&clock_);
  network_->setDefaultLink(options_.link);
  if (options_.encrypt) {
    gossip::ClusterKey key{};
    for (auto& b : key) b = static_cast<uint8_t>(rng_.next());
    keyring_.install(key);
  }
}

GossipCluster::~GossipCluster() = default;

std::string GossipCluster::newAddress() {
  uint32_t h = next_host_++;
  return "10." + std::to_string((h >> 16) & 0xff) + "." + std::to_string((h >> 8) & 0xff) + "." +
         std::to_string(h & 0xff) + ":" + std::to_string(options_.port);
}

SimNode& GossipCluster::addNode() {
  size_t index = nodes_.size();
  // Keys derived from the seed so ids (and thus every ordering) repeat run to run.
  unsigned char seed[crypto_sign_SEEDBYTES];
  for (size_t i = 0; i < sizeof(seed); i += 8) {
    uint64_t v = rng_.next();
    for (size_t j = 0; j < 8 && i + j < sizeof(seed); ++j) seed[i + j] = static_cast<unsigned char>(v >> (8 * j));
  }
  PublicKey pk{};
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk.data(), sk, seed);
  gossip::LocalIdentity id;
  id.name = "n" + std::to_string(index);
  id.id = nodeIdFromPublicKey(pk);
  id.public_key.assign(pk.begin(), pk.end());
  id.address = newAddress();
  nodes_.push_back(std::make_unique<SimNode>(*this, index, id.name, id));
  return *nodes_.back();
}

void GossipCluster::startAll(size_t seeds, int64_t spread_ms) {
  std::vector<std::string> seed_addrs;
  for (size_t i = 0; i < std::min(seeds, nodes_.size()); ++i) seed_addrs.push_back(nodes_[i]->address());
  if (spread_ms <= 0) {
    for (auto& n : nodes_) n->start();
    for (auto& n : nodes_) n->join(seed_addrs);
    return;
  }
  // Each node starts, then joins, at its own random time (a seed not up yet is retried).
  for (auto& n : nodes_) {
    SimNode* node = n.get();
    timers_.after(static_cast<int64_t>(rng_.uniform(static_cast<uint64_t>(spread_ms))), [node, seed_addrs] {
      node->start();
      node->join(seed_addrs);
    });
  }
}

void GossipCluster::startAllPrejoined(int64_t spread_ms) {
  if (spread_ms <= 0) {
    for (auto& n : nodes_) n->start();
  } else {
    for (auto& n : nodes_) {
      SimNode* node = n.get();
      timers_.after(static_cast<int64_t>(rng_.uniform(static_cast<uint64_t>(spread_ms))), [node] { node->start(); });
    }
    timers_.advanceMs(spread_ms);
  }
  std::vector<gossip::MemberRecord> records;
  records.reserve(nodes_.size());
  for (auto& n : nodes_) {
    gossip::MemberInfo self = n->membership().localMember();
    records.push_back(gossip::MemberRecord{self.id, self.name, self.address, self.public_key, self.incarnation,
                                           gossip::MemberState::kAlive});
  }
  for (auto& n : nodes_) n->adoptConverged(records);
}

Status GossipCluster::runFor(int64_t duration_ms, const std::function<Status()>& invariant, int64_t check_every_ms) {
  const int64_t end = nowMs() + duration_ms;
  while (nowMs() < end) {
    int64_t step = invariant ? std::min(check_every_ms, end - nowMs()) : end - nowMs();
    timers_.advanceMs(step);
    if (invariant) {
      Status s = invariant();
      if (!s) return s.withContext("at t=" + std::to_string(nowMs()) + " ms, seed " + std::to_string(seed_));
    }
  }
  return Status::ok();
}

bool GossipCluster::runUntil(const std::function<bool()>& pred, int64_t max_ms, int64_t check_every_ms) {
  const int64_t end = nowMs() + max_ms;
  while (nowMs() < end) {
    if (pred()) return true;
    timers_.advanceMs(std::min(check_every_ms, end - nowMs()));
  }
  return pred();
}

size_t GossipCluster::countSeeing(const std::string& subject_id, MemberState s) const {
  size_t n = 0;
  for (const auto& node : nodes_) {
    if (!node->up() || node->id() == subject_id) continue;
    if (node->membership().memberState(subject_id) == s) ++n;
  }
  return n;
}

bool GossipCluster::converged() const {
  for (const auto& a : nodes_) {
    if (!a->up()) continue;
    for (const auto& b : nodes_) {
      if (a.get() == b.get()) continue;
      const auto state = a->membership().memberState(b->id());
      if (b->up()) {
        if (state != MemberState::kAlive || a->membership().memberAddress(b->id()) != b->address()) return false;
      } else if (b->started()) {
        if (state == MemberState::kAlive || state == MemberState::kSuspect) return false;
      }
    }
  }
  return true;
}

std::string GossipCluster::divergence(size_t limit) const {
  std::string out;
  size_t count = 0;
  for (const auto& a : nodes_) {
    if (!a->up()) continue;
    for (const auto& b : nodes_) {
      if (a.get() == b.get()) continue;
      const auto state = a->membership().memberState(b->id());
      const bool live = state == MemberState::kAlive || state == MemberState::kSuspect;
      const bool wrong = b->up() ? state != MemberState::kAlive || a->membership().memberAddress(b->id()) != b->address()
                                 : b->started() && live;
      if (!wrong) continue;
      if (count++ >= limit) continue;
      const auto seen = a->membership().findMember(b->id());
      out += a->name() + " sees " + b->name() + " " + (state ? gossip::memberStateName(*state) : "unknown");
      if (seen) out += " at incarnation " + std::to_string(seen->incarnation);
      out += " (" + b->name() + " is at " + std::to_string(b->membership().incarnation()) + "); ";
    }
  }
  return count == 0 ? out : out + std::to_string(count) + " pairs in all";
}

void GossipCluster::partition(size_t split, bool both_ways) {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    for (size_t j = 0; j < nodes_.size(); ++j) {
      bool left_i = i < split, left_j = j < split;
      if (left_i == left_j) continue;
      if (!both_ways && !left_i) continue;
      network_->block(Network::hostOf(nodes_[i]->address()), Network::hostOf(nodes_[j]->address()));
    }
  }
}

}  // namespace meshos::sim
