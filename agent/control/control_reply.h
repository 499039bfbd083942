// What a control request brings besides itself: who asked (PeerCred, from SO_PEERCRED on
// the control socket) and where the answer goes (ControlResponder). The agent's Node
// serves requests through this interface alone, so the libuv control server
// (control_server.h) and the simulator (which calls the Node directly) hand it the same
// types. No libuv here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/status.h"
#include "proto/control.capnp.h"

namespace meshos::control {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (SO_PEERGROUPS)
  bool known = false;         // the kernel named the caller; an unnamed one has no role
};

// Receives the reply to one request: a control socket connection, or a simulator's probe.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void reply(uint64_t id, const std::function<void(proto::Reply::Builder)>& fill) = 0;
  // A stream (watch): one reply under id that does not end the request. False when the
  // sink cannot stream (it keeps one answer) or its connection is gone.
  virtual bool push(uint64_t, const std::function<void(proto::Reply::Builder)>&) { return false; }
  // Bytes pushed and not yet taken by the peer.
  virtual size_t queuedBytes() const { return 0; }
  // fn(false) after each write the peer took; fn(true) once, when the stream ends (at
  // once where the sink cannot stream).
  virtual void onStream(std::function<void(bool closed)> fn) { fn(true); }
};

// Replies to one request. Copyable; calling it after the sink is gone is a no-op; only the
// first reply counts (the sink enforces it).
class ControlResponder {
 public:
  ControlResponder() = default;
  ControlResponder(std::weak_ptr<ReplySink> sink, uint64_t id) : sink_(std::move(sink)), id_(id) {}
  void json(std::string body) const;
  void text(std::string body) const;
  void error(const Status& status) const;
  // Streams (see ReplySink): push a JSON reply; how much is queued; follow the stream.
  bool push(const std::string& json) const;
  size_t queuedBytes() const;
  void onStream(std::function<void(bool closed)> fn) const;

 private:
  std::weak_ptr<ReplySink> sink_;
  uint64_t id_ = 0;
};

using ControlHandler =
    std::function<void(proto::Request::Reader request, const PeerCred& peer, ControlResponder reply)>;

// A reply as data: what the client gets back, and what a sink that keeps answers stores.
struct ControlReply {
  enum class Kind { kJson, kText };
  Kind kind = Kind::kJson;
  std::string body;
};

// A sink that keeps the first reply it gets (the simulator, tests): the body, or the error
// reply as a Status.
class KeptReply final : public ReplySink {
 public:
  void reply(uint64_t id, const std::function<void(proto::Reply::Builder)>& fill) override;
  bool answered() const { return reply_.has_value(); }
  const Result<ControlReply>& get() const { return *reply_; }

 private:
  std::optional<Result<ControlReply>> reply_;
};

}  // namespace meshos::control
