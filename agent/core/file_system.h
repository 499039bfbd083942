// FileSystem: the small files a node keeps beside its database (node key, keyring, the
// local daemons file, the instance journal). Every file the agent writes goes through here,
// so the simulator can keep a node's disk in memory, fill it, or fail it.
//
// PosixFileSystem is the real one. Paths are plain paths; a relative path is relative to
// the process's working directory. writeAtomically() is the one atomic writer of the agent:
// a temporary file beside the target, written and fsynced, renamed over the target, and the
// directory fsynced, so a reader sees the old content or the new, never a mix. Errors name
// the path and what failed ("disk full" for ENOSPC). Any thread may call a PosixFileSystem;
// a simulated one belongs to the simulation thread.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"

namespace meshos {

// A file opened for appending (the instance journal): each append() is one write of the
// whole buffer at the end of the file. No fsync: see the journal for why that is enough.
class AppendFile {
 public:
  virtual ~AppendFile() = default;
  virtual Status append(std::string_view data) = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // The whole file; kNotFound when it does not exist.
  virtual Result<std::string> read(const std::filesystem::path& path) const = 0;
  virtual Status writeAtomically(const std::filesystem::path& path, std::string_view data,
                                 mode_t mode = 0600) = 0;
  virtual Result<std::unique_ptr<AppendFile>> openAppend(const std::filesystem::path& path) = 0;
  // Removing a missing file is OK.
  virtual Status remove(const std::filesystem::path& path) = 0;
  virtual Status makeDirs(const std::filesystem::path& path) = 0;
  // Names of the entries in a directory (not paths), sorted; kNotFound without it.
  virtual Result<std::vector<std::string>> list(const std::filesystem::path& dir) const = 0;
  virtual bool exists(const std::filesystem::path& path) const = 0;
  // Permission bits of a file (a key file readable by others is refused).
  virtual Result<mode_t> mode(const std::filesystem::path& path) const = 0;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::string> read(const std::filesystem::path& path) const override;
  Status writeAtomically(const std::filesystem::path& path, std::string_view data,
                         mode_t mode = 0600) override;
  Result<std::unique_ptr<AppendFile>> openAppend(const std::filesystem::path& path) override;
  Status remove(const std::filesystem::path& path) override;
  Status makeDirs(const std::filesystem::path& path) override;
  Result<std::vector<std::string>> list(const std::filesystem::path& dir) const override;
  bool exists(const std::filesystem::path& path) const override;
  Result<mode_t> mode(const std::filesystem::path& path) const override;
};

// PosixFileSystem::writeAtomically without an object, for tools.
Status writeFileAtomically(const std::filesystem::path& path, std::string_view data, mode_t mode = 0600);

// "disk full" for ENOSPC/EDQUOT, strerror otherwise: how an I/O error is told to a human.
std::string describeErrno(int err);

}  // namespace meshos
