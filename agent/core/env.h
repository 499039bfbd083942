// Env: the bundle of system services a component is handed instead of reaching for
// globals (as RocksDB's Env and Envoy's API bundle do). main() builds the real one over a
// libuv loop; tests and the simulator build one over ManualClock/ManualTimers.
// Env holds references; whoever builds it owns the services and outlives every user.
#pragma once

#include "agent/core/clock.h"
#include "agent/core/rng.h"
#include "agent/core/timers.h"

namespace meshos {

struct Env {
  Clock& clock;
  Timers& timers;
  Poster& poster;  // the only thread-safe entry: other threads hand results back here
  Rng& rng;
};

}  // namespace meshos
