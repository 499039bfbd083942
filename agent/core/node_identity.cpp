#include "agent/core/node_identity.h"

#include <fmt/format.h>

namespace meshos {

std::string nodeIdFromPublicKey(const PublicKey& key) {
  Hash256 h = blake2b256(key);
  return toHex(ByteView(h.data(), 8));
}

NodeIdentity nodeIdentityFromKey(SigningKey key) {
  NodeIdentity identity;
  identity.key = key;
  identity.id = nodeIdFromPublicKey(identity.key.public_key);
  return identity;
}

Result<NodeIdentity> loadOrCreateNodeIdentity(FileSystem& fs, const std::filesystem::path& data_dir) {
  const auto path = data_dir / "node.key";
  if (fs.exists(path)) {
    auto mode = fs.mode(path);
    if (mode && (*mode & 077) != 0) {
      return Status::denied(path.string() + " is readable by others (mode " +
                            fmt::format("{:o}", *mode & 0777) + "); chmod 600 it");
    }
    auto text = fs.read(path);
    if (!text) return text.status().withContext("node identity");
    auto key = parseKeyFile(*text, path.string());
    if (!key) return key.status().withContext("node identity");
    return nodeIdentityFromKey(*key);
  }
  NodeIdentity identity = nodeIdentityFromKey(SigningKey::generate());
  MESHOS_RETURN_IF_ERROR(fs.writeAtomically(path, keyFileText(identity.key), 0600).withContext("node identity"));
  identity.created = true;
  return identity;
}

}  // namespace meshos
