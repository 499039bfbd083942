// Health checks: exec (a command exits 0), TCP (a connection opens) and HTTP (GET answers
// 2xx/3xx), run asynchronously on a libuv loop; never blocking it.
//
// - runCommand() spawns a bounded command (own process group, output captured and capped,
//   killed with its group on timeout). The runtime's `exec` uses it too.
// - checkOnce() runs one attempt of a spec::HealthCheck.
// HealthProbe (health_probe.h) repeats attempts on a check's interval; the process runtime
// runs each attempt with checkOnce().
// Everything runs on the loop thread; callbacks never run inside the call that started them.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/status.h"
#include "agent/core/timers.h"
#include "agent/spec/daemon_spec.h"
#include "probes/command_context.h"

namespace meshos::probes {


struct CommandResult {
  int exit_code = -1;  // -1 when a signal ended it
  int term_signal = 0;
  std::string output;  // stdout + stderr interleaved, at most max_output bytes
  bool truncated = false;
  bool timed_out = false;
};

// Spawns argv; `done` runs on the loop when it has exited and its output is drained (or
// timeout_ms passed, after which the whole group is SIGKILLed). A spawn failure (missing
// binary...) is returned here and `done` is not called.
Status runCommand(uv_loop_t* loop, const std::vector<std::string>& argv, const CommandContext& ctx,
                  int64_t timeout_ms, size_t max_output,
                  std::function<void(const CommandResult&)> done);

// One attempt of a check. `done(ok, detail)` runs later on the loop; never inline.
void checkOnce(uv_loop_t* loop, const spec::HealthCheck& check, const CommandContext& ctx,
               std::function<void(bool ok, const std::string& detail)> done);

}  // namespace meshos::probes
