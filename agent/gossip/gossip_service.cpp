#include "agent/gossip/gossip_service.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "agent/core/logging.h"

namespace meshos::gossip {

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

void appendFrameHeader(Bytes& out, size_t n) {
  out.push_back(static_cast<uint8_t>(n >> 24));
  out.push_back(static_cast<uint8_t>(n >> 16));
  out.push_back(static_cast<uint8_t>(n >> 8));
  out.push_back(static_cast<uint8_t>(n));
}

Bytes framed(const Bytes& body) {
  Bytes out;
  out.reserve(body.size() + kFrameHeaderBytes);
  appendFrameHeader(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
  return out;
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

Result<uint64_t> readIncarnationFile(const std::filesystem::path& data_dir) {
  auto path = data_dir / "gossip.incarnation";
  std::ifstream in(path);
  if (!in) return uint64_t{0};
  std::string text;
  std::getline(in, text);
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0)
    return Status::corruption(path.string() + ": not a number: '" + text + "'");
  return static_cast<uint64_t>(v);
}

Status writeIncarnationFile(const std::filesystem::path& data_dir, uint64_t incarnation) {
  auto path = data_dir / "gossip.incarnation";
  std::string tmp = path.string() + ".tmp";
  std::string data = std::to_string(incarnation) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io("cannot create " + tmp + ": " + std::strerror(errno));
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::io("cannot write " + path.string());
  }
  return Status::ok();
}

// ---------------------------------------------------------------- handles

struct GossipService::UdpHandle {
  uv_udp_t handle{};
  GossipService* svc = nullptr;  // null once the service closed
  alignas(8) char buf[65536];
};

struct GossipService::TcpServer {
  uv_tcp_t handle{};
  GossipService* svc = nullptr;
};

struct GossipService::Conn {
  uv_tcp_t handle{};
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  GossipService* svc = nullptr;  // null once detached from the service
  bool outbound = false;
  uint64_t request_id = 0;
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

GossipService::GossipService(uv_loop_t* loop, Env& env, GossipServiceOptions options)
    : loop_(loop), env_(env), options_(std::move(options)) {}

GossipService::~GossipService() { close(); }

Status GossipService::start() {
  if (started_) return Status::exists("gossip service already started");
  MESHOS_RETURN_IF_ERROR(options_.gossip.validate().withContext("gossip options"));
  if (options_.name.empty() || options_.id.empty()) return Status::invalid("gossip: node name and id are required");
  if (static_cast<bool>(options_.load_incarnation) != static_cast<bool>(options_.store_incarnation))
    return Status::invalid("gossip: load_incarnation and store_incarnation must be set together");
  sockaddr_storage bind_addr{};
  MESHOS_RETURN_IF_ERROR(parseSocketAddress(options_.bind, bind_addr).withContext("gossip bind"));

  udp_ = new UdpHandle();
  udp_->svc = this;
  udp_->handle.data = udp_;
  uv_udp_init(loop_, &udp_->handle);
  tcp_ = new TcpServer();
  tcp_->svc = this;
  tcp_->handle.data = tcp_;
  uv_tcp_init(loop_, &tcp_->handle);
  started_ = true;  // from here close() must run to free the handles

  int rc = uv_udp_bind(&udp_->handle, reinterpret_cast<const sockaddr*>(&bind_addr), 0);
  if (rc != 0) return Status::io("gossip: cannot bind UDP " + options_.bind + ": " + uv_strerror(rc));
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_udp_getsockname(&udp_->handle, reinterpret_cast<sockaddr*>(&bound), &len);
  bound_port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                 : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  // TCP on the same port as UDP.
  sockaddr_storage tcp_addr = bind_addr;
  if (tcp_addr.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&tcp_addr)->sin_port = htons(bound_port_);
  else reinterpret_cast<sockaddr_in6*>(&tcp_addr)->sin6_port = htons(bound_port_);
  rc = uv_tcp_bind(&tcp_->handle, reinterpret_cast<const sockaddr*>(&tcp_addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&tcp_->handle), 128, &GossipService::onNewConnection);
  if (rc != 0) return Status::io("gossip: cannot listen on TCP port " + std::to_string(bound_port_) + ": " + uv_strerror(rc));
  rc = uv_udp_recv_start(&udp_->handle, &GossipService::onUdpAlloc, &GossipService::onUdpRecv);
  if (rc != 0) return Status::io(std::string("gossip: cannot receive on UDP: ") + uv_strerror(rc));

  if (options_.advertise.empty()) {
    std::string host = hostPart(options_.bind);
    if (host == "0.0.0.0") host = firstNonLoopbackIPv4();
    if (host == "::") host = "::1";
    advertise_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(bound_port_);
  } else {
    sockaddr_storage adv{};
    MESHOS_RETURN_IF_ERROR(parseSocketAddress(options_.advertise, adv).withContext("gossip advertise"));
    advertise_ = options_.advertise;
    if (advertise_.size() > 2 && advertise_.substr(advertise_.size() - 2) == ":0")
      advertise_ = advertise_.substr(0, advertise_.size() - 1) + std::to_string(bound_port_);
  }

  LocalIdentity self{options_.name, options_.id, options_.public_key, advertise_, 0};
  if (options_.load_incarnation) {
    auto inc = options_.load_incarnation();
    if (!inc) return inc.status().withContext("gossip: cannot load the incarnation");
    self.incarnation = inc->value_or(0);
  } else if (!options_.data_dir.empty()) {
    auto inc = readIncarnationFile(options_.data_dir);
    if (!inc) return inc.status();
    self.incarnation = *inc;
  }
  if (options_.keyring.empty())
    spdlog::warn("gossip: no keyring configured; packets are sent in plaintext (cluster id '{}' still checked)",
                 options_.gossip.cluster_id);
  membership_ = std::make_unique<Membership>(options_.gossip, self, options_.keyring, Rng(env_.rng.next()));
  for (auto& [channel, handler] : app_handlers_) (void)membership_->setAppHandler(channel, handler);
  membership_->start(nowMs());
  persistIncarnation();
  if (!options_.seeds.empty()) membership_->join(nowMs(), options_.seeds);
  pump();
  spdlog::info("gossip: {} ({}) listening on {} (udp+tcp), advertising {}", options_.name, options_.id,
               formatSocketAddress(reinterpret_cast<sockaddr*>(&bound)), advertise_);
  return Status::ok();
}

void GossipService::join(const std::vector<std::string>& addresses) {
  if (!membership_ || closed_) return;
  membership_->join(nowMs(), addresses);
  pump();
}

Status GossipService::setLocalState(Bytes body) {
  if (!membership_ || closed_) return Status::unavailable("gossip not running");
  Status s = membership_->setLocalState(nowMs(), std::move(body));
  pump();
  return s;
}

void GossipService::leave(int64_t deadline_ms, std::function<void()> done) {
  if (!membership_ || closed_) {
    env_.timers.after(0, std::move(done));
    return;
  }
  membership_->leave(nowMs());
  pump();
  const int64_t until = nowMs() + deadline_ms;
  auto poll = std::make_shared<std::function<void()>>();
  *poll = [this, until, done = std::move(done), poll]() mutable {
    leave_timer_ = 0;
    if (closed_ || membership_->leaveBroadcastDone() || nowMs() >= until) {
      auto d = std::move(done);
      *poll = nullptr;  // breaks the self-reference
      if (d) d();
      return;
    }
    leave_timer_ = env_.timers.after(50, [poll] {
      if (*poll) (*poll)();
    });
  };
  leave_timer_ = env_.timers.after(0, [poll] {
    if (*poll) (*poll)();
  });
}

void GossipService::close() {
  if (closed_) return;
  closed_ = true;
  if (wake_timer_ != 0) env_.timers.cancel(wake_timer_);
  wake_timer_ = 0;
  if (leave_timer_ != 0) env_.timers.cancel(leave_timer_);
  leave_timer_ = 0;
  if (fail_timer_ != 0) env_.timers.cancel(fail_timer_);
  fail_timer_ = 0;
  failed_streams_.clear();
  if (app_fail_timer_ != 0) env_.timers.cancel(app_fail_timer_);
  app_fail_timer_ = 0;
  app_failed_.clear();
  app_pending_.clear();
  std::vector<Conn*> all;
  for (auto& [c, _] : conns_) all.push_back(c);
  for (Conn* c : all) closeConn(c);
  outbound_.clear();
  if (udp_ != nullptr) {
    udp_->svc = nullptr;
    uv_udp_recv_stop(&udp_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&udp_->handle),
             [](uv_handle_t* h) { delete static_cast<UdpHandle*>(h->data); });
    udp_ = nullptr;
  }
  if (tcp_ != nullptr) {
    tcp_->svc = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_->handle),
             [](uv_handle_t* h) { delete static_cast<TcpServer*>(h->data); });
    tcp_ = nullptr;
  }
}

// ---------------------------------------------------------------- core driving

void GossipService::pump() {
  if (!membership_ || closed_ || app_handler_depth_ > 0) return;
  for (int round = 0; round < 8; ++round) {
    Outputs out = membership_->takeOutputs();
    if (out.empty()) break;
    for (auto& p : out.packets) sendUdp(p.to, std::move(p.bytes));
    for (auto& s : out.streams) startStream(std::move(s));
    for (const auto& e : out.events) {
      if (e.kind == MemberEventKind::kNameConflict) {
        spdlog::warn("gossip: node {} ({}) claims the name '{}' already held by {}", e.member.id, e.member.address,
                     e.member.name, e.detail);
      }
      if (on_member_event_) on_member_event_(e);
    }
    for (const auto& st : out.states)
      if (on_node_state_) on_node_state_(st);
    for (auto& r : out.app_replies) {
      auto it = app_pending_.find(r.id);
      if (it == app_pending_.end()) continue;
      auto done = std::move(it->second);
      app_pending_.erase(it);
      if (done) done(std::move(r.reply));
      if (closed_) return;
    }
    if (closed_) return;  // a callback may close us
  }
  persistIncarnation();
  schedule();
}

void GossipService::schedule() {
  int64_t wake = membership_->nextWakeMs();
  if (wake == wake_at_ms_ && wake_timer_ != 0) return;
  if (wake_timer_ != 0) env_.timers.cancel(wake_timer_);
  wake_at_ms_ = wake;
  wake_timer_ = env_.timers.after(std::max<int64_t>(0, wake - nowMs()), [this] {
    wake_timer_ = 0;
    wake_at_ms_ = -1;
    if (closed_) return;
    membership_->tickUs(nowUs());
    pump();
  });
}

void GossipService::persistIncarnation() {
  if (!membership_) return;
  if (!options_.store_incarnation && options_.data_dir.empty()) return;
  uint64_t inc = membership_->incarnation();
  if (inc == persisted_incarnation_) return;
  if (nowMs() < next_persist_retry_ms_) return;  // a failed write is retried once a second
  // A few bytes, written only at start and on refutation; kept on the loop for simplicity.
  Status s = options_.store_incarnation ? options_.store_incarnation(inc).withContext("gossip: cannot store the incarnation")
                                        : writeIncarnationFile(options_.data_dir, inc);
  if (!s) {
    ++shell_counters_.incarnation_write_errors;
    spdlog::error("gossip: {}", s.toString());
    next_persist_retry_ms_ = nowMs() + 1000;
    return;
  }
  ++shell_counters_.incarnation_writes;
  persisted_incarnation_ = inc;
}

// ---------------------------------------------------------------- app channels

void GossipService::onAppStream(std::string channel, AppHandler handler) {
  if (handler) {
    app_handlers_[channel] = handler;
  } else {
    app_handlers_.erase(channel);
  }
  if (membership_) {
    if (Status s = membership_->setAppHandler(channel, std::move(handler)); !s)
      spdlog::error("gossip: app channel '{}': {}", channel, s.toString());
  }
}

void GossipService::failAppLater(std::function<void(Result<Bytes>)> done, Status why) {
  ++shell_counters_.app_rejected;
  // Never call back inside the call that started the operation.
  app_failed_.emplace_back(std::move(done), std::move(why));
  if (app_fail_timer_ != 0) return;
  app_fail_timer_ = env_.timers.after(0, [this] {
    app_fail_timer_ = 0;
    auto failed = std::move(app_failed_);
    app_failed_.clear();
    for (auto& [fn, st] : failed) {
      if (closed_) return;
      if (fn) fn(st);
    }
  });
}

void GossipService::requestApp(const std::string& to_address, std::string channel, Bytes request,
                               std::function<void(Result<Bytes>)> done) {
  if (closed_) return;  // after close() nothing is called back
  if (!membership_) return failAppLater(std::move(done), Status::unavailable("gossip not started"));
  if (app_pending_.size() >= options_.gossip.max_app_in_flight)
    return failAppLater(std::move(done), Status::overloaded("too many app requests in flight (" +
                                                            std::to_string(app_pending_.size()) + ")"));
  auto id = membership_->requestApp(nowMs(), to_address, channel, std::move(request));
  if (!id) return failAppLater(std::move(done), id.status());
  app_pending_[*id] = std::move(done);
  pump();
}

// ---------------------------------------------------------------- UDP

void GossipService::sendUdp(const std::string& to, Bytes bytes) {
  sockaddr_storage addr{};
  if (!parseSocketAddress(to, addr)) {
    ++shell_counters_.udp_send_errors;
    return;
  }
  if (uv_udp_get_send_queue_count(&udp_->handle) >= kMaxUdpSendQueue) {
    ++shell_counters_.udp_send_dropped;
    return;
  }
  auto* s = new UdpSend();
  s->data = std::move(bytes);
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(s->data.data()), static_cast<unsigned>(s->data.size()));
  int rc = uv_udp_send(&s->req, &udp_->handle, &buf, 1, reinterpret_cast<const sockaddr*>(&addr),
                       [](uv_udp_send_t* req, int) { delete reinterpret_cast<UdpSend*>(req); });
  if (rc != 0) {
    ++shell_counters_.udp_send_errors;
    delete s;
  }
}

void GossipService::onUdpAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* u = static_cast<UdpHandle*>(h->data);
  *buf = uv_buf_init(u->buf, sizeof(u->buf));
}

void GossipService::onUdpRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned) {
  auto* u = static_cast<UdpHandle*>(h->data);
  GossipService* svc = u->svc;
  if (svc == nullptr || svc->closed_ || nread <= 0 || addr == nullptr) return;
  svc->membership_->handlePacketUs(svc->nowUs(), formatSocketAddress(addr),
                                 ByteView(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread)));
  svc->pump();
}

// ---------------------------------------------------------------- TCP

void GossipService::closeConn(Conn* c) {
  if (c->closing) return;
  c->closing = true;
  if (c->timer != 0) env_.timers.cancel(c->timer);
  c->timer = 0;
  conns_.erase(c);
  if (c->outbound) outbound_.erase(c->request_id);
  c->svc = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&c->handle), [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
}

void GossipService::startStream(StreamRequest req) {
  auto fail = [this](uint64_t id, Status s) {
    // Never call back inside the call that started the operation.
    failed_streams_.emplace_back(id, std::move(s));
    if (fail_timer_ != 0) return;
    fail_timer_ = env_.timers.after(0, [this] {
      fail_timer_ = 0;
      auto failed = std::move(failed_streams_);
      failed_streams_.clear();
      if (closed_) return;
      for (auto& [rid, st] : failed) membership_->handleStreamReply(nowMs(), rid, st);
      pump();
    });
  };
  sockaddr_storage addr{};
  if (Status s = parseSocketAddress(req.to, addr); !s) return fail(req.id, s);
  if (conns_.size() >= options_.max_connections) {
    ++shell_counters_.tcp_rejected;
    return fail(req.id, Status::overloaded("too many gossip streams"));
  }
  auto* c = new Conn();
  c->handle.data = c;
  c->svc = this;
  c->outbound = true;
  c->request_id = req.id;
  c->peer = req.to;
  c->request = framed(req.frame);
  uv_tcp_init(loop_, &c->handle);
  conns_[c] = true;
  outbound_[req.id] = c;
  c->connect_req.data = c;
  const int64_t timeout_ms =
      req.kind == StreamKind::kApp ? options_.gossip.app_timeout_ms : options_.gossip.stream_timeout_ms;
  c->timer = env_.timers.after(timeout_ms, [this, c] {
    c->timer = 0;
    finishOutbound(c, Status::deadline("gossip stream to " + c->peer + " timed out"));
  });
  int rc = uv_tcp_connect(&c->connect_req, &c->handle, reinterpret_cast<const sockaddr*>(&addr),
                          [](uv_connect_t* req, int status) {
                            auto* conn = static_cast<Conn*>(req->data);
                            GossipService* svc = conn->svc;
                            if (svc == nullptr) return;
                            if (status != 0) {
                              svc->finishOutbound(conn, Status::unavailable(std::string("connect: ") + uv_strerror(status)));
                              return;
                            }
                            conn->write_req.data = conn;
                            uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(conn->request.data()),
                                                     static_cast<unsigned>(conn->request.size()));
                            uv_write(&conn->write_req, reinterpret_cast<uv_stream_t*>(&conn->handle), &b, 1,
                                     [](uv_write_t* w, int st) {
                                       auto* cc = static_cast<Conn*>(w->data);
                                       if (cc->svc == nullptr) return;
                                       if (st != 0) {
                                         cc->svc->finishOutbound(cc, Status::unavailable("write failed"));
                                         return;
                                       }
                                       uv_read_start(reinterpret_cast<uv_stream_t*>(&cc->handle), &GossipService::onConnAlloc, &GossipService::onConnRead);
                                     });
                          });
  if (rc != 0) {
    // The connect callback will not run; finish from a timer, not from inside this call.
    std::string why = std::string("connect: ") + uv_strerror(rc);
    if (c->timer != 0) env_.timers.cancel(c->timer);
    c->timer = env_.timers.after(0, [this, c, why] {
      c->timer = 0;
      finishOutbound(c, Status::unavailable(why));
    });
  }
}

void GossipService::finishOutbound(Conn* c, Result<Bytes> reply) {
  uint64_t id = c->request_id;
  bool live = outbound_.count(id) != 0;
  if (!reply) ++shell_counters_.tcp_errors;
  closeConn(c);
  if (!live || closed_) return;
  membership_->handleStreamReply(nowMs(), id, std::move(reply));
  pump();
}

void GossipService::onNewConnection(uv_stream_t* server, int status) {
  auto* srv = static_cast<TcpServer*>(server->data);
  GossipService* svc = srv->svc;
  if (svc == nullptr || status != 0) return;
  auto* c = new Conn();
  c->handle.data = c;
  uv_tcp_init(svc->loop_, &c->handle);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->handle)) != 0 ||
      svc->conns_.size() >= svc->options_.max_connections) {
    ++svc->shell_counters_.tcp_rejected;
    c->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->handle), [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
    return;
  }
  c->svc = svc;
  sockaddr_storage peer{};
  int len = sizeof(peer);
  if (uv_tcp_getpeername(&c->handle, reinterpret_cast<sockaddr*>(&peer), &len) == 0)
    c->peer = formatSocketAddress(reinterpret_cast<sockaddr*>(&peer));
  svc->conns_[c] = true;
  c->timer = svc->env_.timers.after(svc->options_.gossip.stream_timeout_ms, [svc, c] {
    c->timer = 0;
    ++svc->shell_counters_.tcp_errors;
    svc->closeConn(c);
  });
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->handle), &GossipService::onConnAlloc, &GossipService::onConnRead);
}

void GossipService::onInboundFrame(Conn* c, Bytes frame) {
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->handle));
  ++app_handler_depth_;
  auto reply = membership_->handleStream(nowMs(), c->peer, frame);
  --app_handler_depth_;
  pump();
  if (c->svc == nullptr) return;  // closed meanwhile
  if (!reply) {
    ++shell_counters_.tcp_errors;
    closeConn(c);
    return;
  }
  c->write_buf = framed(*reply);
  c->write_req.data = c;
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(c->write_buf.data()), static_cast<unsigned>(c->write_buf.size()));
  uv_write(&c->write_req, reinterpret_cast<uv_stream_t*>(&c->handle), &b, 1, [](uv_write_t* w, int) {
    auto* cc = static_cast<Conn*>(w->data);
    if (cc->svc != nullptr) cc->svc->closeConn(cc);
  });
}

void GossipService::onConnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(h->data);
  *buf = uv_buf_init(c->chunk, sizeof(c->chunk));
}

void GossipService::onConnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(stream->data);
  if (c->svc == nullptr) return;
  c->svc->onConnData(c, nread, buf);
}

// Collects one length-prefixed frame, then hands it on.
void GossipService::onConnData(Conn* c, ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {
    if (c->outbound) {
      finishOutbound(c, Status::unavailable("gossip stream closed before the reply"));
    } else {
      if (nread != UV_EOF || !c->rbuf.empty()) ++shell_counters_.tcp_errors;  // error, or a truncated frame
      closeConn(c);
    }
    return;
  }
  c->rbuf.insert(c->rbuf.end(), buf->base, buf->base + nread);
  if (c->rbuf.size() < kFrameHeaderBytes) return;
  size_t len = (size_t{c->rbuf[0]} << 24) | (size_t{c->rbuf[1]} << 16) | (size_t{c->rbuf[2]} << 8) | c->rbuf[3];
  if (len > options_.gossip.max_stream_bytes) {
    ++shell_counters_.tcp_errors;
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

}  // namespace meshos::gossip
