// meshos-inspect watch: follows the agent's events over the control socket.
#pragma once

#include <string>

namespace meshos::tools {

// Prints each event as one line (--json: one JSON object per line) until the agent closes
// the stream or stops. kinds: "members,daemons" or empty for all.
int watchCommand(const std::string& socket, const std::string& kinds, bool json, int timeout_ms);

}  // namespace meshos::tools
