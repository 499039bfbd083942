#include "agent/runtime/supervisor_core.h"

#include <algorithm>
#include <cmath>

namespace meshos::runtime {

int64_t backoffDelayMs(const spec::Backoff& b, int64_t attempt, Rng& rng) {
  if (attempt < 1) attempt = 1;
  double d = static_cast<double>(b.initial_ms) *
             std::pow(b.factor, static_cast<double>(std::min<int64_t>(attempt - 1, 64)));
  d = std::min(d, static_cast<double>(b.max_ms));
  if (b.jitter > 0) d *= 1.0 + b.jitter * (2.0 * rng.unit() - 1.0);
  d = std::clamp(d, 0.0, static_cast<double>(b.max_ms));
  return static_cast<int64_t>(d);
}

bool CrashLoopGate::recordCrash(int64_t now_ms) {
  if (c_.max_crashes <= 0) return false;
  crashes_.push_back(now_ms);
  while (!crashes_.empty() && crashes_.front() <= now_ms - c_.window_ms) crashes_.pop_front();
  while (crashes_.size() > static_cast<size_t>(c_.max_crashes)) crashes_.pop_front();
  if (crashes_.size() >= static_cast<size_t>(c_.max_crashes)) {
    crashes_.clear();
    return true;
  }
  return false;
}

size_t CrashLoopGate::crashesInWindow(int64_t now_ms) const {
  return static_cast<size_t>(std::count_if(crashes_.begin(), crashes_.end(), [&](int64_t t) {
    return t > now_ms - c_.window_ms;
  }));
}

bool isSuccessExit(const spec::DaemonSpec& spec, const ExitInfo& exit) {
  if (!exit.code_known || exit.term_signal != 0) return false;
  return std::find(spec.success_exit_codes.begin(), spec.success_exit_codes.end(),
                   exit.exit_code) != spec.success_exit_codes.end();
}

ExitDecision decideServiceExit(const spec::DaemonSpec& spec, const ExitInfo& exit,
                               bool forced_failure, int64_t run_ms, int64_t now_ms,
                               RestartTracker& tracker, Rng& rng) {
  ExitDecision d;
  d.success = !forced_failure && isSuccessExit(spec, exit);
  if (run_ms >= spec.backoff.reset_after_ms) tracker.attempt = 0;  // a stable run
  const bool wants_restart =
      spec.restart == spec::RestartPolicy::kAlways ||
      (spec.restart == spec::RestartPolicy::kOnFailure && !d.success);
  if (!wants_restart) {
    d.state = d.success ? InstanceState::kExited : InstanceState::kFailed;
    d.reason = exit.detail + " (restart " + std::string(restartPolicyName(spec.restart)) + ")";
    return d;
  }
  if (!d.success && tracker.gate.recordCrash(now_ms)) {
    d.restart = true;
    d.quarantine = true;
    d.delay_ms = spec.crash_loop.cooldown_ms;
    d.state = InstanceState::kQuarantined;
    d.reason = exit.detail + ": " + std::to_string(spec.crash_loop.max_crashes) +
               " crashes within " + std::to_string(spec.crash_loop.window_ms) +
               " ms, quarantined for " + std::to_string(spec.crash_loop.cooldown_ms) + " ms";
    tracker.attempt = 0;
    return d;
  }
  ++tracker.attempt;
  d.restart = true;
  d.delay_ms = backoffDelayMs(spec.backoff, tracker.attempt, rng);
  d.state = InstanceState::kBackingOff;
  d.reason = exit.detail + ", restart " + std::to_string(tracker.attempt) + " in " +
             std::to_string(d.delay_ms) + " ms";
  return d;
}

}  // namespace meshos::runtime
