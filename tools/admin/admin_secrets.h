// meshos-admin secret seal | cluster-key (docs/SECRETS.md): sealing a value, offline, to the
// nodes that may open it (their node keys, named by the agent's member list or given) or
// to the cluster key. The sealed file goes into a commit with `sign-commit --secret FILE`.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace meshos::admin {

// Adds `secret` with its two subcommands to app; the returned function runs whichever was
// parsed (and returns -1 when none was).
std::function<int()> addSecretCommands(CLI::App& app);

}  // namespace meshos::admin
