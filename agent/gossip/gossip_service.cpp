#include "agent/gossip/gossip_service.h"

#include "agent/core/logging.h"

namespace meshos::gossip {

namespace {
std::string hostPart(const std::string& address) {
  if (!address.empty() && address[0] == '[') {
    auto end = address.find(']');
    return end == std::string::npos ? address : address.substr(1, end - 1);
  }
  auto pos = address.rfind(':');
  return pos == std::string::npos ? address : address.substr(0, pos);
}

std::string portPart(const std::string& address) {
  auto pos = address.rfind(':');
  return pos == std::string::npos ? "" : address.substr(pos + 1);
}
}  // namespace

GossipService::GossipService(Env& env, Transport& transport, MemberIdentityPool& identities,
                             GossipServiceOptions options)
    : env_(env), transport_(transport), identities_(identities), options_(std::move(options)) {}

GossipService::~GossipService() {
  close();
  *self_ = nullptr;
}

std::string GossipService::advertiseFor(const std::string& reachable) const {
  if (options_.advertise.empty()) return reachable;
  // An advertised port 0 means "the port actually bound".
  if (portPart(options_.advertise) == "0") {
    std::string host = hostPart(options_.advertise);
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return host + ":" + portPart(reachable);
  }
  return options_.advertise;
}

Status GossipService::start() {
  if (started_) return Status::exists("gossip service already started");
  MESHOS_RETURN_IF_ERROR(options_.gossip.validate().withContext("gossip options"));
  if (options_.name.empty() || options_.id.empty()) return Status::invalid("gossip: node name and id are required");
  if (static_cast<bool>(options_.load_incarnation) != static_cast<bool>(options_.store_incarnation))
    return Status::invalid("gossip: load_incarnation and store_incarnation must be set together");
  LocalIdentity self{options_.name, options_.id, options_.public_key, "", 0};
  if (options_.load_incarnation) {
    auto inc = options_.load_incarnation();
    if (!inc) return inc.status().withContext("gossip: cannot load the incarnation");
    self.incarnation = inc->value_or(0);
  }
  TransportOptions to;
  to.bind = options_.bind;
  to.max_frame_bytes = options_.gossip.max_stream_bytes;
  to.max_connections = options_.max_connections;
  to.inbound_timeout_ms = options_.gossip.stream_timeout_ms;
  started_ = true;  // from here close() must run to close the transport
  auto reachable = transport_.open(to, *this);
  if (!reachable) return reachable.status();
  advertise_ = advertiseFor(*reachable);
  self.address = advertise_;
  if (options_.keyring.empty())
    spdlog::warn("gossip: no keyring configured; packets are sent in plaintext (cluster id '{}' still checked)",
                 options_.gossip.cluster_id);
  membership_ = std::make_unique<Membership>(options_.gossip, self, options_.keyring, Rng(env_.rng.next()), identities_);
  for (auto& [channel, handler] : app_handlers_) (void)membership_->setAppHandler(channel, handler);
  membership_->start(nowMs());
  persistIncarnation();
  if (!options_.seeds.empty()) membership_->join(nowMs(), options_.seeds);
  pump();
  spdlog::info("gossip: {} ({}) bound to {}, advertising {}", options_.name, options_.id, *reachable, advertise_);
  return Status::ok();
}

void GossipService::join(const std::vector<std::string>& addresses) {
  if (!membership_ || closed_) return;
  membership_->join(nowMs(), addresses);
  pump();
}

Status GossipService::forceLeave(const std::string& name) {
  if (!membership_ || closed_) return Status::unavailable("gossip not running");
  Status s = membership_->forceLeave(nowMs(), name);
  pump();
  return s;
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
  for (TimerId* t : {&wake_timer_, &leave_timer_, &app_fail_timer_}) {
    if (*t != 0) env_.timers.cancel(*t);
    *t = 0;
  }
  app_failed_.clear();
  app_pending_.clear();
  if (started_) transport_.close();
}

ShellCounters GossipService::shellCounters() const {
  ShellCounters c = shell_counters_;
  TransportCounters t = transport_.counters();
  c.udp_send_errors = t.udp_send_errors;
  c.udp_send_dropped = t.udp_send_dropped;
  c.tcp_rejected = t.tcp_rejected;
  c.tcp_errors = t.tcp_errors;
  return c;
}

// ---------------------------------------------------------------- core driving

void GossipService::pump() {
  if (!membership_ || closed_ || app_handler_depth_ > 0) return;
  for (int round = 0; round < 8; ++round) {
    Outputs out = membership_->takeOutputs();
    if (out.empty()) break;
    deliver(out);
    if (closed_) return;  // a callback may close us
  }
  persistIncarnation();
  schedule();
}

void GossipService::deliver(Outputs& out) {
  for (auto& p : out.packets) transport_.send(p.to, std::move(p.bytes));
  for (auto& s : out.streams) startStream(std::move(s));
  for (const auto& e : out.events) {
    if (e.kind == MemberEventKind::kNameConflict) {
      spdlog::warn("gossip: node {} ({}) claims the name '{}' already held by {}", e.member.id, e.member.address,
                   e.member.name, e.detail);
    }
    if (on_member_event_) on_member_event_(e);
    if (closed_) return;
  }
  for (const auto& st : out.states) {
    if (on_node_state_) on_node_state_(st);
    if (closed_) return;
  }
  for (auto& r : out.app_replies) {
    auto it = app_pending_.find(r.id);
    if (it == app_pending_.end()) continue;
    auto done = std::move(it->second);
    app_pending_.erase(it);
    if (done) done(std::move(r.reply));
    if (closed_) return;
  }
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

void GossipService::startStream(StreamRequest req) {
  const int64_t timeout_ms =
      req.kind == StreamKind::kApp ? options_.gossip.app_timeout_ms : options_.gossip.stream_timeout_ms;
  const uint64_t id = req.id;
  transport_.request(req.to, std::move(req.frame), timeout_ms,
                     [self = std::weak_ptr<GossipService*>(self_), id](Result<Bytes> reply) {
                       auto owner = self.lock();
                       if (!owner || *owner == nullptr) return;
                       GossipService* svc = *owner;
                       if (svc->closed_) return;
                       svc->membership_->handleStreamReply(svc->nowMs(), id, std::move(reply));
                       svc->pump();
                     });
}

void GossipService::persistIncarnation() {
  if (!membership_ || !options_.store_incarnation) return;
  uint64_t inc = membership_->incarnation();
  if (inc == persisted_incarnation_) return;
  if (nowMs() < next_persist_retry_ms_) return;  // a failed write is retried once a second
  // A few bytes, written only at start and on refutation.
  Status s = options_.store_incarnation(inc);
  if (!s) {
    ++shell_counters_.incarnation_write_errors;
    spdlog::error("gossip: cannot store the incarnation: {}", s.toString());
    next_persist_retry_ms_ = nowMs() + 1000;
    return;
  }
  ++shell_counters_.incarnation_writes;
  persisted_incarnation_ = inc;
}

// ---------------------------------------------------------------- transport input

void GossipService::onDatagram(int64_t at_us, const std::string& from, ByteView bytes) {
  if (closed_ || !membership_) return;
  membership_->handlePacketUs(at_us, from, bytes);
  pump();
}

Result<Bytes> GossipService::onStream(const std::string& from, ByteView frame) {
  if (closed_ || !membership_) return Status::unavailable("gossip not running");
  ++app_handler_depth_;
  auto reply = membership_->handleStream(nowMs(), from, frame);
  --app_handler_depth_;
  pump();
  return reply;
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

}  // namespace meshos::gossip
