// node_bench: how fast the node loop folds events, and what a tick costs with a large state.
//
//   build/tools/bench/node/node_bench [--members 1000] [--daemons 1000] [--events 5000000]
//
// Fold: simple events (ticks, RTT-only member updates, probe samples) folded into State.
// Tick: Node::tick() (fold tick, reconcile, executor poll, snapshot publish) with N members
// and M running daemons, in steady state and with one structural change per tick.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "agent/node/node.h"
#include "agent/runtime/instance_store.h"
#include "agent/sim/host_env.h"
#include "agent/sim/sim_disk.h"
#include "agent/sim/sim_runtime.h"
#include "agent/sim/sim_transport.h"
#include "agent/sim/sim_world.h"

using namespace meshos;
using BenchClock = std::chrono::steady_clock;

namespace {

double secondsSince(BenchClock::time_point t) {
  return std::chrono::duration<double>(BenchClock::now() - t).count();
}

void benchFold(uint64_t events) {
  state::State s;
  for (int i = 0; i < 100; ++i) {
    state::fold(s, state::MembershipChanged{{"m" + std::to_string(i), "n", "a:1",
                                              state::MemberState::kAlive, 1, 0, -1}});
  }
  std::vector<state::Event> kinds;
  kinds.push_back(state::Tick{1});
  state::Member m{"m7", "n", "a:1", state::MemberState::kAlive, 1, 0, 1.25};
  kinds.push_back(state::MembershipChanged{m});
  kinds.push_back(state::CommitReceived{0, ""});
  kinds.push_back(state::ChainFlushed{"audit", 5});
  auto t0 = BenchClock::now();
  for (uint64_t i = 0; i < events; ++i) state::fold(s, kinds[i & 3]);
  double secs = secondsSince(t0);
  std::printf("fold: %llu simple events in %.3f s = %.0f events/s (one core)\n",
              static_cast<unsigned long long>(events), secs, static_cast<double>(events) / secs);
}

void benchTick(int members, int daemons) {
  {
    // A node that is never started, over the simulator's services: only the tick's own
    // work is timed (with the real clock).
    sim::SimWorld world(1);
    SystemClock clock;
    sim::HostTimers timers(world.timers, world.rng);
    sim::HostPoster poster(timers);
    sim::HostWorkers workers(timers, 1);
    sim::SimDisk disk;
    Rng rng(1);
    Env env{clock, timers, poster, rng, workers, disk.files()};
    sim::SimTransport transport(world.network, clock, "10.0.0.1:7946");
    sim::SimRuntime runtime(world.timers, clock, Rng(2), {});
    auto instances = runtime::FileInstanceStore::open(disk.files(), "/bench/instances");
    config::NodeConfig cfg;
    cfg.node.name = "bench";
    NodeIdentity id;
    id.id = "0000000000000000";
    node::NodeServices services{env, transport, world.identities, runtime, **instances};
    node::Node node(std::move(services), cfg, id);
    for (int i = 0; i < members; ++i) {
      node.handle(state::MembershipChanged{{"m" + std::to_string(i), "node-" + std::to_string(i),
                                            "10.0.0.1:7946", state::MemberState::kAlive, 1, 0, 0.5}});
    }
    state::DesiredDaemonsChanged desired{"local", {}};
    for (int i = 0; i < daemons; ++i) desired.daemons.push_back({"d" + std::to_string(i), 1, 1, false});
    node.handle(desired);
    for (int i = 0; i < daemons; ++i) {
      state::Instance inst;
      inst.id = "d" + std::to_string(i) + "/0";
      inst.daemon = "d" + std::to_string(i);
      inst.generation = 1;
      inst.state = state::InstanceState::kRunning;
      inst.pid = 1000 + i;
      node.handle(state::DaemonSignal{inst});
    }
    auto run = [&](const char* label, bool churn) {
      std::vector<double> us;
      const int n = 2000;
      for (int i = 0; i < n; ++i) {
        if (churn) {
          state::Member m{"m" + std::to_string(i % members), "x", "10.0.0.2:7946",
                          i % 2 ? state::MemberState::kSuspect : state::MemberState::kAlive, 2, 0, 0.5};
          node.handle(state::MembershipChanged{m});
        }
        auto t0 = BenchClock::now();
        node.tick();
        us.push_back(secondsSince(t0) * 1e6);
      }
      std::sort(us.begin(), us.end());
      double sum = 0;
      for (double v : us) sum += v;
      std::printf("tick (%d members, %d daemons, %s): mean %.1f us, p50 %.1f us, p99 %.1f us, max %.1f us\n",
                  members, daemons, label, sum / n, us[n / 2], us[n * 99 / 100], us.back());
    };
    run("steady state", false);
    run("one structural change per tick", true);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"node_bench: fold and tick costs"};
  int members = 1000, daemons = 1000;
  uint64_t events = 5'000'000;
  app.add_option("--members", members);
  app.add_option("--daemons", daemons);
  app.add_option("--events", events);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  benchFold(events);
  benchTick(members, daemons);
  return 0;
}
