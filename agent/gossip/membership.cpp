#include "agent/gossip/membership.h"

#include <algorithm>

#include "agent/core/node_identity.h"
#include "agent/gossip/suspicion.h"

namespace meshos::gossip {

namespace {
constexpr size_t kMaxForwards = 1024;
constexpr size_t kMaxPendingStreams = 256;
constexpr int64_t kReapCheckMs = 10'000;
constexpr int64_t kSeedRetryBaseMs = 1'000;       // first retry of a seed never reached
constexpr size_t kMaxStateSources = 4;           // announcers remembered per origin
constexpr size_t kMaxStateFetchesPerStep = 8;    // body fetches started per tick
constexpr int64_t kStateFetchMaxBackoffProbes = 5;  // fetch backoff cap, in probe intervals
constexpr int64_t kSyncCooldownProbes = 5;        // per-address wait between sender syncs, in probe intervals
constexpr size_t kMaxSyncCooldowns = 256;         // addresses remembered for that wait
std::string stateSubject(const std::string& origin) { return "s:" + origin; }
}  // namespace

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
  next_push_pull_ms_ = now_ms + options_.push_pull_interval_ms;
  next_reconnect_ms_ = now_ms + options_.reconnect_interval_ms;
  next_reap_ms_ = now_ms + kReapCheckMs;
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
  (void)now_ms;
  if (leaving_) return;
  leaving_ = true;
  broadcastMembership(self_.id, DeadMsg{incarnation_, self_.id, self_.id});
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
    size_t room = options_.max_packet_bytes - used;
    auto mem = membership_queue_.take(std::min(room, options_.membership_budget_bytes), limit);
    for (auto& m : mem) {
      used += encodedSizeHint(m);
      msgs.push_back(std::move(m));
    }
    if (used < options_.max_packet_bytes) {
      room = options_.max_packet_bytes - used;
      auto st = state_queue_.take(std::min(room, options_.state_budget_bytes), limit);
      for (auto& m : st) msgs.push_back(std::move(m));
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
    if (!ping->source_id.empty() && ping->source_id != self_.id && find(ping->source_id) == nullptr)
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
    if (ps.kind == StreamKind::kPushPull) mergePushPull(now_ms, ps.to, *pp);
  } else if (auto* ack = std::get_if<AckMsg>(&*decoded)) {
    if (ps.kind == StreamKind::kProbe && ack->seq_no == ps.probe_seq) onAck(now_ms, ack->seq_no);
  }
}

// ---------------------------------------------------------------- app channels

namespace {
constexpr size_t kMaxChannelBytes = 64;
AppReplyMsg appError(const Status& s) { return AppReplyMsg{false, std::string(codeName(s.code())), s.message(), {}}; }
}  // namespace

Status Membership::setAppHandler(const std::string& channel, AppHandler handler) {
  if (channel.empty() || channel.size() > kMaxChannelBytes) return Status::invalid("app channel name must be 1..64 bytes");
  if (handler) {
    app_handlers_[channel] = std::move(handler);
  } else {
    app_handlers_.erase(channel);
  }
  return Status::ok();
}

Result<uint64_t> Membership::requestApp(int64_t, const std::string& to, const std::string& channel, Bytes body) {
  if (!started_) return Status::unavailable("gossip not started");
  if (channel.empty() || channel.size() > kMaxChannelBytes) return Status::invalid("app channel name must be 1..64 bytes");
  if (body.size() > options_.max_app_body_bytes) {
    ++counters_.app_oversized;
    return Status::invalid("app request of " + std::to_string(body.size()) + " bytes is over max_app_body_bytes (" +
                           std::to_string(options_.max_app_body_bytes) + ")");
  }
  if (streams_.size() >= kMaxPendingStreams) return Status::overloaded("too many gossip streams pending");
  Bytes sealed = keyring_.seal(options_.cluster_id,
                               encodeStreamFrame(AppRequestMsg{channel, self_.id, self_.address, std::move(body)}));
  uint64_t id = next_stream_id_++;
  streams_.emplace(id, PendingStream{StreamKind::kApp, to, 0, false});
  ++counters_.streams_out;
  ++counters_.app_requests_out;
  counters_.stream_bytes_out += sealed.size();
  out_.streams.push_back(StreamRequest{id, StreamKind::kApp, to, std::move(sealed)});
  return id;
}

Bytes Membership::serveApp(const std::string& from, const AppRequestMsg& req) {
  ++counters_.app_requests_in;
  AppReplyMsg reply;
  auto it = app_handlers_.find(req.channel);
  if (req.body.size() > options_.max_app_body_bytes) {
    ++counters_.app_oversized;
    reply = appError(Status::invalid("app request body over max_app_body_bytes"));
  } else if (it == app_handlers_.end()) {
    ++counters_.app_unknown_channel;
    reply = appError(Status::notFound("unknown app channel '" + req.channel.substr(0, kMaxChannelBytes) + "'"));
  } else {
    // Copied: the handler may replace itself.
    AppHandler handler = it->second;
    Result<Bytes> r = handler(req.source_address.empty() ? from : req.source_address, req.body);
    if (!r) {
      ++counters_.app_handler_errors;
      reply = appError(r.status());
    } else if (r->size() > options_.max_app_body_bytes) {
      ++counters_.app_oversized;
      reply = appError(Status::overloaded("app reply body over max_app_body_bytes"));
    } else {
      reply.ok = true;
      reply.body = std::move(*r);
    }
  }
  return keyring_.seal(options_.cluster_id, encodeStreamFrame(reply));
}

Result<Bytes> Membership::appReplyOf(const Result<Bytes>& sealed) {
  if (!sealed) return sealed.status();
  auto plain = openInput(*sealed, options_.max_stream_bytes);
  if (!plain) return plain.status();
  auto decoded = decodeStreamFrame(*plain, limits_);
  if (!decoded) {
    ++counters_.drop_decode;
    return decoded.status();
  }
  auto* r = std::get_if<AppReplyMsg>(&*decoded);
  if (r == nullptr) {
    ++counters_.drop_decode;
    return Status::invalid("app request answered with another kind of frame");
  }
  if (!r->ok) {
    Code code = codeFromName(r->error_code);
    if (code == Code::kOk) code = Code::kInternal;
    return Status(code, "peer: " + r->error_message);
  }
  if (r->body.size() > options_.max_app_body_bytes) {
    ++counters_.app_oversized;
    return Status::invalid("app reply body over max_app_body_bytes");
  }
  return std::move(r->body);
}

void Membership::onMessage(int64_t now_ms, const std::string& from, Message& msg) {
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, PingMsg>) onPing(now_ms, from, m);
        if constexpr (std::is_same_v<T, IndirectPingMsg>) onIndirectPing(now_ms, from, m);
        if constexpr (std::is_same_v<T, AckMsg>) onAck(now_ms, m.seq_no);
        if constexpr (std::is_same_v<T, NackMsg>) onNack(now_ms, m.seq_no);
        if constexpr (std::is_same_v<T, AliveMsg>) onAlive(now_ms, m, false);
        if constexpr (std::is_same_v<T, SuspectMsg>) onSuspect(now_ms, m);
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
  sendPacket(source, {AckMsg{m.seq_no}}, true);
  if (!m.source_id.empty() && m.source_id != self_.id && src == nullptr) syncWithSender(now_ms, source);
}

void Membership::syncWithSender(int64_t now_ms, const std::string& address) {
  // A member that pings us knows us, but we do not know it: the broadcast of its alive
  // missed us (each update is sent a bounded number of times, so a few nodes can miss
  // one). Waiting for the periodic push-pull can take minutes; a push-pull with the
  // sender now repairs it. Also used when a member tells us we are dead (onMessage).
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
  if (!probe_.active || probe_.acked || seq != probe_.seq) return;
  probe_.acked = true;
  if (Member* t = find(probe_.target)) {
    t->last_heard_ms = now_ms;
    if (!probe_.indirect_sent) {
      t->rtt_ms = now_ms - probe_.start_ms;
      t->rtt_us = std::max<int64_t>(0, now_us_ - probe_.start_us);
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
  if (mem->state == MemberState::kDead || mem->state == MemberState::kLeft) return;
  bool left = m.from == m.id;
  mem->state = left ? MemberState::kLeft : MemberState::kDead;
  mem->incarnation = m.incarnation;
  mem->state_change_ms = now_ms;
  mem->suspicion.reset();
  if (!left) ++counters_.dead_declared;
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
  int64_t t = std::min({next_gossip_ms_, next_push_pull_ms_, next_reconnect_ms_, next_reap_ms_});
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
    onDead(now_ms, DeadMsg{m->incarnation, id, self_.id});
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
  // Round-robin over a reshuffled list, skipping dead and departed members.
  Member* target = nullptr;
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
  if (delta > 0) applyAwareness(delta);
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
