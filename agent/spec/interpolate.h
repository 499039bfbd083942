// interpolate(): materialises a daemon spec for the node that runs it. In the command,
// environment values, working directory and the health checks' command, host and path,
// `${node.host}`, `${node.name}`, `${node.id}` and `${node.label.KEY}` are replaced by this
// node's values, so one spec can say "bind to the address of whichever node runs me", and
// `${port.NAME}` by the number of the daemon's port NAME.
// Only `${node.` and `${port.` start a variable (shell-style `${HOME}` is left alone); an unknown
// `${node.…}` form or an unterminated one is an error naming the field. checkVariables() checks only the syntax (commit-time validation: the
// values are known only on the node). Pure; any thread.
#pragma once

#include <map>
#include <string>

#include "agent/core/status.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::spec {

// vars: "node.host" -> "127.0.1.3", "node.label.zone" -> "a", ...
Result<DaemonSpec> interpolate(const DaemonSpec& spec, const std::map<std::string, std::string>& vars);
Result<std::string> interpolateText(std::string_view text, const std::map<std::string, std::string>& vars);
// Every ${...} in the spec names a known form (node.host|name|id, node.label.<key>).
Status checkVariables(const DaemonSpec& spec);

}  // namespace meshos::spec
