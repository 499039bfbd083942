// The OCI runtime configuration (a bundle's config.json, runtime-spec 1.0) for one daemon
// instance, written by the agent itself from the daemon's spec: issue 20's container
// runtime hands it to the OCI runtime command line that runc and crun share. Sans-IO: the
// caller resolves what needs the host (the user's uid and gid, the rootfs path, the
// cgroup path) and writes the file.
//
// What a container gets (docs/RUNTIME.md "Containers"):
//   - the daemon's command, environment (as given: the caller adds PATH and HOME, as the
//     process runtime does), working directory and user;
//   - a read-only root filesystem unless asked otherwise, with /proc, a private /dev,
//     /dev/pts, /dev/shm, /dev/mqueue, a read-only /sys and its cgroup;
//   - no capabilities unless listed, no new privileges, the kernel paths runc's own
//     default masks masked;
//   - its own pid, ipc, uts and mount namespaces; the host's network by default (ports and
//     DNS as for a process), or a network namespace of its own with only loopback;
//   - the spec's limits: memory.max, cpu.max, pids.max and the open-files and core rlimits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/core/status.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::runtime {

enum class OciNetwork { kHost, kNone };

struct OciMount {
  std::string destination;  // absolute, inside the container
  std::string source;       // absolute, on the host
  bool read_only = true;
};

struct OciInstance {
  std::string rootfs;       // absolute path of the unpacked root filesystem
  bool read_only_rootfs = true;
  OciNetwork network = OciNetwork::kHost;
  std::string hostname;     // with a network of its own (the host's name otherwise)
  uint32_t uid = 0, gid = 0;
  std::vector<std::string> env;           // "NAME=value", in order
  std::vector<std::string> capabilities;  // e.g. "CAP_NET_BIND_SERVICE"; none by default
  std::vector<OciMount> mounts;           // bind mounts beyond the defaults
  std::string cgroups_path;               // e.g. "/meshos/web-0"; empty: the runtime's choice
};

// config.json for `spec` run as `inst`; an error names what cannot be expressed (a relative
// rootfs or workdir, an unknown capability, an empty command).
Result<nlohmann::json> ociConfig(const spec::DaemonSpec& spec, const OciInstance& inst);

// Whether `name` is a Linux capability the config accepts ("CAP_" and an upper-case name
// the kernel defines).
bool knownCapability(const std::string& name);

}  // namespace meshos::runtime
