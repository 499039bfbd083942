// Node, the control half: every request of the control protocol (proto/control.capnp),
// whoever carried it (the control socket, or the simulator). Each request is folded into
// the state with who asked and why, and (polling aside) recorded in the audit chain.
// Runs on the loop thread; slow reads (chain verify) go to the workers.
#include <spdlog/spdlog.h>

#include "agent/commits/commit_control.h"
#include "agent/node/node.h"
#include "agent/state/metrics.h"
#include "chains/chain_json.h"

namespace meshos::node {

namespace {

// Read-only requests that monitoring polls; they are not worth an audit record each.
bool isPolling(proto::Request::Which w) {
  return w == proto::Request::PING || w == proto::Request::METRICS;
}

std::string commandName(proto::Request::Which w) {
  switch (w) {
    case proto::Request::PING: return "ping";
    case proto::Request::SNAPSHOT: return "snapshot";
    case proto::Request::METRICS: return "metrics";
    case proto::Request::MEMBERS: return "members";
    case proto::Request::DAEMONS: return "daemons";
    case proto::Request::CHAIN_VERIFY: return "chain-verify";
    case proto::Request::CHAIN_TAIL: return "chain-tail";
    case proto::Request::CHAIN_SHOW: return "chain-show";
    case proto::Request::WATCH: return "watch";
    case proto::Request::LEAVE: return "leave";
    case proto::Request::FORCE_LEAVE: return "force-leave";
    case proto::Request::RELOAD: return "reload";
    case proto::Request::DAEMON_CONTROL: return "daemon-control";
    case proto::Request::DAEMON_LOGS: return "daemon-logs";
    case proto::Request::SUBMIT_COMMIT: return "submit-commit";
    case proto::Request::GET_COMMITS: return "get-commits";
    case proto::Request::COMMIT_HEAD: return "commit-head";
    case proto::Request::JOIN: return "join";
    case proto::Request::PLACEMENT: return "placement";
    case proto::Request::KEYRING: return "keyring";
    case proto::Request::ENDPOINTS: return "endpoints";
    case proto::Request::ROLLOUT: return "rollout";
    default: return "unsupported";
  }
}

}  // namespace

nlohmann::json Node::daemonsJson() {
  // The supervisor's own view is richer (health, backoff, stats) and current.
  auto j = supervisor_ ? supervisor_->snapshotJson(true) : state::daemonsToJson(currentSnapshot());
  j["desired"] = state::daemonsToJson(currentSnapshot())["desired"];
  addPorts(j["desired"], "name");
  return j;
}

nlohmann::json Node::snapshotJsonWithMembers() {
  auto j = state::snapshotToJson(currentSnapshot());
  j["members"] = membersJson()["members"];  // with health, node state and estimated RTT
  return j;
}

void Node::control(proto::Request::Reader request, const control::PeerCred& peer, control::ControlResponder reply) {
  MESHOS_DCHECK_THREAD(loop_thread_);
  if (stopping_ || !started_) {
    reply.error(Status::unavailable(stopping_ ? "the agent is shutting down" : "the agent is starting"));
    return;
  }
  const auto which = request.which();
  const std::string command = commandName(which);
  state::fold(state_, state::ControlCommand{command, request.getReason().cStr(), peer.pid, peer.uid, peer.gid, nowMs()});
  const control::RequestNeeds needs = control::requestNeeds(request);
  if (Status refused = accessRefusal(request, peer, needs); !refused) {
    reply.error(refused);
    return;
  }
  if (Status refused = auditRefusal(); !refused && needs.mutates) {
    ++audit_refusals_;
    spdlog::warn("{} refused: {}", command, refused.message());
    reply.error(refused);
    return;
  }
  if (!isPolling(which) && which != proto::Request::DAEMON_CONTROL) {
    record(chains::ChainName::kAudit, "control",
           {{"command", command}, {"reason", request.getReason().cStr()}, {"pid", peer.pid},
            {"uid", peer.uid}, {"gid", peer.gid}});
  }
  switch (which) {
    case proto::Request::PING:
      reply.json(nlohmann::json{{"pong", true}, {"node", identity_.id}}.dump());
      return;
    case proto::Request::SNAPSHOT:
      reply.json(snapshotJsonWithMembers().dump());
      return;
    case proto::Request::METRICS:
      reply.text(state::snapshotToPrometheus(currentSnapshot()));
      return;
    case proto::Request::MEMBERS:
      reply.json(membersJson().dump());
      return;
    case proto::Request::DAEMONS:
      reply.json(daemonsJson().dump());
      return;
    case proto::Request::DAEMON_CONTROL:
      daemonRequest(request, peer, std::move(reply));
      return;
    case proto::Request::DAEMON_LOGS:
      daemonLogs(request, std::move(reply));
      return;
    case proto::Request::JOIN:
      joinRequest(request, std::move(reply));
      return;
    case proto::Request::SUBMIT_COMMIT:
    case proto::Request::GET_COMMITS:
    case proto::Request::COMMIT_HEAD: {
      commits::LogOutput out;
      auto j = commits::handleCommitRequest(*commit_log_, request, out);
      commitOutput(out);
      if (j) {
        reply.json(j->dump());
      } else {
        reply.error(j.status());
      }
      return;
    }
    case proto::Request::CHAIN_VERIFY:
    case proto::Request::CHAIN_TAIL:
    case proto::Request::CHAIN_SHOW:
      chainRequest(request, std::move(reply));
      return;
    case proto::Request::PLACEMENT:
    case proto::Request::ENDPOINTS:
    case proto::Request::ROLLOUT:
      daemonViewRequest(request, std::move(reply));
      return;
    case proto::Request::KEYRING:
      keyringRequest(request, peer, std::move(reply));
      return;

    case proto::Request::WATCH:
      watchRequest(request, std::move(reply));
      return;
    case proto::Request::LEAVE:
      // The staged shutdown's gossip stage broadcasts the leave; the reply goes first.
      reply.json(nlohmann::json{{"leaving", config_.node.name}}.dump());
      env_.poster.post([self = self_, why = "leave requested: " + std::string(request.getReason().cStr())] {
        if (*self) (*self)->shutdown(why);
      });
      return;
    case proto::Request::RELOAD: {
      auto r = reload("meshos-admin reload: " + std::string(request.getReason().cStr()));
      if (r) {
        reply.json(r->dump());
      } else {
        reply.error(r.status());
      }
      return;
    }
    case proto::Request::FORCE_LEAVE: {
      const std::string name = request.getForceLeave().cStr();
      if (Status s = gossip_->forceLeave(name); !s) {
        reply.error(s);
        return;
      }
      reply.json(nlohmann::json{{"left", name}}.dump());
      return;
    }
    default:
      reply.error(Status::notImplemented("this agent does not serve that request (request kind " +
                                         std::to_string(static_cast<int>(which)) + ")"));
      return;
  }
}

Status Node::accessRefusal(proto::Request::Reader request, const control::PeerCred& peer,
                           const control::RequestNeeds& needs) {
  std::string why = control::refusal(services_.access, peer, needs);
  if (why.empty() && needs.mutates && request.getReason().size() == 0) {
    // The audit-metadata rule: a change says why, and the audit chain keeps it.
    why = "a reason is required: " + needs.what + " changes the node (pass --reason)";
  }
  if (why.empty()) return Status::ok();
  ++access_refusals_;
  spdlog::warn("control: uid {} pid {}: {}", peer.uid, peer.pid, why);
  // The refusal is itself on record (when the chain can take it).
  record(chains::ChainName::kAudit, "control.refused",
         {{"command", needs.what}, {"needs", control::roleName(needs.role)},
          {"has", control::roleName(services_.access.roleOf(peer))}, {"reason", request.getReason().cStr()},
          {"pid", peer.pid}, {"uid", peer.known ? nlohmann::json(peer.uid) : nlohmann::json(nullptr)},
          {"gid", peer.known ? nlohmann::json(peer.gid) : nlohmann::json(nullptr)}, {"refusal", why}});
  return Status::denied(why);
}

// placement, endpoints and rollout: a view of one commit daemon (or of all of them).
void Node::daemonViewRequest(proto::Request::Reader request, control::ControlResponder reply) {
  const auto which = request.which();
  const std::string daemon = which == proto::Request::PLACEMENT ? request.getPlacement().cStr()
                             : which == proto::Request::ENDPOINTS ? request.getEndpoints().cStr()
                                                                  : request.getRollout().cStr();
  if ((!daemon.empty() || which == proto::Request::ROLLOUT) && commit_log_->desired().daemons.count(daemon) == 0) {
    reply.error(Status::notFound("no daemon \"" + daemon + "\" in the commit log"));
    return;
  }
  switch (which) {
    case proto::Request::PLACEMENT: return reply.json(placementJson(daemon).dump());
    case proto::Request::ENDPOINTS: return reply.json(endpointsJson(daemon).dump());
    default: return reply.json(rolloutJson(daemon).dump());
  }
}

void Node::joinRequest(proto::Request::Reader request, control::ControlResponder reply) {
  std::vector<std::string> addresses;
  for (auto a : request.getJoin()) {
    auto hp = config::parseHostPort(a.cStr(), false);
    if (!hp) {
      reply.error(hp.status().withContext("join"));
      return;
    }
    addresses.push_back(hp->toString());
  }
  gossip_->join(addresses);
  reply.json(nlohmann::json{{"joining", addresses}}.dump());
}

void Node::watchRequest(proto::Request::Reader request, control::ControlResponder reply) {
  auto kinds = state::parseEventKinds(request.getWatch().cStr());
  if (!kinds) {
    reply.error(kinds.status().withContext("watch"));
    return;
  }
  // Each event is one JSON reply; a gap the subscriber's buffer dropped is one reply too.
  auto pump = std::make_shared<state::EventPump>(
      events_, std::move(*kinds),
      [reply](const state::EventBatch& b) {
        if (b.missed > 0) reply.push(nlohmann::json{{"kind", "missed"}, {"missed", b.missed}}.dump());
        for (const auto& e : b.events) reply.push(e->json);
      },
      [reply] { return reply.queuedBytes(); });
  reply.onStream([pump](bool closed) {
    if (closed) {
      pump->stop();
    } else {
      pump->pump();
    }
  });
  // The first reply says the watch is on, so the client knows it was not refused.
  if (!reply.push(nlohmann::json{{"kind", "watching"}, {"node", config_.node.name}, {"id", identity_.id}}.dump())) {
    pump->stop();
    reply.error(Status::unavailable("watch: this connection cannot stream replies"));
  }
}

void Node::daemonLogs(proto::Request::Reader request, control::ControlResponder reply) {
  auto q = request.getDaemonLogs();
  std::string instance = q.getInstance().cStr();
  if (instance.empty()) instance = std::string(q.getName().cStr()) + "#0";
  runtime::LogQuery lq;
  if (q.getOffset() > 0 || q.getTailLines() == 0) {
    lq.offset = static_cast<int64_t>(q.getOffset());
  } else {
    lq.tail_lines = q.getTailLines();
  }
  auto chunk = supervisor_->logs(instance, lq);
  if (!chunk) {
    reply.error(chunk.status());
    return;
  }
  reply.json(nlohmann::json{{"instance", instance}, {"data", chunk->data},
                            {"next_offset", chunk->next_offset}, {"rotated", chunk->rotated}}
                 .dump());
}

namespace {

std::string daemonOpName(proto::DaemonControl::Op op) {
  using Op = proto::DaemonControl::Op;
  switch (op) {
    case Op::RESTART: return "restart";
    case Op::PAUSE: return "pause";
    case Op::RESUME: return "resume";
    case Op::QUARANTINE: return "quarantine";
    case Op::STOP: return "stop";
    case Op::START: return "start";
    case Op::TRIGGER: return "trigger";
    case Op::SIGNAL: return "signal";
    case Op::EXEC: return "exec";
    case Op::ENABLE: return "enable";
    case Op::DISABLE: return "disable";
  }
  return "";
}

}  // namespace

void Node::daemonRequest(proto::Request::Reader request, const control::PeerCred& peer,
                         control::ControlResponder reply) {
  auto c = request.getDaemonControl();
  std::string target = c.getInstance().size() > 0 ? c.getInstance().cStr() : c.getName().cStr();
  const std::string op = daemonOpName(c.getOp());
  if (op.empty()) {
    reply.error(Status::invalid("unknown daemon operation"));
    return;
  }
  nlohmann::json audit = {{"command", "daemon-" + op}, {"target", target},
                          {"reason", request.getReason().cStr()}, {"pid", peer.pid},
                          {"uid", peer.uid}, {"gid", peer.gid}};
  int sig = 0;
  Status s;
  if (op == "signal") {
    auto n = spec::signalNumber(c.getSignal().cStr());
    s = n ? Status::ok() : n.status().withContext("daemon signal");
    if (n) sig = *n;
    audit["signal"] = sig;
  }
  // The daemon's own [daemon.permissions] bind every role.
  if (const spec::DaemonSpec* spec = supervisor_->specOf(target); s && spec != nullptr) {
    if (std::string why = spec::permissionRefusal(*spec, op, sig); !why.empty()) {
      ++access_refusals_;
      s = Status::denied(why);
    }
  }
  if (s && op == "exec") {
    daemonExec(request, std::move(audit), std::move(reply));
    return;
  }
  if (s) {
    using Op = proto::DaemonControl::Op;
    switch (c.getOp()) {
      case Op::RESTART: s = supervisor_->restart(target); break;
      case Op::PAUSE: s = supervisor_->pause(target); break;
      case Op::RESUME: s = supervisor_->resume(target); break;
      case Op::QUARANTINE: s = supervisor_->quarantine(target); break;
      case Op::STOP: s = supervisor_->stop(target); break;
      case Op::START: s = supervisor_->start(target); break;
      case Op::TRIGGER: s = supervisor_->trigger(target).status(); break;
      case Op::SIGNAL: s = supervisor_->signal(target, sig); break;
      // A schedule belongs to the daemon, not to one instance.
      case Op::ENABLE: s = supervisor_->setCronEnabled(target.substr(0, target.find('#')), true); break;
      case Op::DISABLE: s = supervisor_->setCronEnabled(target.substr(0, target.find('#')), false); break;
      case Op::EXEC: break;
    }
  }
  audit["result"] = s.toString();
  record(chains::ChainName::kAudit, "control", audit);
  instances_dirty_ = true;
  refreshInstances();
  if (!s) {
    reply.error(s);
    return;
  }
  reply.json(nlohmann::json{{"ok", true}, {"op", op}, {"target", target}}.dump());
}

void Node::daemonExec(proto::Request::Reader request, nlohmann::json audit, control::ControlResponder reply) {
  auto c = request.getDaemonControl();
  std::vector<std::string> argv;
  for (auto a : c.getArgv()) argv.emplace_back(a.cStr());
  audit["argv"] = argv;
  record(chains::ChainName::kAudit, "control", audit);
  std::string instance = c.getInstance().size() > 0 ? c.getInstance().cStr() : std::string(c.getName().cStr()) + "#0";
  Status started = supervisor_->exec(instance, argv, 30000, [reply](Result<runtime::ExecResult> r) {
    if (!r) {
      reply.error(r.status());
      return;
    }
    reply.json(nlohmann::json{{"exit_code", r->exit_code}, {"signal", r->term_signal},
                              {"output", r->output}, {"truncated", r->truncated},
                              {"timed_out", r->timed_out}}
                   .dump());
  });
  if (!started) reply.error(started);
}

void Node::chainRequest(proto::Request::Reader request, control::ControlResponder reply) {
  const auto which = request.which();
  auto range = which == proto::Request::CHAIN_VERIFY ? request.getChainVerify()
               : which == proto::Request::CHAIN_TAIL ? request.getChainTail()
                                                     : request.getChainShow();
  auto chain = chains::parseChainName(range.getChain().cStr());
  if (!chain) {
    reply.error(chain.status());
    return;
  }
  chainRead(which, *chain, range.getFrom(), range.getCount(), [reply](Result<std::string> r) {
    if (r) {
      reply.json(std::move(*r));
    } else {
      reply.error(r.status());
    }
  });
}

void Node::chainRead(proto::Request::Which which, chains::ChainName name, uint64_t from, uint64_t count,
                     std::function<void(Result<std::string>)> done) {
  const PublicKey key = identity_.key.public_key;
  chains::ChainStore* store = store_.get();
  // Reads can be long (verify walks the whole chain): off the loop, on the workers. The
  // store outlives them: the shell drains the workers before the Node goes.
  auto result = std::make_shared<Result<std::string>>(Status::unavailable("not run"));
  env_.workers.run(
      [store, which, name, from, count, key, result] {
        try {
          if (which == proto::Request::CHAIN_VERIFY) {
            chains::VerifyRange r;
            r.from = from;
            if (count > 0) r.to = from + count - 1;
            *result = chains::chainVerifyJson(*store, name, r, key).dump();
          } else if (which == proto::Request::CHAIN_TAIL) {
            auto j = chains::chainTailJson(*store, name, from, count == 0 ? 20 : count);
            *result = j ? Result<std::string>(j->dump()) : Result<std::string>(j.status());
          } else {
            auto j = chains::chainShowJson(*store, name, from == 0 ? std::nullopt : std::optional<uint64_t>(from));
            *result = j ? Result<std::string>(j->dump()) : Result<std::string>(j.status());
          }
        } catch (const std::exception& e) {
          *result = Status::internal(e.what());
        }
      },
      [done = std::move(done), result] { done(std::move(*result)); });
}

}  // namespace meshos::node
