// A minimal agent for the re-adoption e2e test: loads a `[[daemon]]` file (as
// `[runtime] local = FILE` does), recovers what a previous run left, applies the file, and
// writes the Supervisor's snapshot JSON to <data_dir>/snapshot.json every 50 ms (atomically).
// SIGTERM stops every daemon and exits 0; SIGKILL leaves them running for the next run.
// Usage: runtime_agent DAEMONS_TOML DATA_DIR
#include <signal.h>
#include <uv.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "agent/core/clock.h"
#include "agent/core/rng.h"
#include "agent/core/uv_loop.h"
#include "agent/runtime/instance_store.h"
#include "agent/runtime/process_runtime.h"
#include "agent/runtime/supervisor.h"
#include "agent/spec/daemon_spec.h"

using namespace meshos;
using namespace meshos::runtime;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: runtime_agent DAEMONS_TOML DATA_DIR\n");
    return 2;
  }
  const std::string file = argv[1];
  const std::string dir = argv[2];
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  auto specs = spec::parseDaemonsToml(text.str(), file);
  if (!specs) {
    std::fprintf(stderr, "%s\n", specs.status().message().c_str());
    return 2;
  }
  uv_loop_t* loop = uv_default_loop();
  SystemClock clock;
  UvTimers timers(loop);
  Rng rng(osSeed());
  auto store = FileInstanceStore::open(dir + "/runtime/instances");
  if (!store) return 1;
  RuntimeOptions o;
  o.data_dir = dir;
  ProcessRuntime rt(loop, clock, **store, o);
  if (!rt.init()) return 1;
  Supervisor sup(loop, clock, timers, rng, rt, **store, {});
  if (Status s = sup.recover(); !s) std::fprintf(stderr, "recover: %s\n", s.message().c_str());
  if (Status s = sup.apply(*specs); !s) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 2;
  }
  uv_timer_t snap;
  uv_timer_init(loop, &snap);
  struct Ctx {
    Supervisor* sup;
    std::string dir;
  } ctx{&sup, dir};
  snap.data = &ctx;
  uv_timer_start(&snap, [](uv_timer_t* t) {
    auto* c = static_cast<Ctx*>(t->data);
    const std::string tmp = c->dir + "/snapshot.json.tmp";
    std::ofstream(tmp) << c->sup->snapshotJson().dump();
    std::rename(tmp.c_str(), (c->dir + "/snapshot.json").c_str());
  }, 0, 50);
  uv_signal_t term;
  uv_signal_init(loop, &term);
  struct StopCtx {
    Supervisor* sup;
    uv_timer_t* snap;
  } stop_ctx{&sup, &snap};
  term.data = &stop_ctx;
  uv_signal_start(&term, [](uv_signal_t* s, int) {
    auto* c = static_cast<StopCtx*>(s->data);
    uv_signal_stop(s);
    c->sup->stopAll([s, c] {
      uv_timer_stop(c->snap);
      uv_stop(s->loop);
    });
  }, SIGTERM);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
