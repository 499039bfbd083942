// The library behind meshos-admin: building commits from a desired-state file or from
// single operations, reading and writing commit files, key files, and the agent calls.
// Blocking, single-threaded: a command-line tool's helpers, never used inside the agent.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/commits/commit_log.h"
#include "agent/control/control_client.h"
#include "agent/core/status.h"

namespace meshos::admin {

// What a new commit builds on: its parent, seq, cluster and the desired state it changes.
struct BaseState {
  std::string cluster_id;
  commits::Head head;
  commits::DesiredState state;
  bool known = false;  // false: only --parent/--seq given, the current daemons are unknown
};

// Folds commit files (in seq order; not re-verified: they came from a log that did) into
// a base state. Each must link to the one before it.
Result<BaseState> baseFromCommitFiles(const std::vector<std::filesystem::path>& files);
// Asks a running agent (control socket: commitHead, then getCommits in ranges) and folds.
Result<BaseState> baseFromAgent(const std::filesystem::path& socket);

// Put/remove operations that turn `current` into `wanted` (a [[daemon]] file's specs):
// new or changed specs are put (compared after spec::normalized), daemons not in the file
// are removed when `remove_missing`. Sorted by daemon name, so the result is stable.
std::vector<commits::Operation> diffDaemons(const commits::DesiredState& current,
                                            const std::vector<spec::DaemonSpec>& wanted,
                                            bool remove_missing);

// One --op argument, words separated by spaces:
//   "scale NAME N" | "remove NAME" | "pause NAME" | "resume NAME" | "restart NAME" |
//   "kill-relocation NAME" | "drain NODE DEADLINE" | "undrain NODE" |
//   "freeze EXPIRY [REASON...]" | "thaw" | "add-admin-key BASE64" | "remove-admin-key BASE64" |
//   "set-threshold N" | "remove-secret NAME"
// DEADLINE / EXPIRY: absolute wall-clock ms, or "+N" seconds after `now_ms`.
Result<commits::Operation> parseOp(std::string_view text, int64_t now_ms);

// A file `meshos-admin secret seal` wrote.
Result<SealedSecret> readSealedSecretFile(const std::filesystem::path& path);

Status writeCommitFile(const std::filesystem::path& path, const commits::Commit& commit);
Status writeCommitBytes(const std::filesystem::path& path, ByteView bytes);
Result<commits::DecodedCommit> readCommitFile(const std::filesystem::path& path);

// admins.txt: one base64 public key per line; '#' comments and blank lines ignored.
Result<commits::TrustSet> readTrustFile(const std::filesystem::path& path, uint32_t threshold);

// A 32-byte random cluster (gossip keyring) key as one base64 line, mode 0600. Refuses to
// overwrite an existing file.
Status writeClusterKeyFile(const std::filesystem::path& path);

// One control call whose reply body is JSON.
Result<nlohmann::json> callJson(const std::filesystem::path& socket, const control::RequestFiller& fill);

// Human text for `show`.
std::string describeCommit(const commits::DecodedCommit& d, const commits::TrustSet* trust);

}  // namespace meshos::admin
