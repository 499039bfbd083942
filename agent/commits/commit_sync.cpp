#include "agent/commits/commit_sync.h"

#include "proto/flat_message.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "proto/commit.capnp.h"

namespace meshos::commits {

Status SyncOptions::validate() const {
  if (fanout < 1 || fanout > 64) return Status::invalid("commit sync fanout must be in [1, 64]");
  if (fanout_all_max_peers > 1024) return Status::invalid("commit sync fanout_all_max_peers must be <= 1024");
  if (max_fetches_in_flight < 1 || max_fetches_in_flight > 64)
    return Status::invalid("commit sync max_fetches_in_flight must be in [1, 64]");
  if (max_pushes_in_flight < 1 || max_pushes_in_flight > 1024)
    return Status::invalid("commit sync max_pushes_in_flight must be in [1, 1024]");
  if (max_push_queue < 1) return Status::invalid("commit sync max_push_queue must be >= 1");
  if (retry_base_ms < 1 || retry_max_ms < retry_base_ms)
    return Status::invalid("commit sync retry: want 1 <= retry_base_ms <= retry_max_ms");
  if (max_range < 1 || max_range > 4096) return Status::invalid("commit sync max_range must be in [1, 4096]");
  if (max_message_bytes < kMaxCommitBytes + 4096)
    return Status::invalid("commit sync max_message_bytes must hold one commit of the largest size");
  if (max_peers < 1) return Status::invalid("commit sync max_peers must be >= 1");
  return Status::ok();
}

// ---------------------------------------------------------------- codecs

namespace {

using proto::flatBytes;
using proto::readFlat;

constexpr size_t kMaxWireBytes = 64u << 20;  // decoders' own ceiling; callers bound tighter

Result<Head> headOf(uint64_t seq, capnp::Data::Reader hash) {
  Head h;
  h.seq = seq;
  if (seq == 0 && hash.size() == 0) return h;
  if (hash.size() != h.hash.size()) return Status::invalid("head hash must be 32 bytes");
  std::memcpy(h.hash.data(), hash.begin(), h.hash.size());
  return h;
}

void setCommits(capnp::List<capnp::Data>::Builder list, const std::vector<Bytes>& commits) {
  for (unsigned i = 0; i < commits.size(); ++i) list.set(i, capnp::Data::Reader(commits[i].data(), commits[i].size()));
}

Result<std::vector<Bytes>> readCommits(capnp::List<capnp::Data>::Reader list, size_t max_commits) {
  if (list.size() > max_commits)
    return Status::invalid(std::to_string(list.size()) + " commits, limit " + std::to_string(max_commits));
  std::vector<Bytes> out;
  out.reserve(list.size());
  for (auto d : list) {
    if (d.size() == 0 || d.size() > kMaxCommitBytes) return Status::invalid("a commit of " + std::to_string(d.size()) + " bytes");
    out.emplace_back(d.begin(), d.end());
  }
  return out;
}

}  // namespace

Bytes encodeRangeRequest(const CommitRange& range) {
  capnp::MallocMessageBuilder mb(64);
  auto r = mb.initRoot<proto::CommitRangeRequest>();
  r.setFrom(range.from);
  r.setTo(range.to);
  return flatBytes(mb);
}

Result<CommitRange> decodeRangeRequest(ByteView bytes) {
  return readFlat(bytes, 4096, "commit range request", [](capnp::FlatArrayMessageReader& reader) -> Result<CommitRange> {
    auto r = reader.getRoot<proto::CommitRangeRequest>();
    CommitRange range{r.getFrom(), r.getTo()};
    if (range.from == 0 || range.to < range.from)
      return Status::invalid("commit range request: want 1 <= from <= to, got " + std::to_string(range.from) + ".." +
                             std::to_string(range.to));
    return range;
  });
}

Bytes encodeRangeReply(const RangeReply& reply) {
  capnp::MallocMessageBuilder mb;
  auto r = mb.initRoot<proto::CommitRangeReply>();
  setCommits(r.initCommits(static_cast<unsigned>(reply.commits.size())), reply.commits);
  r.setHeadSeq(reply.head.seq);
  if (reply.head.seq > 0) r.setHeadHash(capnp::Data::Reader(reply.head.hash.data(), reply.head.hash.size()));
  return flatBytes(mb);
}

Result<RangeReply> decodeRangeReply(ByteView bytes, size_t max_commits) {
  return readFlat(bytes, kMaxWireBytes, "commit range reply",
                  [max_commits](capnp::FlatArrayMessageReader& reader) -> Result<RangeReply> {
                    auto r = reader.getRoot<proto::CommitRangeReply>();
                    auto commits = readCommits(r.getCommits(), max_commits);
                    if (!commits) return commits.status().withContext("commit range reply");
                    auto head = headOf(r.getHeadSeq(), r.getHeadHash());
                    if (!head) return head.status().withContext("commit range reply");
                    return RangeReply{std::move(*commits), *head};
                  });
}

Bytes encodePush(const std::vector<Bytes>& commits) {
  capnp::MallocMessageBuilder mb;
  setCommits(mb.initRoot<proto::CommitPush>().initCommits(static_cast<unsigned>(commits.size())), commits);
  return flatBytes(mb);
}

Result<std::vector<Bytes>> decodePush(ByteView bytes, size_t max_commits) {
  return readFlat(bytes, kMaxWireBytes, "commit push",
                  [max_commits](capnp::FlatArrayMessageReader& reader) -> Result<std::vector<Bytes>> {
                    auto commits = readCommits(reader.getRoot<proto::CommitPush>().getCommits(), max_commits);
                    if (!commits) return commits.status().withContext("commit push");
                    if (commits->empty()) return Status::invalid("commit push: no commits");
                    return commits;
                  });
}

Bytes encodePushReply(const PushReply& reply) {
  capnp::MallocMessageBuilder mb(64);
  auto r = mb.initRoot<proto::CommitPushReply>();
  r.setAccepted(reply.accepted);
  r.setHeadSeq(reply.head.seq);
  if (reply.head.seq > 0) r.setHeadHash(capnp::Data::Reader(reply.head.hash.data(), reply.head.hash.size()));
  return flatBytes(mb);
}

Result<PushReply> decodePushReply(ByteView bytes) {
  return readFlat(bytes, 4096, "commit push reply", [](capnp::FlatArrayMessageReader& reader) -> Result<PushReply> {
    auto r = reader.getRoot<proto::CommitPushReply>();
    auto head = headOf(r.getHeadSeq(), r.getHeadHash());
    if (!head) return head.status().withContext("commit push reply");
    return PushReply{r.getAccepted(), *head};
  });
}

// ---------------------------------------------------------------- CommitSync

CommitSync::CommitSync(SyncOptions options, Rng rng) : options_(options), rng_(rng) {}

void CommitSync::setPeers(const std::vector<SyncPeer>& peers) {
  for (auto& [id, p] : peers_) p.alive = false;
  for (const auto& sp : peers) {
    auto it = peers_.find(sp.id);
    if (it == peers_.end()) {
      if (peers_.size() >= options_.max_peers) continue;
      it = peers_.emplace(sp.id, Peer{}).first;
    }
    it->second.alive = true;
    it->second.address = sp.address;
  }
  // Forget peers that are gone, unless a fetch to them is still out.
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (!it->second.alive && !it->second.fetch_in_flight) {
      it = peers_.erase(it);
    } else {
      ++it;
    }
  }
}

void CommitSync::setPeerHead(const std::string& peer_id, const Head& head) {
  auto it = peers_.find(peer_id);
  if (it == peers_.end()) {
    if (peers_.size() >= options_.max_peers) return;
    it = peers_.emplace(peer_id, Peer{}).first;
  }
  Peer& p = it->second;
  if (!p.head || !(*p.head == head)) {
    // News: whatever backoff the old head earned does not apply to the new one.
    p.head = head;
    p.failures = 0;
    p.retry_at_ms = 0;
  }
}

std::vector<std::string> CommitSync::fanoutAddresses(const std::string& except_address) {
  std::vector<std::string> out;
  for (const auto& [id, p] : peers_) {
    if (p.alive && !p.address.empty() && p.address != except_address) out.push_back(p.address);
  }
  if (out.size() > options_.fanout_all_max_peers) {
    rng_.shuffle(out);
    out.resize(options_.fanout);
  }
  return out;
}

void CommitSync::announce(const std::vector<Bytes>& commits, const std::string& except_address) {
  if (commits.empty()) return;
  std::vector<std::string> targets = fanoutAddresses(except_address);
  if (targets.empty()) return;
  // Batches within the message bounds; usually one commit, one batch.
  std::vector<std::vector<Bytes>> batches(1);
  size_t bytes = 0;
  for (const auto& c : commits) {
    if (!batches.back().empty() &&
        (batches.back().size() >= options_.max_range || bytes + c.size() + 64 > options_.max_message_bytes)) {
      batches.emplace_back();
      bytes = 0;
    }
    batches.back().push_back(c);
    bytes += c.size() + 64;
  }
  for (const auto& batch : batches) {
    auto body = std::make_shared<const Bytes>(encodePush(batch));
    for (const auto& to : targets) {
      if (push_queue_.size() >= options_.max_push_queue) {
        push_queue_.pop_front();
        ++counters_.pushes_dropped;
      }
      push_queue_.push_back(QueuedPush{to, body});
    }
  }
}

void CommitSync::backoff(Peer& p, int64_t now_ms) {
  ++p.failures;
  const int shift = std::min(p.failures - 1, 20);
  const int64_t delay = std::min(options_.retry_max_ms, options_.retry_base_ms << shift);
  p.retry_at_ms = now_ms + delay / 2 + static_cast<int64_t>(rng_.uniform(static_cast<uint64_t>(delay / 2) + 1));
}

void CommitSync::startFetch(const std::string& id, Peer& p, CommitRange range) {
  const uint64_t rid = next_id_++;
  p.fetch_in_flight = true;
  ++fetches_in_flight_;
  ++counters_.fetches_sent;
  pending_.emplace(rid, Pending{SyncKind::kFetch, id, p.address, range});
  requests_.push_back(SyncRequest{rid, SyncKind::kFetch, id, p.address, kGetChannel, encodeRangeRequest(range), range});
}

void CommitSync::step(int64_t now_ms, const CommitLog& log) {
  while (pushes_in_flight_ < options_.max_pushes_in_flight && !push_queue_.empty()) {
    QueuedPush q = std::move(push_queue_.front());
    push_queue_.pop_front();
    const uint64_t rid = next_id_++;
    ++pushes_in_flight_;
    ++counters_.pushes_sent;
    pending_.emplace(rid, Pending{SyncKind::kPush, {}, q.address, {}});
    requests_.push_back(SyncRequest{rid, SyncKind::kPush, {}, q.address, kPushChannel, *q.body, {}});
  }
  if (fetches_in_flight_ >= options_.max_fetches_in_flight) return;
  // Peers in random order, so one slow peer is not always asked first.
  std::vector<std::string> ids;
  for (const auto& [id, p] : peers_) {
    if (p.alive && !p.address.empty() && p.head && !p.fetch_in_flight && now_ms >= p.retry_at_ms) ids.push_back(id);
  }
  rng_.shuffle(ids);
  for (const auto& id : ids) {
    if (fetches_in_flight_ >= options_.max_fetches_in_flight) break;
    Peer& p = peers_.at(id);
    std::optional<CommitRange> range = p.refetch ? p.refetch : log.planFetch(*p.head);
    p.refetch.reset();
    if (!range) {
      p.refetch_depth = 0;
      continue;
    }
    // The same range already on its way from another peer: wait for that one.
    bool dup = false;
    for (const auto& [rid, pend] : pending_) dup = dup || (pend.kind == SyncKind::kFetch && pend.range == *range);
    if (dup) continue;
    startFetch(id, p, *range);
  }
}

std::vector<SyncRequest> CommitSync::takeRequests() {
  std::vector<SyncRequest> out = std::move(requests_);
  requests_.clear();
  return out;
}

void CommitSync::onReply(int64_t now_ms, uint64_t id, Result<Bytes> reply, CommitLog& log, LogOutput& out) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending pend = std::move(it->second);
  pending_.erase(it);
  auto peer_it = pend.peer_id.empty() ? peers_.end() : peers_.find(pend.peer_id);

  if (pend.kind == SyncKind::kPush) {
    --pushes_in_flight_;
    if (!reply) {
      ++counters_.push_failures;
      return;
    }
    auto pr = decodePushReply(*reply);
    if (!pr) {
      ++counters_.push_failures;
      return;
    }
    ++counters_.pushes_ok;
    return;
  }

  --fetches_in_flight_;
  Peer* p = peer_it == peers_.end() ? nullptr : &peer_it->second;
  if (p != nullptr) p->fetch_in_flight = false;
  Result<RangeReply> rr = reply ? decodeRangeReply(*reply, options_.max_range) : Result<RangeReply>(reply.status());
  if (!rr) {
    ++counters_.fetch_failures;
    if (p != nullptr) backoff(*p, now_ms);
    return;
  }
  ++counters_.fetches_ok;
  counters_.fetched_commits += rr->commits.size();
  BatchResult br = log.acceptBatch(rr->commits, out);
  counters_.fetched_commits_accepted += br.accepted;
  // A fetched range is not pushed on: whoever is behind fetches too.
  out.announce.clear();
  if (p == nullptr) return;
  if (rr->head.seq > 0) p->head = rr->head;  // its head as of now
  if (br.refetch && p->refetch_depth < options_.max_refetch_depth) {
    // Its chain forks further back: walk back on the same peer at once.
    ++counters_.refetches;
    ++p->refetch_depth;
    p->refetch = br.refetch;
    p->retry_at_ms = now_ms;
    return;
  }
  p->refetch_depth = 0;
  if (br.accepted == 0) {
    ++counters_.fetches_useless;
    backoff(*p, now_ms);
    return;
  }
  p->failures = 0;
  p->retry_at_ms = now_ms;  // more may follow (ranges are capped)
}

Result<Bytes> CommitSync::serveGet(ByteView request, const CommitLog& log) {
  auto range = decodeRangeRequest(request);
  if (!range) {
    ++counters_.get_errors;
    return range.status();
  }
  const uint64_t to = std::min<uint64_t>(range->to, range->from + options_.max_range - 1);
  RangeReply reply;
  reply.head = log.head();
  size_t bytes = 0;
  for (auto& c : log.getCommits(range->from, to)) {
    if (!reply.commits.empty() && bytes + c.size() + 64 > options_.max_message_bytes) break;
    bytes += c.size() + 64;
    reply.commits.push_back(std::move(c));
  }
  ++counters_.gets_served;
  counters_.commits_served += reply.commits.size();
  return encodeRangeReply(reply);
}

Result<PushServed> CommitSync::servePush(const std::string& from_address, ByteView request, CommitLog& log,
                                         LogOutput& out) {
  auto commits = decodePush(request, options_.max_range);
  if (!commits) {
    ++counters_.push_errors;
    return commits.status();
  }
  ++counters_.pushes_received;
  PushServed served;
  for (const auto& c : *commits) {
    SubmitResult r = log.submit(c, out);
    if (r.outcome == Outcome::kAccepted) ++served.accepted;
    if (r.outcome == Outcome::kPending) {
      // We are behind the pusher: it holds this commit at r.seq, so fetch from it.
      for (auto& [id, p] : peers_) {
        if (p.address != from_address) continue;
        if (!p.head || p.head->seq < r.seq) setPeerHead(id, Head{r.seq, r.hash});
      }
    }
  }
  counters_.pushed_commits_accepted += served.accepted;
  served.reply = encodePushReply(PushReply{static_cast<uint32_t>(served.accepted), log.head()});
  return served;
}

int64_t CommitSync::nextWakeMs(const CommitLog& log) const {
  int64_t wake = std::numeric_limits<int64_t>::max();
  for (const auto& [id, p] : peers_) {
    if (!p.alive || !p.head || p.fetch_in_flight) continue;
    if (!p.refetch && !log.planFetch(*p.head)) continue;
    wake = std::min(wake, p.retry_at_ms);
  }
  return wake;
}

nlohmann::json syncToJson(const CommitSync& sync) {
  const auto& c = sync.counters();
  return nlohmann::json{
      {"peers", sync.peerCount()},
      {"fetches_in_flight", sync.fetchesInFlight()},
      {"pushes_in_flight", sync.pushesInFlight()},
      {"push_queue", sync.pushQueueSize()},
      {"pushes_sent", c.pushes_sent},
      {"pushes_ok", c.pushes_ok},
      {"push_failures", c.push_failures},
      {"pushes_dropped", c.pushes_dropped},
      {"pushes_received", c.pushes_received},
      {"pushed_commits_accepted", c.pushed_commits_accepted},
      {"push_errors", c.push_errors},
      {"fetches_sent", c.fetches_sent},
      {"fetches_ok", c.fetches_ok},
      {"fetch_failures", c.fetch_failures},
      {"fetches_useless", c.fetches_useless},
      {"fetched_commits", c.fetched_commits},
      {"fetched_commits_accepted", c.fetched_commits_accepted},
      {"refetches", c.refetches},
      {"gets_served", c.gets_served},
      {"commits_served", c.commits_served},
      {"get_errors", c.get_errors},
  };
}

}  // namespace meshos::commits
