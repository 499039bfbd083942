#include "probes/health_probe.h"

namespace meshos::probes {

std::string_view healthStatusName(HealthStatus s) {
  switch (s) {
    case HealthStatus::kUnknown: return "unknown";
    case HealthStatus::kPassing: return "passing";
    case HealthStatus::kFailing: return "failing";
  }
  return "?";
}

bool HealthTracker::record(bool ok) {
  HealthStatus before = status_;
  if (ok) {
    ++successes_;
    failures_ = 0;
    if (successes_ >= success_threshold_) status_ = HealthStatus::kPassing;
  } else {
    ++failures_;
    successes_ = 0;
    if (failures_ >= failure_threshold_) status_ = HealthStatus::kFailing;
  }
  return status_ != before;
}

HealthProbe::HealthProbe(Timers& timers, spec::HealthCheck check, Attempt attempt, OnChange on_change)
    : timers_(timers),
      check_(std::move(check)),
      attempt_fn_(std::move(attempt)),
      on_change_(std::move(on_change)),
      tracker_(check_.failure_threshold, check_.success_threshold) {}

HealthProbe::~HealthProbe() {
  *alive_ = false;
  stop();
}

void HealthProbe::start() {
  if (running_) return;
  running_ = true;
  schedule(check_.initial_delay_ms);
}

void HealthProbe::stop() {
  running_ = false;
  if (timer_ != 0) timers_.cancel(timer_);
  timer_ = 0;
}

void HealthProbe::schedule(int64_t delay_ms) {
  timer_ = timers_.after(delay_ms, [this] {
    timer_ = 0;
    attempt();
  });
}

void HealthProbe::attempt() {
  if (!running_) return;
  ++attempts_;
  std::weak_ptr<bool> alive = alive_;
  attempt_fn_([this, alive](bool ok, std::string detail) {
    auto a = alive.lock();
    if (!a || !*a || !running_) return;
    last_detail_ = detail;
    const bool changed = tracker_.record(ok);
    schedule(check_.interval_ms);
    if (changed && on_change_) on_change_(tracker_.status(), detail);
  });
}

}  // namespace meshos::probes
