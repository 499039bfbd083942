// meshos-admin: keys, offline commit signing, co-signing, showing, and submitting commits
// to an agent. Thin: flags here, everything else in tools/admin/admin.h.
// Exit status: 0 done, 1 refused or failed (message on stderr), 2 bad usage.
#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/commits/commit_json.h"
#include "agent/core/crypto.h"
#include "agent/control/control_client.h"
#include "agent/spec/daemon_spec.h"
#include "tools/admin/admin.h"
#include "tools/admin/admin_members.h"
#include "tools/admin/admin_secrets.h"
#include "tools/inspect/cli_guard.h"

using namespace meshos;
using namespace meshos::commits;
using nlohmann::json;

namespace {

int fail(const Status& st) {
  std::cerr << "meshos-admin: " << st.toString() << "\n";
  return 1;
}

int64_t wallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct SignOptions {
  std::string key, file, agent, parent, output, cluster, note;
  std::vector<std::string> ops, state_files, secrets;
  uint64_t seq = 0;
  bool keep_missing = false;
};

int signCommitCmd(const SignOptions& o) {
  auto key = readKeyFile(o.key);
  if (!key) return fail(key.status());
  if ((!o.parent.empty() || o.seq != 0) && (!o.agent.empty() || !o.state_files.empty())) {
    return fail(Status::invalid("--parent/--seq and --agent/--state exclude each other"));
  }
  if (!o.agent.empty() && !o.state_files.empty()) {
    return fail(Status::invalid("--agent and --state exclude each other"));
  }
  const int64_t now = wallNowMs();
  admin::BaseState base;
  if (!o.agent.empty()) {
    auto b = admin::baseFromAgent(o.agent);
    if (!b) return fail(b.status().withContext("reading the current state from " + o.agent));
    base = std::move(*b);
  } else if (!o.state_files.empty()) {
    auto b = admin::baseFromCommitFiles({o.state_files.begin(), o.state_files.end()});
    if (!b) return fail(b.status());
    base = std::move(*b);
  } else {
    if (o.seq == 0) return fail(Status::invalid("give --agent, --state, or --parent and --seq"));
    if (o.seq == 1) {
      base.head = Head{0, {}};
    } else {
      auto h = hashFromHex(o.parent);
      if (!h) return fail(h.status().withContext("--parent"));
      base.head = Head{o.seq - 1, *h};
    }
  }
  Commit c;
  c.cluster_id = o.cluster.empty() ? base.cluster_id : o.cluster;
  if (c.cluster_id.empty()) return fail(Status::invalid("--cluster is required here"));
  c.seq = base.head.seq + 1;
  c.parent = base.head.hash;
  c.issued_at_ms = now;
  c.issuer = key->public_key;
  c.note = o.note;
  // Secrets first: the daemons that use them are checked against them.
  for (const auto& path : o.secrets) {
    auto sealed = admin::readSealedSecretFile(path);
    if (!sealed) return fail(sealed.status());
    c.operations.push_back(OpPutSecret{std::move(*sealed)});
  }
  if (!o.file.empty()) {
    std::ifstream in(o.file);
    if (!in) return fail(Status::notFound("cannot open " + o.file));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto specs = spec::parseDaemonsToml(text, o.file);
    if (!specs) return fail(specs.status());
    bool remove_missing = base.known && !o.keep_missing;
    if (!base.known && !o.keep_missing) {
      std::cerr << "meshos-admin: the current daemons are unknown (--parent/--seq): daemons "
                   "not in the file are not removed\n";
    }
    for (auto& op : admin::diffDaemons(base.state, *specs, remove_missing)) {
      c.operations.push_back(std::move(op));
    }
  }
  for (const auto& text : o.ops) {
    auto op = admin::parseOp(text, now);
    if (!op) return fail(op.status());
    c.operations.push_back(std::move(*op));
  }
  if (c.operations.empty()) {
    return fail(Status::invalid("nothing to commit: the desired state already holds"));
  }
  if (base.known) {
    // Offline (--state) the trust set is not known: check everything but trust changes.
    Commit probe = c;
    if (o.agent.empty()) {
      std::erase_if(probe.operations, [](const Operation& op) {
        return std::holds_alternative<OpAddAdminKey>(op) ||
               std::holds_alternative<OpRemoveAdminKey>(op) ||
               std::holds_alternative<OpSetThreshold>(op);
      });
    }
    auto check = probe.operations.empty() ? Result<DesiredState>(base.state)
                                          : applyCommitOps(base.state, probe, commitHash(c));
    if (!check) return fail(check.status().withContext("this commit would be rejected"));
  }
  signCommit(c, *key);
  if (auto st = admin::writeCommitFile(o.output, c); !st) return fail(st);
  std::cout << "wrote " << o.output << ": seq " << c.seq << ", " << c.operations.size()
            << " operation(s), hash " << toHex(commitHash(c)) << "\n";
  return 0;
}

int cosignCmd(const std::string& file, const std::string& keyfile, std::string out) {
  auto key = readKeyFile(keyfile);
  if (!key) return fail(key.status());
  auto d = admin::readCommitFile(file);
  if (!d) return fail(d.status());
  if (!d->operation_error.isOk()) return fail(d->operation_error);
  auto bytes = addSignature(*d, *key);
  if (!bytes) return fail(bytes.status());
  if (out.empty()) out = file;
  if (auto st = admin::writeCommitBytes(out, *bytes); !st) return fail(st);
  auto check = decodeCommit(*bytes);
  std::cout << "co-signed " << out << " (" << (check ? check->commit.signatures.size() : 0)
            << " signature(s))\n";
  return 0;
}

int showCmd(const std::string& file, bool as_json, const std::string& trust_file,
            uint32_t threshold) {
  auto d = admin::readCommitFile(file);
  if (!d) return fail(d.status());
  std::optional<TrustSet> trust;
  if (!trust_file.empty()) {
    auto t = admin::readTrustFile(trust_file, threshold);
    if (!t) return fail(t.status());
    trust = *t;
  }
  const TrustSet* tp = trust ? &*trust : nullptr;
  if (as_json) {
    std::cout << json{{"commit", commitToJson(*d, tp)}}.dump(2) << "\n";
  } else {
    std::cout << admin::describeCommit(*d, tp);
  }
  return 0;
}

int submitCmd(const std::string& file, const std::string& socket, const std::string& reason, bool as_json) {
  auto d = admin::readCommitFile(file);
  if (!d) return fail(d.status());
  auto reply = control::callAgent(socket, [&](proto::Request::Builder r) {
    // The commit carries its own signed authority; the submitter's reason is optional.
    r.setReason(reason.empty() ? "meshos-admin submit " + file : reason);
    r.setSubmitCommit(capnp::Data::Reader(d->encoded.data(), d->encoded.size()));
  });
  if (!reply) return fail(reply.status());
  json j;
  try {
    j = json::parse(reply->body);
  } catch (const std::exception& e) {
    return fail(Status::corruption(std::string("agent reply is not JSON: ") + e.what()));
  }
  if (as_json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << tools::textAt(j, "outcome", "?") << ": seq " << tools::intAt(j, "seq") << ", "
              << tools::textAt(j, "message", "") << "\n";
  }
  const std::string outcome = tools::textAt(j, "outcome", "");
  if (outcome == "rejected") {
    if (!as_json) std::cerr << "rejected (" << tools::textAt(j, "reason", "?") << ")\n";
    return 1;
  }
  if (outcome == "pending" && !as_json) {
    // Found by the simulator: the agent holds it in memory until its parent arrives, so a
    // crash of that agent meanwhile loses it.
    std::cerr << "note: this agent is behind and holds the commit in memory until its parent arrives; "
                 "it is not stored yet. Submit it to an agent that is current, or again later.\n";
  }
  return outcome == "superseded" ? 1 : 0;
}

int headCmd(const std::string& socket, bool as_json) {
  auto reply = control::callAgent(socket, [](proto::Request::Builder r) {
    r.setReason("meshos-admin head");
    r.setCommitHead();
  });
  if (!reply) return fail(reply.status());
  try {
    json j = json::parse(reply->body);
    if (as_json) {
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << "seq " << j["head"]["seq"].get<uint64_t>() << " hash "
                << j["head"]["hash"].get<std::string>() << "\n";
    }
  } catch (const std::exception& e) {
    return fail(Status::corruption(std::string("unexpected agent reply: ") + e.what()));
  }
  return 0;
}

// meshos-admin keyring list|install|use|remove: gossip keyring rotation on one agent.
// install takes the base64 key; use/remove take the base64 key or its 16-hex-digit id.
int keyringCmd(const std::string& action, const std::string& key_text, const std::string& socket,
               const std::string& reason, bool as_json) {
  Bytes arg;
  if (action != "list" && reason.empty()) {
    std::cerr << "meshos-admin keyring " << action
              << " changes the node: --reason is required (it is recorded in the audit chain)\n";
    return 2;
  }
  if (action != "list") {
    if (key_text.empty()) {
      std::cerr << "meshos-admin keyring " << action << ": give the key (base64)"
                << (action == "install" ? "" : " or its 16-hex-digit id") << "\n";
      return 2;
    }
    auto id = fromHex(key_text);
    if (action != "install" && key_text.size() == 16 && id) {
      arg = *id;
    } else {
      auto raw = fromBase64(key_text);
      if (!raw) return fail(Status::invalid("keyring " + action + ": the key is not valid base64"));
      arg = *raw;  // the agent checks the length
    }
  }
  auto reply = control::callAgent(socket, [&](proto::Request::Builder r) {
    r.setReason(reason.empty() ? "meshos-admin keyring " + action : reason);
    auto op = r.initKeyring();
    capnp::Data::Reader data(arg.data(), arg.size());
    if (action == "list") op.setList();
    if (action == "install") op.setInstall(data);
    if (action == "use") op.setUse(data);
    if (action == "remove") op.setRemove(data);
  });
  if (!reply) return fail(reply.status());
  try {
    json j = json::parse(reply->body);
    if (as_json) {
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    if (action != "list")
      std::cout << action << " " << j.value("key", "?") << (j.value("changed", false) ? "" : " (no change)") << "\n";
    for (const auto& k : j.at("keys")) {
      std::cout << k.at("id").get<std::string>() << (k.at("primary").get<bool>() ? "  primary" : "") << "\n";
    }
  } catch (const std::exception& e) {
    return fail(Status::corruption(std::string("unexpected agent reply: ") + e.what()));
  }
  return 0;
}

}  // namespace

int adminMain(int argc, char** argv) {
  if (auto st = initCrypto(); !st) return fail(st);
  CLI::App app{"meshos-admin: admin keys and signed commits"};
  app.set_version_flag("--version", std::string("meshos-admin ") + MESHOS_VERSION);
  app.require_subcommand(1);

  std::string name, cluster_file;
  auto* keygen = app.add_subcommand("keygen", "make an admin key NAME.key (and NAME.pub)");
  keygen->add_option("name", name, "key name (path without .key)");
  keygen->add_option("--cluster", cluster_file, "instead: write a random gossip cluster key");

  SignOptions so;
  auto* sign = app.add_subcommand("sign-commit", "build and sign a commit");
  sign->add_option("--key", so.key, "admin key file")->required();
  sign->add_option("--file", so.file, "desired daemons ([[daemon]] tables)");
  sign->add_option("--op", so.ops, "a single operation, e.g. \"scale web 3\" (repeatable)");
  sign->add_option("--secret", so.secrets, "a sealed-secret file to put (meshos-admin secret seal; repeatable)");
  sign->add_option("--agent", so.agent, "control socket to read the current state from");
  sign->add_option("--state", so.state_files, "commit files of the log so far, in order");
  sign->add_option("--parent", so.parent, "parent commit hash (hex), offline");
  sign->add_option("--seq", so.seq, "sequence number of the new commit, offline");
  sign->add_option("--cluster", so.cluster, "cluster id (default: from the agent/state)");
  sign->add_option("--note", so.note, "free text kept in the commit");
  sign->add_flag("--keep-missing", so.keep_missing, "do not remove daemons absent from --file");
  sign->add_option("-o,--output", so.output, "commit file to write")->required();

  std::string file, key, out, trust_file, socket, reason;
  uint32_t threshold = 1;
  bool as_json = false;
  auto* cosign = app.add_subcommand("cosign", "add a signature to a commit file");
  cosign->add_option("commit", file)->required();
  cosign->add_option("--key", key, "admin key file")->required();
  cosign->add_option("-o,--output", out, "write here instead of in place");

  auto* show = app.add_subcommand("show", "print a commit and which signatures verify");
  show->add_option("commit", file)->required();
  show->add_flag("--json", as_json);
  show->add_option("--trust", trust_file, "admins file: one base64 public key per line");
  show->add_option("--threshold", threshold, "threshold for --trust")->check(CLI::Range(1, 64));

  auto* submit = app.add_subcommand("submit", "send a commit to an agent");
  submit->add_option("commit", file)->required();
  submit->add_option("--socket", socket, "agent control socket")->required();
  submit->add_option("--reason", reason, "why (recorded in the agent's audit chain; default: the file name)");
  submit->add_flag("--json", as_json);

  auto* head = app.add_subcommand("head", "print an agent's commit head");
  head->add_option("--socket", socket, "agent control socket")->required();
  head->add_flag("--json", as_json);

  std::string keyring_action, keyring_key;
  auto* keyring = app.add_subcommand("keyring", "gossip keyring rotation on an agent: list | install KEY | use KEY|ID | remove KEY|ID");
  keyring->add_option("action", keyring_action, "list, install, use or remove")
      ->required()
      ->check(CLI::IsMember({"list", "install", "use", "remove"}));
  keyring->add_option("key", keyring_key, "base64 cluster key (install), or key / 16-hex-digit key id (use, remove)");
  keyring->add_option("--socket", socket, "agent control socket")->required();
  keyring->add_option("--reason", reason, "why (required for install, use and remove; recorded in the audit chain)");
  keyring->add_flag("--json", as_json);

  auto membership = admin::addMembershipCommands(app);
  auto secrets = admin::addSecretCommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (keygen->parsed()) {
    if (!cluster_file.empty()) {
      if (auto st = admin::writeClusterKeyFile(cluster_file); !st) return fail(st);
      std::cout << "wrote cluster key " << cluster_file << "\n";
      return 0;
    }
    if (name.empty()) {
      std::cerr << "meshos-admin keygen: give NAME or --cluster FILE\n";
      return 2;
    }
    if (std::filesystem::exists(name + ".key")) {
      return fail(Status::exists(name + ".key exists; not overwriting a key"));
    }
    SigningKey k = SigningKey::generate();
    if (auto st = writeKeyFile(name + ".key", k); !st) return fail(st);
    std::ofstream pub(name + ".pub");
    pub << publicKeyToBase64(k.public_key) << "\n";
    if (!pub) return fail(Status::io("cannot write " + name + ".pub"));
    std::cout << publicKeyToBase64(k.public_key) << "\n";
    return 0;
  }
  if (sign->parsed()) return signCommitCmd(so);
  if (cosign->parsed()) return cosignCmd(file, key, out);
  if (show->parsed()) return showCmd(file, as_json, trust_file, threshold);
  if (submit->parsed()) return submitCmd(file, socket, reason, as_json);
  if (head->parsed()) return headCmd(socket, as_json);
  if (keyring->parsed()) return keyringCmd(keyring_action, keyring_key, socket, reason, as_json);
  if (int rc = membership(); rc >= 0) return rc;
  if (int rc = secrets(); rc >= 0) return rc;
  return 2;
}

int main(int argc, char** argv) {
  return tools::runGuarded("meshos-admin", [&] { return adminMain(argc, argv); });
}
