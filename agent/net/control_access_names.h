// The [control] role lists resolved to ids: user and group names are looked up in the
// host's user database (getpwnam_r, getgrnam_r) once, at start. An unknown name is an
// error naming the list and the entry, so a typo never silently grants or denies.
#pragma once

#include <sys/types.h>

#include "agent/config/node_config.h"
#include "agent/control/control_access.h"
#include "agent/core/status.h"

namespace meshos {

Result<control::AccessPolicy> resolveControlAccess(const config::ControlSection& section, uid_t agent_uid);

}  // namespace meshos
