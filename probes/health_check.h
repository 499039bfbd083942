// Health checks: exec (a command exits 0), TCP (a connection opens) and HTTP (GET answers
// 2xx/3xx), run asynchronously on a libuv loop; never blocking it.
//
// - runCommand() spawns a bounded command (own process group, output captured and capped,
//   killed with its group on timeout). The runtime's `exec` uses it too.
// - checkOnce() runs one attempt of a spec::HealthCheck.
// - HealthTracker is the sans-IO threshold logic (consecutive failures / successes).
// - HealthProbe repeats a check on its interval after its initial delay and reports status
//   changes. It is a resource owned by the Supervisor's instance; destroying it abandons an
//   attempt in flight (whose handles close on their own).
// Everything runs on the loop thread; callbacks never run inside the call that started them.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/status.h"
#include "agent/core/timers.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::probes {

// Where a command runs: the daemon's environment.
struct CommandContext {
  std::vector<std::string> env;  // "KEY=value"
  std::string cwd;               // empty = inherit
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
};

struct CommandResult {
  int exit_code = -1;  // -1 when a signal ended it
  int term_signal = 0;
  std::string output;  // stdout + stderr interleaved, at most max_output bytes
  bool truncated = false;
  bool timed_out = false;
};

// Spawns argv; `done` runs on the loop when it has exited and its output is drained (or
// timeout_ms passed, after which the whole group is SIGKILLed). A spawn failure (missing
// binary...) is returned here and `done` is not called.
Status runCommand(uv_loop_t* loop, const std::vector<std::string>& argv, const CommandContext& ctx,
                  int64_t timeout_ms, size_t max_output,
                  std::function<void(const CommandResult&)> done);

// One attempt of a check. `done(ok, detail)` runs later on the loop; never inline.
void checkOnce(uv_loop_t* loop, const spec::HealthCheck& check, const CommandContext& ctx,
               std::function<void(bool ok, const std::string& detail)> done);

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
  HealthProbe(uv_loop_t* loop, Timers& timers, spec::HealthCheck check, CommandContext ctx,
              OnChange on_change);
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

  uv_loop_t* loop_;
  Timers& timers_;
  spec::HealthCheck check_;
  CommandContext ctx_;
  OnChange on_change_;
  HealthTracker tracker_;
  TimerId timer_ = 0;
  bool running_ = false;
  int64_t attempts_ = 0;
  std::string last_detail_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace meshos::probes
