// HealthTracker and HealthProbe: a health check's thresholds and its schedule, without the
// check itself.
//
// - HealthTracker is the sans-IO threshold logic (consecutive failures / successes).
// - HealthProbe repeats one attempt every interval after the initial delay and reports
//   status changes. Whoever builds it says how one attempt runs (the Supervisor: through
//   its Runtime, which runs an exec check in the instance's environment and a TCP or HTTP
//   check against the address). A resource owned by the Supervisor's instance; destroying
//   it abandons an attempt in flight (its answer is ignored).
// Loop thread only; callbacks never run inside the call that started them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "agent/core/timers.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::probes {

enum class HealthStatus { kUnknown, kPassing, kFailing };
std::string_view healthStatusName(HealthStatus s);

// Sans-IO: turns attempt results into a status with thresholds. Starts kUnknown; becomes
// kPassing after success_threshold consecutive successes, kFailing after failure_threshold
// consecutive failures.
class HealthTracker {
 public:
  HealthTracker(int64_t failure_threshold, int64_t success_threshold)
      : failure_threshold_(failure_threshold), success_threshold_(success_threshold) {}
  // Returns true when the status changed.
  bool record(bool ok);
  HealthStatus status() const { return status_; }
  int64_t consecutiveFailures() const { return failures_; }
  int64_t consecutiveSuccesses() const { return successes_; }

 private:
  int64_t failure_threshold_;
  int64_t success_threshold_;
  int64_t failures_ = 0;
  int64_t successes_ = 0;
  HealthStatus status_ = HealthStatus::kUnknown;
};

class HealthProbe {
 public:
  using OnChange = std::function<void(HealthStatus status, const std::string& detail)>;
  // Runs one attempt; done(ok, detail) later, on the loop.
  using Attempt = std::function<void(std::function<void(bool ok, std::string detail)> done)>;
  HealthProbe(Timers& timers, spec::HealthCheck check, Attempt attempt, OnChange on_change);
  ~HealthProbe();
  HealthProbe(const HealthProbe&) = delete;
  HealthProbe& operator=(const HealthProbe&) = delete;

  // Schedules the first attempt after the initial delay; then one every interval.
  void start();
  // Cancels pending attempts; an attempt in flight is ignored when it completes.
  void stop();
  HealthStatus status() const { return tracker_.status(); }
  int64_t attempts() const { return attempts_; }
  const std::string& lastDetail() const { return last_detail_; }

 private:
  void schedule(int64_t delay_ms);
  void attempt();

  Timers& timers_;
  spec::HealthCheck check_;
  Attempt attempt_fn_;
  OnChange on_change_;
  HealthTracker tracker_;
  TimerId timer_ = 0;
  bool running_ = false;
  int64_t attempts_ = 0;
  std::string last_detail_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace meshos::probes
