#include "agent/net/gossip_transport.h"

#include <cstring>

#include "agent/core/clock.h"
#include "agent/core/logging.h"

namespace meshos::net {

namespace {
constexpr size_t kMaxUdpSendQueue = 1024;
constexpr size_t kFrameHeaderBytes = 4;

std::string hostPart(const std::string& address) {
  if (!address.empty() && address[0] == '[') {
    auto end = address.find(']');
    return end == std::string::npos ? address : address.substr(1, end - 1);
  }
  auto pos = address.rfind(':');
  return pos == std::string::npos ? address : address.substr(0, pos);
}

std::string firstNonLoopbackIPv4() {
  uv_interface_address_t* ifs = nullptr;
  int count = 0;
  std::string out = "127.0.0.1";
  if (uv_interface_addresses(&ifs, &count) != 0) return out;
  for (int i = 0; i < count; ++i) {
    if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET) continue;
    char buf[64];
    uv_ip4_name(&ifs[i].address.address4, buf, sizeof(buf));
    out = buf;
    break;
  }
  uv_free_interface_addresses(ifs, count);
  return out;
}

Bytes framed(const Bytes& body) {
  Bytes out;
  out.reserve(body.size() + kFrameHeaderBytes);
  const size_t n = body.size();
  for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<uint8_t>(n >> shift));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

uint16_t portOf(const sockaddr_storage& a) {
  return ntohs(a.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in*>(&a)->sin_port
                                      : reinterpret_cast<const sockaddr_in6*>(&a)->sin6_port);
}

void setPort(sockaddr_storage& a, uint16_t port) {
  if (a.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&a)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&a)->sin6_port = htons(port);
  }
}
}  // namespace

Status parseSocketAddress(const std::string& address, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof(out));
  std::string host;
  std::string port;
  if (!address.empty() && address[0] == '[') {
    auto end = address.find("]:");
    if (end == std::string::npos) return Status::invalid("bad address '" + address + "': expected [v6]:port");
    host = address.substr(1, end - 1);
    port = address.substr(end + 2);
  } else {
    auto pos = address.rfind(':');
    if (pos == std::string::npos) return Status::invalid("bad address '" + address + "': expected host:port");
    host = address.substr(0, pos);
    port = address.substr(pos + 1);
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535)
    return Status::invalid("bad port in address '" + address + "'");
  if (uv_ip4_addr(host.c_str(), static_cast<int>(p), reinterpret_cast<sockaddr_in*>(&out)) == 0) return Status::ok();
  if (uv_ip6_addr(host.c_str(), static_cast<int>(p), reinterpret_cast<sockaddr_in6*>(&out)) == 0) return Status::ok();
  return Status::invalid("bad address '" + address + "': host must be an IPv4 or IPv6 literal");
}

std::string formatSocketAddress(const sockaddr* addr) {
  char buf[INET6_ADDRSTRLEN + 1] = {0};
  if (addr->sa_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(addr);
    uv_ip4_name(a, buf, sizeof(buf));
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  auto* a = reinterpret_cast<const sockaddr_in6*>(addr);
  uv_ip6_name(a, buf, sizeof(buf));
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
}

// ---------------------------------------------------------------- handles

struct GossipTransport::UdpHandle {
  uv_udp_t handle{};
  GossipTransport* owner = nullptr;  // null once the transport closed
  alignas(8) char buf[65536];
};

struct GossipTransport::TcpServer {
  uv_tcp_t handle{};
  GossipTransport* owner = nullptr;
};

struct GossipTransport::Conn {
  uv_tcp_t handle{};
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  GossipTransport* owner = nullptr;  // null once detached from the transport
  bool outbound = false;
  std::function<void(Result<Bytes>)> done;  // outbound: the requester
  std::string peer;
  Bytes request;  // outbound: the framed request
  Bytes write_buf;
  Bytes rbuf;
  char chunk[16384];
  TimerId timer = 0;
  bool closing = false;
};

namespace {
struct UdpSend {
  uv_udp_send_t req{};
  Bytes data;
};
}  // namespace

// ---------------------------------------------------------------- lifecycle

GossipTransport::GossipTransport(uv_loop_t* loop, Timers& timers, const Clock& clock)
    : loop_(loop), timers_(timers), clock_(clock) {}

GossipTransport::~GossipTransport() { close(); }

Result<std::string> GossipTransport::open(const gossip::TransportOptions& options,
                                          gossip::TransportReceiver& receiver) {
  if (opened_) return Status::exists("gossip transport already open");
  options_ = options;
  receiver_ = &receiver;
  sockaddr_storage bind_addr{};
  MESHOS_RETURN_IF_ERROR(parseSocketAddress(options.bind, bind_addr).withContext("gossip bind"));
  udp_ = new UdpHandle();
  udp_->owner = this;
  udp_->handle.data = udp_;
  uv_udp_init(loop_, &udp_->handle);
  tcp_ = new TcpServer();
  tcp_->owner = this;
  tcp_->handle.data = tcp_;
  uv_tcp_init(loop_, &tcp_->handle);
  opened_ = true;  // from here close() must run to free the handles

  int rc = uv_udp_bind(&udp_->handle, reinterpret_cast<const sockaddr*>(&bind_addr), 0);
  if (rc != 0) return Status::io("gossip: cannot bind UDP " + options.bind + ": " + uv_strerror(rc));
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_udp_getsockname(&udp_->handle, reinterpret_cast<sockaddr*>(&bound), &len);
  bound_port_ = portOf(bound);
  sockaddr_storage tcp_addr = bind_addr;  // TCP on the same port as UDP
  setPort(tcp_addr, bound_port_);
  rc = uv_tcp_bind(&tcp_->handle, reinterpret_cast<const sockaddr*>(&tcp_addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&tcp_->handle), 128, [](uv_stream_t* server, int status) {
      auto* srv = static_cast<TcpServer*>(server->data);
      if (srv->owner != nullptr && status == 0) srv->owner->accept(server);
    });
  }
  if (rc != 0) return Status::io("gossip: cannot listen on TCP port " + std::to_string(bound_port_) + ": " + uv_strerror(rc));
  rc = uv_udp_recv_start(
      &udp_->handle,
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* u = static_cast<UdpHandle*>(h->data);
        *buf = uv_buf_init(u->buf, sizeof(u->buf));
      },
      [](uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned) {
        auto* u = static_cast<UdpHandle*>(h->data);
        GossipTransport* t = u->owner;
        if (t == nullptr || t->closed_ || nread <= 0 || addr == nullptr) return;
        t->receiver_->onDatagram(t->clock_.monotonicNs() / 1000, formatSocketAddress(addr),
                                 ByteView(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread)));
      });
  if (rc != 0) return Status::io(std::string("gossip: cannot receive on UDP: ") + uv_strerror(rc));

  std::string host = hostPart(options.bind);
  if (host == "0.0.0.0") host = firstNonLoopbackIPv4();
  if (host == "::") host = "::1";
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(bound_port_);
}

void GossipTransport::close() {
  if (closed_) return;
  closed_ = true;
  if (fail_timer_ != 0) timers_.cancel(fail_timer_);
  fail_timer_ = 0;
  failed_.clear();
  std::vector<Conn*> all;
  for (auto& [c, _] : conns_) all.push_back(c);
  for (Conn* c : all) closeConn(c);
  if (udp_ != nullptr) {
    udp_->owner = nullptr;
    uv_udp_recv_stop(&udp_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&udp_->handle),
             [](uv_handle_t* h) { delete static_cast<UdpHandle*>(h->data); });
    udp_ = nullptr;
  }
  if (tcp_ != nullptr) {
    tcp_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_->handle),
             [](uv_handle_t* h) { delete static_cast<TcpServer*>(h->data); });
    tcp_ = nullptr;
  }
}

// ---------------------------------------------------------------- UDP

void GossipTransport::send(const std::string& to, Bytes bytes) {
  if (closed_ || udp_ == nullptr) return;
  sockaddr_storage addr{};
  if (!parseSocketAddress(to, addr)) {
    ++counters_.udp_send_errors;
    return;
  }
  if (uv_udp_get_send_queue_count(&udp_->handle) >= kMaxUdpSendQueue) {
    ++counters_.udp_send_dropped;
    return;
  }
  auto* s = new UdpSend();
  s->data = std::move(bytes);
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(s->data.data()), static_cast<unsigned>(s->data.size()));
  int rc = uv_udp_send(&s->req, &udp_->handle, &buf, 1, reinterpret_cast<const sockaddr*>(&addr),
                       [](uv_udp_send_t* req, int) { delete reinterpret_cast<UdpSend*>(req); });
  if (rc != 0) {
    ++counters_.udp_send_errors;
    delete s;
  }
}

// ---------------------------------------------------------------- TCP

void GossipTransport::failLater(std::function<void(Result<Bytes>)> done, Status why) {
  // Never call back inside the call that started the operation.
  failed_.emplace_back(std::move(done), std::move(why));
  if (fail_timer_ != 0) return;
  fail_timer_ = timers_.after(0, [this] {
    fail_timer_ = 0;
    auto failed = std::move(failed_);
    failed_.clear();
    for (auto& [fn, st] : failed) {
      if (closed_) return;
      fn(std::move(st));
    }
  });
}

void GossipTransport::closeConn(Conn* c) {
  if (c->closing) return;
  c->closing = true;
  if (c->timer != 0) timers_.cancel(c->timer);
  c->timer = 0;
  conns_.erase(c);
  c->owner = nullptr;
  c->done = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->handle), [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
}

void GossipTransport::request(const std::string& to, Bytes frame, int64_t timeout_ms,
                              std::function<void(Result<Bytes>)> done) {
  if (closed_ || !opened_) return;
  sockaddr_storage addr{};
  if (Status s = parseSocketAddress(to, addr); !s) return failLater(std::move(done), s);
  if (conns_.size() >= options_.max_connections) {
    ++counters_.tcp_rejected;
    return failLater(std::move(done), Status::overloaded("too many gossip streams"));
  }
  auto* c = new Conn();
  c->handle.data = c;
  c->owner = this;
  c->outbound = true;
  c->done = std::move(done);
  c->peer = to;
  c->request = framed(frame);
  uv_tcp_init(loop_, &c->handle);
  conns_[c] = true;
  c->connect_req.data = c;
  c->timer = timers_.after(timeout_ms, [this, c] {
    c->timer = 0;
    finishOutbound(c, Status::deadline("gossip stream to " + c->peer + " timed out"));
  });
  int rc = uv_tcp_connect(&c->connect_req, &c->handle, reinterpret_cast<const sockaddr*>(&addr),
                          [](uv_connect_t* req, int status) {
                            auto* conn = static_cast<Conn*>(req->data);
                            GossipTransport* t = conn->owner;
                            if (t == nullptr) return;
                            if (status != 0) {
                              t->finishOutbound(conn, Status::unavailable(std::string("connect: ") + uv_strerror(status)));
                              return;
                            }
                            conn->write_req.data = conn;
                            uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(conn->request.data()),
                                                     static_cast<unsigned>(conn->request.size()));
                            uv_write(&conn->write_req, reinterpret_cast<uv_stream_t*>(&conn->handle), &b, 1,
                                     [](uv_write_t* w, int st) {
                                       auto* cc = static_cast<Conn*>(w->data);
                                       if (cc->owner == nullptr) return;
                                       if (st != 0) {
                                         cc->owner->finishOutbound(cc, Status::unavailable("write failed"));
                                         return;
                                       }
                                       uv_read_start(
                                           reinterpret_cast<uv_stream_t*>(&cc->handle),
                                           [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                                             auto* x = static_cast<Conn*>(h->data);
                                             *buf = uv_buf_init(x->chunk, sizeof(x->chunk));
                                           },
                                           [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                                             auto* x = static_cast<Conn*>(s->data);
                                             if (x->owner != nullptr) x->owner->onConnData(x, n, buf);
                                           });
                                     });
                          });
  if (rc != 0) {
    // The connect callback will not run; finish from a timer, not from inside this call.
    std::string why = std::string("connect: ") + uv_strerror(rc);
    if (c->timer != 0) timers_.cancel(c->timer);
    c->timer = timers_.after(0, [this, c, why] {
      c->timer = 0;
      finishOutbound(c, Status::unavailable(why));
    });
  }
}

void GossipTransport::finishOutbound(Conn* c, Result<Bytes> reply) {
  auto done = std::move(c->done);
  if (!reply) ++counters_.tcp_errors;
  closeConn(c);
  if (done && !closed_) done(std::move(reply));
}

void GossipTransport::accept(uv_stream_t* server) {
  auto* c = new Conn();
  c->handle.data = c;
  uv_tcp_init(loop_, &c->handle);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->handle)) != 0 ||
      conns_.size() >= options_.max_connections) {
    ++counters_.tcp_rejected;
    c->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->handle), [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
    return;
  }
  c->owner = this;
  sockaddr_storage peer{};
  int len = sizeof(peer);
  if (uv_tcp_getpeername(&c->handle, reinterpret_cast<sockaddr*>(&peer), &len) == 0)
    c->peer = formatSocketAddress(reinterpret_cast<sockaddr*>(&peer));
  conns_[c] = true;
  c->timer = timers_.after(options_.inbound_timeout_ms, [this, c] {
    c->timer = 0;
    ++counters_.tcp_errors;
    closeConn(c);
  });
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->handle),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* x = static_cast<Conn*>(h->data);
        *buf = uv_buf_init(x->chunk, sizeof(x->chunk));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* x = static_cast<Conn*>(s->data);
        if (x->owner != nullptr) x->owner->onConnData(x, n, buf);
      });
}

void GossipTransport::onInboundFrame(Conn* c, Bytes frame) {
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->handle));
  auto reply = receiver_->onStream(c->peer, frame);
  if (c->owner == nullptr) return;  // closed meanwhile
  if (!reply) {
    ++counters_.tcp_errors;
    closeConn(c);
    return;
  }
  c->write_buf = framed(*reply);
  c->write_req.data = c;
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(c->write_buf.data()), static_cast<unsigned>(c->write_buf.size()));
  uv_write(&c->write_req, reinterpret_cast<uv_stream_t*>(&c->handle), &b, 1, [](uv_write_t* w, int) {
    auto* cc = static_cast<Conn*>(w->data);
    if (cc->owner != nullptr) cc->owner->closeConn(cc);
  });
}

// Collects one length-prefixed frame, then hands it on.
void GossipTransport::onConnData(Conn* c, ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {
    if (c->outbound) {
      finishOutbound(c, Status::unavailable("gossip stream closed before the reply"));
    } else {
      if (nread != UV_EOF || !c->rbuf.empty()) ++counters_.tcp_errors;  // error, or a truncated frame
      closeConn(c);
    }
    return;
  }
  c->rbuf.insert(c->rbuf.end(), buf->base, buf->base + nread);
  if (c->rbuf.size() < kFrameHeaderBytes) return;
  size_t len = (size_t{c->rbuf[0]} << 24) | (size_t{c->rbuf[1]} << 16) | (size_t{c->rbuf[2]} << 8) | c->rbuf[3];
  if (len > options_.max_frame_bytes) {
    ++counters_.tcp_errors;
    if (c->outbound) {
      finishOutbound(c, Status::invalid("gossip stream frame of " + std::to_string(len) + " bytes is over the limit"));
    } else {
      closeConn(c);
    }
    return;
  }
  if (c->rbuf.size() < kFrameHeaderBytes + len) return;
  Bytes frame(c->rbuf.begin() + kFrameHeaderBytes, c->rbuf.begin() + static_cast<std::ptrdiff_t>(kFrameHeaderBytes + len));
  c->rbuf.clear();
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->handle));
  if (c->outbound) {
    finishOutbound(c, std::move(frame));
  } else {
    onInboundFrame(c, std::move(frame));
  }
}

}  // namespace meshos::net
