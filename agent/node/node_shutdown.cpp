// Node, the staged shutdown: stop taking commands, leave the gossip cluster, let the
// executor finish, let go of the daemons (they keep running for the next agent), make the
// chains durable with a final signed checkpoint. Each stage begins, then is polled every
// 10 ms until it is done or its deadline passes; the report (name, time, timed out,
// detail) is logged and sets the exit status. Loop thread only.
#include <spdlog/spdlog.h>

#include "agent/node/node.h"

namespace meshos::node {

namespace {

struct Stage {
  const char* name;
  int64_t deadline_ms;
};

constexpr Stage kStages[] = {
    {"control socket", Node::kControlStageMs},
    {"gossip leave", Node::kGossipStageMs},
    {"executor", Node::kExecutorStageMs},
    {"runtime", Node::kRuntimeStageMs},
    {"chains", Node::kChainsStageMs},
    {"loop", 1000},
};

}  // namespace

void Node::shutdown(std::string why) {
  MESHOS_DCHECK_THREAD(loop_thread_);
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("shutting down: {}", why);
  state::fold(state_, state::Shutdown{why});
  record(chains::ChainName::kAudit, "agent.stop", {{"why", why}});
  if (tick_timer_ != 0) env_.timers.cancel(tick_timer_);
  tick_timer_ = 0;
  closeCommitSync();
  if (inventory_) inventory_->stop();
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
  std::function<bool()> done = [] { return true; };
  switch (index) {
    case 0:
      if (services_.close_control) services_.close_control();
      break;
    case 1:
      if (gossip_) {
        gossip_->leave(stage.deadline_ms, [this] { gossip_left_ = true; });
        done = [this] { return gossip_left_; };
      }
      break;
    case 2: {
      executor_->setGate(false);
      size_t abandoned = executor_->abandonPending(nowMs());
      report.detail = std::to_string(abandoned) + " queued action(s) abandoned";
      done = [this] { return executor_->inFlight() == 0; };
      break;
    }
    case 3:
      // Daemons keep running across an agent restart: the next agent re-adopts them.
      supervisor_.reset();
      report.detail = std::to_string(state_.instances.size()) + " instance(s) left running for re-adoption";
      break;
    case 4: {
      // close() blocks this thread until the queue is durable and the final checkpoints
      // are synced: nothing else is left for the loop to do at this point.
      uint64_t pending = chains_ ? chains_->pendingTotal() : 0;
      Status s = chains_ ? chains_->close(stage.deadline_ms) : Status::ok();
      report.detail = std::to_string(pending) + " pending record(s) flushed, final checkpoints signed";
      if (!s) {
        report.detail = s.toString();
        exit_status_ = 1;
      }
      break;
    }
    default:
      break;
  }
  shutdown_report_.push_back(report);
  stage_index_ = index;
  stage_deadline_ms_ = stage.deadline_ms;
  stage_done_ = std::move(done);
  pollStage();
}

void Node::pollStage() {
  auto& r = shutdown_report_.back();
  r.took_ms = nowMs() - stage_started_ms_;
  bool finished = stage_done_();
  if (!finished && r.took_ms < stage_deadline_ms_) {
    stage_timer_ = env_.timers.after(10, [this] {
      stage_timer_ = 0;
      pollStage();
    });
    return;
  }
  r.timed_out = !finished;
  if (r.timed_out) exit_status_ = 1;
  spdlog::info("shutdown stage {}: {} in {} ms{}{}", r.name, r.timed_out ? "timed out" : "done",
               r.took_ms, r.detail.empty() ? "" : "; ", r.detail);
  executor_->poll(nowMs());
  runStage(stage_index_ + 1);
}

void Node::finishShutdown() {
  if (gossip_) gossip_->close();
  publish();
  finished_ = true;
  int64_t total = 0;
  for (const auto& s : shutdown_report_) total += s.took_ms;
  spdlog::info("shutdown complete in {} ms, exit status {}", total, exit_status_);
  if (on_shutdown_complete_) on_shutdown_complete_();
}

}  // namespace meshos::node
