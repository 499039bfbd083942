#include "agent/gossip/membership.h"

#include <algorithm>

#include "agent/core/node_identity.h"
#include "agent/gossip/membership_limits.h"
#include "agent/gossip/suspicion.h"

namespace meshos::gossip {

using namespace detail;

const char* memberEventKindName(MemberEventKind k) {
  switch (k) {
    case MemberEventKind::kJoin: return "join";
    case MemberEventKind::kUpdate: return "update";
    case MemberEventKind::kSuspect: return "suspect";
    case MemberEventKind::kAlive: return "alive";
    case MemberEventKind::kDead: return "dead";
    case MemberEventKind::kLeft: return "left";
    case MemberEventKind::kReap: return "reap";
    case MemberEventKind::kNameConflict: return "name_conflict";
  }
  return "unknown";
}

Status Options::validate() const {
  auto positive = [](int64_t v, const char* name) -> Status {
    if (v <= 0) return Status::invalid(std::string(name) + " must be > 0");
    return Status::ok();
  };
  MESHOS_RETURN_IF_ERROR(positive(probe_interval_ms, "probe_interval_ms"));
  MESHOS_RETURN_IF_ERROR(positive(probe_timeout_ms, "probe_timeout_ms"));
  if (probe_timeout_ms >= probe_interval_ms) return Status::invalid("probe_timeout_ms must be < probe_interval_ms");
  MESHOS_RETURN_IF_ERROR(positive(gossip_interval_ms, "gossip_interval_ms"));
  MESHOS_RETURN_IF_ERROR(positive(push_pull_interval_ms, "push_pull_interval_ms"));
  MESHOS_RETURN_IF_ERROR(positive(reconnect_interval_ms, "reconnect_interval_ms"));
  MESHOS_RETURN_IF_ERROR(positive(dead_probe_interval_ms, "dead_probe_interval_ms"));
  MESHOS_RETURN_IF_ERROR(positive(stream_timeout_ms, "stream_timeout_ms"));
  if (indirect_checks < 0 || indirect_checks > 16) return Status::invalid("indirect_checks must be in [0, 16]");
  if (gossip_nodes < 1 || gossip_nodes > 32) return Status::invalid("gossip_nodes must be in [1, 32]");
  if (suspicion_mult < 1 || suspicion_mult > 32) return Status::invalid("suspicion_mult must be in [1, 32]");
  if (suspicion_max_timeout_mult < 1 || suspicion_max_timeout_mult > 32)
    return Status::invalid("suspicion_max_timeout_mult must be in [1, 32]");
  if (retransmit_mult < 1 || retransmit_mult > 32) return Status::invalid("retransmit_mult must be in [1, 32]");
  if (awareness_max_multiplier < 1 || awareness_max_multiplier > 16)
    return Status::invalid("awareness_max_multiplier must be in [1, 16]");
  if (max_packet_bytes < 512 || max_packet_bytes > 65'000) return Status::invalid("max_packet_bytes must be in [512, 65000]");
  if (membership_budget_bytes + state_budget_bytes + 200 > max_packet_bytes)
    return Status::invalid("membership_budget_bytes + state_budget_bytes must leave 200 bytes of max_packet_bytes");
  if (max_stream_bytes < 64 * 1024) return Status::invalid("max_stream_bytes must be >= 65536");
  if (max_node_state_bytes > max_stream_bytes / 2) return Status::invalid("max_node_state_bytes must be <= max_stream_bytes / 2");
  if (max_app_body_bytes < 1024 || max_app_body_bytes > max_stream_bytes - 4096)
    return Status::invalid("max_app_body_bytes must be in [1024, max_stream_bytes - 4096]");
  if (max_app_in_flight < 1 || max_app_in_flight > 4096) return Status::invalid("max_app_in_flight must be in [1, 4096]");
  MESHOS_RETURN_IF_ERROR(positive(app_timeout_ms, "app_timeout_ms"));
  if (cluster_id.empty() || cluster_id.size() > 255) return Status::invalid("cluster id must be 1..255 bytes");
  return Status::ok();
}

Membership::Membership(Options options, LocalIdentity self, Keyring keyring, Rng rng, MemberIdentityPool& identities)
    : identities_(identities),
      options_(std::move(options)),
      self_(std::move(self)),
      keyring_(std::move(keyring)),
      rng_(rng),
      membership_queue_(options_.max_broadcasts),
      state_queue_(options_.max_broadcasts) {
  limits_.traversal_limit_words = options_.max_stream_bytes / 8 * 2;
}

// ---------------------------------------------------------------- lifecycle

void Membership::start(int64_t now_ms) {
  MESHOS_DCHECK_THREAD(thread_);
  if (started_) return;
  started_ = true;
  incarnation_ = self_.incarnation + 1;
  broadcastMembership(self_.id, selfAlive());
  next_probe_ms_ = now_ms + static_cast<int64_t>(rng_.uniform(static_cast<uint64_t>(options_.probe_interval_ms)));
  next_gossip_ms_ = now_ms + options_.gossip_interval_ms;
  // At a random phase: agents started together do not push-pull in step.
  next_push_pull_ms_ = now_ms + options_.push_pull_interval_ms / 2 +
                       static_cast<int64_t>(rng_.uniform(static_cast<uint64_t>(options_.push_pull_interval_ms / 2) + 1));
  next_reconnect_ms_ = now_ms + options_.reconnect_interval_ms;
  next_reap_ms_ = now_ms + kReapCheckMs;
  next_dead_probe_ms_ = kNever;  // armed when a member is declared dead
  join_follow_up_ms_ = kNever;   // armed when a join's push-pull is answered
}

void Membership::join(int64_t now_ms, const std::vector<std::string>& addresses, bool remember_as_seeds) {
  MESHOS_DCHECK_THREAD(thread_);
  (void)now_ms;
  for (const auto& a : addresses) {
    if (a == self_.address) continue;
    if (remember_as_seeds && std::find(seeds_.begin(), seeds_.end(), a) == seeds_.end()) seeds_.push_back(a);
    if (remember_as_seeds) {
      SeedRetry& r = seed_retry_[a];
      if (!r.reached) {
        r.pending = true;
        r.sent_ms = now_ms;
        ++r.attempts;
      }
    }
    queueStream(StreamKind::kPushPull, a, buildPushPull(true), 0, true);
  }
}

void Membership::leave(int64_t now_ms) {
  MESHOS_DCHECK_THREAD(thread_);
  if (leaving_) return;
  leaving_ = true;
  const DeadMsg left{incarnation_, self_.id, self_.id};
  broadcastMembership(self_.id, left);
  tellAtOnce(now_ms, left);
}

Status Membership::forceLeave(int64_t now_ms, const std::string& name) {
  MESHOS_DCHECK_THREAD(thread_);
  if (name == self_.name) return Status::invalid("force-leave " + name + ": that is this node; use leave");
  Member* mem = nullptr;
  for (const auto& m : ids_) {
    if (m->name() == name) mem = m.get();
  }
  if (mem == nullptr) return Status::notFound("force-leave: no member named \"" + name + "\"");
  if (mem->state == MemberState::kLeft) return Status::ok();
  if (mem->state != MemberState::kDead) {
    return Status::invalid("force-leave " + name + ": the member is " + std::string(memberStateName(mem->state)) +
                           ", not dead; only a dead member can be forced out (a running one leaves itself)");
  }
  // A leave in the member's own name, at its incarnation: what it would have said itself.
  const DeadMsg left{mem->incarnation, mem->id(), mem->id()};
  onDead(now_ms, left);
  tellAtOnce(now_ms, left);
  return Status::ok();
}

void Membership::tellAtOnce(int64_t now_ms, const DeadMsg& m) {
  // Told at once to a few times a gossip round's members, a leave or a death reaches
  // everyone a gossip round or two sooner than through the queue alone (which still sends
  // it as usual).
  for (Member* to : randomMembers(kAtOnceFanoutRounds * static_cast<size_t>(options_.gossip_nodes), m.id, false, now_ms))
    sendPacket(to->address(), {m}, false);
}

bool Membership::leaveBroadcastDone() const {
  if (!leaving_) return false;
  if (numAlive() <= 1) return true;
  return !membership_queue_.contains(self_.id);
}

size_t Membership::numAlive() const {
  size_t n = 1;
  for (const auto& m : ids_)
    if (m->live()) ++n;
  return n;
}

Outputs Membership::takeOutputs() {
  MESHOS_DCHECK_THREAD(thread_);
  Outputs o = std::move(out_);
  out_ = Outputs{};
  return o;
}

// ---------------------------------------------------------------- sending

AliveMsg Membership::selfAlive() const {
  return AliveMsg{incarnation_, self_.id, self_.name, self_.address, self_.public_key};
}

void Membership::broadcastMembership(const std::string& subject, Message msg) {
  membership_queue_.queue(subject, std::move(msg));
  counters_.broadcasts_dropped = membership_queue_.dropped() + state_queue_.dropped();
}

void Membership::sendPacket(const std::string& to, std::vector<Message> msgs, bool piggyback) {
  const size_t overhead = keyring_.overheadBytes(options_.cluster_id) + 16;
  size_t used = overhead;
  for (const auto& m : msgs) used += encodedSizeHint(m);
  size_t fixed = msgs.size();
  if (piggyback && used < options_.max_packet_bytes) {
    int limit = retransmitLimit(options_.retransmit_mult, estimatedNodes());
    // Each kind is sure of its budget; room the other kind cannot fill goes to the one that
    // can (a join burst of alive messages, a burst of node states), so a packet is not sent
    // half empty while updates wait.
    size_t room = options_.max_packet_bytes - used;
    const size_t state_claim = std::min({room, options_.state_budget_bytes, state_queue_.pendingBytes()});
    const size_t membership_room = std::max(std::min(room, options_.membership_budget_bytes), room - state_claim);
    for (auto& m : membership_queue_.take(membership_room, limit)) {
      used += encodedSizeHint(m);
      msgs.push_back(std::move(m));
    }
    if (used < options_.max_packet_bytes) {
      for (auto& m : state_queue_.take(options_.max_packet_bytes - used, limit)) msgs.push_back(std::move(m));
    }
  }
  if (msgs.empty()) return;
  Bytes sealed = keyring_.seal(options_.cluster_id, encodePacket(msgs));
  // The hints are upper bounds, but never trust them: shed piggybacked updates until it fits.
  while (sealed.size() > options_.max_packet_bytes && msgs.size() > fixed) {
    msgs.pop_back();
    sealed = keyring_.seal(options_.cluster_id, encodePacket(msgs));
  }
  if (sealed.size() > options_.max_packet_bytes) {
    ++counters_.drop_oversized;
    return;
  }
  ++counters_.packets_out;
  counters_.bytes_out += sealed.size();
  out_.packets.push_back(OutPacket{to, std::move(sealed)});
}

void Membership::queueStream(StreamKind kind, const std::string& to, const StreamFrame& frame, uint32_t probe_seq,
                             bool join) {
  if (streams_.size() >= kMaxPendingStreams) {
    ++counters_.push_pull_failures;
    return;
  }
  Bytes sealed = keyring_.seal(options_.cluster_id, encodeStreamFrame(frame));
  if (sealed.size() > options_.max_stream_bytes) {
    ++counters_.drop_oversized;
    return;
  }
  uint64_t id = next_stream_id_++;
  streams_.emplace(id, PendingStream{kind, to, probe_seq, join});
  ++counters_.streams_out;
  counters_.stream_bytes_out += sealed.size();
  if (kind == StreamKind::kPushPull) ++counters_.push_pulls;
  out_.streams.push_back(StreamRequest{id, kind, to, std::move(sealed)});
}

Result<Bytes> Membership::openInput(ByteView sealed, size_t limit) {
  if (sealed.size() > limit) {
    ++counters_.drop_oversized;
    return Status::invalid("oversized input: " + std::to_string(sealed.size()) + " bytes");
  }
  Bytes plain;
  OpenError e = keyring_.open(options_.cluster_id, sealed, plain);
  switch (e) {
    case OpenError::kNone: return plain;
    case OpenError::kTruncated: ++counters_.drop_truncated; break;
    case OpenError::kBadVersion: ++counters_.drop_bad_version; break;
    case OpenError::kWrongCluster:
    case OpenError::kDecryptFailed: ++counters_.drop_wrong_cluster_or_key; break;
    case OpenError::kPlainRefused: ++counters_.drop_plaintext; break;
    case OpenError::kEncryptedRefused: ++counters_.drop_encrypted; break;
  }
  return Status::denied(std::string("packet refused: ") + openErrorName(e));
}

// ---------------------------------------------------------------- inputs

void Membership::handlePacketUs(int64_t now_us, const std::string& from, ByteView packet) {
  MESHOS_DCHECK_THREAD(thread_);
  if (!started_) return;
  now_us_ = now_us;
  const int64_t now_ms = now_us / 1000;
  ++counters_.packets_in;
  counters_.bytes_in += packet.size();
  // Allow a little slack over our own send limit (a peer may be configured larger), but bound it.
  auto plain = openInput(packet, std::max<size_t>(options_.max_packet_bytes, 1400) * 2);
  if (!plain) return;
  DecodeLimits limits = limits_;
  limits.traversal_limit_words = 64 * 1024;
  auto msgs = decodePacket(*plain, limits);
  if (!msgs) {
    ++counters_.drop_decode;
    return;
  }
  for (auto& m : *msgs) onMessage(now_ms, from, m);
}

Result<Bytes> Membership::handleStream(int64_t now_ms, const std::string& from, ByteView frame) {
  MESHOS_DCHECK_THREAD(thread_);
  if (!started_) return Status::unavailable("gossip not started");
  ++counters_.streams_in;
  counters_.stream_bytes_in += frame.size();
  auto plain = openInput(frame, options_.max_stream_bytes);
  if (!plain) return plain.status();
  auto decoded = decodeStreamFrame(*plain, limits_);
  if (!decoded) {
    ++counters_.drop_decode;
    return decoded.status();
  }
  if (auto* pp = std::get_if<PushPullMsg>(&*decoded)) {
    mergePushPull(now_ms, from, *pp);
    Bytes reply = keyring_.seal(options_.cluster_id, encodeStreamFrame(buildPushPull(false)));
    counters_.stream_bytes_out += reply.size();
    return reply;
  }
  if (auto* ping = std::get_if<PingMsg>(&*decoded)) {
    if (!ping->target_id.empty() && ping->target_id != self_.id) {
      ++counters_.drop_stale;
      return Status::invalid("tcp ping for another node");
    }
    Bytes ack = keyring_.seal(options_.cluster_id, encodeStreamFrame(AckMsg{ping->seq_no}));
    if (const Member* src = find(ping->source_id); !ping->source_id.empty() && ping->source_id != self_.id &&
                                                     (src == nullptr || src->state == MemberState::kDead))
      syncWithSender(now_ms, ping->source_address.empty() ? from : ping->source_address);
    return ack;
  }
  if (auto* app = std::get_if<AppRequestMsg>(&*decoded)) {
    Bytes reply = serveApp(from, *app);
    counters_.stream_bytes_out += reply.size();
    return reply;
  }
  ++counters_.drop_decode;
  return Status::invalid("unexpected stream frame");
}

void Membership::handleStreamReply(int64_t now_ms, uint64_t request_id, Result<Bytes> reply) {
  MESHOS_DCHECK_THREAD(thread_);
  now_us_ = now_ms * 1000;
  auto it = streams_.find(request_id);
  if (it == streams_.end()) return;
  PendingStream ps = it->second;
  streams_.erase(it);
  if (ps.kind == StreamKind::kApp) {
    if (reply) counters_.stream_bytes_in += reply->size();
    AppReply r{request_id, appReplyOf(reply)};
    if (r.reply) {
      ++counters_.app_replies_ok;
    } else {
      ++counters_.app_failures;
    }
    out_.app_replies.push_back(std::move(r));
    return;
  }
  if (ps.kind == StreamKind::kPushPull && ps.join) {
    if (auto sr = seed_retry_.find(ps.to); sr != seed_retry_.end() && !sr->second.reached) {
      sr->second.pending = false;
      if (reply) {
        sr->second.reached = true;  // decoding problems aside, the seed answered
      } else {
        sr->second.next_retry_ms = now_ms + seedBackoffMs(sr->second.attempts);
      }
    }
  }
  if (!reply) {
    if (ps.kind == StreamKind::kPushPull) ++counters_.push_pull_failures;
    return;
  }
  counters_.stream_bytes_in += reply->size();
  auto plain = openInput(*reply, options_.max_stream_bytes);
  if (!plain) return;
  auto decoded = decodeStreamFrame(*plain, limits_);
  if (!decoded) {
    ++counters_.drop_decode;
    return;
  }
  if (auto* pp = std::get_if<PushPullMsg>(&*decoded)) {
    if (ps.kind != StreamKind::kPushPull) return;
    mergePushPull(now_ms, ps.to, *pp);
    if (ps.join && join_follow_up_ms_ == kNever) {
      join_follow_up_to_ = ps.to;
      const int64_t half = options_.gossip_interval_ms / 2;
      join_follow_up_ms_ = now_ms + half + static_cast<int64_t>(rng_.uniform(static_cast<uint64_t>(half) + 1));
    }
  } else if (auto* ack = std::get_if<AckMsg>(&*decoded)) {
    if (ps.kind == StreamKind::kProbe && ack->seq_no == ps.probe_seq) onAck(now_ms, ack->seq_no);
  }
}

void Membership::refute(int64_t now_ms, uint64_t accused_incarnation) {
  (void)now_ms;
  incarnation_ = std::max(incarnation_, accused_incarnation) + 1;
  ++counters_.refutations;
  applyAwareness(1);
  broadcastMembership(self_.id, selfAlive());
}

void Membership::applyAwareness(int delta) {
  awareness_ = std::clamp(awareness_ + delta, 0, options_.awareness_max_multiplier - 1);
}

void Membership::emit(MemberEventKind kind, const Member& m, std::string detail) {
  out_.events.push_back(MemberEvent{kind, m.info(), std::move(detail)});
}

MemberInfo Membership::Member::info() const {
  MemberInfo i{ident->id, ident->name, ident->address, ident->public_key, state, incarnation, state_change_ms};
  i.last_heard_ms = last_heard_ms;
  i.rtt_ms = rtt_ms;
  i.state_version = state_version;
  i.rtt_us = rtt_us;
  i.rtt_samples = rtt_samples;
  return i;
}

Membership::Member* Membership::find(std::string_view id) {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : *it;
}

const Membership::Member* Membership::find(std::string_view id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : *it;
}

std::optional<MemberInfo> Membership::findMember(std::string_view id) const {
  const Member* m = find(id);
  if (m == nullptr) return std::nullopt;
  return m->info();
}

std::optional<MemberState> Membership::memberState(std::string_view id) const {
  const Member* m = find(id);
  if (m == nullptr) return std::nullopt;
  return m->state;
}

std::string_view Membership::memberAddress(std::string_view id) const {
  const Member* m = find(id);
  return m == nullptr ? std::string_view() : std::string_view(m->address());
}

void Membership::removeMember(std::string_view id_ref) {
  const std::string id(id_ref);  // callers may pass the member's own id(), freed below
  auto it = members_.find(std::string_view(id));
  if (it == members_.end()) return;
  Member* mem = *it;
  auto name_it = id_by_name_.find(std::string_view(mem->name()));
  if (name_it != id_by_name_.end() && *name_it == mem) id_by_name_.erase(name_it);
  members_.erase(it);
  if (auto p = std::find(probe_order_.begin(), probe_order_.end(), mem); p != probe_order_.end()) {
    if (static_cast<size_t>(p - probe_order_.begin()) < probe_pos_) --probe_pos_;
    probe_order_.erase(p);
  }
  const size_t idx = mem->index;
  std::unique_ptr<Member> owned = std::move(ids_[idx]);
  if (idx + 1 != ids_.size()) {
    ids_[idx] = std::move(ids_.back());
    ids_[idx]->index = static_cast<uint32_t>(idx);
  }
  ids_.pop_back();
  owned.reset();
  states_.erase(id);
  fetch_wanted_.erase(id);
  membership_queue_.forget(id);
  state_queue_.forget(stateSubject(id));
  // probe_order_ entries of removed ids are skipped lazily and dropped at the next reshuffle.
}

std::vector<MemberInfo> Membership::members() const {
  std::vector<MemberInfo> out;
  out.reserve(ids_.size());
  for (const auto& m : ids_) out.push_back(m->info());
  std::sort(out.begin(), out.end(), [](const MemberInfo& a, const MemberInfo& b) { return a.id < b.id; });
  return out;
}

MemberInfo Membership::localMember() const {
  MemberInfo i{self_.id, self_.name, self_.address, self_.public_key,
               leaving_ ? MemberState::kLeft : MemberState::kAlive, incarnation_, 0};
  i.state_version = local_state_version_;
  return i;
}

std::map<std::string, NodeStateUpdate> Membership::nodeStates() const {
  std::map<std::string, NodeStateUpdate> out;
  for (const auto& [origin, s] : states_) {
    if (!s.has_body) continue;
    std::string name = origin == self_.id ? self_.name : "";
    if (const Member* m = find(origin); m != nullptr) name = m->name();
    out.emplace(origin, NodeStateUpdate{origin, name, s.body_version, s.body});
  }
  return out;
}

std::vector<Membership::Member*> Membership::randomMembers(size_t k, const std::string& exclude,
                                                          bool include_recent_dead, int64_t now_ms) {
  std::vector<Member*> out;
  const size_t n = ids_.size();
  for (size_t tries = 0; tries < 3 * n && out.size() < k; ++tries) {
    Member* m = ids_[static_cast<size_t>(rng_.uniform(n))].get();
    if (m->id() == exclude) continue;
    bool ok = m->state == MemberState::kAlive || m->state == MemberState::kSuspect;
    if (!ok && include_recent_dead && m->state == MemberState::kDead &&
        now_ms - m->state_change_ms < options_.gossip_to_dead_ms)
      ok = true;
    if (!ok || std::find(out.begin(), out.end(), m) != out.end()) continue;
    out.push_back(m);
  }
  return out;
}

}  // namespace meshos::gossip
