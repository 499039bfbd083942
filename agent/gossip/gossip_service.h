// GossipService: runs gossip::Membership over a Transport. It moves packets and stream
// frames between the transport and the sans-IO core, runs the core's timers through the
// Env, keeps the incarnation persisted through the owner's hooks, and carries the
// application channels (commit spreading rides on them). It knows no sockets: the agent
// hands it net::GossipTransport (UDP + TCP on libuv), the simulator sim::SimTransport.
//
// Application channels: onAppStream() registers the handler of a channel (its reply goes
// back on the stream; an error goes back as an error reply), and requestApp() sends one
// request and calls done exactly once, later on the loop, with the peer's reply or an
// error (overloaded past max_app_in_flight, invalid past max_app_body_bytes, deadline after
// app_timeout_ms, the peer's own error). Requests still in flight at close() are dropped
// without calling done.
//
// Owned by the agent's Node (or a test); every call on the loop thread. The Transport and
// the Env outlive it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/env.h"
#include "agent/gossip/membership.h"
#include "agent/gossip/transport.h"

namespace meshos::gossip {

struct GossipServiceOptions {
  std::string name;
  std::string id;                 // nodeIdFromPublicKey(public_key)
  Bytes public_key;               // 32 bytes
  std::string bind = "0.0.0.0:7946";
  std::string advertise;          // empty: what the transport reports for the bind address
  std::vector<std::string> seeds; // joined at start() and re-joined while not seen alive
  Options gossip;                 // timings, limits, cluster id
  Keyring keyring;                // empty: plaintext (a warning is logged)
  size_t max_connections = 128;   // concurrent TCP streams, in and out
  // Where the incarnation is kept (the agent: its database's state area). Optional; set
  // both or neither. load_incarnation runs once in start(): a value is the last stored
  // incarnation, nullopt means none stored yet (a first start: 0), an error fails start().
  // store_incarnation runs after start() and after every refutation, with the new
  // incarnation; an error is logged and counted (ShellCounters::incarnation_write_errors)
  // and the write is retried (at most once a second); success counts incarnation_writes.
  // Without them the incarnation starts at 0 on every start.
  std::function<Result<std::optional<uint64_t>>()> load_incarnation;
  std::function<Status(uint64_t)> store_incarnation;
};

struct ShellCounters {
  uint64_t udp_send_errors = 0, udp_send_dropped = 0, tcp_rejected = 0, tcp_errors = 0, incarnation_writes = 0,
           incarnation_write_errors = 0;
  uint64_t app_rejected = 0;  // requestApp refused before anything was sent (bounds, not running)
};

class GossipService final : private TransportReceiver {
 public:
  GossipService(Env& env, Transport& transport, MemberIdentityPool& identities, GossipServiceOptions options);
  ~GossipService() override;
  GossipService(const GossipService&) = delete;
  GossipService& operator=(const GossipService&) = delete;

  // Opens the transport, loads and bumps the incarnation, starts the protocol, joins seeds.
  Status start();
  void join(const std::vector<std::string>& addresses);
  // Broadcasts a graceful leave; done runs (later, on the loop) once the leave was gossiped
  // enough or deadline_ms (relative) passed.
  void leave(int64_t deadline_ms, std::function<void()> done);
  // Membership::forceLeave, then the packets it queued go out.
  Status forceLeave(const std::string& name);
  // Closes the transport; stream requests in flight are abandoned. Idempotent.
  void close();

  Status setLocalState(Bytes body);
  // Readers return empty values before start().
  std::vector<MemberInfo> members() const { return membership_ ? membership_->members() : std::vector<MemberInfo>{}; }
  MemberInfo localMember() const { return membership_ ? membership_->localMember() : MemberInfo{}; }
  std::map<std::string, NodeStateUpdate> nodeStates() const {
    return membership_ ? membership_->nodeStates() : std::map<std::string, NodeStateUpdate>{};
  }
  const Counters& counters() const { return membership_ ? membership_->counters() : empty_counters_; }
  ShellCounters shellCounters() const;
  int localHealth() const { return membership_ ? membership_->localHealth() : 0; }
  uint64_t incarnation() const { return membership_ ? membership_->incarnation() : 0; }
  const std::string& advertiseAddress() const { return advertise_; }
  // Keyring rotation at runtime (install -> use -> remove); the caller saves the file.
  // Only after a successful start().
  Keyring& keyring() { return membership_->keyring(); }

  // Sets (empty handler: removes) the handler of an app channel (1..64 bytes); before or
  // after start(). The handler runs on the loop, inside the read of the request.
  void onAppStream(std::string channel, AppHandler handler);
  // One request on a channel of the node at to_address ("host:port", its gossip address).
  void requestApp(const std::string& to_address, std::string channel, Bytes request,
                  std::function<void(Result<Bytes>)> done);
  size_t appInFlight() const { return app_pending_.size(); }

  void onMemberEvent(std::function<void(const MemberEvent&)> fn) { on_member_event_ = std::move(fn); }
  void onNodeState(std::function<void(const NodeStateUpdate&)> fn) { on_node_state_ = std::move(fn); }

 private:
  int64_t nowMs() const { return env_.clock.monotonicMs(); }
  // Probe sends (tick) and packet receipts carry microseconds, for MemberInfo::rtt_us.
  int64_t nowUs() const { return env_.clock.monotonicNs() / 1000; }
  std::string advertiseFor(const std::string& reachable) const;
  void pump();
  void deliver(Outputs& out);
  void schedule();
  void startStream(StreamRequest req);
  void persistIncarnation();
  void failAppLater(std::function<void(Result<Bytes>)> done, Status why);

  void onDatagram(int64_t at_us, const std::string& from, ByteView bytes) override;
  Result<Bytes> onStream(const std::string& from, ByteView frame) override;

  Env& env_;
  Transport& transport_;
  MemberIdentityPool& identities_;
  GossipServiceOptions options_;
  std::unique_ptr<Membership> membership_;
  std::string advertise_;
  bool started_ = false, closed_ = false;
  TimerId wake_timer_ = 0;
  int64_t wake_at_ms_ = -1;
  TimerId leave_timer_ = 0;
  uint64_t persisted_incarnation_ = 0;
  int64_t next_persist_retry_ms_ = 0;
  ShellCounters shell_counters_;
  Counters empty_counters_;
  std::function<void(const MemberEvent&)> on_member_event_;
  std::function<void(const NodeStateUpdate&)> on_node_state_;
  std::map<std::string, AppHandler> app_handlers_;  // kept for start()
  std::map<uint64_t, std::function<void(Result<Bytes>)>> app_pending_;
  std::vector<std::pair<std::function<void(Result<Bytes>)>, Status>> app_failed_;
  TimerId app_fail_timer_ = 0;
  int app_handler_depth_ = 0;  // > 0 while an app handler runs: pump() waits for the caller
  // Shared with the transport's callbacks, which check it before touching this object.
  std::shared_ptr<GossipService*> self_ = std::make_shared<GossipService*>(this);
};

}  // namespace meshos::gossip
