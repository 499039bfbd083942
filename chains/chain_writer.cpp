#include "chains/chain_writer.h"

#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "chains/rocks_slice.h"

namespace meshos::chains {

Status ChainWriterOptions::validate() const {
  if (checkpoint_every < 1 || checkpoint_every > 1'000'000'000) {
    return Status::invalid("chains.checkpoint_every must be in 1..1000000000");
  }
  if (queue_capacity < 1 || queue_capacity > 10'000'000) {
    return Status::invalid("chains.queue_capacity must be in 1..10000000");
  }
  if (queue_bytes_max < kMaxPayloadBytes + kMaxKindBytes) {
    return Status::invalid("chains.queue_bytes_max must be at least " +
                           std::to_string(kMaxPayloadBytes + kMaxKindBytes));
  }
  if (group_records_max < 1 || group_bytes_max < 1) {
    return Status::invalid("chains group limits must be positive");
  }
  if (retry_initial_ms < 1 || retry_max_ms < retry_initial_ms) {
    return Status::invalid("chains retry backoff must satisfy 1 <= initial <= max");
  }
  return Status::ok();
}

Result<std::unique_ptr<ChainWriter>> ChainWriter::create(ChainStore& store, const SigningKey& key,
                                                         const Clock& clock, Poster& poster,
                                                         const ChainWriterOptions& options,
                                                         Callbacks callbacks) {
  MESHOS_RETURN_IF_ERROR(options.validate());
  if (store.readOnly()) return Status::denied("cannot write chains to a read-only store");
  std::unique_ptr<ChainWriter> w(
      new ChainWriter(store, key, clock, poster, options, std::move(callbacks)));
  for (ChainName c : kAllChains) {
    size_t i = chainIndex(c);
    auto head = store.head(c);
    if (!head) return head.status();
    auto first = store.firstSeq(c);
    if (!first) return first.status();
    auto cp = store.lastCheckpoint(c);
    if (!cp) return cp.status();
    w->loop_[i].appended = *head;
    w->loop_[i].durable = *head;
    w->loop_[i].first_seq = *first;
    w->writer_[i].first_seq = *first;
    w->writer_[i].first_seq_published = *first;
    w->writer_[i].durable_seq = head->seq;
    w->writer_[i].last_checkpoint_seq = cp->has_value() ? (*cp)->seq : 0;
  }
  if (options.loop_timers == nullptr) w->thread_ = std::thread([raw = w.get()] { raw->run(); });
  return w;
}

ChainWriter::ChainWriter(ChainStore& store, const SigningKey& key, const Clock& clock,
                         Poster& poster, const ChainWriterOptions& options, Callbacks callbacks)
    : store_(store),
      key_(key),
      clock_(clock),
      poster_(poster),
      options_(options),
      callbacks_(std::move(callbacks)),
      hashers_{RecordHasher(ChainName::kAudit), RecordHasher(ChainName::kLog),
               RecordHasher(ChainName::kFailure)} {}

ChainWriter::~ChainWriter() {
  if (loop_timer_ != 0) options_.loop_timers->cancel(loop_timer_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<AppendTicket> ChainWriter::append(ChainName chain, std::string_view kind, ByteView payload,
                                         AckFn on_ack) {
  LoopChain& lc = loop_[chainIndex(chain)];
  if (closed_) return Status::unavailable("chain writer is closed");
  if (kind.size() > kMaxKindBytes) {
    return Status::invalid("record kind is " + std::to_string(kind.size()) + " bytes (max " +
                           std::to_string(kMaxKindBytes) + ")");
  }
  if (payload.size() > kMaxPayloadBytes) {
    return Status::invalid("record payload is " + std::to_string(payload.size()) + " bytes (max " +
                           std::to_string(kMaxPayloadBytes) + ")");
  }
  uint64_t bytes = kind.size() + payload.size();
  if (pending_total_ >= options_.queue_capacity ||
      pending_bytes_total_ + bytes > options_.queue_bytes_max) {
    ++lc.dropped;
    return Status::overloaded("chain queue full (" + std::to_string(pending_total_) +
                              " records pending)");
  }

  // Hashed over the caller's bytes and encoded straight from them: no copy of the
  // payload other than into the encoded record.
  RecordView rec;
  rec.seq = lc.appended.seq + 1;
  rec.time_ms = clock_.wallMs();
  rec.kind = kind;
  rec.payload = payload;
  rec.prev_hash = lc.appended.hash;
  rec.hash = hashers_[chainIndex(chain)].hash(rec);
  Pending p;
  p.chain = chain;
  p.seq = rec.seq;
  p.hash = rec.hash;
  p.data_bytes = bytes;
  encodeRecordInto(rec, encode_scratch_, p.value);

  AppendTicket ticket{chain, p.seq, p.hash};
  lc.appended = {p.seq, p.hash};
  ++lc.appended_count;
  ++pending_total_;
  pending_bytes_total_ += bytes;
  lc.pending_bytes.emplace_back(p.seq, bytes);
  if (on_ack) lc.callbacks.emplace_back(ticket, std::move(on_ack));

  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(p));
    wake = writer_waiting_;
  }
  if (wake) cv_.notify_one();
  if (options_.loop_timers != nullptr) kickLoop(options_.loop_sync_delay_ms);
  return ticket;
}

void ChainWriter::onAcked(const AckEvent& ev, uint64_t bytes) {
  LoopChain& lc = loop_[chainIndex(ev.chain)];
  if (ev.last_seq <= lc.durable.seq) return;
  uint64_t n = ev.last_seq - std::max(ev.first_seq - 1, lc.durable.seq);
  lc.durable = {ev.last_seq, ev.last_hash};
  if (lc.first_seq == 0) lc.first_seq = ev.first_seq;
  lc.acked_count += n;
  lc.bytes += bytes;
  pending_total_ -= std::min<uint64_t>(n, pending_total_);
  while (!lc.pending_bytes.empty() && lc.pending_bytes.front().first <= ev.last_seq) {
    pending_bytes_total_ -= std::min(lc.pending_bytes.front().second, pending_bytes_total_);
    lc.pending_bytes.pop_front();
  }
  if (callbacks_.on_acked) callbacks_.on_acked(ev);
  while (!lc.callbacks.empty() && lc.callbacks.front().first.seq <= ev.last_seq) {
    auto [ticket, fn] = std::move(lc.callbacks.front());
    lc.callbacks.pop_front();
    fn(ticket);
  }
}

ChainSummary ChainWriter::summary(ChainName chain) const {
  const LoopChain& lc = loop_[chainIndex(chain)];
  const WriterChain& wc = writer_[chainIndex(chain)];
  ChainSummary s;
  s.chain = chain;
  uint64_t first = wc.first_seq_published.load();
  s.first_seq = first != 0 ? first : lc.first_seq;
  s.head = lc.durable;
  s.appended_head = lc.appended;
  s.length = (s.head.seq == 0 || s.first_seq == 0) ? 0 : s.head.seq - s.first_seq + 1;
  s.last_checkpoint_seq = wc.last_checkpoint_seq.load();
  s.appended = lc.appended_count;
  s.acked = lc.acked_count;
  s.pending = lc.appended_count - lc.acked_count;
  s.dropped = lc.dropped;
  s.failed_writes = wc.failed_writes.load();
  s.retries = wc.retries.load();
  s.bytes = lc.bytes;
  s.checkpoints = wc.checkpoints.load();
  s.pruned = wc.pruned.load();
  return s;
}

Status ChainWriter::close(int64_t timeout_ms) {
  if (closed_) return Status::ok();
  closed_ = true;
  if (options_.loop_timers != nullptr) return closeOnLoop();
  bool done;
  {
    std::unique_lock<std::mutex> lock(mu_);
    final_requested_ = true;
    cv_.notify_all();
    done = done_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0)),
                             [this] { return final_done_; });
    if (!done) stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!done) {
    return Status::deadline("chain writer did not flush within " + std::to_string(timeout_ms) +
                            " ms; " + std::to_string(pending_total_) + " records not acked");
  }
  return Status::ok();
}

// Loop mode: the loop is this thread, so nothing can wait for a backoff; each queued group
// gets a few immediate attempts, then close gives up on what is left (not acked, so not
// promised).
Status ChainWriter::closeOnLoop() {
  if (loop_timer_ != 0) options_.loop_timers->cancel(loop_timer_);
  loop_timer_ = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    final_requested_ = true;
  }
  constexpr int kAttemptsPerGroup = 3;
  int failures = 0;
  for (;;) {
    Step st = writeStep();
    if (st.kind == Step::kFinished) return Status::ok();
    if (st.kind == Step::kRetry && ++failures >= kAttemptsPerGroup) break;
    if (st.kind != Step::kRetry) failures = 0;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  return Status::deadline("chain writer could not flush at close; " + std::to_string(pending_total_) +
                          " records not acked");
}

void ChainWriter::kickLoop(int64_t delay_ms) {
  if (loop_timer_ != 0 || closed_) return;
  loop_timer_ = options_.loop_timers->after(delay_ms, [this] {
    loop_timer_ = 0;
    Step st = writeStep();
    if (st.kind == Step::kMore) kickLoop(options_.loop_sync_delay_ms);
    if (st.kind == Step::kRetry) kickLoop(st.retry_in_ms);
  });
}

void ChainWriter::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      writer_waiting_ = true;
      cv_.wait(lock, [this] { return stop_ || final_requested_ || !queue_.empty() || retry_; });
      writer_waiting_ = false;
      if (stop_) return;
    }
    Step st = writeStep();
    if (st.kind == Step::kFinished) return;
    if (st.kind == Step::kRetry) {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(st.retry_in_ms), [this] { return stop_; })) return;
    }
  }
}

ChainWriter::Step ChainWriter::writeStep() {
  if (retry_) {
    GroupWrite w = std::move(*retry_);
    retry_.reset();
    return attempt(std::move(w));
  }
  if (auto group = takeGroup()) return attempt(std::move(*group));
  bool finishing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finishing = final_requested_ && queue_.empty();
  }
  if (!finishing) return {};
  if (auto final_write = finalCheckpoints()) return attempt(std::move(*final_write));
  std::lock_guard<std::mutex> lock(mu_);
  final_done_ = true;
  done_cv_.notify_all();
  return {Step::kFinished, 0};
}

std::optional<ChainWriter::GroupWrite> ChainWriter::takeGroup() {
  std::vector<Pending> group;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t bytes = 0;
    while (!queue_.empty() && group.size() < options_.group_records_max &&
           (group.empty() || bytes + queue_.front().data_bytes <= options_.group_bytes_max)) {
      bytes += queue_.front().data_bytes;
      group.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  if (group.empty()) return std::nullopt;
  size_t estimate = 1024;
  for (const Pending& p : group) estimate += p.value.size() + 32;
  GroupWrite w;
  w.batch = std::make_unique<rocksdb::WriteBatch>(estimate);
  w.records = group.size();
  w.backoff_ms = options_.retry_initial_ms;
  int64_t now_ms = clock_.wallMs();
  for (const Pending& p : group) {
    (void)w.batch->Put(store_.cf(p.chain), slice(recordKey(p.seq)), slice(p.value));
    auto& t = w.touched[chainIndex(p.chain)];
    if (!t.any) t.first = p.seq;
    t.any = true;
    t.last = p.seq;
    t.last_hash = p.hash;
    t.bytes += p.data_bytes;
    if (p.seq % options_.checkpoint_every == 0) {
      Checkpoint cp = signCheckpoint(p.chain, p.seq, p.hash, now_ms, key_);
      (void)w.batch->Put(store_.metaCf(p.chain), slice(checkpointKey(cp.seq)), slice(encodeCheckpoint(cp)));
      t.checkpoint_seq = cp.seq;
      ++t.checkpoints;
    }
  }
  for (ChainName c : kAllChains) {
    const auto& t = w.touched[chainIndex(c)];
    if (!t.any) continue;
    w.chains.push_back(c);
    (void)w.batch->Put(store_.metaCf(c), slice(std::string(kHeadKey)), slice(encodeHead(ChainHead{t.last, t.last_hash})));
  }
  return w;
}

// At close: a signed checkpoint at each chain's head that has none yet.
std::optional<ChainWriter::GroupWrite> ChainWriter::finalCheckpoints() {
  GroupWrite w;
  w.batch = std::make_unique<rocksdb::WriteBatch>();
  w.final_checkpoints = true;
  w.backoff_ms = options_.retry_initial_ms;
  int64_t now_ms = clock_.wallMs();
  for (ChainName c : kAllChains) {
    WriterChain& wc = writer_[chainIndex(c)];
    if (wc.durable_seq == 0 || wc.durable_seq == wc.last_checkpoint_seq) continue;
    auto head = store_.head(c);
    if (!head || head->seq != wc.durable_seq) {
      spdlog::error("chain {}: head unreadable at shutdown checkpoint: {}", chainNameString(c),
                    head.status().toString());
      continue;
    }
    Checkpoint cp = signCheckpoint(c, head->seq, head->hash, now_ms, key_);
    (void)w.batch->Put(store_.metaCf(c), slice(checkpointKey(cp.seq)), slice(encodeCheckpoint(cp)));
    w.chains.push_back(c);
    auto& t = w.touched[chainIndex(c)];
    t.checkpoint_seq = cp.seq;
    t.checkpoints = 1;
  }
  if (w.chains.empty()) return std::nullopt;
  return w;
}

ChainWriter::Step ChainWriter::retryLater(GroupWrite w) {
  Step st{Step::kRetry, w.backoff_ms};
  w.backoff_ms = std::min(w.backoff_ms * 2, options_.retry_max_ms);
  retry_ = std::move(w);
  return st;
}

void ChainWriter::noteFence(const Status& why) {
  Fence f;
  if (why.message().starts_with("disk full")) f.free_bytes = store_.freeBytes();
  f.since_ms = clock_.monotonicMs();
  fence_ = f;
}

bool ChainWriter::mayReopen() const {
  if (!fence_ || !fence_->free_bytes) return true;
  if (clock_.monotonicMs() - fence_->since_ms >= kFenceRecheckMs) return true;
  const std::optional<uint64_t> now = store_.freeBytes();
  return !now || *now > *fence_->free_bytes;
}

ChainWriter::Step ChainWriter::attempt(GroupWrite w) {
  // A fenced database (the last reopen could not open it for writing) is reopened before
  // the write; on a full disk only once space may be back, and quietly until then.
  if (fence_ && !mayReopen()) return retryLater(std::move(w));
  ++w.attempt;
  if (w.attempt > 1) {
    for (ChainName c : w.chains) ++writer_[chainIndex(c)].retries;
  }
  Status s;
  if (fence_) {
    s = store_.reopen();
    if (s) fence_.reset();
  }
  if (!fence_) s = store_.writeBatch(*w.batch, /*sync=*/true);
  if (s) {
    acknowledge(w);
    if (w.final_checkpoints) {
      std::lock_guard<std::mutex> lock(mu_);
      final_done_ = true;
      done_cv_.notify_all();
      return {Step::kFinished, 0};
    }
    return {Step::kMore, 0};
  }
  for (ChainName c : w.chains) ++writer_[chainIndex(c)].failed_writes;
  WriteFailure f{s, w.attempt, w.records, w.backoff_ms};
  // Reported once to the loop (which tells the operator); a long outage retries quietly.
  spdlog::debug("chain write of {} records failed (attempt {}): {}", w.records, w.attempt, s.toString());
  poster_.post([this, weak = std::weak_ptr<Alive>(alive_), f] {
    if (weak.expired()) return;
    if (callbacks_.on_write_failed) callbacks_.on_write_failed(f);
  });
  if (fence_) {
    noteFence(s);  // the reopen failed, and s says why
  } else {
    // A database whose write failed keeps refusing writes: the retry goes to a reopened one.
    Status r = store_.reopen();
    if (!r) {
      spdlog::debug("chain database reopen failed: {}", r.toString());
      noteFence(r);
    }
  }
  return retryLater(std::move(w));
}

void ChainWriter::acknowledge(const GroupWrite& w) {
  for (ChainName c : w.chains) {
    const auto& t = w.touched[chainIndex(c)];
    WriterChain& wc = writer_[chainIndex(c)];
    if (t.checkpoint_seq != 0) wc.last_checkpoint_seq = t.checkpoint_seq;
    wc.checkpoints += t.checkpoints;
    if (w.final_checkpoints) continue;
    wc.durable_seq = t.last;
    if (wc.first_seq == 0) {
      wc.first_seq = t.first;
      wc.first_seq_published = t.first;
    }
    AckEvent ev{c, t.first, t.last, t.last_hash};
    uint64_t bytes = t.bytes;
    poster_.post([this, weak = std::weak_ptr<Alive>(alive_), ev, bytes] {
      if (weak.expired()) return;
      onAcked(ev, bytes);
    });
    maybePrune(c);
  }
}

void ChainWriter::maybePrune(ChainName chain) {
  size_t i = chainIndex(chain);
  uint64_t max = options_.max_records[i];
  WriterChain& wc = writer_[i];
  if (max == 0 || wc.first_seq == 0) return;
  uint64_t length = wc.durable_seq - wc.first_seq + 1;
  uint64_t slack = std::max<uint64_t>(1, max / 8);
  if (length < max + slack) return;
  uint64_t new_first = wc.durable_seq - max + 1;
  // The genesis is a checkpoint of the record just before the new first one. Its hash is
  // recomputed from its content, so pruning never launders a damaged record.
  auto last_deleted = store_.get(chain, new_first - 1);
  auto next = store_.get(chain, new_first);
  Status problem;
  if (!last_deleted) {
    problem = last_deleted.status();
  } else if (!next) {
    problem = next.status();
  } else if (hashers_[i].hash(*last_deleted) != last_deleted->hash ||
             next->prev_hash != last_deleted->hash) {
    problem = Status::corruption("record " + std::to_string(new_first - 1) +
                                 " does not hold; not pruning over it");
  }
  if (!problem) {
    ++wc.failed_writes;
    spdlog::error("chain {}: pruning skipped: {}", chainNameString(chain), problem.toString());
    return;
  }
  Checkpoint genesis =
      signCheckpoint(chain, new_first - 1, last_deleted->hash, clock_.wallMs(), key_);
  rocksdb::WriteBatch batch;
  rocksdb::ColumnFamilyHandle* cf = store_.cf(chain);
  (void)batch.DeleteRange(cf, slice(recordKey(wc.first_seq)), slice(recordKey(new_first)));
  rocksdb::ColumnFamilyHandle* meta = store_.metaCf(chain);
  (void)batch.DeleteRange(meta, slice(checkpointKey(0)), slice(checkpointKey(new_first)));
  std::string gv = encodeCheckpoint(genesis);
  (void)batch.Put(meta, slice(std::string(kGenesisKey)), slice(gv));
  Status s = store_.writeBatch(batch, /*sync=*/true);
  if (!s) {
    ++wc.failed_writes;
    spdlog::warn("chain {}: pruning write failed (will try again): {}", chainNameString(chain),
                 s.toString());
    Status r = store_.reopen();
    if (!r) {
      spdlog::warn("chain database reopen failed: {}", r.toString());
      noteFence(r);  // the next write waits for space like any other
    }
    return;
  }
  wc.pruned += new_first - wc.first_seq;
  wc.first_seq = new_first;
  wc.first_seq_published = new_first;
}

}  // namespace meshos::chains
