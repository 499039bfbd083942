// The libuv implementations of Timers, Poster and Workers, for the real shell.
//
// All three belong to one uv_loop_t and must be created, used and closed on its thread (Poster's
// post() is the exception: any thread). close() starts closing the libuv handles; their
// memory is freed in the close callbacks, so the loop must run once more afterwards.
#pragma once

#include <uv.h>

#include <memory>
#include <mutex>
#include <unordered_map>

#include "agent/core/timers.h"
#include "agent/core/workers.h"

namespace meshos {

class UvTimers final : public Timers {
 public:
  explicit UvTimers(uv_loop_t* loop) : loop_(loop) {}
  ~UvTimers() override;
  UvTimers(const UvTimers&) = delete;
  UvTimers& operator=(const UvTimers&) = delete;

  TimerId after(int64_t delay_ms, std::function<void()> fn) override;
  void cancel(TimerId id) override;
  // Cancels every pending timer.
  void close();
  size_t pending() const { return live_.size(); }

 private:
  struct Entry;
  static void onTimer(uv_timer_t* handle);
  static void onClose(uv_handle_t* handle);

  uv_loop_t* loop_;
  TimerId next_id_ = 1;
  std::unordered_map<TimerId, Entry*> live_;
};

class UvPoster final : public Poster {
 public:
  explicit UvPoster(uv_loop_t* loop);
  ~UvPoster() override;
  UvPoster(const UvPoster&) = delete;
  UvPoster& operator=(const UvPoster&) = delete;

  void post(std::function<void()> fn) override;
  // Stops delivery; posts after close() are dropped. Loop thread only.
  void close();
  // Lets the loop exit while nothing else is active.
  void unref();

 private:
  struct State;
  static void onAsync(uv_async_t* handle);
  State* state_;  // freed in the close callback
};

// Work on libuv's thread pool; done on the loop. Work queued when the loop closes is
// cancelled and its done not called.
class UvWorkers final : public Workers {
 public:
  explicit UvWorkers(uv_loop_t* loop) : loop_(loop) {}
  void run(std::function<void()> work, std::function<void()> done) override;

 private:
  uv_loop_t* loop_;
};

}  // namespace meshos
