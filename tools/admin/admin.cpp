#include "tools/admin/admin.h"

#include "agent/core/file_system.h"

#include "agent/gossip/keyring.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/commits/commit_json.h"
#include "agent/control/control_client.h"

namespace meshos::admin {

using namespace meshos::commits;
using nlohmann::json;

namespace {

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in{std::string(text)};
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

Result<int64_t> parseInt(const std::string& s, std::string_view what) {
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used != s.size()) throw std::invalid_argument(s);
    return static_cast<int64_t>(v);
  } catch (const std::exception&) {
    return Status::invalid(std::string(what) + ": \"" + s + "\" is not an integer");
  }
}

Result<int64_t> parseTime(const std::string& s, int64_t now_ms, std::string_view what) {
  if (!s.empty() && s[0] == '+') {
    auto secs = parseInt(s.substr(1), what);
    if (!secs) return secs.status();
    return now_ms + *secs * 1000;
  }
  return parseInt(s, what);
}

Result<Bytes> readWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::notFound("cannot open " + path.string());
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > kMaxCommitBytes) return Status::invalid(path.string() + " is too large");
  auto b = asBytes(s);
  return Bytes(b.begin(), b.end());
}

// Folds one already-verified commit into `base`, skipping trust operations: the tool does
// not know the genesis trust set, and the daemons are what it diffs against.
Status foldVerified(BaseState& base, const DecodedCommit& d) {
  Commit c = d.commit;
  std::erase_if(c.operations, [](const Operation& op) {
    return std::holds_alternative<OpAddAdminKey>(op) ||
           std::holds_alternative<OpRemoveAdminKey>(op) ||
           std::holds_alternative<OpSetThreshold>(op);
  });
  if (c.seq != base.head.seq + 1 || c.parent != base.head.hash) {
    return Status::invalid("seq " + std::to_string(c.seq) + " does not follow seq " +
                           std::to_string(base.head.seq));
  }
  if (!c.operations.empty()) {
    auto next = applyCommitOps(base.state, c, d.hash);
    if (!next) return next.status();
    base.state = std::move(*next);
  }
  base.state.seq = c.seq;
  base.state.hash = d.hash;
  base.head = Head{c.seq, d.hash};
  return Status::ok();
}

}  // namespace

Result<json> callJson(const std::filesystem::path& socket, const control::RequestFiller& fill) {
  auto reply = control::callAgent(socket, fill);
  if (!reply) return reply.status();
  try {
    return json::parse(reply->body);
  } catch (const std::exception& e) {
    return Status::corruption(std::string("agent reply is not JSON: ") + e.what());
  }
}

Result<BaseState> baseFromCommitFiles(const std::vector<std::filesystem::path>& files) {
  BaseState base;
  base.known = true;
  for (const auto& f : files) {
    auto d = readCommitFile(f);
    if (!d) return d.status();
    if (!d->operation_error.isOk()) return d->operation_error.withContext(f.string());
    const Commit& c = d->commit;
    if (!base.cluster_id.empty() && base.cluster_id != c.cluster_id) {
      return Status::invalid(f.string() + ": another cluster");
    }
    base.cluster_id = c.cluster_id;
    if (base.head.seq == 0) {
      // The trust set is not known offline; the fold needs one that passes validation.
      base.state.trust.admins.insert(c.issuer);
      base.state.trust.threshold = 1;
    }
    MESHOS_RETURN_IF_ERROR(foldVerified(base, *d).withContext(f.string()));
  }
  return base;
}

Result<BaseState> baseFromAgent(const std::filesystem::path& socket) {
  auto head = callJson(socket, [](proto::Request::Builder r) {
    r.setReason("meshos-admin: read the commit head");
    r.setCommitHead();
  });
  if (!head) return head.status().withContext("commitHead");
  BaseState base;
  base.known = true;
  try {
    base.cluster_id = (*head)["cluster"].get<std::string>();
    const uint64_t head_seq = (*head)["head"]["seq"].get<uint64_t>();
    // The fold starts from the genesis trust set, which the agent does not report; start
    // from the current one (it only matters for checking trust operations before signing).
    for (const auto& k : (*head)["trust"]["admins"]) {
      auto key = publicKeyFromBase64(k.get<std::string>());
      if (key) base.state.trust.admins.insert(*key);
    }
    base.state.trust.threshold = (*head)["trust"]["threshold"].get<uint32_t>();
    std::vector<Bytes> encoded;
    while (encoded.size() < head_seq) {
      const uint64_t from = encoded.size() + 1;
      auto page = callJson(socket, [&](proto::Request::Builder r) {
        r.setReason("meshos-admin: read commits");
        auto range = r.initGetCommits();
        range.setFrom(from);
        range.setTo(head_seq);
      });
      if (!page) return page.status().withContext("getCommits");
      const auto& list = (*page)["commits"];
      if (list.empty())
        return Status::unavailable("agent returned no commits from " + std::to_string(from));
      for (const auto& b64 : list) {
        auto b = fromBase64(b64.get<std::string>());
        if (!b) return Status::corruption("getCommits: a commit is not base64");
        encoded.push_back(std::move(*b));
      }
    }
    for (const auto& b : encoded) {
      auto d = decodeCommit(b);
      if (!d) return d.status();
      MESHOS_RETURN_IF_ERROR(foldVerified(base, *d).withContext("agent's commits"));
    }
  } catch (const json::exception& e) {
    return Status::corruption(std::string("unexpected agent reply: ") + e.what());
  }
  return base;
}

std::vector<Operation> diffDaemons(const DesiredState& current,
                                   const std::vector<spec::DaemonSpec>& wanted,
                                   bool remove_missing) {
  std::vector<Operation> ops;
  std::map<std::string, const spec::DaemonSpec*> by_name;
  for (const auto& s : wanted) by_name[s.name] = &s;
  if (remove_missing) {
    for (const auto& [name, d] : current.daemons) {
      if (!by_name.count(name)) ops.push_back(OpRemoveDaemon{name});
    }
  }
  for (const auto& [name, s] : by_name) {
    auto it = current.daemons.find(name);
    // The fold stamps secret versions on a spec; a file never states them.
    spec::DaemonSpec now = it == current.daemons.end() ? spec::DaemonSpec{} : it->second.spec;
    now.secrets.versions.clear();
    if (it == current.daemons.end() || !spec::canonicalEqual(now, *s)) {
      ops.push_back(OpPutDaemon{*s});
    }
  }
  return ops;
}

Result<Operation> parseOp(std::string_view text, int64_t now_ms) {
  auto w = words(text);
  if (w.empty()) return Status::invalid("empty --op");
  const std::string& k = w[0];
  auto need = [&](size_t n) -> Status {
    if (w.size() != n + 1) {
      return Status::invalid("--op \"" + std::string(text) + "\": " + k + " takes " +
                             std::to_string(n) + " argument(s)");
    }
    return Status::ok();
  };
  if (k == "scale") {
    MESHOS_RETURN_IF_ERROR(need(2));
    auto n = parseInt(w[2], "scale replicas");
    if (!n) return n.status();
    return Operation{OpScale{w[1], *n}};
  }
  if (k == "remove-secret") {
    MESHOS_RETURN_IF_ERROR(need(1));
    return Operation{OpRemoveSecret{w[1]}};
  }
  if (k == "remove") {
    MESHOS_RETURN_IF_ERROR(need(1));
    return Operation{OpRemoveDaemon{w[1]}};
  }
  if (k == "pause") {
    MESHOS_RETURN_IF_ERROR(need(1));
    return Operation{OpPauseDaemon{w[1]}};
  }
  if (k == "resume") {
    MESHOS_RETURN_IF_ERROR(need(1));
    return Operation{OpResumeDaemon{w[1]}};
  }
  if (k == "restart") {
    MESHOS_RETURN_IF_ERROR(need(1));
    return Operation{OpForceRestart{w[1]}};
  }
  if (k == "kill-relocation") {
    MESHOS_RETURN_IF_ERROR(need(1));
    return Operation{OpKillRelocation{w[1]}};
  }
  if (k == "drain") {
    MESHOS_RETURN_IF_ERROR(need(2));
    auto t = parseTime(w[2], now_ms, "drain deadline");
    if (!t) return t.status();
    return Operation{OpSetMaintenance{w[1], MaintenanceMode::kDrain, *t}};
  }
  if (k == "undrain") {
    MESHOS_RETURN_IF_ERROR(need(1));
    return Operation{OpSetMaintenance{w[1], MaintenanceMode::kActive, 0}};
  }
  if (k == "freeze") {
    if (w.size() < 2) return Status::invalid("--op freeze EXPIRY [REASON...]");
    auto t = parseTime(w[1], now_ms, "freeze expiry");
    if (!t) return t.status();
    std::string reason;
    for (size_t i = 2; i < w.size(); ++i) reason += (i > 2 ? " " : "") + w[i];
    return Operation{OpFreeze{*t, reason}};
  }
  if (k == "thaw") {
    MESHOS_RETURN_IF_ERROR(need(0));
    return Operation{OpThaw{}};
  }
  if (k == "add-admin-key" || k == "remove-admin-key") {
    MESHOS_RETURN_IF_ERROR(need(1));
    auto key = publicKeyFromBase64(w[1]);
    if (!key) return key.status().withContext(k);
    if (k == "add-admin-key") return Operation{OpAddAdminKey{*key}};
    return Operation{OpRemoveAdminKey{*key}};
  }
  if (k == "set-threshold") {
    MESHOS_RETURN_IF_ERROR(need(1));
    auto n = parseInt(w[1], "threshold");
    if (!n) return n.status();
    if (*n < 1 || *n > static_cast<int64_t>(kMaxAdminKeys)) {
      return Status::invalid("threshold must be in 1.." + std::to_string(kMaxAdminKeys));
    }
    return Operation{OpSetThreshold{static_cast<uint32_t>(*n)}};
  }
  return Status::invalid("unknown --op \"" + k +
                         "\" (scale, remove, pause, resume, restart, kill-relocation, drain, "
                         "undrain, freeze, thaw, add-admin-key, remove-admin-key, set-threshold)");
}

Status writeCommitFile(const std::filesystem::path& path, const Commit& commit) {
  return writeCommitBytes(path, encodeCommit(commit));
}

Status writeCommitBytes(const std::filesystem::path& path, ByteView b) {
  return writeFileAtomically(path, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()), 0644);
}

Result<SealedSecret> readSealedSecretFile(const std::filesystem::path& path) {
  auto bytes = readWholeFile(path);
  if (!bytes) return bytes.status();
  auto s = decodeSealedSecret(*bytes);
  if (!s) return s.status().withContext(path.string());
  return s;
}

Result<DecodedCommit> readCommitFile(const std::filesystem::path& path) {
  auto b = readWholeFile(path);
  if (!b) return b.status();
  auto d = decodeCommit(*b);
  if (!d) return d.status().withContext(path.string());
  return d;
}

Result<TrustSet> readTrustFile(const std::filesystem::path& path, uint32_t threshold) {
  std::ifstream in(path);
  if (!in) return Status::notFound("cannot open trust file " + path.string());
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    auto w = words(line);
    if (w.empty() || w[0][0] == '#') continue;
    keys.push_back(w[0]);
  }
  auto t = trustFromConfig(keys, threshold);
  if (!t) return t.status().withContext(path.string());
  return t;
}

Status writeClusterKeyFile(const std::filesystem::path& path) {
  // The gossip keyring file itself (agent/gossip/keyring.h), holding one new primary key:
  // node.toml's gossip.keyring can point at it directly.
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    return Status::exists(path.string() + " exists; refusing to overwrite a cluster key");
  }
  PosixFileSystem fs;
  return gossip::saveKeyring(fs, path, gossip::Keyring({gossip::generateClusterKey()}));
}

std::string describeCommit(const DecodedCommit& d, const TrustSet* trust) {
  std::ostringstream o;
  const Commit& c = d.commit;
  o << "commit " << toHex(d.hash) << "\n"
    << "  cluster   " << c.cluster_id << "\n"
    << "  seq       " << c.seq << "\n"
    << "  parent    " << toHex(c.parent) << "\n"
    << "  issued at " << c.issued_at_ms << " ms\n"
    << "  issuer    " << publicKeyToBase64(c.issuer) << "\n";
  if (!c.note.empty()) o << "  note      " << c.note << "\n";
  o << "operations (" << c.operations.size() << "):\n";
  for (const auto& op : c.operations) {
    json j = operationToJson(op);
    std::string name = j["op"].get<std::string>();
    j.erase("op");
    if (j.contains("daemon") && j["daemon"].is_object()) {
      json& s = j["daemon"];
      o << "  " << name << " " << s["name"].get<std::string>() << " ("
        << s["kind"].get<std::string>() << ", command " << s["command"].dump() << ")\n";
    } else {
      o << "  " << name << (j.empty() ? "" : " " + j.dump()) << "\n";
    }
  }
  if (!d.operation_error.isOk()) o << "  MALFORMED: " << d.operation_error.message() << "\n";
  o << "signatures (" << c.signatures.size() << "):\n";
  size_t valid = 0;
  for (const auto& s : checkSignatures(d, trust)) {
    o << "  " << publicKeyToBase64(s.key_id) << "  "
      << (s.verifies ? "verifies" : "DOES NOT VERIFY");
    if (trust) o << (s.trusted ? ", trusted" : ", NOT TRUSTED");
    if (s.duplicate) o << ", duplicate (counts once)";
    o << "\n";
    if (s.verifies && (!trust || s.trusted) && !s.duplicate) ++valid;
  }
  if (trust) {
    o << valid << " of threshold " << trust->threshold
      << " valid trusted signer(s): " << (valid >= trust->threshold ? "enough" : "NOT enough")
      << "\n";
  }
  return o.str();
}

}  // namespace meshos::admin
