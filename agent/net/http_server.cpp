#include "agent/net/http_server.h"

#include <spdlog/spdlog.h>

#include "agent/state/event_pump.h"
#include "agent/net/http_request.h"
#include "agent/net/status_page.h"

namespace meshos::net {

namespace {

constexpr size_t kStreamSendBufferBytes = 64 * 1024;

std::string sseFormat(const state::EventBatch& b) {
  std::string out;
  if (b.missed > 0) out += "event: missed\ndata: {\"missed\":" + std::to_string(b.missed) + "}\n\n";
  for (const auto& e : b.events) {
    out += "id: " + std::to_string(e->seq) + "\nevent: " + e->kind + "\ndata: " + e->json + "\n\n";
  }
  return out;
}

}  // namespace

std::string_view httpReason(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

int httpStatusFor(const Status& s) {
  switch (s.code()) {
    case Code::kInvalidArgument: return 400;
    case Code::kNotFound: return 404;
    case Code::kPermissionDenied: return 403;
    case Code::kUnavailable: return 503;
    case Code::kNotImplemented: return 501;
    default: return 500;
  }
}

// One connection: one request, one response, then close (Connection: close), or, for
// /v1/events, a stream until the client goes. Owned by the server's set; freed in the
// close callback (write callbacks all run before it).
class HttpConnection final : public std::enable_shared_from_this<HttpConnection> {
 public:
  explicit HttpConnection(HttpServer* server)
      : server_(server), request_(HttpServer::kMaxRequestBytes, HttpServer::kMaxHeaders) {}

  void adopt(uv_tcp_t* tcp) {
    tcp_ = tcp;
    tcp_->data = this;
    started_ms_ = static_cast<int64_t>(uv_now(server_->loop_));
    last_write_ms_ = started_ms_;
  }

  void startReading() {
    uv_read_start(stream(),
                  [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
                    buf->base = new char[suggested];
                    buf->len = suggested;
                  },
                  &HttpConnection::onRead);
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    if (pump_) pump_->stop();
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) {
      auto* conn = static_cast<HttpConnection*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      conn->server_->forget(conn);  // may destroy conn
    });
  }

  // The server's sweep: a request that takes too long to arrive; a quiet event stream.
  void sweep(int64_t now_ms) {
    if (closing_) return;
    if (lingering_since_ms_ >= 0) {
      if (now_ms - lingering_since_ms_ >= kLingerMs) close();
      return;
    }
    if (close_after_write_ && writes_in_flight_ > 0 && now_ms - last_write_ms_ > HttpServer::kSendTimeoutMs) {
      close();  // the client does not read its response
    } else if (!answered_ && now_ms - started_ms_ > HttpServer::kRequestTimeoutMs) {
      respond(408, "text/plain", "the request did not arrive in time\n");
    } else if (pump_ && now_ms - last_write_ms_ >= HttpServer::kKeepAliveMs) {
      write(": keep-alive\n\n");
    }
  }

  bool streaming() const { return pump_ != nullptr; }

 private:
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(tcp_); }

  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* conn = static_cast<HttpConnection*>(s->data);
    std::unique_ptr<char[]> owned(buf->base);
    if (nread < 0) return conn->close();
    if (nread == 0 || conn->closing_ || conn->answered_) return;  // one request per connection
    conn->feed(buf->base, static_cast<size_t>(nread));
  }

  void feed(const char* data, size_t n) {
    switch (request_.feed(data, n)) {
      case HttpRequestReader::State::kIncomplete: return;
      case HttpRequestReader::State::kFailed: return respond(request_.errorStatus(), "text/plain", request_.error() + "\n");
      case HttpRequestReader::State::kComplete: return dispatch();
    }
  }

  void dispatch() {
    uv_read_stop(stream());
    const bool head = request_.method() == "HEAD";
    if (request_.method() != "GET" && !head) {
      return respond(405, "text/plain", "only GET and HEAD are served\n", {"Allow: GET, HEAD"});
    }
    head_only_ = head;
    auto target = splitTarget(request_.target());
    if (!target) return respond(400, "text/plain", target.status().message() + "\n");
    auto& [path, query] = *target;
    if (path == "/" || path == "/index.html") {
      return respond(200, "text/html; charset=utf-8", std::string(kStatusPage));
    }
    if (path == "/v1/events") return startEvents(query);
    if (!server_->routes_.read) return respond(404, "text/plain", "not found\n");
    answered_ = true;  // from here the node answers, maybe later
    const bool metrics = path == "/metrics";
    std::weak_ptr<HttpConnection> weak = shared_from_this();
    server_->routes_.read(path, query, [weak, metrics](Result<control::ControlReply> r) {
      auto self = weak.lock();
      if (!self || self->closing_) return;
      self->answered_ = false;
      if (!r) {
        nlohmann::json err = {{"error", {{"code", codeName(r.status().code())}, {"message", r.status().message()}}}};
        return self->respond(httpStatusFor(r.status()), "application/json", err.dump() + "\n");
      }
      const bool json = r->kind == control::ControlReply::Kind::kJson;
      self->respond(200,
                    json      ? "application/json"
                    : metrics ? "text/plain; version=0.0.4; charset=utf-8"
                              : "text/plain; charset=utf-8",
                    json ? r->body + "\n" : r->body);
    });
  }

  void startEvents(const std::map<std::string, std::string>& query) {
    if (server_->routes_.events == nullptr) return respond(404, "text/plain", "no event stream here\n");
    auto it = query.find("kinds");
    auto kinds = state::parseEventKinds(it == query.end() ? "" : it->second);
    if (!kinds) return respond(400, "text/plain", kinds.status().message() + "\n");
    answered_ = true;
    // The kernel's share of a slow reader's backlog is bounded too (loopback would
    // otherwise autotune it to megabytes); the rest waits in the bus, where it is counted.
    int sndbuf = static_cast<int>(kStreamSendBufferBytes);
    uv_send_buffer_size(reinterpret_cast<uv_handle_t*>(tcp_), &sndbuf);
    write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
          "Connection: keep-alive\r\nX-Content-Type-Options: nosniff\r\n\r\n: meshos events\n\n");
    ++server_->responses_[200];
    pump_ = std::make_unique<state::EventPump>(
        *server_->routes_.events, std::move(*kinds), [this](const state::EventBatch& b) { write(sseFormat(b)); },
        [this] { return uv_stream_get_write_queue_size(stream()); });
    // A closed client is seen by a failed read: keep reading (and ignore what comes).
    startReading();
  }

  void respond(int code, std::string_view type, std::string body, std::vector<std::string> extra = {}) {
    if (closing_ || answered_) return;
    answered_ = true;
    ++server_->responses_[code];
    std::string out = "HTTP/1.1 " + std::to_string(code) + " " + std::string(httpReason(code)) +
                      "\r\nContent-Type: " + std::string(type) + "\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n";
    for (const auto& h : extra) out += h + "\r\n";
    out += "\r\n";
    if (!head_only_) out += body;
    close_after_write_ = true;
    write(std::move(out));
  }

  void write(std::string bytes) {
    struct WriteReq {
      uv_write_t req{};
      std::string bytes;
      HttpConnection* conn;
    };
    auto* w = new WriteReq{{}, std::move(bytes), this};
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    w->req.data = w;
    last_write_ms_ = static_cast<int64_t>(uv_now(server_->loop_));
    ++writes_in_flight_;
    int rc = uv_write(&w->req, stream(), &buf, 1, [](uv_write_t* req, int status) {
      auto* wr = static_cast<WriteReq*>(req->data);
      HttpConnection* c = wr->conn;
      delete wr;
      c->onWritten(status);
    });
    if (rc != 0) {
      delete w;
      --writes_in_flight_;
      close();
    }
  }

  void onWritten(int status) {
    --writes_in_flight_;
    if (closing_) return;
    if (status != 0) return close();
    if (close_after_write_ && writes_in_flight_ == 0) return linger();
    if (pump_) pump_->pump();
  }

  // The response is out: send FIN and read (and drop) what the client still sends until it
  // closes, or kLingerMs. Closing at once with unread bytes (the rest of an oversized
  // request) would make the kernel send a reset, and the client could lose the response.
  void linger() {
    if (lingering_since_ms_ >= 0) return;
    lingering_since_ms_ = static_cast<int64_t>(uv_now(server_->loop_));
    auto* req = new uv_shutdown_t();
    if (uv_shutdown(req, stream(), [](uv_shutdown_t* r, int) { delete r; }) != 0) {
      delete req;
      return close();
    }
    startReading();  // already reading after an error reply: then a no-op
  }

  HttpServer* server_;
  uv_tcp_t* tcp_ = nullptr;
  HttpRequestReader request_;
  bool head_only_ = false;
  bool answered_ = false;
  bool closing_ = false;
  bool close_after_write_ = false;
  static constexpr int64_t kLingerMs = 2000;
  int64_t lingering_since_ms_ = -1;
  int writes_in_flight_ = 0;
  int64_t started_ms_ = 0;
  int64_t last_write_ms_ = 0;
  std::unique_ptr<state::EventPump> pump_;
};

HttpServer::HttpServer(uv_loop_t* loop, HttpRoutes routes) : loop_(loop), routes_(std::move(routes)) {}

HttpServer::~HttpServer() { close(); }

Status HttpServer::listen(const config::HostPort& address) {
  if (tcp_ != nullptr) return Status::exists("the HTTP server is already listening");
  sockaddr_storage addr{};
  int rc = uv_ip4_addr(address.host.c_str(), address.port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) rc = uv_ip6_addr(address.host.c_str(), address.port, reinterpret_cast<sockaddr_in6*>(&addr));
  if (rc != 0) return Status::invalid("http: \"" + address.host + "\" is not an IP address");
  auto* tcp = new uv_tcp_t();
  uv_tcp_init(loop_, tcp);
  tcp->data = this;
  rc = uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 128, &HttpServer::onConnection);
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return Status::io("http: cannot listen on " + address.toString() + ": " + uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  char host[64] = {0};
  int port = 0;
  if (bound.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&bound), host, sizeof host);
    port = ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    address_ = "[" + std::string(host) + "]:" + std::to_string(port);
  } else {
    uv_ip4_name(reinterpret_cast<sockaddr_in*>(&bound), host, sizeof host);
    port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    address_ = std::string(host) + ":" + std::to_string(port);
  }
  tcp_ = tcp;
  timer_ = new uv_timer_t();
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  return Status::ok();
}

void HttpServer::onConnection(uv_stream_t* server_stream, int status) {
  auto* self = static_cast<HttpServer*>(server_stream->data);
  if (status != 0) return;
  auto* client = new uv_tcp_t();
  uv_tcp_init(self->loop_, client);
  if (uv_accept(server_stream, reinterpret_cast<uv_stream_t*>(client)) != 0 ||
      self->connections_.size() >= kMaxConnections) {
    if (self->connections_.size() >= kMaxConnections) ++self->refused_;
    uv_close(reinterpret_cast<uv_handle_t*>(client), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    return;
  }
  uv_tcp_nodelay(client, 1);
  auto conn = std::make_shared<HttpConnection>(self);
  conn->adopt(client);
  self->connections_.insert(conn);
  ++self->accepted_;
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(self->timer_))) {
    uv_timer_start(self->timer_, [](uv_timer_t* t) { static_cast<HttpServer*>(t->data)->sweep(); }, 1000, 1000);
  }
  conn->startReading();
}

void HttpServer::sweep() {
  const int64_t now = static_cast<int64_t>(uv_now(loop_));
  auto conns = connections_;  // a sweep may close (and so forget) connections
  for (auto& c : conns) c->sweep(now);
}

void HttpServer::forget(HttpConnection* conn) {
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == conn) {
      connections_.erase(it);
      break;
    }
  }
  // Nothing connected: no timer wakes the loop.
  if (connections_.empty() && timer_ != nullptr) uv_timer_stop(timer_);
}

nlohmann::json HttpServer::toJson() const {
  nlohmann::json responses = nlohmann::json::object();
  for (const auto& [code, n] : responses_) responses[std::to_string(code)] = n;
  size_t streams = 0;
  for (const auto& c : connections_) streams += c->streaming() ? 1 : 0;
  return {{"address", address_}, {"connections", accepted_}, {"open_connections", connections_.size()},
          {"refused_connections", refused_}, {"responses", responses}, {"event_streams", streams}};
}

void HttpServer::close() {
  if (tcp_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    tcp_ = nullptr;
  }
  if (timer_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
  auto conns = connections_;
  for (auto& c : conns) c->close();
}

}  // namespace meshos::net
