// Commit: a signed admin commit as a value, and its wire form (proto/commit.capnp).
//
// What is signed and what the commit hash covers is the same byte string:
//   "meshos-commit-v1" 0x00 || capnp::canonicalize(CommitBody)
// so signatures do not change a commit's identity (co-signing keeps the hash). A key id is
// the signer's 32-byte ed25519 public key. Everything here is pure and may run on any
// thread; decodeCommit() is the decode boundary: it never throws and bounds its reader.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "agent/core/bytes.h"
#include "agent/core/crypto.h"
#include "agent/core/sealed_secret.h"
#include "agent/core/status.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::commits {

inline constexpr std::string_view kCommitDomain = "meshos-commit-v1";
inline constexpr size_t kMaxCommitBytes = 512 * 1024;
inline constexpr size_t kMaxOperations = 256;
inline constexpr size_t kMaxSignatures = 64;

enum class MaintenanceMode { kActive, kDrain };
std::string_view maintenanceModeName(MaintenanceMode m);  // "active" | "drain"

struct OpPutDaemon {
  spec::DaemonSpec spec;
};
struct OpRemoveDaemon {
  std::string name;
};
struct OpScale {
  std::string name;
  int64_t replicas = 0;
};
struct OpPauseDaemon {
  std::string name;
};
struct OpResumeDaemon {
  std::string name;
};
struct OpSetMaintenance {
  std::string node;
  MaintenanceMode mode = MaintenanceMode::kActive;
  int64_t deadline_ms = 0;  // drain: wall-clock ms by which the node must be empty
};
struct OpFreeze {
  int64_t expires_at_ms = 0;
  std::string reason;
};
struct OpThaw {};
struct OpForceRestart {
  std::string name;
};
struct OpKillRelocation {
  std::string name;
};
struct OpAddAdminKey {
  PublicKey key{};
};
struct OpRemoveAdminKey {
  PublicKey key{};
};
struct OpSetThreshold {
  uint32_t threshold = 0;
};
struct OpPutSecret {
  SealedSecret secret;
};
struct OpRemoveSecret {
  std::string name;
};

using Operation = std::variant<OpPutDaemon, OpRemoveDaemon, OpScale, OpPauseDaemon, OpResumeDaemon,
                               OpSetMaintenance, OpFreeze, OpThaw, OpForceRestart, OpKillRelocation,
                               OpAddAdminKey, OpRemoveAdminKey, OpSetThreshold, OpPutSecret, OpRemoveSecret>;

// "put-daemon", "remove-daemon", "scale", ... (also the names `meshos-admin --op` takes).
std::string_view operationName(const Operation& op);
// True for the operations a freeze lets through: thaw and trust recovery.
bool allowedWhileFrozen(const Operation& op);

struct CommitSignature {
  PublicKey key_id{};
  Signature signature{};
};

struct Commit {
  std::string cluster_id;
  uint64_t seq = 0;
  Hash256 parent{};  // zero for seq 1
  int64_t issued_at_ms = 0;
  PublicKey issuer{};
  std::vector<Operation> operations;
  std::string note;
  std::vector<CommitSignature> signatures;
};

// domain || canonical body: the bytes each signature covers.
Bytes signingBytes(const Commit& commit);
Hash256 commitHash(const Commit& commit);
// Wire form: one Cap'n Proto message (flat array) of proto::Commit.
Bytes encodeCommit(const Commit& commit);
// Adds (or replaces) the signature of `key` over the commit as it stands.
void signCommit(Commit& commit, const SigningKey& key);

// A received commit, decoded but not verified.
struct DecodedCommit {
  Commit commit;
  Bytes signing_bytes;  // recomputed from the received body, canonical
  Hash256 hash{};
  Bytes encoded;  // the bytes as received
  // The first operation that did not decode (a daemon spec that fails validate(), an
  // unset union, a key of the wrong size); OK when every operation decoded. The header
  // and signatures decoded, so the commit still has a hash and signers to audit.
  Status operation_error;
};

// Adds (or replaces) `key`'s signature on a received commit, keeping its body exactly as
// it was encoded (a re-encode of the decoded value could differ for foreign encoders).
Result<Bytes> addSignature(const DecodedCommit& d, const SigningKey& key);

// kCorruption when the bytes are not a commit (size, framing, header fields).
Result<DecodedCommit> decodeCommit(ByteView bytes);

// A sealed secret on its own (`meshos-admin secret seal` writes it, `sign-commit --secret`
// reads it): one Cap'n Proto message of proto::Secret, checked like a put-secret operation.
Bytes encodeSealedSecret(const SealedSecret& s);
Result<SealedSecret> decodeSealedSecret(ByteView bytes);

std::string hashHex(const Hash256& h);
Result<Hash256> hashFromHex(std::string_view hex);

}  // namespace meshos::commits
