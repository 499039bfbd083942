// ChainWriter: appends records to the hash chains and makes them durable by group commit.
//
// The loop thread calls append(): it assigns the record's seq, time and hash at once (so
// the caller can refer to it) and queues it; the queue is bounded by records and bytes, and
// an append over the bound is refused with kOverloaded and counted as dropped (never
// silent). One writer thread takes everything queued (up to a group limit), writes it as
// one RocksDB WriteBatch with sync=true — records, each touched chain's head, and a signed
// checkpoint for every seq divisible by checkpoint_every — and only after that sync has
// returned posts the acknowledgements back to the loop through the Poster. A record counts
// as written only once acked. A failed write (disk full, I/O error) is counted, reported
// through on_write_failed on the loop, and the same batch is retried with exponential
// backoff until it succeeds or the writer is closed; retrying is safe because the batch is
// idempotent (same keys, same values), and each retry goes to a reopened database.
//
// Where the writes run: on a writer thread of its own (the agent), or, with
// options.loop_timers set, on the loop through those timers, one group per timer (the
// simulator: no thread, so a run repeats from its seed; a sync then takes
// loop_sync_delay_ms of the timers' time). Both run the same writeStep().
//
// Pruning (max_records per chain) also runs on the writer thread: it deletes the oldest
// records and stores a freshly signed checkpoint of the last deleted record as genesis 'g'.
//
// Ownership and threads: the agent owns the ChainWriter, created and destroyed on the loop
// thread; the ChainStore, Clock, Poster and SigningKey must outlive it. Every public method
// is loop-thread only. Callbacks run on the loop thread, never inside append(). Posted
// callbacks that arrive after the writer was destroyed are ignored.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/crypto.h"
#include "agent/core/status.h"
#include "agent/core/timers.h"
#include "chains/chain_format.h"
#include "chains/chain_store.h"

namespace rocksdb {
class WriteBatch;
}

namespace meshos::chains {

struct ChainWriterOptions {
  uint64_t checkpoint_every = 1000;   // K: sign a checkpoint at every seq divisible by K
  size_t queue_capacity = 65536;      // appended but not yet acked records, all chains
  size_t queue_bytes_max = 64 << 20;  // their payload + kind bytes
  size_t group_records_max = 16384;   // records per WriteBatch
  size_t group_bytes_max = 8 << 20;   // payload bytes per WriteBatch
  // Per chain (indexed by chainIndex): keep at most this many records; 0 = unlimited.
  // Pruning starts once a chain is max_records/8 (at least 1) over the limit and brings it
  // back to max_records.
  std::array<uint64_t, kChainCount> max_records{0, 0, 0};
  int64_t retry_initial_ms = 10;
  // Short, so writes resume within a quarter second of space returning; while the disk
  // stays full a retry costs one free-space check (see ChainWriter::Fence).
  int64_t retry_max_ms = 250;
  // Null: a writer thread. Set: writes run on the loop through these timers (see above).
  Timers* loop_timers = nullptr;
  int64_t loop_sync_delay_ms = 1;

  Status validate() const;
};

struct AppendTicket {
  ChainName chain = ChainName::kAudit;
  uint64_t seq = 0;
  Hash256 hash{};
};

// Records [first_seq, last_seq] of one chain are durable.
struct AckEvent {
  ChainName chain = ChainName::kAudit;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  Hash256 last_hash{};
};

struct WriteFailure {
  Status status;
  uint64_t attempt = 0;     // 1 for the first failure of this batch
  size_t records = 0;       // records in the failed batch
  int64_t retry_in_ms = 0;  // -1: given up (writer closing)
};

// What the snapshot shows for one chain.
struct ChainSummary {
  ChainName chain = ChainName::kAudit;
  uint64_t first_seq = 0;   // oldest stored record (0: empty)
  uint64_t length = 0;      // durable records stored (head - first + 1)
  ChainHead head;           // durable head
  ChainHead appended_head;  // including records not yet durable
  uint64_t last_checkpoint_seq = 0;
  uint64_t appended = 0;  // since this writer started
  uint64_t acked = 0;
  uint64_t pending = 0;        // appended - acked
  uint64_t dropped = 0;        // appends refused because the queue was full
  uint64_t failed_writes = 0;  // failed batch writes that included this chain
  uint64_t retries = 0;
  uint64_t bytes = 0;        // payload + kind bytes acked
  uint64_t checkpoints = 0;  // checkpoints written by this writer
  uint64_t pruned = 0;       // records deleted by retention
};

class ChainWriter {
 public:
  using AckFn = std::function<void(const AppendTicket&)>;
  struct Callbacks {
    std::function<void(const AckEvent&)> on_acked;             // once per chain per group
    std::function<void(const WriteFailure&)> on_write_failed;  // each failed attempt
  };

  // Reads each chain's head from the store and starts the writer thread.
  static Result<std::unique_ptr<ChainWriter>> create(ChainStore& store, const SigningKey& key,
                                                     const Clock& clock, Poster& poster,
                                                     const ChainWriterOptions& options,
                                                     Callbacks callbacks = {});
  // Stops the writer thread without waiting for the queue: call close() first for a clean
  // shutdown. Records not yet acked may or may not be on disk.
  ~ChainWriter();
  ChainWriter(const ChainWriter&) = delete;
  ChainWriter& operator=(const ChainWriter&) = delete;

  // Queues a record. kOverloaded when the queue is full (counted as dropped),
  // kInvalidArgument for an oversized kind/payload, kUnavailable after close().
  // on_ack (optional) runs on the loop once the record is durable.
  Result<AppendTicket> append(ChainName chain, std::string_view kind, ByteView payload,
                              AckFn on_ack = {});
  Result<AppendTicket> append(ChainName chain, std::string_view kind, std::string_view payload,
                              AckFn on_ack = {}) {
    return append(chain, kind, asBytes(payload), std::move(on_ack));
  }

  // Clean shutdown: refuses further appends, waits until everything queued is durable,
  // signs a checkpoint at each chain's head, and returns once that is synced (blocking the
  // calling thread). kDeadlineExceeded if that did not finish within timeout_ms; the
  // writer thread is stopped either way. Acks for the flushed records are posted as usual.
  Status close(int64_t timeout_ms);

  ChainSummary summary(ChainName chain) const;
  ChainHead appendedHead(ChainName chain) const { return loop_[chainIndex(chain)].appended; }
  ChainHead durableHead(ChainName chain) const { return loop_[chainIndex(chain)].durable; }
  uint64_t pendingTotal() const { return pending_total_; }
  bool closed() const { return closed_; }
  const ChainWriterOptions& options() const { return options_; }

 private:
  // A record encoded on the loop thread (one allocation: its final bytes), so the writer
  // thread only copies it into the WriteBatch.
  struct Pending {
    ChainName chain = ChainName::kAudit;
    uint64_t seq = 0;
    Hash256 hash{};
    uint64_t data_bytes = 0;  // kind + payload
    std::string value;        // the encoded ChainRecord
  };
  struct LoopChain {
    ChainHead appended;
    ChainHead durable;
    uint64_t first_seq = 0;
    uint64_t appended_count = 0;
    uint64_t acked_count = 0;
    uint64_t dropped = 0;
    uint64_t bytes = 0;
    std::deque<std::pair<AppendTicket, AckFn>> callbacks;
    std::deque<std::pair<uint64_t, uint64_t>> pending_bytes;  // (seq, bytes) for the bound
  };
  struct WriterChain {
    uint64_t first_seq = 0;
    uint64_t durable_seq = 0;
    std::atomic<uint64_t> last_checkpoint_seq{0};
    std::atomic<uint64_t> failed_writes{0};
    std::atomic<uint64_t> retries{0};
    std::atomic<uint64_t> checkpoints{0};
    std::atomic<uint64_t> pruned{0};
    std::atomic<uint64_t> first_seq_published{0};
  };
  struct Alive {};

  // A batch built but not yet durable: retried (after a reopen) until it is.
  struct GroupWrite {
    std::unique_ptr<rocksdb::WriteBatch> batch;
    size_t records = 0;
    bool final_checkpoints = false;
    struct Touched {
      bool any = false;
      uint64_t first = 0, last = 0;
      Hash256 last_hash{};
      uint64_t bytes = 0, checkpoint_seq = 0, checkpoints = 0;
    };
    std::array<Touched, kChainCount> touched{};
    std::vector<ChainName> chains;
    uint64_t attempt = 0;
    int64_t backoff_ms = 0;
  };
  struct Step {
    enum Kind { kIdle, kMore, kRetry, kFinished } kind = kIdle;
    int64_t retry_in_ms = 0;
  };

  ChainWriter(ChainStore& store, const SigningKey& key, const Clock& clock, Poster& poster,
              const ChainWriterOptions& options, Callbacks callbacks);
  void run();  // writer thread
  // Writer context (thread, or loop timer): one write attempt of the retry, the next group,
  // or (once closing with nothing queued) the final checkpoints.
  Step writeStep();
  std::optional<GroupWrite> takeGroup();
  std::optional<GroupWrite> finalCheckpoints();
  // One attempt; on success acks and prunes, on failure reports, reopens, keeps it in retry_.
  Step attempt(GroupWrite write);
  // Keeps the write for a later attempt, after its backoff (which then doubles).
  Step retryLater(GroupWrite write);
  // After a reopen that could not open for writing: what a retry needs to try again.
  void noteFence(const Status& why);
  bool mayReopen() const;
  void acknowledge(const GroupWrite& write);
  void kickLoop(int64_t delay_ms);  // loop mode: schedules writeStep()
  Status closeOnLoop();
  void maybePrune(ChainName chain);
  void onAcked(const AckEvent& ev, uint64_t bytes);  // loop thread

  ChainStore& store_;
  const SigningKey& key_;
  const Clock& clock_;
  Poster& poster_;
  const ChainWriterOptions options_;
  Callbacks callbacks_;
  std::array<RecordHasher, kChainCount> hashers_;
  std::shared_ptr<Alive> alive_ = std::make_shared<Alive>();

  // Loop thread only.
  std::array<LoopChain, kChainCount> loop_;
  std::vector<uint64_t> encode_scratch_;
  uint64_t pending_total_ = 0;
  uint64_t pending_bytes_total_ = 0;
  bool closed_ = false;

  // Shared, under mu_.
  std::mutex mu_;
  std::condition_variable cv_;       // wakes the writer
  std::condition_variable done_cv_;  // wakes close()
  std::deque<Pending> queue_;
  bool writer_waiting_ = false;
  bool stop_ = false;             // stop now, even with work left
  bool final_requested_ = false;  // drain, checkpoint, then exit
  bool final_done_ = false;
  std::optional<GroupWrite> retry_;  // writer context only
  // Writer context: the database is fenced (open read-only, the last reopen failed). On a
  // full disk a reopen costs two database opens, so a retry reopens only once free space
  // grew past what it was at the fence, when free space cannot be read, or after
  // kFenceRecheckMs (space can come back as inodes, which free bytes do not show).
  static constexpr int64_t kFenceRecheckMs = 5000;
  struct Fence {
    std::optional<uint64_t> free_bytes;  // set only when the disk was full
    int64_t since_ms = 0;                // monotonic
  };
  std::optional<Fence> fence_;
  TimerId loop_timer_ = 0;           // loop mode

  // Writer thread only (the atomics are read by the loop for the summary).
  std::array<WriterChain, kChainCount> writer_;
  std::thread thread_;
};

}  // namespace meshos::chains
