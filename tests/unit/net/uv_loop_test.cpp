#include <doctest/doctest.h>

#include <thread>

#include "agent/net/uv_loop.h"

using namespace meshos;

TEST_CASE("uv timers fire, cancel, and never fire inside after()") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    UvTimers timers(&loop);
    int fired = 0;
    timers.after(0, [&] { ++fired; });
    CHECK(fired == 0);  // not inside the call that scheduled it
    TimerId id = timers.after(5, [&] { fired += 100; });
    timers.cancel(id);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(fired == 1);
    CHECK(timers.pending() == 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);  // every handle closed: nothing leaked
}

TEST_CASE("uv poster delivers work from another thread on the loop thread") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    UvPoster poster(&loop);
    auto loop_thread = std::this_thread::get_id();
    bool on_loop = false;
    std::thread t([&] {
      poster.post([&] {
        on_loop = std::this_thread::get_id() == loop_thread;
        poster.close();
      });
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    t.join();
    CHECK(on_loop);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
