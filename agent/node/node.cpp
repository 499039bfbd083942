#include "agent/node/node.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "agent/reconcile/reconcile.h"

namespace meshos::node {

namespace {

struct Stage {
  const char* name;
  int64_t deadline_ms;
};

// Shutdown order: stop taking commands, let the executor finish, close the loop's handles.
constexpr Stage kStages[] = {
    {"control socket", Node::kControlStageMs},
    {"executor", Node::kExecutorStageMs},
    {"loop", 1000},
};

}  // namespace

// Until the process runtime is wired, actions are logged and reported as not implemented,
// so the executor records them as failed instead of pretending they ran.
class Node::LoggingDispatcher final : public executor::Dispatcher {
 public:
  explicit LoggingDispatcher(Node& node) : node_(node) {}
  void dispatch(executor::ActionId id, const state::Action& a) override {
    spdlog::info("action {} {} ({}): no runtime is wired to carry it out",
                 state::actionKindName(a.kind), a.instance, a.reason);
    node_.executor_->complete(id, Status::notImplemented("no runtime wired"), node_.nowMs());
  }

 private:
  Node& node_;
};

Node::Node(uv_loop_t* loop, Env& env, config::NodeConfig config, NodeIdentity identity)
    : loop_(loop),
      env_(env),
      config_(std::move(config)),
      identity_(std::move(identity)),
      control_(loop, [this](proto::Request::Reader r, const net::PeerCred& p,
                            net::ControlResponder reply) { onControl(r, p, std::move(reply)); }) {
  state_.node_id = identity_.id;
  state_.node_name = config_.node.name;
  state_.started_ms = nowMs();
  state_.now_ms = state_.started_ms;
  dispatcher_ = std::make_unique<LoggingDispatcher>(*this);
  executor::Options eo;
  eo.queue_capacity = static_cast<size_t>(config_.executor.queue_capacity);
  eo.action_deadline_ms = config_.executor.action_deadline_ms;
  eo.max_attempts = static_cast<uint32_t>(config_.executor.max_attempts);
  eo.retry_initial_ms = config_.executor.retry_initial_ms;
  eo.retry_max_ms = config_.executor.retry_max_ms;
  executor_ = std::make_unique<executor::Executor>(eo, *dispatcher_);
  executor_->onOutcome([](const executor::Outcome& o) {
    if (o.disposition != executor::Disposition::kSucceeded) {
      spdlog::warn("action {} {} {} after {} attempt(s): {}", state::actionKindName(o.action.kind),
                   o.action.instance, executor::dispositionName(o.disposition), o.attempts, o.error);
    }
  });
}

Node::~Node() {
  auto closeSignal = [](uv_signal_t*& s) {
    if (s == nullptr) return;
    uv_close(reinterpret_cast<uv_handle_t*>(s),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
    s = nullptr;
  };
  closeSignal(sigint_);
  closeSignal(sigterm_);
}

Status Node::start() {
  MESHOS_RETURN_IF_ERROR(control_.listen(config_.control.socket, config_.control.mode)
                             .withContext("control socket"));
  started_ = true;
  next_tick_due_ns_ = env_.clock.monotonicNs();
  publish();
  scheduleTick();
  spdlog::info("meshos-agent {} node {} ({}) serving {}", MESHOS_VERSION, config_.node.name,
               identity_.id, config_.control.socket.string());
  return Status::ok();
}

void Node::handleSignals() {
  auto install = [this](uv_signal_t*& handle, int signum) {
    handle = new uv_signal_t();
    uv_signal_init(loop_, handle);
    handle->data = this;
    uv_signal_start(
        handle,
        [](uv_signal_t* h, int sig) {
          auto* self = static_cast<Node*>(h->data);
          if (++self->signals_seen_ > 1) {
            spdlog::error("second signal ({}): forcing exit", strsignal(sig));
            spdlog::default_logger()->flush();
            ::_exit(130);
          }
          self->shutdown(strsignal(sig));
        },
        signum);
  };
  install(sigint_, SIGINT);
  install(sigterm_, SIGTERM);
}

void Node::addProbe(std::unique_ptr<Probe> probe) {
  probes_.push_back(std::move(probe));
  probe_due_ms_.push_back(0);
}

void Node::handle(const state::Event& event) { state::fold(state_, event); }

void Node::scheduleTick() {
  const int64_t interval_ns = config_.node.tick_interval_ms * 1'000'000;
  next_tick_due_ns_ += interval_ns;
  int64_t now_ns = env_.clock.monotonicNs();
  if (next_tick_due_ns_ < now_ns) next_tick_due_ns_ = now_ns;  // fell behind: do not burst
  int64_t delay_ms = (next_tick_due_ns_ - now_ns + 999'999) / 1'000'000;
  tick_timer_ = env_.timers.after(delay_ms, [this] {
    tick_timer_ = 0;
    lag_.record((env_.clock.monotonicNs() - next_tick_due_ns_) / 1000);
    tick();
    if (!stopping_) scheduleTick();
  });
}

void Node::tick() {
  const int64_t now = nowMs();
  state::fold(state_, state::Tick{now});
  for (size_t i = 0; i < probes_.size(); ++i) {
    if (now < probe_due_ms_[i]) continue;
    probe_due_ms_[i] = now + probes_[i]->intervalMs();
    state::ProbeSample sample;
    try {
      auto r = probes_[i]->sample(now);
      if (r) {
        sample = std::move(*r);
      } else {
        sample = {probes_[i]->name(), now, false, r.status().toString(), {}};
      }
    } catch (const std::exception& e) {
      sample = {probes_[i]->name(), now, false, std::string("probe threw: ") + e.what(), {}};
    }
    if (!sample.ok) spdlog::warn("probe {} failed: {}", sample.probe, sample.error);
    state::fold(state_, sample);
  }
  for (const auto& action : reconcile::reconcile(state_)) executor_->offer(action, now);
  executor_->poll(now);
  publish();
}

void Node::publish() {
  state::SnapshotInputs in;
  in.version = MESHOS_VERSION;
  in.cluster = config_.gossip.cluster;
  in.wall_ms = env_.clock.wallMs();
  in.loop_lag = lag_.summary();
  in.sections["executor"] = executor_->toJson();
  in.sections["control"] = {{"connections", control_.counters().connections},
                            {"open_connections", control_.openConnections()},
                            {"requests", control_.counters().requests},
                            {"malformed", control_.counters().malformed},
                            {"oversized", control_.counters().oversized},
                            {"refused_connections", control_.counters().refused_connections}};
  snapshot_ = state::makeSnapshot(state_, std::move(in), snapshot_, lists_built_at_ms_);
}

void Node::onControl(proto::Request::Reader request, const net::PeerCred& peer,
                     net::ControlResponder reply) {
  if (stopping_) {
    reply.error(Status::unavailable("the agent is shutting down"));
    return;
  }
  std::string command;
  switch (request.which()) {
    case proto::Request::PING: command = "ping"; break;
    case proto::Request::SNAPSHOT: command = "snapshot"; break;
    case proto::Request::METRICS: command = "metrics"; break;
    case proto::Request::MEMBERS: command = "members"; break;
    case proto::Request::DAEMONS: command = "daemons"; break;
    default: command = "unsupported"; break;
  }
  state::fold(state_, state::ControlCommand{command, request.getReason().cStr(), peer.pid,
                                            peer.uid, peer.gid, nowMs()});
  switch (request.which()) {
    case proto::Request::PING:
      reply.json(nlohmann::json{{"pong", true}, {"node", identity_.id}}.dump());
      return;
    case proto::Request::SNAPSHOT:
      reply.json(state::snapshotToJson(*snapshot_).dump());
      return;
    case proto::Request::METRICS:
      reply.text(state::snapshotToPrometheus(*snapshot_));
      return;
    case proto::Request::MEMBERS:
      reply.json(state::membersToJson(*snapshot_).dump());
      return;
    case proto::Request::DAEMONS:
      reply.json(state::daemonsToJson(*snapshot_).dump());
      return;
    default:
      reply.error(Status::notImplemented(
          "this agent does not serve that request yet (request kind " +
          std::to_string(static_cast<int>(request.which())) + ")"));
      return;
  }
}

void Node::shutdown(std::string why) {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("shutting down: {}", why);
  state::fold(state_, state::Shutdown{why});
  if (tick_timer_ != 0) {
    env_.timers.cancel(tick_timer_);
    tick_timer_ = 0;
  }
  runStage(0);
}

void Node::runStage(size_t index) {
  if (index >= std::size(kStages)) {
    finishShutdown();
    return;
  }
  const Stage& stage = kStages[index];
  stage_started_ms_ = nowMs();
  ShutdownStage report{stage.name, 0, false, ""};
  // Each stage begins, then is polled every 10 ms until it is done or its deadline passes.
  std::function<bool()> done;
  switch (index) {
    case 0:
      control_.close();
      done = [] { return true; };
      break;
    case 1: {
      executor_->setGate(false);
      size_t abandoned = executor_->abandonPending(nowMs());
      report.detail = std::to_string(abandoned) + " queued action(s) abandoned";
      done = [this] { return executor_->inFlight() == 0; };
      break;
    }
    default:
      done = [] { return true; };
      break;
  }
  shutdown_report_.push_back(report);
  auto poll = std::make_shared<std::function<void()>>();
  *poll = [this, index, done, poll, deadline = stage.deadline_ms] {
    auto& r = shutdown_report_.back();
    r.took_ms = nowMs() - stage_started_ms_;
    bool finished = done();
    if (!finished && r.took_ms < deadline) {
      env_.timers.after(10, *poll);
      return;
    }
    r.timed_out = !finished;
    if (r.timed_out) exit_status_ = 1;
    spdlog::info("shutdown stage {}: {} in {} ms{}{}", r.name, r.timed_out ? "timed out" : "done",
                 r.took_ms, r.detail.empty() ? "" : "; ", r.detail);
    executor_->poll(nowMs());
    runStage(index + 1);
  };
  (*poll)();
}

void Node::finishShutdown() {
  publish();
  auto closeSignal = [](uv_signal_t*& s) {
    if (s == nullptr) return;
    uv_close(reinterpret_cast<uv_handle_t*>(s),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
    s = nullptr;
  };
  closeSignal(sigint_);
  closeSignal(sigterm_);
  int64_t total = 0;
  for (const auto& s : shutdown_report_) total += s.took_ms;
  spdlog::info("shutdown complete in {} ms, exit status {}", total, exit_status_);
}

}  // namespace meshos::node
