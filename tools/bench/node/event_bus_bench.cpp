// event_bus_bench: what followers cost the agent's loop when they do not read.
//
// Publishes N events (daemon-transition sized) to an EventBus with S subscribers, each
// behind an EventPump whose connection never drains (its queue is past the high-water
// mark after the first batch), plus one subscriber that reads everything, as the loop does:
// in ticks of T events. Prints the cost per tick and per event, median of R runs.
//
//   build/tools/bench/node/event_bus_bench [--events 10000] [--stuck 1] [--tick 100] [--runs 5]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "agent/state/event_bus.h"
#include "agent/state/event_pump.h"

using namespace meshos;
using Clock = std::chrono::steady_clock;

namespace {

struct RunFigures {
  double total_ms;
  double worst_tick_ms;
  uint64_t missed;
};

RunFigures run(int events, int stuck, int tick) {
  state::EventBus bus;
  size_t queued = 0;  // every stuck connection: full after its first batch
  std::vector<std::unique_ptr<state::EventPump>> pumps;
  for (int i = 0; i < stuck; ++i) {
    pumps.push_back(std::make_unique<state::EventPump>(
        bus, std::set<std::string>{}, [&queued](const state::EventBatch& b) { queued += b.events.size() * 300; },
        [&queued] { return queued + state::EventPump::kHighWaterBytes; }));
  }
  uint64_t read = 0;
  std::unique_ptr<state::EventPump> reader = std::make_unique<state::EventPump>(
      bus, std::set<std::string>{}, [&read](const state::EventBatch& b) { read += b.events.size(); },
      [] { return size_t{0}; });
  const nlohmann::json data = {{"instance", "web#2"}, {"daemon", "web"}, {"state", "ready"}, {"health", "ready"},
                               {"pid", 123456}, {"restarts", 3}};
  double worst = 0;
  const auto start = Clock::now();
  for (int done = 0; done < events;) {
    const auto t0 = Clock::now();
    for (int k = 0; k < tick && done < events; ++k, ++done) bus.publish("daemons", 1'796'000'000'000 + done, data);
    worst = std::max(worst, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const double total = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (read != static_cast<uint64_t>(events)) std::fprintf(stderr, "the reader got %lu of %d\n", read, events);
  return {total, worst, bus.counters().missed};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"event_bus_bench: the loop's cost of events to followers that do not read"};
  int events = 10000, stuck = 1, tick = 100, runs = 5;
  app.add_option("--events", events)->check(CLI::Range(1, 10'000'000));
  app.add_option("--stuck", stuck, "subscribers that never read")->check(CLI::Range(0, 1000));
  app.add_option("--tick", tick, "events published per loop tick")->check(CLI::Range(1, 10'000'000));
  app.add_option("--runs", runs)->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  std::vector<RunFigures> results;
  for (int r = 0; r < runs; ++r) results.push_back(run(events, stuck, tick));
  std::sort(results.begin(), results.end(), [](const RunFigures& a, const RunFigures& b) { return a.total_ms < b.total_ms; });
  const RunFigures& m = results[results.size() / 2];
  std::printf("%d events, %d stuck subscriber(s) + 1 reader, %d per tick: total %.2f ms (%.0f ns/event), "
              "worst tick %.3f ms, %lu missed by the stuck ones (median of %d)\n",
              events, stuck, tick, m.total_ms, m.total_ms * 1e6 / events, m.worst_tick_ms, m.missed, runs);
  return 0;
}
