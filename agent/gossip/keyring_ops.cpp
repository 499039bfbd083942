#include "agent/gossip/keyring_ops.h"

#include <algorithm>

#include "agent/core/crypto.h"

namespace meshos::gossip {

Bytes clusterKeyIdBytes(const ClusterKey& key) {
  Blake2b h;
  h.update(std::string_view("meshos-keyring-id\0", 18));
  h.update(ByteView(key.data(), key.size()));
  Hash256 d = h.finish();
  return Bytes(d.begin(), d.begin() + kKeyIdBytes);
}

std::string clusterKeyId(const ClusterKey& key) { return toHex(clusterKeyIdBytes(key)); }

const char* keyringOpName(KeyringOpKind kind) {
  switch (kind) {
    case KeyringOpKind::kList: return "list";
    case KeyringOpKind::kInstall: return "install";
    case KeyringOpKind::kUse: return "use";
    case KeyringOpKind::kRemove: return "remove";
  }
  return "unknown";
}

std::vector<KeyInfo> listKeys(const Keyring& ring) {
  std::vector<KeyInfo> out;
  for (size_t i = 0; i < ring.keys().size(); ++i) out.push_back(KeyInfo{clusterKeyId(ring.keys()[i]), i == 0});
  return out;
}

namespace {

// The installed key that `arg` names (the key itself or its id).
Result<ClusterKey> resolve(const Keyring& ring, ByteView arg) {
  if (arg.size() == std::tuple_size_v<ClusterKey>) {
    ClusterKey k{};
    std::copy(arg.begin(), arg.end(), k.begin());
    if (std::find(ring.keys().begin(), ring.keys().end(), k) == ring.keys().end())
      return Status::notFound("key " + clusterKeyId(k) + " is not installed");
    return k;
  }
  if (arg.size() == kKeyIdBytes) {
    for (const auto& k : ring.keys()) {
      Bytes id = clusterKeyIdBytes(k);
      if (std::equal(id.begin(), id.end(), arg.begin(), arg.end())) return k;
    }
    return Status::notFound("no installed key has id " + toHex(arg));
  }
  return Status::invalid("a key reference is the 32-byte key or its 8-byte id, got " + std::to_string(arg.size()) +
                         " bytes");
}

}  // namespace

Result<KeyringPlan> planKeyringOp(const Keyring& current, KeyringOpKind kind, ByteView arg) {
  KeyringPlan plan{current, false, {}};
  if (kind == KeyringOpKind::kList) return plan;
  if (current.empty())
    return Status::invalid(std::string("cannot ") + keyringOpName(kind) +
                           ": this agent runs without a keyring (plaintext gossip); set [gossip] keyring to a key file "
                           "made with `meshos-admin keygen --cluster` and restart it");
  switch (kind) {
    case KeyringOpKind::kInstall: {
      if (arg.size() != std::tuple_size_v<ClusterKey>)
        return Status::invalid("a cluster key is 32 bytes, got " + std::to_string(arg.size()));
      ClusterKey k{};
      std::copy(arg.begin(), arg.end(), k.begin());
      plan.key_id = clusterKeyId(k);
      plan.changed = std::find(current.keys().begin(), current.keys().end(), k) == current.keys().end();
      plan.ring.install(k);
      return plan;
    }
    case KeyringOpKind::kUse: {
      auto k = resolve(current, arg);
      if (!k) return k.status().withContext("use");
      plan.key_id = clusterKeyId(*k);
      plan.changed = current.keys().front() != *k;
      MESHOS_RETURN_IF_ERROR(plan.ring.use(*k));
      return plan;
    }
    case KeyringOpKind::kRemove: {
      auto k = resolve(current, arg);
      if (!k) return k.status().withContext("remove");
      plan.key_id = clusterKeyId(*k);
      if (current.keys().front() == *k)
        return Status::invalid("cannot remove key " + plan.key_id +
                               ": it is the primary key; make another key primary first (keyring use)");
      MESHOS_RETURN_IF_ERROR(plan.ring.remove(*k));
      plan.changed = true;
      return plan;
    }
    case KeyringOpKind::kList: break;
  }
  return plan;
}

}  // namespace meshos::gossip
