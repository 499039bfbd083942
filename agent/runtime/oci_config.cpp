// ociConfig(): see oci_config.h. The defaults follow the runtime spec's Linux defaults and
// what `runc spec` writes, tightened: no capabilities unless listed and a read-only root.
#include "agent/runtime/oci_config.h"

#include <algorithm>
#include <array>
#include <string_view>

namespace meshos::runtime {

namespace {

using nlohmann::json;

// The capabilities Linux 6.x defines (capability.h), without the CAP_ prefix.
constexpr std::array<std::string_view, 41> kCapabilities = {
    "CHOWN",           "DAC_OVERRIDE",     "DAC_READ_SEARCH", "FOWNER",         "FSETID",
    "KILL",            "SETGID",           "SETUID",          "SETPCAP",        "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST",   "NET_ADMIN",       "NET_RAW",        "IPC_LOCK",
    "IPC_OWNER",       "SYS_MODULE",       "SYS_RAWIO",       "SYS_CHROOT",     "SYS_PTRACE",
    "SYS_PACCT",       "SYS_ADMIN",        "SYS_BOOT",        "SYS_NICE",       "SYS_RESOURCE",
    "SYS_TIME",        "SYS_TTY_CONFIG",   "MKNOD",           "LEASE",          "AUDIT_WRITE",
    "AUDIT_CONTROL",   "SETFCAP",          "MAC_OVERRIDE",    "MAC_ADMIN",      "SYSLOG",
    "WAKE_ALARM",      "BLOCK_SUSPEND",    "AUDIT_READ",      "PERFMON",        "BPF",
    "CHECKPOINT_RESTORE"};

// The kernel interfaces a container must not read or write (as runc's default spec).
constexpr std::array<std::string_view, 10> kMasked = {
    "/proc/acpi",          "/proc/asound",       "/proc/kcore",  "/proc/keys",      "/proc/latency_stats",
    "/proc/timer_list",    "/proc/timer_stats",  "/proc/sched_debug", "/sys/firmware", "/proc/scsi"};
constexpr std::array<std::string_view, 5> kReadOnly = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                       "/proc/sysrq-trigger"};

json mount(std::string_view dest, std::string_view type, std::string_view source, std::vector<std::string> options) {
  return json{{"destination", dest}, {"type", type}, {"source", source}, {"options", std::move(options)}};
}

json defaultMounts(bool own_network) {
  json m = json::array();
  m.push_back(json{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}});
  m.push_back(mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  m.push_back(mount("/dev/pts", "devpts", "devpts",
                    {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  m.push_back(mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  m.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  // sysfs can be mounted only in a network namespace of its own; with the host's, bind it.
  if (own_network) {
    m.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
  } else {
    m.push_back(mount("/sys", "bind", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
  }
  m.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}));
  return m;
}

json resources(const spec::Limits& l) {
  json r = json::object();
  if (l.memory_max) r["memory"] = json{{"limit", *l.memory_max}};
  // cpu.max: millicores of one CPU, as a quota per 100 ms period (as the process runtime).
  if (l.cpu_max_millicores) r["cpu"] = json{{"quota", *l.cpu_max_millicores * 100}, {"period", 100'000}};
  if (l.pids_max) r["pids"] = json{{"limit", *l.pids_max}};
  // Devices: none but the defaults runc always allows (null, zero, full, random, urandom, tty, ptmx).
  r["devices"] = json::array({json{{"allow", false}, {"access", "rwm"}}});
  return r;
}

json rlimits(const spec::Limits& l) {
  json out = json::array();
  const int64_t files = l.open_files.value_or(1024);
  out.push_back(json{{"type", "RLIMIT_NOFILE"}, {"hard", files}, {"soft", files}});
  if (l.core_size) out.push_back(json{{"type", "RLIMIT_CORE"}, {"hard", *l.core_size}, {"soft", *l.core_size}});
  return out;
}

}  // namespace

bool knownCapability(const std::string& name) {
  if (name.rfind("CAP_", 0) != 0) return false;
  const std::string_view rest = std::string_view(name).substr(4);
  return std::find(kCapabilities.begin(), kCapabilities.end(), rest) != kCapabilities.end();
}

Result<json> ociConfig(const spec::DaemonSpec& spec, const OciInstance& inst) {
  const std::string who = "daemon '" + spec.name + "': ";
  if (spec.command.empty()) return Status::invalid(who + "no command to run in the container");
  if (inst.rootfs.empty() || inst.rootfs.front() != '/')
    return Status::invalid(who + "the container's root filesystem must be an absolute path, got '" + inst.rootfs + "'");
  if (!spec.workdir.empty() && spec.workdir.front() != '/')
    return Status::invalid(who + "workdir must be absolute inside the container, got '" + spec.workdir + "'");
  for (const auto& cap : inst.capabilities)
    if (!knownCapability(cap)) return Status::invalid(who + "unknown capability '" + cap + "'");
  for (const auto& m : inst.mounts)
    if (m.destination.empty() || m.destination.front() != '/' || m.source.empty() || m.source.front() != '/')
      return Status::invalid(who + "a mount needs absolute paths, got '" + m.source + "' -> '" + m.destination + "'");

  const bool own_network = inst.network == OciNetwork::kNone;
  json caps = inst.capabilities;
  json process{
      {"terminal", false},
      {"user", {{"uid", inst.uid}, {"gid", inst.gid}}},
      {"args", spec.command},
      {"env", inst.env},
      {"cwd", spec.workdir.empty() ? "/" : spec.workdir},
      {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
      {"rlimits", rlimits(spec.limits)},
      {"noNewPrivileges", true},
  };
  json mounts = defaultMounts(own_network);
  for (const auto& m : inst.mounts) {
    std::vector<std::string> options = {"rbind", "nosuid", "nodev"};
    options.push_back(m.read_only ? "ro" : "rw");
    mounts.push_back(mount(m.destination, "bind", m.source, std::move(options)));
  }
  json namespaces = json::array({json{{"type", "pid"}}, json{{"type", "ipc"}}, json{{"type", "uts"}},
                                 json{{"type", "mount"}}, json{{"type", "cgroup"}}});
  if (own_network) namespaces.push_back(json{{"type", "network"}});
  json linux_section{
      {"resources", resources(spec.limits)},
      {"namespaces", namespaces},
      {"maskedPaths", kMasked},
      {"readonlyPaths", kReadOnly},
  };
  if (!inst.cgroups_path.empty()) linux_section["cgroupsPath"] = inst.cgroups_path;
  json config{
      {"ociVersion", "1.0.2"},
      {"process", std::move(process)},
      {"root", {{"path", inst.rootfs}, {"readonly", inst.read_only_rootfs}}},
      {"mounts", std::move(mounts)},
      {"linux", std::move(linux_section)},
  };
  // The uts namespace is the container's own and starts as a copy of the host's: with the
  // host's network it keeps the host's name unless one is given; with its own network, the
  // name given or the daemon's.
  if (own_network || !inst.hostname.empty()) config["hostname"] = inst.hostname.empty() ? spec.name : inst.hostname;
  return config;
}

}  // namespace meshos::runtime
