#include "agent/commits/commit_format.h"

#include "proto/flat_message.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>

#include "proto/commit.capnp.h"

namespace meshos::commits {

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

capnp::Data::Reader dataOf(ByteView b) { return capnp::Data::Reader(b.data(), b.size()); }

void fillSecret(proto::Secret::Builder b, const SealedSecret& s) {
  b.setName(s.name);
  auto copies = b.initCopies(static_cast<unsigned>(s.copies.size()));
  for (size_t i = 0; i < s.copies.size(); ++i) {
    auto c = copies[static_cast<unsigned>(i)];
    c.setTo(s.copies[i].to == SecretRecipient::kCluster ? proto::SealedCopy::Recipient::CLUSTER
                                                        : proto::SealedCopy::Recipient::NODE);
    c.setKey(dataOf(s.copies[i].key));
    c.setBox(dataOf(s.copies[i].box));
  }
}

void fillBody(proto::CommitBody::Builder b, const Commit& c) {
  b.setClusterId(c.cluster_id);
  b.setSeq(c.seq);
  b.setParent(dataOf(c.parent));
  b.setIssuedAtMs(c.issued_at_ms);
  b.setIssuer(dataOf(c.issuer));
  b.setNote(c.note);
  auto ops = b.initOperations(static_cast<unsigned>(c.operations.size()));
  for (size_t i = 0; i < c.operations.size(); ++i) {
    auto o = ops[static_cast<unsigned>(i)];
    std::visit(Overloaded{
                   [&](const OpPutDaemon& x) { spec::toCapnp(o.initPutDaemon(), x.spec); },
                   [&](const OpRemoveDaemon& x) { o.setRemoveDaemon(x.name); },
                   [&](const OpScale& x) {
                     auto s = o.initScale();
                     s.setDaemon(x.name);
                     s.setReplicas(x.replicas);
                   },
                   [&](const OpPauseDaemon& x) { o.setPauseDaemon(x.name); },
                   [&](const OpResumeDaemon& x) { o.setResumeDaemon(x.name); },
                   [&](const OpSetMaintenance& x) {
                     auto m = o.initSetMaintenance();
                     m.setNode(x.node);
                     m.setMode(x.mode == MaintenanceMode::kDrain
                                   ? proto::Maintenance::Mode::DRAIN
                                   : proto::Maintenance::Mode::ACTIVE);
                     m.setDeadlineMs(x.deadline_ms);
                   },
                   [&](const OpFreeze& x) {
                     auto f = o.initFreeze();
                     f.setExpiresAtMs(x.expires_at_ms);
                     f.setReason(x.reason);
                   },
                   [&](const OpThaw&) { o.setThaw(); },
                   [&](const OpForceRestart& x) { o.setForceRestart(x.name); },
                   [&](const OpKillRelocation& x) { o.setKillRelocation(x.name); },
                   [&](const OpAddAdminKey& x) { o.setAddAdminKey(dataOf(x.key)); },
                   [&](const OpRemoveAdminKey& x) { o.setRemoveAdminKey(dataOf(x.key)); },
                   [&](const OpSetThreshold& x) { o.setSetThreshold(x.threshold); },
                   [&](const OpPutSecret& x) { fillSecret(o.initPutSecret(), x.secret); },
                   [&](const OpRemoveSecret& x) { o.setRemoveSecret(x.name); },
               },
               c.operations[i]);
  }
}

Bytes signingBytesOf(proto::CommitBody::Reader body) {
  auto words = capnp::canonicalize(body);
  auto bytes = words.asBytes();
  Bytes out(kCommitDomain.size() + 1 + bytes.size(), 0);
  std::memcpy(out.data(), kCommitDomain.data(), kCommitDomain.size());
  if (bytes.size() > 0) {
    std::memcpy(out.data() + kCommitDomain.size() + 1, bytes.begin(), bytes.size());
  }
  return out;
}

template <size_t N>
Status copyFixed(capnp::Data::Reader d, std::array<uint8_t, N>& out, std::string_view what) {
  if (d.size() != N) {
    return Status::corruption(std::string(what) + " must be " + std::to_string(N) + " bytes, got " +
                              std::to_string(d.size()));
  }
  std::memcpy(out.data(), d.begin(), N);
  return Status::ok();
}

// The names and reasons an operation carries are rendered as JSON (`meshos-admin show`,
// the snapshot), which takes UTF-8 only; Cap'n Proto Text does not guarantee it.
bool operationTextUtf8(const Operation& op) {
  return std::visit(
      [](const auto& x) {
        if constexpr (requires { x.name; }) return isWireText(x.name);
        if constexpr (requires { x.node; }) return isWireText(x.node);
        if constexpr (requires { x.reason; }) return isWireText(x.reason);
        return true;  // a put-daemon's spec is checked by spec::validate()
      },
      op);
}

// Checked whole here (name, recipients, sizes): a sealed secret is never opened on decode.
Result<SealedSecret> decodeSecret(proto::Secret::Reader r) {
  SealedSecret s;
  s.name = r.getName().cStr();
  if (r.getCopies().size() > kMaxSecretCopies) {
    return Status::invalid("secret " + escapeNonUtf8(s.name) + ": more than " + std::to_string(kMaxSecretCopies) +
                           " sealed copies");
  }
  for (auto c : r.getCopies()) {
    SealedCopy copy;
    switch (c.getTo()) {
      case proto::SealedCopy::Recipient::NODE:
        copy.to = SecretRecipient::kNode;
        break;
      case proto::SealedCopy::Recipient::CLUSTER:
        copy.to = SecretRecipient::kCluster;
        break;
      default:
        return Status::invalid("secret " + escapeNonUtf8(s.name) + ": unknown recipient kind");
    }
    MESHOS_RETURN_IF_ERROR(copyFixed(c.getKey(), copy.key, "secret recipient key"));
    copy.box.assign(c.getBox().begin(), c.getBox().end());
    s.copies.push_back(std::move(copy));
  }
  MESHOS_RETURN_IF_ERROR(validateSealedSecret(s));
  return s;
}

Result<Operation> decodeOperation(proto::Operation::Reader o) {
  switch (o.which()) {
    case proto::Operation::PUT_DAEMON: {
      if (!o.hasPutDaemon()) return Status::invalid("put-daemon without a spec");
      auto s = spec::fromCapnp(o.getPutDaemon());
      if (!s) return s.status().withContext("put-daemon");
      return Operation{OpPutDaemon{std::move(*s)}};
    }
    case proto::Operation::REMOVE_DAEMON:
      return Operation{OpRemoveDaemon{o.getRemoveDaemon().cStr()}};
    case proto::Operation::SCALE:
      return Operation{OpScale{o.getScale().getDaemon().cStr(), o.getScale().getReplicas()}};
    case proto::Operation::PAUSE_DAEMON:
      return Operation{OpPauseDaemon{o.getPauseDaemon().cStr()}};
    case proto::Operation::RESUME_DAEMON:
      return Operation{OpResumeDaemon{o.getResumeDaemon().cStr()}};
    case proto::Operation::SET_MAINTENANCE: {
      auto m = o.getSetMaintenance();
      OpSetMaintenance x;
      x.node = m.getNode().cStr();
      switch (m.getMode()) {
        case proto::Maintenance::Mode::ACTIVE:
          x.mode = MaintenanceMode::kActive;
          break;
        case proto::Maintenance::Mode::DRAIN:
          x.mode = MaintenanceMode::kDrain;
          break;
        default:
          return Status::invalid("set-maintenance: unknown mode");
      }
      x.deadline_ms = m.getDeadlineMs();
      return Operation{x};
    }
    case proto::Operation::FREEZE:
      return Operation{OpFreeze{o.getFreeze().getExpiresAtMs(), o.getFreeze().getReason().cStr()}};
    case proto::Operation::THAW:
      return Operation{OpThaw{}};
    case proto::Operation::FORCE_RESTART:
      return Operation{OpForceRestart{o.getForceRestart().cStr()}};
    case proto::Operation::KILL_RELOCATION:
      return Operation{OpKillRelocation{o.getKillRelocation().cStr()}};
    case proto::Operation::ADD_ADMIN_KEY: {
      OpAddAdminKey x;
      MESHOS_RETURN_IF_ERROR(copyFixed(o.getAddAdminKey(), x.key, "add-admin-key: key"));
      return Operation{x};
    }
    case proto::Operation::REMOVE_ADMIN_KEY: {
      OpRemoveAdminKey x;
      MESHOS_RETURN_IF_ERROR(copyFixed(o.getRemoveAdminKey(), x.key, "remove-admin-key: key"));
      return Operation{x};
    }
    case proto::Operation::SET_THRESHOLD:
      return Operation{OpSetThreshold{o.getSetThreshold()}};
    case proto::Operation::PUT_SECRET: {
      auto s = decodeSecret(o.getPutSecret());
      if (!s) return s.status().withContext("put-secret");
      return Operation{OpPutSecret{std::move(*s)}};
    }
    case proto::Operation::REMOVE_SECRET:
      return Operation{OpRemoveSecret{o.getRemoveSecret().cStr()}};
  }
  return Status::invalid("unknown operation kind " + std::to_string(static_cast<int>(o.which())));
}

}  // namespace

std::string_view maintenanceModeName(MaintenanceMode m) {
  return m == MaintenanceMode::kDrain ? "drain" : "active";
}

std::string_view operationName(const Operation& op) {
  static constexpr std::string_view kNames[] = {
      "put-daemon",    "remove-daemon",    "scale",        "pause",         "resume",
      "maintenance",   "freeze",           "thaw",         "force-restart", "kill-relocation",
      "add-admin-key", "remove-admin-key", "set-threshold", "put-secret",   "remove-secret"};
  static_assert(std::size(kNames) == std::variant_size_v<Operation>);
  return kNames[op.index()];
}

bool allowedWhileFrozen(const Operation& op) {
  return std::holds_alternative<OpThaw>(op) || std::holds_alternative<OpAddAdminKey>(op) ||
         std::holds_alternative<OpRemoveAdminKey>(op) || std::holds_alternative<OpSetThreshold>(op);
}

Bytes signingBytes(const Commit& commit) {
  capnp::MallocMessageBuilder msg;
  auto body = msg.initRoot<proto::CommitBody>();
  fillBody(body, commit);
  return signingBytesOf(body.asReader());
}

Hash256 commitHash(const Commit& commit) { return blake2b256(signingBytes(commit)); }

Bytes encodeCommit(const Commit& commit) {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<proto::Commit>();
  fillBody(root.initBody(), commit);
  auto sigs = root.initSignatures(static_cast<unsigned>(commit.signatures.size()));
  for (size_t i = 0; i < commit.signatures.size(); ++i) {
    sigs[static_cast<unsigned>(i)].setKeyId(dataOf(commit.signatures[i].key_id));
    sigs[static_cast<unsigned>(i)].setSignature(dataOf(commit.signatures[i].signature));
  }
  return meshos::proto::flatBytes(msg);
}

void signCommit(Commit& commit, const SigningKey& key) {
  Signature sig = key.sign(signingBytes(commit));
  for (auto& s : commit.signatures) {
    if (s.key_id == key.public_key) {
      s.signature = sig;
      return;
    }
  }
  commit.signatures.push_back({key.public_key, sig});
}

Bytes encodeSealedSecret(const SealedSecret& s) {
  capnp::MallocMessageBuilder msg;
  fillSecret(msg.initRoot<proto::Secret>(), s);
  return meshos::proto::flatBytes(msg);
}

Result<SealedSecret> decodeSealedSecret(ByteView bytes) {
  return meshos::proto::readFlat(bytes, kMaxCommitBytes, "sealed secret",
                                 [&](capnp::FlatArrayMessageReader& reader) -> Result<SealedSecret> {
                                   return decodeSecret(reader.getRoot<proto::Secret>());
                                 }, Code::kCorruption);
}

Result<DecodedCommit> decodeCommit(ByteView bytes) {
  return meshos::proto::readFlat(bytes, kMaxCommitBytes, "commit", [&](capnp::FlatArrayMessageReader& reader) -> Result<DecodedCommit> {
    auto root = reader.getRoot<proto::Commit>();
    if (!root.hasBody()) return Status::corruption("commit: no body");
    auto body = root.getBody();
    DecodedCommit d;
    Commit& c = d.commit;
    c.cluster_id = body.getClusterId().cStr();
    c.seq = body.getSeq();
    if (c.seq == 0) return Status::corruption("commit: seq 0 (the first commit is seq 1)");
    MESHOS_RETURN_IF_ERROR(copyFixed(body.getParent(), c.parent, "commit: parent hash"));
    c.issued_at_ms = body.getIssuedAtMs();
    MESHOS_RETURN_IF_ERROR(copyFixed(body.getIssuer(), c.issuer, "commit: issuer key id"));
    c.note = body.getNote().cStr();
    if (!isWireText(c.cluster_id) || !isWireText(c.note)) return Status::corruption("commit: cluster id or note is not UTF-8 or holds a NUL");
    auto sigs = root.getSignatures();
    if (sigs.size() > kMaxSignatures) {
      return Status::corruption("commit: " + std::to_string(sigs.size()) + " signatures, limit " +
                                std::to_string(kMaxSignatures));
    }
    for (unsigned i = 0; i < sigs.size(); ++i) {
      CommitSignature s;
      std::string ctx = "commit: signature " + std::to_string(i + 1);
      MESHOS_RETURN_IF_ERROR(copyFixed(sigs[i].getKeyId(), s.key_id, ctx + ": key id"));
      MESHOS_RETURN_IF_ERROR(copyFixed(sigs[i].getSignature(), s.signature, ctx));
      c.signatures.push_back(s);
    }
    d.signing_bytes = signingBytesOf(body);
    d.hash = blake2b256(d.signing_bytes);
    d.encoded.assign(bytes.begin(), bytes.end());
    auto ops = body.getOperations();
    if (ops.size() > kMaxOperations) {
      d.operation_error = Status::invalid(std::to_string(ops.size()) + " operations, limit " +
                                          std::to_string(kMaxOperations));
      return d;
    }
    for (unsigned i = 0; i < ops.size(); ++i) {
      auto op = decodeOperation(ops[i]);
      if (!op) {
        d.operation_error = op.status().withContext("operation " + std::to_string(i + 1));
        c.operations.clear();
        return d;
      }
      if (!operationTextUtf8(*op)) {
        d.operation_error = Status::invalid("operation " + std::to_string(i + 1) + ": a name is not UTF-8 or holds a NUL");
        c.operations.clear();
        return d;
      }
      c.operations.push_back(std::move(*op));
    }
    return d;
  }, Code::kCorruption);
}

Result<Bytes> addSignature(const DecodedCommit& d, const SigningKey& key) {
  return meshos::proto::readFlat(d.encoded, kMaxCommitBytes, "commit", [&](capnp::FlatArrayMessageReader& reader) -> Result<Bytes> {
    auto old = reader.getRoot<proto::Commit>();
    capnp::MallocMessageBuilder msg;
    auto root = msg.initRoot<proto::Commit>();
    root.setBody(old.getBody());
    Signature sig = key.sign(d.signing_bytes);
    std::vector<CommitSignature> sigs;
    bool replaced = false;
    for (const auto& s : d.commit.signatures) {
      if (s.key_id == key.public_key) {
        sigs.push_back({s.key_id, sig});
        replaced = true;
      } else {
        sigs.push_back(s);
      }
    }
    if (!replaced) sigs.push_back({key.public_key, sig});
    auto list = root.initSignatures(static_cast<unsigned>(sigs.size()));
    for (size_t i = 0; i < sigs.size(); ++i) {
      list[static_cast<unsigned>(i)].setKeyId(dataOf(sigs[i].key_id));
      list[static_cast<unsigned>(i)].setSignature(dataOf(sigs[i].signature));
    }
    return meshos::proto::flatBytes(msg);
  }, Code::kCorruption);
}

std::string hashHex(const Hash256& h) { return toHex(h); }

Result<Hash256> hashFromHex(std::string_view hex) {
  auto b = fromHex(hex);
  if (!b || b->size() != 32) return Status::invalid("a commit hash is 64 hex digits");
  Hash256 h{};
  std::memcpy(h.data(), b->data(), 32);
  return h;
}

}  // namespace meshos::commits
