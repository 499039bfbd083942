// The client side of the control socket, for meshos-inspect, meshos-admin and tests:
// connect, send one request, wait (bounded) for its reply. Blocking; never used on the
// agent's loop thread.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "agent/core/bytes.h"
#include "agent/core/status.h"
#include "agent/control/control_reply.h"
#include "proto/control.capnp.h"

namespace meshos::control {

using RequestFiller = std::function<void(proto::Request::Builder)>;

// Sends the request that `fill` builds. An error reply comes back as a Status with the
// agent's code and message; no agent at the path gives kUnavailable.
Result<ControlReply> callAgent(const std::filesystem::path& socket, const RequestFiller& fill,
                               int timeout_ms = 30000);

// Sends the request and hands each reply of its stream (watch) to on_reply until it returns
// false, the agent closes the connection, or an error reply comes (returned). Waits for the
// first reply at most timeout_ms, then as long as the stream lasts.
Status streamAgent(const std::filesystem::path& socket, const RequestFiller& fill,
                   const std::function<bool(const ControlReply&)>& on_reply, int timeout_ms = 30000);

// Sends raw bytes and returns the raw reply frame payload: for tests that send garbage.
Result<Bytes> exchangeRaw(const std::filesystem::path& socket, ByteView bytes, int timeout_ms);

}  // namespace meshos::control
