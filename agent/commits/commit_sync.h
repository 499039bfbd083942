// CommitSync: how commits travel between agents. Sans-IO: the shell (the agent's Node, or a
// test) feeds it peers, their advertised heads, replies and the current time, and carries
// out the requests it asks for over the gossip app channels:
//
//   "commits.push"  a node pushes the commits that just joined its chain (LogOutput::
//                   announce) to its peers at once: every alive peer when there are at most
//                   fanout_all_max_peers of them, else `fanout` random ones. A node that
//                   accepts a pushed commit announces it again (minus the sender), so a
//                   commit spreads epidemically even when the first pushes are lost.
//   "commits.get"   a node whose peer advertises a head ahead of (or forking from) its own
//                   fetches the missing range from that peer: one fetch in flight per peer,
//                   at most max_fetches_in_flight in all, failures and fetches that made no
//                   progress retried with exponential backoff and jitter.
//
// Wire format: proto/commit.capnp CommitRangeRequest / CommitRangeReply / CommitPush /
// CommitPushReply (flat Cap'n Proto, bounded readers). The CommitLog decides what a commit
// is worth; this class only moves bytes and remembers who is where. Every queue is bounded
// and every drop counted. One owner, the loop thread.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/commits/commit_log.h"
#include "agent/core/rng.h"

namespace meshos::commits {

inline constexpr const char* kPushChannel = "commits.push";
inline constexpr const char* kGetChannel = "commits.get";

struct SyncOptions {
  size_t fanout_all_max_peers = 32;  // push to every alive peer up to this many
  size_t fanout = 4;                 // otherwise to this many random peers
  size_t max_fetches_in_flight = 4;  // in all; never two to the same peer
  size_t max_pushes_in_flight = 32;
  size_t max_push_queue = 4096;      // pushes waiting for a slot; the oldest is dropped
  int64_t retry_base_ms = 250;       // backoff after a failed or useless fetch, doubling
  int64_t retry_max_ms = 10'000;
  size_t max_range = 64;             // commits per fetch / per served reply
  size_t max_message_bytes = 2u << 20;  // one request or reply body
  size_t max_peers = 10'000;
  int max_refetch_depth = 16;        // walking back to a fork point, per fetch chain
  Status validate() const;
};

struct SyncPeer {
  std::string id;       // node id
  std::string address;  // gossip address ("host:port")
};

enum class SyncKind { kFetch, kPush };

// One request for the shell to send: gossip requestApp(address, channel, body), and hand
// the outcome to onReply(id, ...).
struct SyncRequest {
  uint64_t id = 0;
  SyncKind kind = SyncKind::kFetch;
  std::string peer_id;
  std::string address;
  std::string channel;
  Bytes body;
  CommitRange range;  // fetches
};

struct SyncCounters {
  uint64_t pushes_sent = 0, pushes_ok = 0, push_failures = 0, pushes_dropped = 0;
  uint64_t pushes_received = 0, pushed_commits_accepted = 0, push_errors = 0;
  uint64_t fetches_sent = 0, fetches_ok = 0, fetch_failures = 0, fetches_useless = 0,
           fetched_commits = 0, fetched_commits_accepted = 0, refetches = 0;
  uint64_t gets_served = 0, commits_served = 0, get_errors = 0;
};

struct PushServed {
  Bytes reply;                // the encoded CommitPushReply
  size_t accepted = 0;
};

class CommitSync {
 public:
  CommitSync(SyncOptions options, Rng rng);

  // The alive peers, self excluded (from gossip membership). Peers not listed are forgotten
  // (their requests in flight still end in onReply).
  void setPeers(const std::vector<SyncPeer>& peers);
  // A peer's advertised commit head (from its node state).
  void setPeerHead(const std::string& peer_id, const Head& head);
  // Commits that joined our chain: queued as pushes to the fanout peers, skipping the peer
  // at except_address (the one that pushed them to us).
  void announce(const std::vector<Bytes>& commits, const std::string& except_address = {});
  // Plans fetches (peers ahead of `log`, whose backoff ended) and starts queued pushes
  // within the in-flight bounds. Call after any input; the requests come out of
  // takeRequests().
  void step(int64_t now_ms, const CommitLog& log);
  std::vector<SyncRequest> takeRequests();
  // The outcome of a request from takeRequests(). A fetched range goes into the log
  // (acceptBatch); what that did is in `out` for the shell to carry out (audit, store;
  // fetched commits are not re-announced). Unknown ids are ignored.
  void onReply(int64_t now_ms, uint64_t id, Result<Bytes> reply, CommitLog& log, LogOutput& out);

  // Serving the channels. A get request → the encoded reply (or an error for a malformed
  // request). A push → each commit submitted to the log; `out.announce` then holds the ones
  // that joined, for the shell to announce() again (except to from_address).
  Result<Bytes> serveGet(ByteView request, const CommitLog& log);
  Result<PushServed> servePush(const std::string& from_address, ByteView request, CommitLog& log,
                               LogOutput& out);

  // When step() next has something to do (a backoff ends); INT64_MAX for nothing.
  int64_t nextWakeMs(const CommitLog& log) const;
  const SyncCounters& counters() const { return counters_; }
  size_t fetchesInFlight() const { return fetches_in_flight_; }
  size_t pushesInFlight() const { return pushes_in_flight_; }
  size_t pushQueueSize() const { return push_queue_.size(); }
  size_t peerCount() const { return peers_.size(); }
  const SyncOptions& options() const { return options_; }

 private:
  struct Peer {
    std::string address;
    bool alive = false;
    std::optional<Head> head;
    bool fetch_in_flight = false;
    int failures = 0;
    int64_t retry_at_ms = 0;
    int refetch_depth = 0;
    std::optional<CommitRange> refetch;  // asked for by the last batch (fork further back)
  };
  struct Pending {
    SyncKind kind;
    std::string peer_id;
    std::string address;
    CommitRange range;
  };
  struct QueuedPush {
    std::string address;
    std::shared_ptr<const Bytes> body;
  };

  void backoff(Peer& p, int64_t now_ms);
  void startFetch(const std::string& id, Peer& p, CommitRange range);
  std::vector<std::string> fanoutAddresses(const std::string& except_address);

  SyncOptions options_;
  Rng rng_;
  std::map<std::string, Peer> peers_;  // by node id
  std::map<uint64_t, Pending> pending_;
  std::deque<QueuedPush> push_queue_;
  std::vector<SyncRequest> requests_;
  size_t fetches_in_flight_ = 0;
  size_t pushes_in_flight_ = 0;
  uint64_t next_id_ = 1;
  SyncCounters counters_;
};

// Codecs of the four messages (bounded; bad input is an error, never an exception).
Bytes encodeRangeRequest(const CommitRange& range);
Result<CommitRange> decodeRangeRequest(ByteView bytes);
struct RangeReply {
  std::vector<Bytes> commits;
  Head head;
};
Bytes encodeRangeReply(const RangeReply& reply);
Result<RangeReply> decodeRangeReply(ByteView bytes, size_t max_commits);
Bytes encodePush(const std::vector<Bytes>& commits);
Result<std::vector<Bytes>> decodePush(ByteView bytes, size_t max_commits);
struct PushReply {
  uint32_t accepted = 0;
  Head head;
};
Bytes encodePushReply(const PushReply& reply);
Result<PushReply> decodePushReply(ByteView bytes);

// {"peers", "fetches_in_flight", "pushes_in_flight", "push_queue", "pushes_sent", ...}: the
// "sync" section of the commits view in the snapshot.
nlohmann::json syncToJson(const CommitSync& sync);

}  // namespace meshos::commits
