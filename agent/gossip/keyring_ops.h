// Keyring rotation operations as the control socket asks for them (list, install, use,
// remove), planned on a copy of the live ring so that nothing changes unless the whole
// operation succeeds. Pure: the caller (Node, agent/node/node_keyring.cpp) persists the
// planned ring with saveKeyring() and only then swaps it into the running GossipService.
// Key ids: operators see a key id (fingerprint), never the key bytes. Any thread; no state.
#pragma once

#include <string>
#include <vector>

#include "agent/core/bytes.h"
#include "agent/core/status.h"
#include "agent/gossip/keyring.h"

namespace meshos::gossip {

inline constexpr size_t kKeyIdBytes = 8;

// The first 8 bytes of BLAKE2b-256("meshos-keyring-id\0" || key), 16 hex characters.
std::string clusterKeyId(const ClusterKey& key);
Bytes clusterKeyIdBytes(const ClusterKey& key);

enum class KeyringOpKind { kList, kInstall, kUse, kRemove };
const char* keyringOpName(KeyringOpKind kind);

struct KeyringPlan {
  Keyring ring;          // the ring after the operation
  bool changed = false;  // false: nothing to persist (list, or install of a present key)
  std::string key_id;    // the key acted on; empty for list
};

// install: `arg` is the 32-byte key. use / remove: `arg` is the 32-byte key or its 8-byte
// id. Errors (nothing changes): a key of another length, an unknown key or id, removing
// the primary key, and any operation on an empty ring other than list (this agent runs
// without a keyring: rotation needs one).
Result<KeyringPlan> planKeyringOp(const Keyring& current, KeyringOpKind kind, ByteView arg);

struct KeyInfo {
  std::string id;
  bool primary = false;
};
std::vector<KeyInfo> listKeys(const Keyring& ring);

}  // namespace meshos::gossip
