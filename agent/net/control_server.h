// ControlServer: the agent's unix-domain control socket on the libuv loop.
//
// Each connection carries length-framed Cap'n Proto requests (control_frame.h); requests on
// one connection are handled one at a time and answered in order. The handler gets the
// decoded request, the caller's peer credentials (SO_PEERCRED, for the audit chain) and a
// responder it may call at once or later (after work on another thread). A malformed,
// oversized or unknown request gets an error reply and never disturbs the agent; an
// oversized frame also closes that connection, since its stream can no longer be trusted.
// Loop thread only. close() stops accepting, closes connections and removes the socket;
// the server must outlive the loop run that follows, where the close callbacks fire.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "agent/core/status.h"
#include "agent/control/control_reply.h"

namespace meshos::net {

using control::ControlHandler;
using control::ControlResponder;
using control::PeerCred;
using control::ReplySink;

class ControlConnection;

struct ControlCounters {
  uint64_t connections = 0;
  uint64_t requests = 0;
  uint64_t malformed = 0;      // frames that did not decode, or handler errors on bad fields
  uint64_t oversized = 0;
  uint64_t refused_connections = 0;
};

class ControlServer {
 public:
  static constexpr size_t kMaxConnections = 64;

  ControlServer(uv_loop_t* loop, ControlHandler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds path with the given mode. If the path is held by a live agent, fails with
  // kAlreadyExists; a stale socket (nobody answers) is removed first.
  Status listen(const std::filesystem::path& path, uint32_t mode);
  // Stops accepting, closes every connection, unlinks the socket. Idempotent.
  void close();
  const ControlCounters& counters() const { return counters_; }
  size_t openConnections() const { return connections_.size(); }

 private:
  friend class ControlConnection;
  static void onConnection(uv_stream_t* server, int status);
  void forget(ControlConnection* conn);

  uv_loop_t* loop_;
  ControlHandler handler_;
  uv_pipe_t* pipe_ = nullptr;  // freed in its close callback
  std::filesystem::path path_;
  std::unordered_set<std::shared_ptr<ControlConnection>> connections_;
  ControlCounters counters_;
};

}  // namespace meshos::net
