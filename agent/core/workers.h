// Workers: where blocking work runs (a chain verify, a statvfs on a slow mount), so the
// loop thread never waits for it.
//
// run(work, done): `work` runs away from the loop thread; `done` runs afterwards on the loop
// thread, never inside run(). Work and done share what they need through their captures.
// The libuv shell runs work on libuv's thread pool (net::UvWorkers); the simulator runs it
// on its own clock, in order, so a run repeats from its seed. A Workers outlives every
// work it was handed; work still queued when the owner shuts down may be dropped with its
// done never called, so done must not be the only thing that frees a resource.
#pragma once

#include <functional>

namespace meshos {

class Workers {
 public:
  virtual ~Workers() = default;
  virtual void run(std::function<void()> work, std::function<void()> done) = 0;
};

}  // namespace meshos
