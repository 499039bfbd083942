// Node, keyring rotation through the control socket: list, install, use, remove. Each
// change is planned on a copy of the running ring (gossip::planKeyringOp), written
// atomically to the [gossip] keyring file, and only then swapped into the gossip service,
// then recorded in the audit chain (key ids only, never key bytes). Bad input gets an
// error reply, is counted, and changes nothing. Runs on the loop thread.
#include <spdlog/spdlog.h>

#include <kj/exception.h>

#include "agent/gossip/keyring_ops.h"
#include "agent/node/node.h"

namespace meshos::node {

namespace {

nlohmann::json keysJson(const gossip::Keyring& ring) {
  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : gossip::listKeys(ring)) keys.push_back({{"id", k.id}, {"primary", k.primary}});
  return keys;
}

}  // namespace

void Node::keyringRequest(proto::Request::Reader request, const control::PeerCred& peer, control::ControlResponder reply) {
  gossip::KeyringOpKind kind = gossip::KeyringOpKind::kList;
  Bytes arg;
  try {
    auto op = request.getKeyring();
    auto data_of = [](capnp::Data::Reader d) { return Bytes(d.begin(), d.end()); };
    switch (op.which()) {
      case proto::KeyringOp::LIST: kind = gossip::KeyringOpKind::kList; break;
      case proto::KeyringOp::INSTALL:
        kind = gossip::KeyringOpKind::kInstall;
        arg = data_of(op.getInstall());
        break;
      case proto::KeyringOp::USE:
        kind = gossip::KeyringOpKind::kUse;
        arg = data_of(op.getUse());
        break;
      case proto::KeyringOp::REMOVE:
        kind = gossip::KeyringOpKind::kRemove;
        arg = data_of(op.getRemove());
        break;
      default:
        ++keyring_rejected_;
        reply.error(Status::invalid("unknown keyring operation"));
        return;
    }
  } catch (const kj::Exception& e) {
    ++keyring_rejected_;
    reply.error(Status::invalid(std::string("malformed keyring request: ") + e.getDescription().cStr()));
    return;
  }
  const char* op_name = gossip::keyringOpName(kind);
  if (!gossip_) {
    reply.error(Status::unavailable("gossip is not running"));
    return;
  }
  if (!config_.gossip.keyring && kind != gossip::KeyringOpKind::kList) {
    ++keyring_rejected_;
    reply.error(Status::invalid(std::string("keyring ") + op_name +
                                ": this agent has no keyring file ([gossip] keyring is not set), so a rotation "
                                "could not be persisted; configure one and restart the agent"));
    return;
  }
  gossip::Keyring& live = gossip_->keyring();
  auto plan = gossip::planKeyringOp(live, kind, arg);
  if (!plan) {
    ++keyring_rejected_;
    spdlog::warn("keyring {} refused: {}", op_name, plan.status().toString());
    reply.error(plan.status().withContext(std::string("keyring ") + op_name));
    return;
  }
  if (plan->changed) {
    if (Status st = gossip::saveKeyring(env_.fs, *config_.gossip.keyring, plan->ring); !st) {
      ++keyring_rejected_;
      spdlog::error("keyring {}: cannot persist {}: {}", op_name, config_.gossip.keyring->string(), st.toString());
      reply.error(st.withContext(std::string("keyring ") + op_name + ": the keyring file was not changed"));
      return;
    }
    live = plan->ring;
    ++keyring_changes_;
    const auto keys = gossip::listKeys(live);
    record(chains::ChainName::kAudit, "keyring",
           {{"op", op_name}, {"key", plan->key_id}, {"primary", keys.empty() ? "" : keys.front().id},
            {"keys", keys.size()}, {"reason", request.getReason().cStr()}, {"pid", peer.pid}, {"uid", peer.uid}});
    spdlog::info("keyring {} {}: {} keys, primary {}", op_name, plan->key_id, keys.size(),
                 keys.empty() ? "-" : keys.front().id);
  }
  nlohmann::json j = {{"op", op_name}, {"changed", plan->changed}, {"keys", keysJson(live)},
                      {"file", config_.gossip.keyring ? config_.gossip.keyring->string() : ""},
                      {"encrypted", !live.empty()}};
  if (!plan->key_id.empty()) j["key"] = plan->key_id;
  reply.json(j.dump());
}

}  // namespace meshos::node
