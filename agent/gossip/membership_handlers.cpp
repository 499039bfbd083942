// Membership: the protocol messages (ping, indirect ping, ack, nack, alive, suspect, dead,
// node state, push-pull merges).
#include "agent/gossip/membership.h"

#include <algorithm>

#include "agent/core/node_identity.h"
#include "agent/gossip/membership_limits.h"
#include "agent/gossip/suspicion.h"

namespace meshos::gossip {

using namespace detail;

void Membership::onMessage(int64_t now_ms, const std::string& from, Message& msg) {
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, PingMsg>) onPing(now_ms, from, m);
        if constexpr (std::is_same_v<T, IndirectPingMsg>) onIndirectPing(now_ms, from, m);
        if constexpr (std::is_same_v<T, AckMsg>) onAck(now_ms, m.seq_no);
        if constexpr (std::is_same_v<T, NackMsg>) onNack(now_ms, m.seq_no);
        if constexpr (std::is_same_v<T, AliveMsg>) onAlive(now_ms, m, false);
        if constexpr (std::is_same_v<T, SuspectMsg>) {
          onSuspect(now_ms, m);
          // A suspicion of us, new (onSuspect just refuted it) or at an older incarnation
          // (the sender missed our refutation: each update is sent a bounded number of times
          // and ours may be spent): answer the sender directly too, or it may hold us suspect
          // until its timeout, which without confirmations is the longest, and then dead.
          if (m.id == self_.id && !leaving_) sendPacket(from, {selfAlive()}, false);
        }
        if constexpr (std::is_same_v<T, DeadMsg>) {
          // The sender holds us dead (a healed partition, most likely): besides refuting,
          // push-pull with it now so both sides start refuting what they hold dead, rather
          // than waiting for the reconnect timer. Same bounds as syncWithSender.
          if (m.id == self_.id && m.from != m.id && m.incarnation >= incarnation_) syncWithSender(now_ms, from);
          onDead(now_ms, m);
        }
        if constexpr (std::is_same_v<T, NodeStateMsg>) onNodeState(now_ms, from, m);
      },
      msg);
}

void Membership::onPing(int64_t now_ms, const std::string& from, const PingMsg& m) {
  if (!m.target_id.empty() && m.target_id != self_.id) {
    ++counters_.drop_stale;
    return;
  }
  const std::string& source = m.source_address.empty() ? from : m.source_address;
  Member* src = find(m.source_id);
  if (src != nullptr) src->last_heard_ms = now_ms;
  std::vector<Message> reply{AckMsg{m.seq_no}};
  // The buddy system the other way round: a member we suspect that pings us hears the
  // suspicion in our ack and refutes straight to us. (After a heal we may hold a suspicion
  // its refutation's broadcast, spent long ago on the other side, never brought us.)
  if (src != nullptr && src->state == MemberState::kSuspect)
    reply.push_back(SuspectMsg{src->incarnation, src->id(), self_.id});
  sendPacket(source, std::move(reply), true);
  if (!m.source_id.empty() && m.source_id != self_.id && (src == nullptr || src->state == MemberState::kDead))
    syncWithSender(now_ms, source);
}

void Membership::syncWithSender(int64_t now_ms, const std::string& address) {
  // A member that pings us knows us, but we do not know it: the broadcast of its alive
  // missed us (each update is sent a bounded number of times, so a few nodes can miss
  // one). Waiting for the periodic push-pull can take minutes; a push-pull with the
  // sender now repairs it. Also used when a member tells us we are dead (onMessage), and
  // when a member we hold dead pings us or acks our dead probe (a path is back).
  // Bounded: one per probe interval overall, and one per address per
  // kSyncCooldownProbes probe intervals (kMaxSyncCooldowns addresses remembered).
  if (leaving_ || address.empty() || address == self_.address) return;
  if (now_ms < next_sender_sync_ms_) return;
  auto it = sync_cooldown_.find(address);
  if (it != sync_cooldown_.end() && now_ms < it->second) return;
  if (sync_cooldown_.size() >= kMaxSyncCooldowns) {
    for (auto c = sync_cooldown_.begin(); c != sync_cooldown_.end();)
      c = c->second <= now_ms ? sync_cooldown_.erase(c) : std::next(c);
    if (sync_cooldown_.size() >= kMaxSyncCooldowns) return;
  }
  sync_cooldown_[address] = now_ms + kSyncCooldownProbes * options_.probe_interval_ms;
  next_sender_sync_ms_ = now_ms + options_.probe_interval_ms;
  ++counters_.sender_syncs;
  queueStream(StreamKind::kPushPull, address, buildPushPull(false), 0, false);
}

void Membership::onIndirectPing(int64_t now_ms, const std::string& from, const IndirectPingMsg& m) {
  if (forwards_.size() >= kMaxForwards) return;
  uint32_t seq = nextSeq();
  std::string source = m.source_address.empty() ? from : m.source_address;
  forwards_.emplace(seq, Forward{m.seq_no, source, m.want_nack, now_ms + options_.probe_timeout_ms});
  sendPacket(m.target_address, {PingMsg{seq, m.target_id, self_.address, self_.id}}, true);
}

void Membership::onAck(int64_t now_ms, uint32_t seq) {
  ++counters_.acks_in;
  auto fw = forwards_.find(seq);
  if (fw != forwards_.end()) {
    sendPacket(fw->second.source_address, {AckMsg{fw->second.orig_seq}}, false);
    forwards_.erase(fw);
    return;
  }
  if (seq == dead_probe_.seq && !dead_probe_.id.empty()) {
    Member* m = find(dead_probe_.id);
    dead_probe_ = DeadProbe{};
    if (m != nullptr && m->state == MemberState::kDead) {
      m->last_heard_ms = now_ms;
      ++counters_.dead_probe_acks;
      syncWithSender(now_ms, m->address());
    }
    return;
  }
  if (!probe_.active || probe_.acked || seq != probe_.seq) return;
  probe_.acked = true;
  if (Member* t = find(probe_.target)) {
    t->last_heard_ms = now_ms;
    if (!probe_.indirect_sent) {
      t->rtt_us = std::max<int64_t>(0, now_us_ - probe_.start_us);
      t->rtt_ms = t->rtt_us / 1000;  // not a difference of whole milliseconds: 0.7 ms is 0, not 0 or 1
      ++t->rtt_samples;
    }
  }
  applyAwareness(-1);
  probe_.active = false;
}

void Membership::onNack(int64_t now_ms, uint32_t seq) {
  (void)now_ms;
  ++counters_.nacks_in;
  if (probe_.active && seq == probe_.seq) ++probe_.nacks;
}

void Membership::onAlive(int64_t now_ms, const AliveMsg& m, bool from_push_pull) {
  (void)from_push_pull;
  if (m.id.empty() || m.name.empty() || m.address.empty()) {
    ++counters_.members_rejected;
    return;
  }
  if (!m.public_key.empty()) {
    PublicKey pk{};
    if (m.public_key.size() != pk.size()) {
      ++counters_.members_rejected;
      return;
    }
    std::copy(m.public_key.begin(), m.public_key.end(), pk.begin());
    if (nodeIdFromPublicKey(pk) != m.id) {
      ++counters_.members_rejected;
      return;
    }
  }
  if (m.id == self_.id) {
    if (leaving_) return;
    if (m.incarnation > incarnation_ || (m.incarnation == incarnation_ && m.address != self_.address)) {
      refute(now_ms, m.incarnation);
    }
    return;
  }
  Member* existing = find(m.id);
  if (existing == nullptr) {
    // Name conflicts: one name, two ids, both live -> reported, not merged.
    if (m.name == self_.name) {
      ++counters_.name_conflicts;
      MemberInfo info{m.id, m.name, m.address, m.public_key, MemberState::kAlive, m.incarnation, now_ms};
      out_.events.push_back(MemberEvent{MemberEventKind::kNameConflict, info, self_.id});
      return;
    }
    auto owner = id_by_name_.find(std::string_view(m.name));
    if (owner != id_by_name_.end()) {
      Member* other = *owner;
      if (other != nullptr &&
          (other->state == MemberState::kAlive || other->state == MemberState::kSuspect)) {
        ++counters_.name_conflicts;
        MemberInfo info{m.id, m.name, m.address, m.public_key, MemberState::kAlive, m.incarnation, now_ms};
        out_.events.push_back(MemberEvent{MemberEventKind::kNameConflict, info, other->id()});
        return;
      }
      if (other != nullptr) removeMember(other->id());  // a dead holder gives the name up (and its index entry)
    }
    if (members_.size() >= options_.max_members) {
      ++counters_.members_rejected;
      return;
    }
    auto mem = std::make_unique<Member>();
    mem->ident = identities_.intern(m.id, m.name, m.address, m.public_key);
    mem->incarnation = m.incarnation;
    mem->state_change_ms = now_ms;
    Member* raw = mem.get();
    raw->index = static_cast<uint32_t>(ids_.size());
    ids_.push_back(std::move(mem));
    members_.insert(raw);
    id_by_name_.insert(raw);
    // Insert at a random place in the probe order so new members are probed soon but fairly.
    size_t pos = probe_order_.empty() ? 0 : static_cast<size_t>(rng_.uniform(probe_order_.size() + 1));
    probe_order_.insert(probe_order_.begin() + static_cast<std::ptrdiff_t>(pos), raw);
    if (pos < probe_pos_) ++probe_pos_;
    auto st = states_.find(m.id);
    if (st != states_.end()) raw->state_version = st->second.version;
    emit(MemberEventKind::kJoin, *raw);
    broadcastMembership(m.id, m);
    return;
  }
  if (m.incarnation <= existing->incarnation) return;
  MemberState was = existing->state;
  bool moved = existing->address() != m.address || existing->name() != m.name;
  if (existing->name() != m.name) {
    auto owner = id_by_name_.find(std::string_view(m.name));
    if (owner != id_by_name_.end() && *owner != existing) {
      Member* other = *owner;
      if (other != nullptr &&
          (other->state == MemberState::kAlive || other->state == MemberState::kSuspect)) {
        ++counters_.name_conflicts;
        out_.events.push_back(MemberEvent{MemberEventKind::kNameConflict, existing->info(), other->id()});
        return;
      }
    }
    // The name index hashes the member's name: out under the old one, in under the new
    // one (taking it over from a dead holder, whose entry goes).
    if (auto mine = id_by_name_.find(std::string_view(existing->name())); mine != id_by_name_.end() && *mine == existing)
      id_by_name_.erase(mine);
    if (auto theirs = id_by_name_.find(std::string_view(m.name)); theirs != id_by_name_.end()) id_by_name_.erase(theirs);
    existing->ident = identities_.intern(m.id, m.name, m.address, m.public_key);
    id_by_name_.insert(existing);
  } else if (!existing->ident->same(m.id, m.name, m.address, m.public_key)) {
    existing->ident = identities_.intern(m.id, m.name, m.address, m.public_key);  // same id and name: no re-index
  }
  existing->incarnation = m.incarnation;
  existing->state = MemberState::kAlive;
  existing->suspicion.reset();
  if (was != MemberState::kAlive) existing->state_change_ms = now_ms;
  if (was == MemberState::kSuspect) {
    ++counters_.false_suspicions_refuted;
    emit(MemberEventKind::kAlive, *existing);
  } else if (was == MemberState::kDead || was == MemberState::kLeft) {
    emit(MemberEventKind::kJoin, *existing);
  } else if (moved) {
    emit(MemberEventKind::kUpdate, *existing);
  }
  broadcastMembership(m.id, m);
}

void Membership::onSuspect(int64_t now_ms, const SuspectMsg& m) {
  if (m.id == self_.id) {
    if (leaving_) return;
    if (m.incarnation >= incarnation_) refute(now_ms, m.incarnation);
    return;
  }
  Member* mem = find(m.id);
  if (mem == nullptr || m.incarnation < mem->incarnation) return;
  if (mem->state == MemberState::kSuspect && mem->suspicion != nullptr) {
    // Our own failed probe counts as an independent confirmation too (and is spread).
    Suspicion& sp = *mem->suspicion;
    if (m.from.empty() || sp.confirmations.count(m.from) != 0) return;
    if (sp.confirmations.size() >= 32) return;
    sp.confirmations.insert(m.from);
    int c = static_cast<int>(sp.confirmations.size()) - 1;  // the first accuser does not count
    sp.deadline_ms = sp.start_ms + suspicionTimeoutMs(c, sp.expected, sp.min_ms, sp.max_ms);
    suspicion_deadlines_.emplace(sp.deadline_ms, m.id);
    broadcastMembership(m.id, m);
    return;
  }
  if (mem->state != MemberState::kAlive) return;
  const size_t n = estimatedNodes();
  mem->state = MemberState::kSuspect;
  mem->incarnation = m.incarnation;
  mem->state_change_ms = now_ms;
  mem->suspicion = std::make_unique<Suspicion>();
  Suspicion& sp = *mem->suspicion;
  sp.start_ms = now_ms;
  sp.expected = suspicionExpectedConfirmations(options_.suspicion_mult, n);
  sp.min_ms = suspicionMinTimeoutMs(options_.suspicion_mult, n, options_.probe_interval_ms);
  sp.max_ms = sp.min_ms * options_.suspicion_max_timeout_mult;
  sp.confirmations.insert(m.from);
  sp.deadline_ms = now_ms + suspicionTimeoutMs(0, sp.expected, sp.min_ms, sp.max_ms);
  suspicion_deadlines_.emplace(sp.deadline_ms, m.id);
  ++counters_.suspicions;
  // Someone else's suspicion: probe the member next, out of the round-robin order. If it is
  // down, our failed probe is an independent confirmation (the suspicion timeout falls
  // toward its minimum seconds sooner than when confirmations wait for each prober's turn);
  // if it is up, the ping carries the suspicion to it (buddy system) and it refutes.
  if (m.from != self_.id && urgent_probes_.size() < kMaxUrgentProbes &&
      std::find(urgent_probes_.begin(), urgent_probes_.end(), m.id) == urgent_probes_.end())
    urgent_probes_.push_back(m.id);
  emit(MemberEventKind::kSuspect, *mem);
  broadcastMembership(m.id, m);
}

void Membership::onDead(int64_t now_ms, const DeadMsg& m) {
  if (m.id == self_.id) {
    if (leaving_) return;
    if (m.incarnation >= incarnation_) refute(now_ms, m.incarnation);
    return;
  }
  Member* mem = find(m.id);
  if (mem == nullptr || m.incarnation < mem->incarnation) return;
  bool left = m.from == m.id;
  // A dead member can still be declared left (a force-leave); nothing else moves it.
  if (mem->state == MemberState::kLeft || (mem->state == MemberState::kDead && !left)) return;
  mem->state = left ? MemberState::kLeft : MemberState::kDead;
  mem->incarnation = m.incarnation;
  mem->state_change_ms = now_ms;
  mem->suspicion.reset();
  if (!left) {
    ++counters_.dead_declared;
    next_dead_probe_ms_ = std::min(next_dead_probe_ms_, now_ms + options_.dead_probe_interval_ms);
  }
  emit(left ? MemberEventKind::kLeft : MemberEventKind::kDead, *mem);
  broadcastMembership(m.id, m);
}

void Membership::onNodeState(int64_t now_ms, const std::string& from, const NodeStateMsg& m) {
  if (m.origin.empty() || m.origin == self_.id) return;
  if (m.has_body && m.body.size() > options_.max_node_state_bytes) {
    ++counters_.drop_oversized;
    return;
  }
  Member* origin = find(m.origin);
  if (origin == nullptr) return;  // states follow membership; push-pull brings both together
  StoredState& s = states_[m.origin];
  const bool newer = m.version > s.version;
  if (newer) {
    s.version = m.version;
    origin->state_version = m.version;
    s.sources.clear();  // they announced an older version
  }
  if (m.has_body) {
    if (s.has_body && m.version <= s.body_version) return;  // nothing new
    // A body newer than the one held is taken even when a still newer version is known:
    // it is reported under its own version, and the fetch goes on for the newest.
    s.has_body = true;
    s.body_version = m.version;
    s.body = m.body;
    ++counters_.state_updates;
    out_.states.push_back(NodeStateUpdate{m.origin, origin->name(), m.version, m.body});
    if (s.body_version < s.version) return;  // an old body: no use passing it on
    s.fetch_attempts = 0;
    s.sources.clear();
    fetch_wanted_.erase(m.origin);
    // Pass it on: with the body when it fits the application budget, else as an
    // announcement, which tells the receivers that we hold it and they may fetch it from us.
    NodeStateMsg fwd{m.origin, m.version, false, {}};
    if (encodedSizeHint(m) <= options_.state_budget_bytes) fwd = m;
    state_queue_.queue(stateSubject(m.origin), std::move(fwd));
    return;
  }
  // An announcement: `from` holds the body of m.version.
  if (m.version < s.version) return;
  if (s.has_body && s.body_version >= m.version) return;
  if (!from.empty() && from != self_.address) {
    auto it = std::find(s.sources.begin(), s.sources.end(), from);
    if (it != s.sources.end()) s.sources.erase(it);
    s.sources.insert(s.sources.begin(), from);
    if (s.sources.size() > kMaxStateSources) s.sources.pop_back();
  }
  fetch_wanted_.insert(m.origin);
  if (now_ms >= s.next_fetch_ms && !leaving_) fetchState(now_ms, m.origin, s);
}

void Membership::fetchState(int64_t now_ms, const std::string& origin_id, StoredState& s) {
  // Candidates: the members that announced the version (newest first), then the origin.
  std::vector<std::string> candidates = s.sources;
  if (Member* origin = find(origin_id); origin != nullptr &&
      (origin->state == MemberState::kAlive || origin->state == MemberState::kSuspect)) {
    if (std::find(candidates.begin(), candidates.end(), origin->address()) == candidates.end())
      candidates.push_back(origin->address());
  }
  const int64_t cap_ms = kStateFetchMaxBackoffProbes * options_.probe_interval_ms;
  if (candidates.empty()) {
    s.next_fetch_ms = now_ms + cap_ms;  // nobody to ask; a new announcement or push-pull helps
    return;
  }
  const std::string to = candidates[static_cast<size_t>(s.fetch_attempts) % candidates.size()];
  ++s.fetch_attempts;
  // Backoff: half a probe interval, doubling per attempt up to the cap, plus up to 25 % jitter.
  int64_t delay_ms = std::max<int64_t>(options_.probe_interval_ms / 2, 1)
                     << std::min(s.fetch_attempts - 1, 6);
  delay_ms = std::min(delay_ms, cap_ms);
  delay_ms += static_cast<int64_t>(rng_.uniform(static_cast<uint64_t>(delay_ms / 4 + 1)));
  s.next_fetch_ms = now_ms + delay_ms;
  ++counters_.state_fetches;
  queueStream(StreamKind::kPushPull, to, buildPushPull(false), 0, false);
}

void Membership::fetchStep(int64_t now_ms) {
  if (leaving_ || fetch_wanted_.empty()) return;
  size_t started = 0;
  for (auto it = fetch_wanted_.begin(); it != fetch_wanted_.end() && started < kMaxStateFetchesPerStep;) {
    auto st = states_.find(*it);
    if (st == states_.end() || find(*it) == nullptr || (st->second.has_body && st->second.body_version >= st->second.version)) {
      it = fetch_wanted_.erase(it);
      continue;
    }
    if (now_ms >= st->second.next_fetch_ms) {
      fetchState(now_ms, *it, st->second);
      ++started;
    }
    ++it;
  }
}

Status Membership::setLocalState(int64_t now_ms, Bytes body) {
  MESHOS_DCHECK_THREAD(thread_);
  (void)now_ms;
  if (body.size() > options_.max_node_state_bytes)
    return Status::invalid("node state of " + std::to_string(body.size()) + " bytes exceeds max_node_state_bytes " +
                           std::to_string(options_.max_node_state_bytes));
  uint64_t base = std::max<uint64_t>(incarnation_, self_.incarnation + 1) << 32;
  local_state_version_ = std::max(local_state_version_ + 1, base);
  StoredState& s = states_[self_.id];
  s.version = local_state_version_;
  s.has_body = true;
  s.body_version = local_state_version_;
  s.body = body;
  NodeStateMsg msg{self_.id, local_state_version_, true, std::move(body)};
  if (encodedSizeHint(msg) > options_.state_budget_bytes) {
    msg.has_body = false;
    msg.body.clear();
  }
  state_queue_.queue(stateSubject(self_.id), std::move(msg));
  return Status::ok();
}

PushPullMsg Membership::buildPushPull(bool join) const {
  PushPullMsg pp;
  pp.join = join;
  pp.members.reserve(members_.size() + 1);
  pp.members.push_back(MemberRecord{self_.id, self_.name, self_.address, self_.public_key, incarnation_,
                                    leaving_ ? MemberState::kLeft : MemberState::kAlive});
  for (const auto& mem : ids_) {
    const MemberIdentity& i = *mem->ident;
    pp.members.push_back(MemberRecord{i.id, i.name, i.address, i.public_key, mem->incarnation, mem->state});
  }
  for (const auto& [origin, s] : states_) {
    // Always the body's own version: a newer version only announced is not vouched for.
    if (s.has_body) pp.states.push_back(NodeStateMsg{origin, s.body_version, true, s.body});
  }
  return pp;
}

void Membership::mergeMemberRecord(int64_t now_ms, const std::string& from, const MemberRecord& r) {
  AliveMsg alive{r.incarnation, r.id, r.name, r.address, r.public_key};
  switch (r.state) {
    case MemberState::kAlive: onAlive(now_ms, alive, true); break;
    case MemberState::kLeft:
      onAlive(now_ms, alive, true);
      onDead(now_ms, DeadMsg{r.incarnation, r.id, r.id});
      break;
    case MemberState::kSuspect:
    case MemberState::kDead:
      // As memberlist does: a remote dead is only a suspicion here, so the node may refute.
      onAlive(now_ms, alive, true);
      onSuspect(now_ms, SuspectMsg{r.incarnation, r.id, from});
      break;
  }
}

void Membership::mergePushPull(int64_t now_ms, const std::string& from, const PushPullMsg& pp) {
  for (const auto& r : pp.members) mergeMemberRecord(now_ms, from, r);
  for (const auto& s : pp.states) onNodeState(now_ms, from, s);
}

void Membership::adoptConvergedMembers(int64_t now_ms, const std::vector<MemberRecord>& records) {
  if (!started_) return;
  for (const auto& r : records) {
    if (r.id == self_.id) continue;
    mergeMemberRecord(now_ms, "", r);
    membership_queue_.forget(r.id);
  }
}

}  // namespace meshos::gossip
