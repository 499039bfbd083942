#include "probes/inventory_probe.h"

#include <exception>
#include <utility>


namespace meshos::probes {

InventoryProbe::InventoryProbe(Workers& workers, Timers& timers, Options options, Sampler sampler,
                               Callback on_sample)
    : workers_(workers),
      timers_(timers),
      options_(std::move(options)),
      sampler_(std::move(sampler)),
      on_sample_(std::move(on_sample)),
      self_(std::make_shared<InventoryProbe*>(this)) {}

InventoryProbe::~InventoryProbe() {
  stop();
  *self_ = nullptr;
}

void InventoryProbe::start() {
  if (running_) return;
  running_ = true;
  if (!in_flight_) sampleNow();
}

void InventoryProbe::stop() {
  running_ = false;
  if (timer_) {
    timers_.cancel(*timer_);
    timer_.reset();
  }
}

void InventoryProbe::sampleNow() {
  timer_.reset();
  if (!running_ || in_flight_) return;
  in_flight_ = true;
  auto result = std::make_shared<Result<state::Inventory>>(Status::unavailable("inventory sample not run"));
  workers_.run(
      [sampler = sampler_, result] {
        try {
          *result = sampler ? sampler() : Result<state::Inventory>(Status::unavailable("no inventory source"));
        } catch (const std::exception& e) {
          *result = Status::internal(std::string("inventory sample threw: ") + e.what());
        }
      },
      [owner = self_, result] {
        InventoryProbe* probe = *owner;
        if (probe == nullptr) return;  // destroyed while the sample ran
        probe->finished(std::move(*result));
      });
}

void InventoryProbe::finished(Result<state::Inventory> result) {
  in_flight_ = false;
  ++stats_.samples;
  if (result.isOk()) {
    last_ = result.value();
    stats_.consecutive_failures = 0;
    stats_.last_error.clear();
  } else {
    ++stats_.failures;
    ++stats_.consecutive_failures;
    stats_.last_error = result.status().toString();
  }
  if (running_ && !timer_) {
    timer_ = timers_.after(options_.interval_ms, [this] { sampleNow(); });
  }
  if (on_sample_) on_sample_(result);
}

}  // namespace meshos::probes
