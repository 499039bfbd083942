// InventoryProbe: samples the inventory every interval_ms on the Workers (procfs reads
// are quick, but statvfs on a hung mount is not), and hands each result to the loop
// thread. What a sample is comes from the owner (the agent: sampleInventory() over /proc;
// the simulator: the simulated host's figures). At most one sample is in flight; the next is scheduled interval_ms after the last
// one finished. A failed sample is recorded (counted, last error kept) and skipped: last()
// keeps the last good inventory, and the callback sees the error so the node can log it and
// mark the probe failing in its health.
//
// A resource owned by the Node; every method runs on the loop thread. Destroying it (or
// stop()) cancels the timer; a sample still running on the pool finishes there and its result
// is dropped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "agent/core/status.h"
#include "agent/core/timers.h"
#include "agent/core/workers.h"
#include "agent/state/node_report.h"

namespace meshos::probes {

class InventoryProbe {
 public:
  struct Options {
    int64_t interval_ms = 5000;  // [node] inventory_interval_ms
  };
  struct Stats {
    uint64_t samples = 0;   // finished, good or bad
    uint64_t failures = 0;
    uint64_t consecutive_failures = 0;
    std::string last_error;  // empty after a good sample
  };
  // Runs on the loop thread after each sample.
  using Callback = std::function<void(const Result<state::Inventory>&)>;
  // Runs on a worker thread.
  using Sampler = std::function<Result<state::Inventory>()>;

  InventoryProbe(Workers& workers, Timers& timers, Options options, Sampler sampler, Callback on_sample);
  ~InventoryProbe();
  InventoryProbe(const InventoryProbe&) = delete;
  InventoryProbe& operator=(const InventoryProbe&) = delete;

  // Samples now, then every interval_ms. Calling it again while running does nothing.
  void start();
  void stop();

  const std::optional<state::Inventory>& last() const { return last_; }
  const Stats& stats() const { return stats_; }
  bool failing() const { return stats_.consecutive_failures > 0; }

 private:
  void sampleNow();
  void finished(Result<state::Inventory> result);

  Workers& workers_;
  Timers& timers_;
  Options options_;
  Sampler sampler_;
  Callback on_sample_;
  bool running_ = false;
  bool in_flight_ = false;
  std::optional<TimerId> timer_;
  std::optional<state::Inventory> last_;
  Stats stats_;
  // Shared with a sample in flight, which checks it before touching this object.
  std::shared_ptr<InventoryProbe*> self_;
};

}  // namespace meshos::probes
