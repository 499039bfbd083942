// NodeIdentity: who this node is. An ed25519 key pair kept in the data directory
// (node.key, mode 0600), created on first start and reused afterwards; the node id is
// derived from the public key, so identity follows the key, not the address or the name.
#pragma once

#include <filesystem>
#include <string>

#include "agent/core/crypto.h"
#include "agent/core/file_system.h"

namespace meshos {

struct NodeIdentity {
  SigningKey key;
  std::string id;  // 16 hex chars: the first 8 bytes of BLAKE2b-256(public key)
  bool created = false;  // true when this start made the key
};

std::string nodeIdFromPublicKey(const PublicKey& key);

NodeIdentity nodeIdentityFromKey(SigningKey key);

// <data_dir>/node.key: read (refused when others may read it) or created.
Result<NodeIdentity> loadOrCreateNodeIdentity(FileSystem& fs, const std::filesystem::path& data_dir);

}  // namespace meshos
