// CommandContext: where a command "in the daemon's environment" runs (exec health checks,
// an operator's exec): the instance's environment, working directory and user. A value,
// filled in by the runtime that started the instance.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace meshos::probes {

// Where a command runs: the daemon's environment.
struct CommandContext {
  std::vector<std::string> env;  // "KEY=value"
  std::string cwd;               // empty = inherit
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
};

}  // namespace meshos::probes
