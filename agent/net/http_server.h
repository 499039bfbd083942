// HttpServer: the agent's HTTP endpoint ([control] http, off by default) on the libuv loop.
//
// GET and HEAD only, read-only: /metrics (Prometheus text), /v1/... (the control socket's
// read commands as JSON), /v1/events (server-sent events from the node's EventBus) and /
// (the status page, which follows /v1/events). Requests are parsed by http-parser
// (Debian's libhttp-parser, through http_request.h), and bounded: kMaxRequestBytes of request line and headers,
// kMaxHeaders headers, no body, kMaxConnections connections, and kRequestTimeoutMs to send
// a whole request. A response goes out through libuv's write queue; a client that does
// not read its response is cut off after kSendTimeoutMs, and an event stream only takes
// events as fast as its client reads (event_pump.h). So no client can stall the loop.
// Loop thread only; close() before the loop's last run (the node's control stage does).
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "agent/config/node_config.h"
#include "agent/control/control_reply.h"
#include "agent/core/status.h"
#include "agent/state/event_bus.h"

namespace meshos::net {

class HttpConnection;

struct HttpRoutes {
  using Done = std::function<void(Result<control::ControlReply>)>;
  // /metrics and /v1/... (not /v1/events); done may run later, on the loop.
  std::function<void(const std::string& path, const std::map<std::string, std::string>& query, Done done)> read;
  state::EventBus* events = nullptr;  // /v1/events; null: 404
};

class HttpServer {
 public:
  static constexpr size_t kMaxConnections = 64;
  static constexpr size_t kMaxRequestBytes = 16 * 1024;
  static constexpr size_t kMaxHeaders = 64;
  static constexpr int64_t kRequestTimeoutMs = 10'000;
  static constexpr int64_t kKeepAliveMs = 15'000;  // event streams: a comment this often
  static constexpr int64_t kSendTimeoutMs = 30'000;  // a response the client does not take

  HttpServer(uv_loop_t* loop, HttpRoutes routes);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status listen(const config::HostPort& address);
  // Stops accepting, ends every connection and event stream. Idempotent.
  void close();
  // The address it listens on (port 0 in the config: the port the kernel chose).
  const std::string& address() const { return address_; }
  // /v1/events from now on (the node's bus exists after the server listens).
  void setEvents(state::EventBus* events) { routes_.events = events; }
  nlohmann::json toJson() const;

 private:
  friend class HttpConnection;
  static void onConnection(uv_stream_t* server, int status);
  void forget(HttpConnection* conn);
  void sweep();  // request timeouts and event-stream keep-alives, every second while busy

  uv_loop_t* loop_;
  HttpRoutes routes_;
  uv_tcp_t* tcp_ = nullptr;   // freed in its close callback
  uv_timer_t* timer_ = nullptr;
  std::string address_;
  std::unordered_set<std::shared_ptr<HttpConnection>> connections_;
  uint64_t accepted_ = 0;
  uint64_t refused_ = 0;
  std::map<int, uint64_t> responses_;  // by status code
};

// The reason phrase of the status codes the server sends.
std::string_view httpReason(int code);
// The HTTP status for an error the node returned.
int httpStatusFor(const Status& s);

}  // namespace meshos::net
