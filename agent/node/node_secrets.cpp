// Node, secrets (docs/SECRETS.md): the daemons this node starts open their sealed secrets
// here, with the node's own key or the cluster key ([secrets] cluster_key_file, read when
// the agent starts). The runtime asks at each start, so the value is the one the commit
// log holds then; nothing here keeps a plaintext.
#include "agent/node/node.h"

namespace meshos::node {

Status Node::loadClusterSecretKey() {
  cluster_secret_key_.reset();
  if (!config_.secrets.cluster_key_file) return Status::ok();
  const auto& path = *config_.secrets.cluster_key_file;
  auto text = env_.fs.read(path);
  if (!text) return Status::invalid(path.string() + ": " + text.status().message()).withContext("secrets.cluster_key_file");
  auto key = parseClusterSecretKeyFile(*text, path.string());
  wipeString(*text);
  if (!key) return key.status().withContext("secrets.cluster_key_file");
  cluster_secret_key_ = std::move(*key);
  return Status::ok();
}

Result<SecretValue> Node::openSecret(const std::string& name) const {
  const auto& secrets = commit_log_->desired().secrets;
  auto it = secrets.find(name);
  if (it == secrets.end()) return Status::notFound("secret " + name + ": no commit has sealed it");
  auto value = meshos::openSecret(it->second.sealed, identity_.key, cluster_secret_key_ ? &*cluster_secret_key_ : nullptr);
  if (!value) return Status(value.status().code(), value.status().message() + " (node " + config_.node.name + ")");
  return value;
}

}  // namespace meshos::node
