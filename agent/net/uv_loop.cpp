#include "agent/net/uv_loop.h"

#include <vector>

namespace meshos {

struct UvTimers::Entry {
  uv_timer_t handle{};
  TimerId id = 0;
  UvTimers* owner = nullptr;
  std::function<void()> fn;
};

UvTimers::~UvTimers() { close(); }

TimerId UvTimers::after(int64_t delay_ms, std::function<void()> fn) {
  auto* e = new Entry();
  e->id = next_id_++;
  e->owner = this;
  e->fn = std::move(fn);
  uv_timer_init(loop_, &e->handle);
  e->handle.data = e;
  uv_timer_start(&e->handle, &UvTimers::onTimer, static_cast<uint64_t>(delay_ms < 0 ? 0 : delay_ms), 0);
  live_.emplace(e->id, e);
  return e->id;
}

void UvTimers::cancel(TimerId id) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  Entry* e = it->second;
  live_.erase(it);
  uv_timer_stop(&e->handle);
  e->fn = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&e->handle), &UvTimers::onClose);
}

void UvTimers::close() {
  std::vector<TimerId> ids;
  ids.reserve(live_.size());
  for (auto& [id, e] : live_) ids.push_back(id);
  for (TimerId id : ids) cancel(id);
}

void UvTimers::onTimer(uv_timer_t* handle) {
  auto* e = static_cast<Entry*>(handle->data);
  e->owner->live_.erase(e->id);
  auto fn = std::move(e->fn);
  uv_close(reinterpret_cast<uv_handle_t*>(handle), &UvTimers::onClose);
  if (fn) fn();
}

void UvTimers::onClose(uv_handle_t* handle) { delete static_cast<Entry*>(handle->data); }

struct UvPoster::State {
  uv_async_t handle{};
  std::mutex mu;
  bool closed = false;
  std::vector<std::function<void()>> pending;
};

UvPoster::UvPoster(uv_loop_t* loop) : state_(new State()) {
  uv_async_init(loop, &state_->handle, &UvPoster::onAsync);
  state_->handle.data = state_;
}

UvPoster::~UvPoster() { close(); }

void UvPoster::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->closed) return;
    state_->pending.push_back(std::move(fn));
  }
  uv_async_send(&state_->handle);
}

void UvPoster::close() {
  if (state_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->closed = true;
    state_->pending.clear();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle),
           [](uv_handle_t* h) { delete static_cast<State*>(h->data); });
  state_ = nullptr;
}

void UvPoster::unref() {
  if (state_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&state_->handle));
}

void UvPoster::onAsync(uv_async_t* handle) {
  auto* s = static_cast<State*>(handle->data);
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    batch.swap(s->pending);
  }
  for (auto& fn : batch) fn();
}

void UvWorkers::run(std::function<void()> work, std::function<void()> done) {
  struct Job {
    uv_work_t req{};
    std::function<void()> work, done;
  };
  auto* job = new Job{{}, std::move(work), std::move(done)};
  job->req.data = job;
  int rc = uv_queue_work(
      loop_, &job->req, [](uv_work_t* r) { static_cast<Job*>(r->data)->work(); },
      [](uv_work_t* r, int status) {
        std::unique_ptr<Job> j(static_cast<Job*>(r->data));
        if (status == 0 && j->done) j->done();
      });
  if (rc != 0) delete job;  // only for a null callback: cannot happen here
}

}  // namespace meshos
