// InventoryProbe on a real libuv loop: samples on the thread pool, repeats on its interval,
// records a failing sample and keeps the last good one, and drops a result that arrives after
// it was destroyed.
#include "probes/inventory.h"
#include "probes/inventory_probe.h"

#include <doctest/doctest.h>

#include <fstream>
#include <memory>

#include "agent/net/uv_loop.h"
#include "tests/temp_dir.h"

using namespace meshos;
using namespace meshos::probes;

namespace {

using meshos::testing::writeFile;

// Runs the loop until done() or a deadline (a timer that stops the loop).
template <class F>
bool runUntil(uv_loop_t* loop, F done, int64_t deadline_ms = 10'000) {
  uint64_t start = uv_now(loop);
  while (!done()) {
    uv_update_time(loop);
    if (static_cast<int64_t>(uv_now(loop) - start) > deadline_ms) return false;
    uv_run(loop, UV_RUN_ONCE);
  }
  return true;
}

}  // namespace

TEST_CASE("inventory probe samples repeatedly, records failures and keeps the last good one") {
  testing::TempDir dir("meshos-invprobe");
  auto proc = dir.path / "proc";
  std::filesystem::create_directory(proc);
  writeFile(proc / "loadavg", "0.50 0.40 0.30 1/10 7\n");
  writeFile(proc / "meminfo", "MemTotal: 2000 kB\nMemAvailable: 500 kB\n");

  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    UvTimers timers(&loop);
    UvWorkers workers(&loop);
    int calls = 0, errors = 0;
    auto probe = std::make_unique<InventoryProbe>(
        workers, timers, InventoryProbe::Options{10}, [&] { return sampleInventory(dir.path, proc); },
        [&](const Result<state::Inventory>& r) {
          ++calls;
          if (!r.isOk()) ++errors;
        });
    probe->start();
    CHECK(calls == 0);  // never inside start()
    REQUIRE(runUntil(&loop, [&] { return calls >= 3; }));
    REQUIRE(probe->last().has_value());
    CHECK(probe->last()->load1 == doctest::Approx(0.5));
    CHECK(probe->last()->memory_used_bytes == 1500 * 1024);
    CHECK(errors == 0);
    CHECK_FALSE(probe->failing());

    // Break meminfo: samples fail, the last good inventory stays.
    writeFile(proc / "meminfo", "garbage\n");
    REQUIRE(runUntil(&loop, [&] { return errors >= 2; }));
    CHECK(probe->failing());
    CHECK(probe->stats().consecutive_failures >= 2);
    CHECK(probe->stats().last_error.find("no MemTotal line") != std::string::npos);
    REQUIRE(probe->last().has_value());
    CHECK(probe->last()->memory_used_bytes == 1500 * 1024);

    // Repair it: the probe recovers on its own.
    writeFile(proc / "meminfo", "MemTotal: 4000 kB\nMemAvailable: 1000 kB\n");
    REQUIRE(runUntil(&loop, [&] { return !probe->failing(); }));
    CHECK(probe->last()->memory_used_bytes == 3000 * 1024);
    CHECK(probe->stats().last_error.empty());
    CHECK(probe->stats().failures >= 2);

    // Destroyed with a sample possibly in flight: nothing runs afterwards.
    int calls_at_destroy = calls;
    probe.reset();
    timers.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(calls == calls_at_destroy);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("inventory probe stop() ends the schedule") {
  testing::TempDir dir("meshos-invprobe");
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    UvTimers timers(&loop);
    UvWorkers workers(&loop);
    int calls = 0;
    InventoryProbe probe(workers, timers, InventoryProbe::Options{5}, [&] { return sampleInventory(dir.path, "/proc"); },
                         [&](const Result<state::Inventory>& r) {
                           CHECK_MESSAGE(r.isOk(), r.status().toString());
                           ++calls;
                         });
    probe.start();
    probe.start();  // idempotent
    REQUIRE(runUntil(&loop, [&] { return calls >= 1; }));
    probe.stop();
    uv_run(&loop, UV_RUN_DEFAULT);  // returns: no timer left, nothing in flight
    int after_stop = calls;
    CHECK(after_stop >= 1);
    CHECK(timers.pending() == 0);
    CHECK(probe.last().has_value());
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
