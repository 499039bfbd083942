// Env: the bundle of system services a component is handed instead of reaching for
// globals (as RocksDB's Env and Envoy's API bundle do): time, timers, the way back to the
// loop thread, randomness, blocking work, and files. The libuv shell (agent/net) builds the
// real one; the simulator (agent/sim) builds one per simulated host over its virtual clock,
// its in-memory disk and its seeded Rng, so the same code runs in both.
// Env holds references; whoever builds it owns the services and outlives every user.
#pragma once

#include "agent/core/clock.h"
#include "agent/core/file_system.h"
#include "agent/core/rng.h"
#include "agent/core/timers.h"
#include "agent/core/workers.h"

namespace meshos {

struct Env {
  Clock& clock;
  Timers& timers;
  Poster& poster;  // the only thread-safe entry: other threads hand results back here
  Rng& rng;
  Workers& workers;
  FileSystem& fs;
};

}  // namespace meshos
