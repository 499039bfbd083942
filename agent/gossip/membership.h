// Membership: SWIM with the Lifeguard refinements (as hashicorp/memberlist does it), plus
// per-node versioned state dissemination. Sans-IO: the shell (GossipService, or the
// simulator) hands in time, packets and stream frames, and takes out what to send.
//
//   inputs : handlePacket(now, from, bytes) (or handlePacketUs), handleStream(now, from, frame) -> reply,
//            handleStreamReply(now, request id, reply or error), tick(now) (or tickUs), join(), leave(),
//            setLocalState(), requestApp()
//   outputs: takeOutputs(): packets (address + sealed bytes), stream requests (push-pull,
//            TCP probe, app), membership events, node-state updates, app replies
//
// Application channels: an inbound app request frame is answered by the handler set for
// its channel (setAppHandler), synchronously inside handleStream(); an unknown channel,
// an oversized body or a handler error becomes an error reply, counted. requestApp()
// queues an outbound app stream; its outcome comes back exactly once in
// Outputs::app_replies (the peer's body, the peer's error, or the stream's failure).
//
// Members are keyed by node id (derived from the node key), not by address or name. All
// randomness comes from the Rng passed in, so a run is repeatable. Every byte in and out is
// sealed/opened by the keyring before anything is decoded.
// One owner, one thread (the loop that drives it).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/core/bytes.h"
#include "agent/core/rng.h"
#include "agent/core/status.h"
#include "agent/core/thread_check.h"
#include "agent/gossip/broadcast_queue.h"
#include "agent/gossip/keyring.h"
#include "agent/gossip/member_identity.h"
#include "agent/gossip/messages.h"
#include "agent/gossip/options.h"

namespace meshos::gossip {

struct LocalIdentity {
  std::string name;
  std::string id;          // nodeIdFromPublicKey(public_key)
  Bytes public_key;        // 32 bytes (may be empty in tests that do not carry keys)
  std::string address;     // advertised "host:port"
  uint64_t incarnation = 0;  // persisted value from the last run; start() uses it + 1
};

struct MemberInfo {
  std::string id;
  std::string name;
  std::string address;
  Bytes public_key;
  MemberState state = MemberState::kAlive;
  uint64_t incarnation = 0;
  int64_t state_change_ms = 0;
  int64_t last_heard_ms = -1;  // last packet or ack from it, -1 never
  int64_t rtt_ms = -1;         // of the last direct ack, -1 none (whole ms: 0 on a LAN)
  uint64_t state_version = 0;  // latest node-state version known
  // The last direct ack's round trip in microseconds, -1 none. Exact when the shell drives
  // the core with the *Us entry points (tickUs, handlePacketUs); with the ms ones it is the
  // ms figure x 1000. rtt_samples counts direct acks measured, so a reader can tell a new
  // sample from the one it already used.
  int64_t rtt_us = -1;
  uint64_t rtt_samples = 0;
};

enum class MemberEventKind { kJoin, kUpdate, kSuspect, kAlive, kDead, kLeft, kReap, kNameConflict };
const char* memberEventKindName(MemberEventKind k);

struct MemberEvent {
  MemberEventKind kind;
  MemberInfo member;
  std::string detail;  // for conflicts: the id that claimed the name
};

struct NodeStateUpdate {
  std::string origin;  // node id
  std::string name;
  uint64_t version = 0;
  Bytes body;
};

struct OutPacket {
  std::string to;
  Bytes bytes;
};

enum class StreamKind { kPushPull, kProbe, kApp };
struct StreamRequest {
  uint64_t id = 0;
  StreamKind kind = StreamKind::kPushPull;
  std::string to;
  Bytes frame;  // sealed; the shell frames it, sends it and hands the sealed reply back
};

// The outcome of one requestApp().
struct AppReply {
  uint64_t id = 0;
  Result<Bytes> reply = Status::unavailable("no reply");
};

struct Outputs {
  std::vector<OutPacket> packets;
  std::vector<StreamRequest> streams;
  std::vector<MemberEvent> events;
  std::vector<NodeStateUpdate> states;
  std::vector<AppReply> app_replies;
  bool empty() const {
    return packets.empty() && streams.empty() && events.empty() && states.empty() && app_replies.empty();
  }
};

// Answers one app request: the reply body, or an error that goes back to the requester.
using AppHandler = std::function<Result<Bytes>(const std::string& from_address, ByteView request)>;

struct Counters {
  uint64_t packets_in = 0, packets_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t streams_in = 0, streams_out = 0, stream_bytes_in = 0, stream_bytes_out = 0;
  uint64_t probes = 0, probe_failures = 0, indirect_probes = 0, tcp_probes = 0;
  uint64_t acks_in = 0, nacks_in = 0;
  uint64_t suspicions = 0, refutations = 0, false_suspicions_refuted = 0, dead_declared = 0;
  uint64_t push_pulls = 0, push_pull_failures = 0, reconnects = 0;
  // Pings to dead members (deadProbeStep), and acks from them (each starts a push-pull).
  uint64_t dead_probes = 0, dead_probe_acks = 0;
  // Push-pulls started because a member we do not know pinged us (syncWithSender).
  uint64_t sender_syncs = 0;
  uint64_t name_conflicts = 0, state_updates = 0, state_fetches = 0;
  uint64_t broadcasts_dropped = 0, members_rejected = 0;
  // Application channels. Outbound: requests sent, ok replies, error replies / failed streams.
  // Inbound: requests served, unknown channel, handler errors, oversized bodies (either way).
  uint64_t app_requests_out = 0, app_replies_ok = 0, app_failures = 0;
  uint64_t app_requests_in = 0, app_unknown_channel = 0, app_handler_errors = 0, app_oversized = 0;
  // Dropped input by reason.
  uint64_t drop_truncated = 0, drop_bad_version = 0, drop_wrong_cluster_or_key = 0, drop_plaintext = 0,
           drop_encrypted = 0, drop_oversized = 0, drop_decode = 0, drop_stale = 0;
  uint64_t dropDecodeTotal() const {
    return drop_truncated + drop_bad_version + drop_wrong_cluster_or_key + drop_plaintext + drop_encrypted +
           drop_oversized + drop_decode;
  }
};

class Membership {
 public:
  // `identities` is shared by the owner's memberships and outlives this one.
  Membership(Options options, LocalIdentity self, Keyring keyring, Rng rng, MemberIdentityPool& identities);
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Begins at now: bumps the incarnation, announces self, schedules probes.
  void start(int64_t now_ms);
  // Push-pull with each address (a join); failures are retried by the reconnect timer
  // for addresses kept as seeds.
  void join(int64_t now_ms, const std::vector<std::string>& addresses, bool remember_as_seeds = true);
  // Broadcasts a graceful leave. leaveBroadcastDone() tells when it has been sent enough.
  void leave(int64_t now_ms);
  // Declares a dead member gone for good (an operator's force-leave): it becomes `left`
  // here and, by broadcast, everywhere, so nobody keeps probing or reconnecting to it.
  // Refused for a member that is not dead: an alive one leaves itself, a suspect one
  // still refutes. The member refutes it if it is in fact running (a higher incarnation).
  Status forceLeave(int64_t now_ms, const std::string& name);
  // Adopts a member list that every member already holds (a cluster that has converged:
  // the simulator's --prejoined start). Each record goes through the push-pull merge path
  // (validation, name conflicts, probe order, events), but the broadcasts that path queues
  // for these members are dropped: the caller vouches there is nothing left to spread.
  // Call after start().
  void adoptConvergedMembers(int64_t now_ms, const std::vector<MemberRecord>& records);
  bool leaving() const { return leaving_; }
  bool leaveBroadcastDone() const;

  void handlePacket(int64_t now_ms, const std::string& from, ByteView packet) {
    handlePacketUs(now_ms * 1000, from, packet);
  }
  // The same with the time in microseconds (monotonic, the same clock as tickUs): the shell
  // passes when the packet was received, so direct probe RTTs (MemberInfo::rtt_us) have
  // microsecond resolution. Everything else still runs on now_us / 1000.
  void handlePacketUs(int64_t now_us, const std::string& from, ByteView packet);
  // An inbound stream frame (sealed); returns the sealed reply, or an error (drop the stream).
  Result<Bytes> handleStream(int64_t now_ms, const std::string& from, ByteView frame);
  // The reply to one of our StreamRequests, or the error that ended it.
  void handleStreamReply(int64_t now_ms, uint64_t request_id, Result<Bytes> reply);

  // Sets (or, with an empty handler, removes) the handler of an app channel. Channel names
  // are 1..64 bytes.
  Status setAppHandler(const std::string& channel, AppHandler handler);
  // Queues an app request to `to`; its id comes back in Outputs::app_replies. Refused
  // (nothing queued) for a bad channel, a body over max_app_body_bytes, or too many
  // streams pending.
  Result<uint64_t> requestApp(int64_t now_ms, const std::string& to, const std::string& channel, Bytes body);
  void tick(int64_t now_ms) { tickUs(now_ms * 1000); }
  // tick() with the time in microseconds; a direct probe sent here is timed from now_us.
  void tickUs(int64_t now_us);
  // When tick() next has something to do.
  int64_t nextWakeMs() const;
  Outputs takeOutputs();

  // Replaces this node's state blob; the version grows (incarnation-based, so it keeps
  // growing across restarts as long as the incarnation is persisted).
  Status setLocalState(int64_t now_ms, Bytes body);

  // Members other than self, sorted by id; self is localMember().
  std::vector<MemberInfo> members() const;
  MemberInfo localMember() const;
  // One member's record (a copy), nullopt if unknown.
  std::optional<MemberInfo> findMember(std::string_view id) const;
  // Its state alone, without the copy (nullopt if unknown).
  std::optional<MemberState> memberState(std::string_view id) const;
  // Its address, empty if unknown; valid until the next input or tick.
  std::string_view memberAddress(std::string_view id) const;
  // Every known node state (self included), by origin id.
  std::map<std::string, NodeStateUpdate> nodeStates() const;
  const Counters& counters() const { return counters_; }
  int localHealth() const { return awareness_; }
  uint64_t incarnation() const { return incarnation_; }
  size_t numAlive() const;  // self included
  const Options& options() const { return options_; }
  const LocalIdentity& self() const { return self_; }
  Keyring& keyring() { return keyring_; }

 private:
  // A suspicion in progress (held only while info.state == kSuspect: most members never
  // need one, and every node holds every member).
  struct Suspicion {
    int64_t start_ms = 0, min_ms = 0, max_ms = 0;
    int expected = 0;
    std::set<std::string> confirmations;
    int64_t deadline_ms = 0;
  };
  // One member, compact: every node holds every member (N^2 entries in a simulation).
  // The identity (id, name, address, key) is shared (MemberIdentityPool) and replaced
  // whole when the address, name or key changes; the id never changes.
  struct Member {
    MemberIdentityRef ident;
    std::unique_ptr<Suspicion> suspicion;
    uint64_t incarnation = 0;
    uint64_t state_version = 0;
    int64_t state_change_ms = 0;
    int64_t last_heard_ms = -1;
    int64_t rtt_us = -1;
    int32_t rtt_ms = -1;
    uint32_t rtt_samples = 0;
    uint32_t index = 0;  // in ids_
    MemberState state = MemberState::kAlive;

    const std::string& id() const { return ident->id; }
    const std::string& name() const { return ident->name; }
    const std::string& address() const { return ident->address; }
    bool live() const { return state == MemberState::kAlive || state == MemberState::kSuspect; }
    MemberInfo info() const;
  };
  // Hash and equality for a hash set of Member* keyed by one of its strings (id or name),
  // looked up with a string_view.
  template <const std::string& (Member::*Key)() const>
  struct ByKey {
    using is_transparent = void;
    static std::string_view key(const Member* m) { return (m->*Key)(); }
    size_t operator()(std::string_view k) const { return std::hash<std::string_view>{}(k); }
    size_t operator()(const Member* m) const { return (*this)(key(m)); }
    bool operator()(const Member* a, const Member* b) const { return a == b || key(a) == key(b); }
    bool operator()(std::string_view a, const Member* b) const { return a == key(b); }
    bool operator()(const Member* a, std::string_view b) const { return key(a) == b; }
  };
  using ById = ByKey<&Member::id>;
  using ByName = ByKey<&Member::name>;
  // One origin's state. `version` is the newest version known (held or announced);
  // `body` is the newest body held, of `body_version` (never reported under another
  // version). While body_version < version the body is fetched by push-pull from the
  // members that announced `version` (an announcement means "I hold it") or the origin,
  // retried from tick() with backoff until it arrives (fetchStep).
  struct StoredState {
    uint64_t version = 0;
    bool has_body = false;
    uint64_t body_version = 0;
    Bytes body;
    std::vector<std::string> sources;  // addresses holding `version`, newest first, bounded
    int fetch_attempts = 0;            // since the body was last complete
    int64_t next_fetch_ms = 0;         // no fetch for this origin before this
  };
  struct Probe {
    bool active = false;
    std::string target;
    uint32_t seq = 0;
    int64_t start_ms = 0, timeout_at_ms = 0, end_ms = 0;
    int64_t start_us = 0;
    bool indirect_sent = false, acked = false;
    bool urgent = false;  // the target came from urgent_probes_ (suspected by others)
    int expected_nacks = 0, nacks = 0;
  };
  struct Forward {  // an indirect ping we do for someone else
    uint32_t orig_seq = 0;
    std::string source_address;
    bool want_nack = false;
    int64_t deadline_ms = 0;
  };
  struct PendingStream {
    StreamKind kind;
    std::string to;
    uint32_t probe_seq = 0;
    bool join = false;
  };

  // Sending.
  void sendPacket(const std::string& to, std::vector<Message> msgs, bool piggyback);
  void broadcastMembership(const std::string& subject, Message msg);
  void tellAtOnce(int64_t now_ms, const DeadMsg& m);  // besides the broadcast, to a few members now
  void queueStream(StreamKind kind, const std::string& to, const StreamFrame& frame, uint32_t probe_seq, bool join);
  Result<Bytes> openInput(ByteView sealed, size_t limit);

  // Protocol steps.
  void probeStep(int64_t now_ms);
  void finishProbe(int64_t now_ms);
  void gossipStep(int64_t now_ms);
  void pushPullStep(int64_t now_ms);
  void reconnectStep(int64_t now_ms);
  void deadProbeStep(int64_t now_ms);
  void joinFollowUpStep(int64_t now_ms);
  void suspicionStep(int64_t now_ms);
  void reapStep(int64_t now_ms);
  void forwardStep(int64_t now_ms);

  // Message handlers.
  void onMessage(int64_t now_ms, const std::string& from, Message& msg);
  void onPing(int64_t now_ms, const std::string& from, const PingMsg& m);
  void onIndirectPing(int64_t now_ms, const std::string& from, const IndirectPingMsg& m);
  void onAck(int64_t now_ms, uint32_t seq);
  void onNack(int64_t now_ms, uint32_t seq);
  void onAlive(int64_t now_ms, const AliveMsg& m, bool from_push_pull);
  void onSuspect(int64_t now_ms, const SuspectMsg& m);
  void onDead(int64_t now_ms, const DeadMsg& m);
  void onNodeState(int64_t now_ms, const std::string& from, const NodeStateMsg& m);
  void fetchStep(int64_t now_ms);
  void fetchState(int64_t now_ms, const std::string& origin_id, StoredState& s);
  void mergePushPull(int64_t now_ms, const std::string& from, const PushPullMsg& pp);
  void mergeMemberRecord(int64_t now_ms, const std::string& from, const MemberRecord& r);
  PushPullMsg buildPushPull(bool join) const;
  Bytes serveApp(const std::string& from, const AppRequestMsg& req);
  Result<Bytes> appReplyOf(const Result<Bytes>& sealed);

  void syncWithSender(int64_t now_ms, const std::string& address);
  void refute(int64_t now_ms, uint64_t accused_incarnation);
  void applyAwareness(int delta);
  void emit(MemberEventKind kind, const Member& m, std::string detail = {});
  Member* find(std::string_view id);
  const Member* find(std::string_view id) const;
  // Moves m to a new identity (address, name or key changed), keeping the indexes right.
  void setIdentity(Member& m, MemberIdentityRef ident);
  void removeMember(std::string_view id);
  AliveMsg selfAlive() const;
  int64_t scaled(int64_t ms) const { return ms * (awareness_ + 1); }
  size_t estimatedNodes() const { return members_.size() + 1; }
  std::vector<Member*> randomMembers(size_t k, const std::string& exclude, bool include_recent_dead, int64_t now_ms);
  uint32_t nextSeq() { return ++seq_; }

  MemberIdentityPool& identities_;
  ThreadChecker thread_;  // every entry point on the owner's thread
  Options options_;
  LocalIdentity self_;
  Keyring keyring_;
  Rng rng_;
  DecodeLimits limits_;

  bool started_ = false;
  bool leaving_ = false;
  uint64_t incarnation_ = 0;
  int awareness_ = 0;
  uint32_t seq_ = 0;
  uint64_t next_stream_id_ = 1;
  int64_t now_us_ = 0;  // the time of the input being handled, in microseconds (probe RTTs)

  // Memory matters here: every node holds every member (N^2 in a simulation), so ids_
  // owns the Members and the indexes are sets of pointers hashed by the member's own id /
  // name (no key copies).
  std::vector<std::unique_ptr<Member>> ids_;  // self excluded; Member::index is the position; random picks index this
  std::unordered_set<Member*, ById, ById> members_;      // the same members, by id
  std::unordered_set<Member*, ByName, ByName> id_by_name_;  // by name (one holder per name)
  std::vector<Member*> probe_order_;  // removeMember() takes a member out
  std::deque<std::string> urgent_probes_;  // ids suspected by others: probed before the round-robin
  size_t probe_pos_ = 0;
  Probe probe_;
  std::map<uint32_t, Forward> forwards_;
  std::multimap<int64_t, std::string> suspicion_deadlines_;
  std::map<uint64_t, PendingStream> streams_;
  std::map<std::string, AppHandler> app_handlers_;
  std::vector<std::string> seeds_;
  size_t seed_pos_ = 0;
  // A seed never reached yet is retried with jittered exponential backoff from ~1 s up to
  // reconnect_interval_ms (seedRetryStep); once reached (a join push-pull answered, or seen
  // alive), healing is reconnectStep's job.
  struct SeedRetry {
    bool reached = false;
    bool pending = false;      // a join push-pull to it is in flight
    int attempts = 0;
    int64_t sent_ms = 0;
    int64_t next_retry_ms = 0;
  };
  std::map<std::string, SeedRetry> seed_retry_;  // by seed address
  void seedRetryStep(int64_t now_ms);
  int64_t seedBackoffMs(int attempts);

  // syncWithSender bounds: the next time any sender sync may start, and per address.
  int64_t next_sender_sync_ms_ = 0;
  std::unordered_map<std::string, int64_t> sync_cooldown_;

  std::map<std::string, StoredState> states_;  // by origin id, self included
  std::set<std::string> fetch_wanted_;         // origins whose body is older than their version
  uint64_t local_state_version_ = 0;

  BroadcastQueue membership_queue_;
  BroadcastQueue state_queue_;

  int64_t next_probe_ms_ = 0, next_gossip_ms_ = 0, next_push_pull_ms_ = 0, next_reconnect_ms_ = 0,
          next_reap_ms_ = 0;
  // The last ping sent to a dead member (deadProbeStep); an ack with its seq means the path
  // to that member is back.
  struct DeadProbe {
    uint32_t seq = 0;
    std::string id;
  };
  DeadProbe dead_probe_;
  int64_t next_dead_probe_ms_ = 0;  // kNever while no member is dead
  // A second push-pull with the member a join went through, a moment after the first: it
  // has heard every join that raced ours (joinFollowUpStep).
  std::string join_follow_up_to_;
  int64_t join_follow_up_ms_ = 0;  // kNever when none is due

  Outputs out_;
  Counters counters_;
};

}  // namespace meshos::gossip
