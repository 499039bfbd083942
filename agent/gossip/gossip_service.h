// GossipService: the real shell around gossip::Membership. It owns a libuv UDP socket and a
// TCP listener bound to the same address (port 0 picks one; boundPort() tells which), moves
// packets and stream frames between them and the sans-IO core, runs the core's timers
// through Env, and persists the incarnation in <data_dir>/gossip.incarnation (or through the
// load_incarnation / store_incarnation hooks when the owner sets them). Probe sends and
// packet receipts are timed with the monotonic clock in microseconds (MemberInfo::rtt_us).
//
// TCP streams carry one request frame and one reply frame, each a 4-byte big-endian length
// followed by a sealed GossipStreamFrame; a connection is closed after the reply or after
// stream_timeout_ms.
//
// Application channels ride on the same streams: onAppStream() registers the handler of a
// channel (its reply goes back on the stream; an error goes back as an error reply), and
// requestApp() sends one request and calls done exactly once, later on the loop, with the
// peer's reply or an error (overloaded past max_app_in_flight, invalid past
// max_app_body_bytes, deadline after app_timeout_ms, the peer's own error). Requests still
// in flight at close() are dropped without calling done.
//
// Owned by the agent's Node; every call on the loop thread. close() starts closing every
// handle; their memory is freed in the close callbacks, so run the loop once more after it.
#pragma once

#include <uv.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/env.h"
#include "agent/gossip/membership.h"

namespace meshos::gossip {

struct GossipServiceOptions {
  std::string name;
  std::string id;                 // nodeIdFromPublicKey(public_key)
  Bytes public_key;               // 32 bytes
  std::string bind = "0.0.0.0:7946";
  std::string advertise;          // empty: the bind address (127.0.0.1 if bind is 0.0.0.0) + bound port
  std::vector<std::string> seeds; // joined at start() and re-joined while not seen alive
  Options gossip;                 // timings, limits, cluster id
  Keyring keyring;                // empty: plaintext (a warning is logged)
  std::filesystem::path data_dir; // empty: the incarnation is not persisted (unless the hooks below are set)
  size_t max_connections = 128;   // concurrent TCP streams, in and out
  // A pluggable incarnation store (the agent's RocksDB state area, say). Set both or neither;
  // when set they replace <data_dir>/gossip.incarnation entirely (data_dir is then not used
  // for it). load_incarnation runs once in start(), on the loop: a value is the last stored
  // incarnation, nullopt means none stored yet (a first start: 0), an error fails start().
  // store_incarnation runs on the loop after start() and after every refutation, with the
  // new incarnation; an error is logged and counted (ShellCounters::incarnation_write_errors)
  // and the write is retried (at most once a second); success counts incarnation_writes.
  std::function<Result<std::optional<uint64_t>>()> load_incarnation;
  std::function<Status(uint64_t)> store_incarnation;
};

struct ShellCounters {
  uint64_t udp_send_errors = 0, udp_send_dropped = 0, tcp_rejected = 0, tcp_errors = 0, incarnation_writes = 0,
           incarnation_write_errors = 0;
  uint64_t app_rejected = 0;  // requestApp refused before anything was sent (bounds, not running)
};

// "host:port" or "[v6]:port" -> sockaddr.
Status parseSocketAddress(const std::string& address, sockaddr_storage& out);
std::string formatSocketAddress(const sockaddr* addr);

class GossipService {
 public:
  GossipService(uv_loop_t* loop, Env& env, GossipServiceOptions options);
  ~GossipService();
  GossipService(const GossipService&) = delete;
  GossipService& operator=(const GossipService&) = delete;

  // Binds UDP and TCP, loads and bumps the incarnation, starts the protocol, joins seeds.
  Status start();
  void join(const std::vector<std::string>& addresses);
  // Broadcasts a graceful leave; done runs (later, on the loop) once the leave was gossiped
  // enough or deadline_ms (relative) passed.
  void leave(int64_t deadline_ms, std::function<void()> done);
  // Closes every handle; stream requests in flight are abandoned. Idempotent.
  void close();

  Status setLocalState(Bytes body);
  // Readers return empty values before start().
  std::vector<MemberInfo> members() const { return membership_ ? membership_->members() : std::vector<MemberInfo>{}; }
  MemberInfo localMember() const { return membership_ ? membership_->localMember() : MemberInfo{}; }
  std::map<std::string, NodeStateUpdate> nodeStates() const {
    return membership_ ? membership_->nodeStates() : std::map<std::string, NodeStateUpdate>{};
  }
  const Counters& counters() const { return membership_ ? membership_->counters() : empty_counters_; }
  const ShellCounters& shellCounters() const { return shell_counters_; }
  int localHealth() const { return membership_ ? membership_->localHealth() : 0; }
  uint64_t incarnation() const { return membership_ ? membership_->incarnation() : 0; }
  uint16_t boundPort() const { return bound_port_; }
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
  struct Conn;
  struct UdpHandle;
  struct TcpServer;
  friend struct Conn;

  int64_t nowMs() const { return env_.clock.monotonicMs(); }
  // Probe sends (tick) and packet receipts carry microseconds, for MemberInfo::rtt_us.
  int64_t nowUs() const { return env_.clock.monotonicNs() / 1000; }
  void pump();
  void schedule();
  void sendUdp(const std::string& to, Bytes bytes);
  void startStream(StreamRequest req);
  void finishOutbound(Conn* c, Result<Bytes> reply);
  void onInboundFrame(Conn* c, Bytes frame);
  void closeConn(Conn* c);
  void persistIncarnation();
  void failAppLater(std::function<void(Result<Bytes>)> done, Status why);

  static void onUdpAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onUdpRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned flags);
  static void onNewConnection(uv_stream_t* server, int status);
  static void onConnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onConnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  void onConnData(Conn* c, ssize_t nread, const uv_buf_t* buf);

  uv_loop_t* loop_;
  Env& env_;
  GossipServiceOptions options_;
  std::unique_ptr<Membership> membership_;
  UdpHandle* udp_ = nullptr;
  TcpServer* tcp_ = nullptr;
  std::map<Conn*, bool> conns_;
  std::map<uint64_t, Conn*> outbound_;
  uint16_t bound_port_ = 0;
  std::string advertise_;
  bool started_ = false, closed_ = false;
  TimerId wake_timer_ = 0;
  int64_t wake_at_ms_ = -1;
  TimerId leave_timer_ = 0;
  TimerId fail_timer_ = 0;
  std::vector<std::pair<uint64_t, Status>> failed_streams_;
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
};

// <data_dir>/gossip.incarnation: one decimal number and a newline, written atomically.
Result<uint64_t> readIncarnationFile(const std::filesystem::path& data_dir);
Status writeIncarnationFile(const std::filesystem::path& data_dir, uint64_t incarnation);

}  // namespace meshos::gossip
