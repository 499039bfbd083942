// meshos-admin join | leave | force-leave | reload: an agent's membership and config at run
// time, through its control socket. Each changes the agent, so each needs --reason, which
// the agent records in its audit chain with the caller.
#pragma once

#include <CLI/CLI.hpp>

namespace meshos::admin {

// Adds the three subcommands to app; the returned function runs whichever was parsed
// (and returns -1 when none was).
std::function<int()> addMembershipCommands(CLI::App& app);

}  // namespace meshos::admin
