// A container root filesystem for tests, made from Debian's busybox-static: /bin/busybox
// and applet links, an /etc/passwd with root and nobody. Offline, no image registry.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace meshos::testing {

inline std::string busyboxPath() {
  for (const char* p : {"/bin/busybox", "/usr/bin/busybox"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

// Why containers cannot run here ("" when they can): root, runc and busybox are needed.
inline std::string containerSkipReason() {
  if (::geteuid() != 0) return "containers need root";
  if (std::system("command -v runc >/dev/null 2>&1") != 0) return "no runc (tools/dev installs it)";
  if (busyboxPath().empty()) return "no busybox-static (tools/dev installs it)";
  return "";
}

// runc makes a container's parent cgroups (<hierarchy>/<parent>) and leaves them when it
// deletes the container: a test removes its own, empty, once its containers are gone.
inline void removeCgroupParent(const std::string& parent) {
  std::error_code ec;
  for (const auto& h : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    std::filesystem::remove(h.path() / parent, ec);  // rmdir: only when empty
  }
  std::filesystem::remove(std::filesystem::path("/sys/fs/cgroup") / parent, ec);
}

inline std::filesystem::path makeBusyboxRootfs(const std::filesystem::path& dir) {
  const auto rootfs = dir / "rootfs";
  std::filesystem::create_directories(rootfs / "bin");
  std::filesystem::create_directories(rootfs / "etc");
  std::filesystem::copy_file(busyboxPath(), rootfs / "bin/busybox");
  for (const char* applet : {"sh", "cat", "id", "ls", "grep", "touch", "sleep", "echo", "true", "false"})
    std::filesystem::create_symlink("busybox", rootfs / "bin" / applet);
  for (const char* d : {"proc", "dev", "sys", "tmp"}) std::filesystem::create_directories(rootfs / d);
  std::ofstream(rootfs / "etc/passwd") << "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n";
  return rootfs;
}

}  // namespace meshos::testing
