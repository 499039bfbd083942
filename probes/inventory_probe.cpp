#include "probes/inventory_probe.h"

#include <exception>
#include <utility>

#include "probes/inventory.h"

namespace meshos::probes {

InventoryProbe::InventoryProbe(uv_loop_t* loop, Timers& timers, Options options, Callback on_sample)
    : loop_(loop),
      timers_(timers),
      options_(std::move(options)),
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
  struct Job {
    uv_work_t req{};
    std::filesystem::path data_dir, proc_root;
    std::shared_ptr<InventoryProbe*> owner;
    std::optional<Result<state::Inventory>> result;
  };
  auto* job = new Job();
  job->req.data = job;
  job->data_dir = options_.data_dir;
  job->proc_root = options_.proc_root;
  job->owner = self_;
  in_flight_ = true;
  int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* r) {
        auto* j = static_cast<Job*>(r->data);
        try {
          j->result = sampleInventory(j->data_dir, j->proc_root);
        } catch (const std::exception& e) {
          j->result = Status::internal(std::string("inventory sample threw: ") + e.what());
        }
      },
      [](uv_work_t* r, int status) {
        std::unique_ptr<Job> j(static_cast<Job*>(r->data));
        InventoryProbe* probe = *j->owner;
        if (probe == nullptr) return;  // destroyed while the sample ran
        if (status != 0 || !j->result) {
          probe->finished(Status::unavailable("inventory sample cancelled"));
        } else {
          probe->finished(std::move(*j->result));
        }
      });
  if (rc != 0) {
    delete job;
    in_flight_ = false;
    // Reported from a timer, never inside the call that started the sample.
    timer_ = timers_.after(0, [this, rc] {
      timer_.reset();
      finished(Status::unavailable(std::string("inventory sample not queued: ") + uv_strerror(rc)));
    });
  }
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
