// The OCI runtime's command line (runc, crun): what OciRuntime runs and how it reads the
// answers. `<oci> --root <state dir> --log <file> --log-format json <command> ...`; the
// log file holds the runtime's own errors as JSON lines, from which a failure is named.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/status.h"

namespace meshos::runtime {

struct OciCommandResult {
  int exit_code = -1;
  int term_signal = 0;
  std::string error;  // the OCI runtime's last error, or why it could not run
  bool ok() const { return exit_code == 0 && term_signal == 0; }
};

class OciCommands {
 public:
  // binary: an absolute path; root: the OCI runtime's state directory (ours alone).
  void configure(std::string binary, std::string root) {
    binary_ = std::move(binary);
    root_ = std::move(root);
  }
  const std::string& binary() const { return binary_; }
  // Whether the OCI runtime keeps state for a container of this name: runc and crun keep
  // it in <root>/<id>. A name without state needs no delete before its run.
  bool hasState(const std::string& id) const;
  // binary, its global options (state root; error log when log_path is set), then args.
  std::vector<std::string> argv(const std::vector<std::string>& args, const std::string& log_path = "") const;
  // Runs asynchronously; stdout and stderr go to out_fd (the instance's log: a detached
  // container keeps them), or nowhere when it is -1. done runs on the loop, never inside.
  Status run(uv_loop_t* loop, const std::vector<std::string>& args, int out_fd, const std::string& log_path,
             std::function<void(const OciCommandResult&)> done) const;
  // Runs and waits (adoption, when the agent starts): stdout, at most 64 KiB, or an error;
  // killed after timeout_ms.
  Result<std::string> runAndWait(const std::vector<std::string>& args, int64_t timeout_ms) const;

 private:
  std::string binary_;
  std::string root_;
};

// Runs argv[0] (an absolute path) asynchronously. stdout and stderr go to out_fd when it
// is >= 0; else to err_path when set (the error is then its last line), else nowhere.
// A runtime's --log file is err_path too: its last "msg" is the error. done runs on the
// loop, never inside the call.
Status runProgram(uv_loop_t* loop, const std::vector<std::string>& argv, int out_fd, const std::string& err_path,
                  std::function<void(const OciCommandResult&)> done);

// The OCI runtime's name for an instance's container: runc takes [A-Za-z0-9_+.-] only, so
// "web#0" is "web+0" ('+' is in no daemon name, so no two instances share a name).
std::string containerId(const std::string& instance);

// The last "msg" of a JSON-lines log the OCI runtime wrote, or the last plain line of a
// program's output ("" when none).
std::string lastOciError(const std::string& log_text);

// detail::findInPath() in the agent's own PATH.
std::string findExecutable(const std::string& name);

// The uid and gid a container's process runs as: "" is root; "uid" or "uid:gid" as given;
// a name is looked up in the root filesystem's /etc/passwd (not the host's).
Result<std::pair<uint32_t, uint32_t>> containerUser(const std::string& rootfs, const std::string& user);

}  // namespace meshos::runtime
