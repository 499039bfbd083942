// Membership: the timed steps (probes, suspicion timeouts, gossip rounds, push-pull,
// reconnects, seed retries, reaping).
#include "agent/gossip/membership.h"

#include <algorithm>

#include "agent/core/node_identity.h"
#include "agent/gossip/membership_limits.h"
#include "agent/gossip/suspicion.h"

namespace meshos::gossip {

using namespace detail;

// ---------------------------------------------------------------- time

void Membership::tickUs(int64_t now_us) {
  MESHOS_DCHECK_THREAD(thread_);
  if (!started_) return;
  now_us_ = now_us;
  const int64_t now_ms = now_us / 1000;
  suspicionStep(now_ms);
  forwardStep(now_ms);
  probeStep(now_ms);
  fetchStep(now_ms);
  seedRetryStep(now_ms);
  if (now_ms >= next_gossip_ms_) {
    gossipStep(now_ms);
    next_gossip_ms_ = now_ms + options_.gossip_interval_ms;
  }
  if (now_ms >= next_push_pull_ms_) {
    pushPullStep(now_ms);
    next_push_pull_ms_ = now_ms + pushPullScaledIntervalMs(options_.push_pull_interval_ms, estimatedNodes());
  }
  if (now_ms >= next_dead_probe_ms_) deadProbeStep(now_ms);
  if (now_ms >= join_follow_up_ms_) joinFollowUpStep(now_ms);
  if (now_ms >= next_reconnect_ms_) {
    reconnectStep(now_ms);
    next_reconnect_ms_ = now_ms + options_.reconnect_interval_ms;
  }
  if (now_ms >= next_reap_ms_) {
    reapStep(now_ms);
    next_reap_ms_ = now_ms + kReapCheckMs;
  }
}

int64_t Membership::nextWakeMs() const {
  int64_t t = std::min({next_push_pull_ms_, next_reconnect_ms_, next_reap_ms_, next_dead_probe_ms_, join_follow_up_ms_});
  // A gossip round with nothing queued sends nothing: an idle node does not wake for it.
  // Whatever queues an update comes through an input, after which the shell asks again.
  if (!membership_queue_.empty() || !state_queue_.empty()) t = std::min(t, next_gossip_ms_);
  if (probe_.active) {
    t = std::min(t, probe_.indirect_sent ? probe_.end_ms : probe_.timeout_at_ms);
  } else {
    t = std::min(t, next_probe_ms_);
  }
  if (!forwards_.empty()) {
    for (const auto& [seq, f] : forwards_) t = std::min(t, f.deadline_ms);
  }
  for (const auto& [deadline, id] : suspicion_deadlines_) {
    t = std::min(t, deadline);
    break;
  }
  for (const auto& [address, r] : seed_retry_) {
    if (leaving_) break;
    if (!r.reached) t = std::min(t, r.pending ? r.sent_ms + 2 * options_.stream_timeout_ms : r.next_retry_ms);
  }
  for (const auto& origin : fetch_wanted_) {
    if (leaving_) break;
    if (auto it = states_.find(origin); it != states_.end()) t = std::min(t, it->second.next_fetch_ms);
  }
  return t;
}

void Membership::suspicionStep(int64_t now_ms) {
  // Suspect members whose deadline passed are declared dead. Entries go stale when a
  // confirmation moves a deadline or the member is refuted; those are skipped here.
  while (!suspicion_deadlines_.empty() && suspicion_deadlines_.begin()->first <= now_ms) {
    std::string id = suspicion_deadlines_.begin()->second;
    suspicion_deadlines_.erase(suspicion_deadlines_.begin());
    Member* m = find(id);
    if (m == nullptr || m->state != MemberState::kSuspect) continue;
    if (m->suspicion != nullptr && m->suspicion->deadline_ms > now_ms) continue;  // stale; the live one is queued
    const DeadMsg dead{m->incarnation, id, self_.id};
    onDead(now_ms, dead);
    tellAtOnce(now_ms, dead);
  }
}

void Membership::forwardStep(int64_t now_ms) {
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (it->second.deadline_ms <= now_ms) {
      if (it->second.want_nack) sendPacket(it->second.source_address, {NackMsg{it->second.orig_seq}}, false);
      it = forwards_.erase(it);
    } else {
      ++it;
    }
  }
}

void Membership::probeStep(int64_t now_ms) {
  if (probe_.active) {
    Member* target = find(probe_.target);
    if (target == nullptr) {
      probe_.active = false;
    } else if (!probe_.indirect_sent && now_ms >= probe_.timeout_at_ms) {
      probe_.indirect_sent = true;
      auto helpers = randomMembers(static_cast<size_t>(options_.indirect_checks), probe_.target, false, now_ms);
      for (Member* h : helpers) {
        if (h->state != MemberState::kAlive) continue;
        ++probe_.expected_nacks;
        ++counters_.indirect_probes;
        sendPacket(h->address(),
                   {IndirectPingMsg{probe_.seq, probe_.target, target->address(), true, self_.address}}, false);
      }
      if (options_.tcp_fallback_probe) {
        ++counters_.tcp_probes;
        queueStream(StreamKind::kProbe, target->address(),
                    PingMsg{probe_.seq, probe_.target, self_.address, self_.id}, probe_.seq, false);
      }
    }
    if (probe_.active && probe_.indirect_sent && now_ms >= probe_.end_ms) finishProbe(now_ms);
  }
  if (probe_.active || now_ms < next_probe_ms_) return;
  next_probe_ms_ = now_ms + scaled(options_.probe_interval_ms);
  if (leaving_) return;
  // Members suspected by others first (onSuspect), then round-robin over a reshuffled list,
  // skipping dead and departed members.
  Member* target = nullptr;
  while (target == nullptr && !urgent_probes_.empty()) {
    Member* m = find(urgent_probes_.front());
    urgent_probes_.pop_front();
    if (m != nullptr && m->state == MemberState::kSuspect) target = m;
  }
  const bool urgent = target != nullptr;
  for (size_t checked = 0; checked <= probe_order_.size() && target == nullptr; ++checked) {
    if (probe_pos_ >= probe_order_.size()) {
      probe_order_.clear();
      for (const auto& m : ids_) probe_order_.push_back(m.get());
      rng_.shuffle(probe_order_);
      probe_pos_ = 0;
      if (probe_order_.empty()) return;
    }
    Member* m = probe_order_[probe_pos_++];
    if (m != nullptr && (m->state == MemberState::kAlive || m->state == MemberState::kSuspect)) target = m;
  }
  if (target == nullptr) return;
  probe_ = Probe{};
  probe_.active = true;
  probe_.target = target->id();
  probe_.seq = nextSeq();
  probe_.start_ms = now_ms;
  probe_.start_us = now_us_;
  probe_.timeout_at_ms = now_ms + scaled(options_.probe_timeout_ms);
  probe_.end_ms = now_ms + scaled(options_.probe_interval_ms);
  probe_.urgent = urgent;
  ++counters_.probes;
  std::vector<Message> msgs{PingMsg{probe_.seq, target->id(), self_.address, self_.id}};
  if (target->state == MemberState::kSuspect) {
    // Lifeguard's buddy system: tell the suspect it is suspected so it can refute at once.
    msgs.push_back(SuspectMsg{target->incarnation, target->id(), self_.id});
  }
  sendPacket(target->address(), std::move(msgs), true);
}

void Membership::finishProbe(int64_t now_ms) {
  probe_.active = false;
  if (probe_.acked) return;
  ++counters_.probe_failures;
  int delta = 1;
  if (probe_.expected_nacks > 0) delta = probe_.expected_nacks - probe_.nacks;
  // An urgent probe goes to a member others already suspect: it is expected to fail, and its
  // helpers may be cut off with it, which says nothing about our own health; counting it
  // would slow our probing exactly when confirmations are wanted. (Our own suspicions are
  // probed in turn and count: an isolated node must still notice it is the one cut off.)
  if (delta > 0 && !probe_.urgent) applyAwareness(delta);
  Member* target = find(probe_.target);
  if (target == nullptr || target->state != MemberState::kAlive) {
    if (target != nullptr && target->state == MemberState::kSuspect)
      onSuspect(now_ms, SuspectMsg{target->incarnation, target->id(), self_.id});
    return;
  }
  onSuspect(now_ms, SuspectMsg{target->incarnation, target->id(), self_.id});
}

void Membership::gossipStep(int64_t now_ms) {
  if (membership_queue_.empty() && state_queue_.empty()) return;
  auto targets = randomMembers(static_cast<size_t>(options_.gossip_nodes), "", true, now_ms);
  for (Member* t : targets) {
    if (membership_queue_.empty() && state_queue_.empty()) break;
    sendPacket(t->address(), {}, true);
  }
}

void Membership::pushPullStep(int64_t now_ms) {
  if (leaving_) return;
  auto picks = randomMembers(1, "", false, now_ms);
  if (picks.empty() || picks[0]->state != MemberState::kAlive) return;
  queueStream(StreamKind::kPushPull, picks[0]->address(), buildPushPull(false), 0, false);
}

void Membership::reconnectStep(int64_t now_ms) {
  (void)now_ms;
  if (leaving_) return;
  std::vector<Member*> dead;
  std::set<std::string_view> live_addresses;  // views of member addresses, not changed below
  for (const auto& owned : ids_) {
    Member* m = owned.get();
    if (m->state == MemberState::kDead) dead.push_back(m);
    if (m->state == MemberState::kAlive || m->state == MemberState::kSuspect)
      live_addresses.insert(m->address());
  }
  if (!dead.empty()) {
    Member* m = dead[static_cast<size_t>(rng_.uniform(dead.size()))];
    ++counters_.reconnects;
    queueStream(StreamKind::kPushPull, m->address(), buildPushPull(false), 0, false);
  }
  // Re-join one seed we do not currently see alive, in turn, so a partition heals even when
  // every member on the far side was reaped or never known.
  for (size_t i = 0; i < seeds_.size(); ++i) {
    const std::string& seed = seeds_[(seed_pos_ + i) % seeds_.size()];
    if (seed == self_.address || live_addresses.count(seed) != 0) continue;
    if (auto r = seed_retry_.find(seed); r != seed_retry_.end() && !r->second.reached) continue;  // seedRetryStep's
    seed_pos_ = (seed_pos_ + i + 1) % seeds_.size();
    ++counters_.reconnects;
    queueStream(StreamKind::kPushPull, seed, buildPushPull(true), 0, true);
    break;
  }
}

void Membership::deadProbeStep(int64_t now_ms) {
  // memberlist learns that a dead member is back only from its 30 s push-pull to one random
  // dead member, so a healed partition can stay split for most of a minute. A UDP ping is
  // far cheaper than a TCP push-pull, so one goes out every dead_probe_interval_ms: the
  // member's ack (onAck) or its own ping to us (onPing) starts the push-pull at once. It
  // piggybacks our queued updates, so refutations cross with it. Disarmed while no member
  // is dead; onDead arms it.
  std::vector<Member*> dead;
  for (const auto& m : ids_)
    if (m->state == MemberState::kDead) dead.push_back(m.get());
  if (dead.empty() || leaving_) {
    next_dead_probe_ms_ = kNever;
    return;
  }
  next_dead_probe_ms_ = now_ms + options_.dead_probe_interval_ms;
  Member* m = dead[static_cast<size_t>(rng_.uniform(dead.size()))];
  dead_probe_ = DeadProbe{nextSeq(), m->id()};
  ++counters_.dead_probes;
  sendPacket(m->address(), {PingMsg{dead_probe_.seq, m->id(), self_.address, self_.id}}, true);
}

void Membership::joinFollowUpStep(int64_t now_ms) {
  // When many agents join through one member at once (a rack boots, a cluster restarts),
  // the first push-pull of each hands it only the joins that came before; the rest would
  // reach it one gossip message at a time (seconds at 50 nodes). A second push-pull with
  // the same member one to two gossip intervals later brings every join that raced ours.
  // One per join; it does not arm another (its stream is not a join).
  (void)now_ms;
  join_follow_up_ms_ = kNever;
  if (leaving_ || join_follow_up_to_.empty()) return;
  queueStream(StreamKind::kPushPull, join_follow_up_to_, buildPushPull(false), 0, false);
  join_follow_up_to_.clear();
}

int64_t Membership::seedBackoffMs(int attempts) {
  // ~1 s, doubling per failed attempt, capped at reconnect_interval_ms; jittered by up to
  // +-25 % so that nodes started together do not knock in step.
  const int64_t cap_ms = options_.reconnect_interval_ms;
  int64_t d = std::min<int64_t>(kSeedRetryBaseMs, cap_ms) << std::min(std::max(attempts - 1, 0), 20);
  d = std::min(d, cap_ms);
  int64_t jitter = static_cast<int64_t>(rng_.uniform(static_cast<uint64_t>(d / 2 + 1))) - d / 4;
  return std::max<int64_t>(1, std::min(d + jitter, cap_ms));
}

void Membership::seedRetryStep(int64_t now_ms) {
  if (leaving_ || seed_retry_.empty()) return;
  // Runs every tick: nothing to do (and no scan of the members) once every seed was reached.
  if (std::none_of(seed_retry_.begin(), seed_retry_.end(), [](const auto& e) { return !e.second.reached; })) return;
  std::set<std::string_view> live_addresses;  // views of member addresses, not changed below
  for (const auto& m : ids_) {
    if (m->live()) live_addresses.insert(m->address());
  }
  for (auto& [address, r] : seed_retry_) {
    if (r.reached) continue;
    if (live_addresses.count(address) != 0) {
      r.reached = true;  // known alive through someone else: reconnectStep watches it from now on
      continue;
    }
    // A stream the shell never answered (it always should) is given up after two deadlines.
    if (r.pending && now_ms - r.sent_ms >= 2 * options_.stream_timeout_ms) {
      r.pending = false;
      r.next_retry_ms = now_ms;
    }
    if (r.pending || now_ms < r.next_retry_ms) continue;
    r.pending = true;
    r.sent_ms = now_ms;
    ++r.attempts;
    ++counters_.reconnects;
    queueStream(StreamKind::kPushPull, address, buildPushPull(true), 0, true);
  }
}

void Membership::reapStep(int64_t now_ms) {
  std::vector<std::string> reap;
  for (const auto& m : ids_) {
    const Member& i = *m;
    const std::string& id = i.id();
    if ((i.state == MemberState::kDead && now_ms - i.state_change_ms >= options_.reap_dead_after_ms) ||
        (i.state == MemberState::kLeft && now_ms - i.state_change_ms >= options_.reap_left_after_ms))
      reap.push_back(id);
  }
  for (const auto& id : reap) {
    emit(MemberEventKind::kReap, *find(id));
    removeMember(id);
  }
}

}  // namespace meshos::gossip
