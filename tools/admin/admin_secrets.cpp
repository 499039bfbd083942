#include "tools/admin/admin_secrets.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "agent/commits/commit_format.h"
#include "agent/core/file_system.h"
#include "agent/core/node_identity.h"
#include "agent/core/sealed_secret.h"
#include "tools/admin/admin.h"

namespace meshos::admin {

namespace {

struct SealOptions {
  std::string name;
  std::string from_file;
  std::vector<std::string> to;         // node names or ids, looked up with --agent
  std::vector<std::string> node_keys;  // base64 node keys, offline
  bool to_cluster = false;
  std::string cluster_key;  // the cluster key file, or its .pub
  std::string agent;
  std::string output;
};

int fail(const Status& st) {
  std::cerr << "meshos-admin secret: " << st.toString() << "\n";
  return 1;
}

// The plaintext, read whole ("-": standard input); wiped by its holder.
Result<SecretValue> readValue(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::notFound("cannot open " + path);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  SecretValue v(Bytes(text.begin(), text.end()));
  wipeString(text);
  return v;
}

// --to NODE: the node's key as the agent's member list shows it (by name or id).
Result<PublicKey> memberKey(const std::string& agent, const std::string& node) {
  auto j = callJson(agent, [](proto::Request::Builder r) {
    r.setReason("meshos-admin secret seal: node keys");
    r.setMembers();
  });
  if (!j) return j.status().withContext("reading the members of " + agent);
  for (const auto& m : (*j)["members"]) {
    if (m.value("name", "") != node && m.value("id", "") != node) continue;
    if (!m.contains("public_key")) return Status::notFound("member " + node + " shows no public key");
    return publicKeyFromBase64(m["public_key"].get<std::string>());
  }
  return Status::notFound("no member " + node + " in " + agent + "'s member list");
}

// The cluster's public key: from its key file, or a .pub file of one base64 line.
Result<PublicKey> clusterPublicKey(const std::string& path) {
  auto text = PosixFileSystem().read(path);
  if (!text) return text.status();
  if (auto key = parseClusterSecretKeyFile(*text, path)) {
    wipeString(*text);
    return key->public_key;
  }
  std::string line = text->substr(0, text->find('\n'));
  auto pk = publicKeyFromBase64(line);
  if (!pk) return Status::invalid(path + " is neither a cluster key file nor a base64 public key");
  return pk;
}

int seal(const SealOptions& o) {
  if (o.to.empty() && o.node_keys.empty() && !o.to_cluster) {
    std::cerr << "meshos-admin secret seal: give --to NODE, --node-key KEY or --to-cluster\n";
    return 2;
  }
  if (!o.to.empty() && o.agent.empty()) {
    std::cerr << "meshos-admin secret seal: --to names nodes by the agent's member list: give --agent SOCKET "
                 "(or --node-key with each node's key)\n";
    return 2;
  }
  if (o.to_cluster && o.cluster_key.empty()) {
    std::cerr << "meshos-admin secret seal: --to-cluster needs --cluster-key FILE\n";
    return 2;
  }
  auto value = readValue(o.from_file);
  if (!value) return fail(value.status());
  SealedSecret sealed;
  sealed.name = o.name;
  auto add = [&](SecretRecipient to, const PublicKey& key) -> Status {
    auto copy = sealSecret(to, key, o.name, asBytes(value->view()));
    if (!copy) return copy.status();
    sealed.copies.push_back(std::move(*copy));
    return Status::ok();
  };
  for (const auto& node : o.to) {
    auto key = memberKey(o.agent, node);
    if (!key) return fail(key.status());
    if (auto st = add(SecretRecipient::kNode, *key); !st) return fail(st);
  }
  for (const auto& text : o.node_keys) {
    auto key = publicKeyFromBase64(text);
    if (!key) return fail(key.status().withContext("--node-key"));
    if (auto st = add(SecretRecipient::kNode, *key); !st) return fail(st);
  }
  if (o.to_cluster) {
    auto key = clusterPublicKey(o.cluster_key);
    if (!key) return fail(key.status());
    if (auto st = add(SecretRecipient::kCluster, *key); !st) return fail(st);
  }
  if (auto st = validateSealedSecret(sealed); !st) return fail(st);
  const Bytes bytes = commits::encodeSealedSecret(sealed);
  if (auto st = writeFileAtomically(o.output, asChars(bytes), 0644); !st) return fail(st);
  std::cout << "sealed " << o.name << " (" << value->size() << " bytes) to";
  for (const auto& c : sealed.copies) {
    std::cout << " " << (c.to == SecretRecipient::kCluster ? "the cluster" : "node " + nodeIdFromPublicKey(c.key));
  }
  std::cout << ": " << o.output << " (put it in a commit: sign-commit --secret " << o.output << ")\n";
  return 0;
}

int clusterKey(const std::string& path) {
  if (std::filesystem::exists(path)) return fail(Status::exists(path + " exists; not overwriting a key"));
  const ClusterSecretKey key = ClusterSecretKey::generate();
  if (auto st = writeFileAtomically(path, clusterSecretKeyFileText(key), 0600); !st) return fail(st);
  const std::string pub = publicKeyToBase64(key.public_key);
  if (auto st = writeFileAtomically(path + ".pub", pub + "\n", 0644); !st) return fail(st);
  std::cout << pub << "\n";
  return 0;
}

}  // namespace

std::function<int()> addSecretCommands(CLI::App& app) {
  auto seal_opts = std::make_shared<SealOptions>();
  auto key_path = std::make_shared<std::string>();
  auto* secret = app.add_subcommand("secret", "sealed secrets: seal | cluster-key");
  secret->require_subcommand(1);
  auto* s = secret->add_subcommand("seal", "seal a value to the nodes that may open it (write a sealed-secret file)");
  s->add_option("name", seal_opts->name, "the secret's name (what specs refer to)")->required();
  s->add_option("--from-file", seal_opts->from_file, "the value, read whole (\"-\": standard input)")->required();
  s->add_option("--to", seal_opts->to, "a node (name or id) that may open it, looked up with --agent (repeatable)");
  s->add_option("--node-key", seal_opts->node_keys, "a node's base64 ed25519 key that may open it (repeatable)");
  s->add_flag("--to-cluster", seal_opts->to_cluster, "sealed to the cluster key: every node holding it may open it");
  s->add_option("--cluster-key", seal_opts->cluster_key, "the cluster key file or its .pub (with --to-cluster)");
  s->add_option("--agent", seal_opts->agent, "control socket whose member list names the nodes");
  s->add_option("-o,--output", seal_opts->output, "sealed-secret file to write")->required();
  auto* k = secret->add_subcommand("cluster-key", "make a cluster key FILE (and FILE.pub) for --to-cluster");
  k->add_option("file", *key_path, "where to write the key (mode 0600)")->required();
  return [=]() -> int {
    if (s->parsed()) return seal(*seal_opts);
    if (k->parsed()) return clusterKey(*key_path);
    return -1;
  };
}

}  // namespace meshos::admin
