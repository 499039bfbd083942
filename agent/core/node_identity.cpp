#include "agent/core/node_identity.h"

#include <fmt/format.h>
#include <sys/stat.h>

namespace meshos {

std::string nodeIdFromPublicKey(const PublicKey& key) {
  Hash256 h = blake2b256(key);
  return toHex(ByteView(h.data(), 8));
}

Result<NodeIdentity> loadOrCreateNodeIdentity(const std::filesystem::path& data_dir) {
  const auto path = data_dir / "node.key";
  NodeIdentity identity;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      return Status::denied(path.string() + " is readable by others (mode " +
                            fmt::format("{:o}", st.st_mode & 0777) + "); chmod 600 it");
    }
    auto key = readKeyFile(path);
    if (!key) return key.status().withContext("node identity");
    identity.key = *key;
  } else {
    identity.key = SigningKey::generate();
    MESHOS_RETURN_IF_ERROR(writeKeyFile(path, identity.key).withContext("node identity"));
    identity.created = true;
  }
  identity.id = nodeIdFromPublicKey(identity.key.public_key);
  return identity;
}

}  // namespace meshos
