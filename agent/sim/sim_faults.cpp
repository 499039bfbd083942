#include "agent/sim/sim_faults.h"

#include <algorithm>

#include "agent/commits/commit_format.h"

namespace meshos::sim {

namespace {

struct KindName {
  FaultKind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {
    {FaultKind::kCrash, "crash"}, {FaultKind::kPartition, "partition"}, {FaultKind::kLoss, "loss"},
    {FaultKind::kDiskFull, "disk-full"}, {FaultKind::kClock, "clock"}, {FaultKind::kSlow, "slow"},
    {FaultKind::kKill, "kill"}, {FaultKind::kHostile, "hostile"},
};

}  // namespace

std::string_view faultKindName(FaultKind k) {
  for (const auto& kn : kKindNames)
    if (kn.kind == k) return kn.name;
  return "unknown";
}

Result<std::set<FaultKind>> parseFaultKinds(std::string_view text) {
  std::set<FaultKind> out;
  if (text == "none" || text.empty()) return out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view word = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (word == "all") {
      for (const auto& kn : kKindNames) out.insert(kn.kind);
    } else {
      auto it = std::find_if(std::begin(kKindNames), std::end(kKindNames), [&](const KindName& kn) { return word == kn.name; });
      if (it == std::end(kKindNames)) {
        std::string known;
        for (const auto& kn : kKindNames) known += std::string(known.empty() ? "" : ", ") + kn.name;
        return Status::invalid("unknown fault '" + std::string(word) + "' (known: " + known + ", all, none)");
      }
      out.insert(it->kind);
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

FaultPlan::FaultPlan(AgentCluster& cluster, Rng rng, FaultPlanOptions options)
    : cluster_(cluster), rng_(rng), options_(std::move(options)) {}

void FaultPlan::schedule() {
  if (options_.kinds.empty() || cluster_.size() == 0) return;
  const std::vector<FaultKind> kinds(options_.kinds.begin(), options_.kinds.end());
  int64_t t = options_.begin_ms;
  auto& timers = cluster_.world().timers;
  for (;;) {
    t += rng_.between(options_.mean_gap_ms / 2, options_.mean_gap_ms * 3 / 2);
    const int64_t room = options_.end_ms - t;
    if (room < options_.min_duration_ms) break;
    const FaultKind kind = kinds[rng_.uniform(kinds.size())];
    const int64_t duration = rng_.between(options_.min_duration_ms, std::min(options_.max_duration_ms, room));
    timers.after(t - cluster_.nowMs(), [this, kind, duration] { begin(kind, duration); });
    ++scheduled_;
  }
}

void FaultPlan::endLater(int64_t after_ms, std::function<void()> fn) {
  // Never past the window: the run's quiet end depends on it.
  const int64_t latest = std::max<int64_t>(0, options_.end_ms - cluster_.nowMs());
  cluster_.world().timers.after(std::min(after_ms, latest), std::move(fn));
}

size_t FaultPlan::downNow() const {
  size_t down = 0;
  for (size_t i = 0; i < cluster_.size(); ++i) down += cluster_.host(i).up() ? 0 : 1;
  return down;
}

void FaultPlan::begin(FaultKind kind, int64_t duration_ms) {
  switch (kind) {
    case FaultKind::kCrash: crash(duration_ms); break;
    case FaultKind::kPartition: partition(duration_ms); break;
    case FaultKind::kLoss: loss(duration_ms); break;
    case FaultKind::kDiskFull: diskFull(duration_ms); break;
    case FaultKind::kSlow: slow(duration_ms); break;
    case FaultKind::kKill: kill(); break;
    case FaultKind::kHostile: cluster_.hostileCall(rng_.uniform(cluster_.size()), rng_.next()); break;
    case FaultKind::kClock: {
      const size_t i = rng_.uniform(cluster_.size());
      const int64_t step = rng_.between(-3'600'000, 3'600'000);
      cluster_.stepWallClock(i, step == 0 ? 1000 : step);
      break;
    }
  }
}

void FaultPlan::crash(int64_t duration_ms) {
  // A minority down at most, so the rest keep a majority.
  if (downNow() + 1 > (cluster_.size() - 1) / 2) return;
  std::vector<size_t> up;
  for (size_t i = 0; i < cluster_.size(); ++i)
    if (cluster_.host(i).up()) up.push_back(i);
  if (up.empty()) return;
  const size_t i = up[rng_.uniform(up.size())];
  const std::string key = "crash:" + std::to_string(i);
  cluster_.setFaultActive(key, true);
  if (rng_.chance(0.5)) {
    cluster_.crashAgent(i);
  } else {
    cluster_.crashMachine(i);
  }
  endLater(duration_ms, [this, i, key] {
    cluster_.start(i);
    cluster_.setFaultActive(key, false);
  });
}

void FaultPlan::partition(int64_t duration_ms) {
  if (partitioned_) return;
  partitioned_ = true;
  std::vector<size_t> order(cluster_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  rng_.shuffle(order);
  std::vector<std::vector<size_t>> groups;
  bool one_way = false;
  switch (rng_.uniform(4)) {
    case 0:  // one host cut off
      groups = {{order[0]}};
      break;
    case 1: {  // two groups of any sizes
      const size_t split = 1 + rng_.uniform(order.size() - 1);
      groups = {std::vector<size_t>(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(split))};
      break;
    }
    case 2: {  // three groups
      const size_t a = 1 + rng_.uniform(std::max<size_t>(1, order.size() / 2));
      const size_t b = std::min(order.size() - 1, a + 1 + rng_.uniform(std::max<size_t>(1, order.size() / 3)));
      groups = {std::vector<size_t>(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(a)),
                std::vector<size_t>(order.begin() + static_cast<std::ptrdiff_t>(a),
                                    order.begin() + static_cast<std::ptrdiff_t>(b))};
      break;
    }
    default:  // one way: a group hears the others but is not heard
      groups = {{order[0], order[1 % order.size()]}};
      one_way = true;
      break;
  }
  cluster_.setFaultActive("partition", true);
  cluster_.partition(groups, one_way);
  endLater(duration_ms, [this] {
    cluster_.heal();
    partitioned_ = false;
    cluster_.setFaultActive("partition", false);
  });
}

void FaultPlan::loss(int64_t duration_ms) {
  if (lossy_) return;
  lossy_ = true;
  const LinkProfile normal = cluster_.options().link;
  LinkProfile bad = normal;
  bad.loss = 0.02 + rng_.unit() * 0.18;
  bad.duplicate = rng_.unit() * 0.05;
  bad.reorder = rng_.unit() * 0.1;
  cluster_.setFaultActive("loss", true);
  cluster_.setLink(bad);
  endLater(duration_ms, [this, normal] {
    cluster_.setLink(normal);
    lossy_ = false;
    cluster_.setFaultActive("loss", false);
  });
}

void FaultPlan::diskFull(int64_t duration_ms) {
  const size_t i = rng_.uniform(cluster_.size());
  const std::string key = "disk:" + std::to_string(i);
  if (cluster_.host(i).disk().full()) return;
  cluster_.setFaultActive(key, true);
  cluster_.setDiskFull(i, true);
  endLater(duration_ms, [this, i, key] {
    cluster_.setDiskFull(i, false);
    cluster_.setFaultActive(key, false);
  });
}

void FaultPlan::slow(int64_t duration_ms) {
  const size_t i = rng_.uniform(cluster_.size());
  if (cluster_.host(i).slowMs() > 0) return;
  const std::string key = "slow:" + std::to_string(i);
  cluster_.setFaultActive(key, true);
  cluster_.setSlow(i, rng_.between(50, 400));
  endLater(duration_ms, [this, i, key] {
    cluster_.setSlow(i, 0);
    cluster_.setFaultActive(key, false);
  });
}

void FaultPlan::kill() {
  std::vector<std::pair<size_t, int>> live;
  for (size_t i = 0; i < cluster_.size(); ++i)
    for (const auto& [pid, p] : cluster_.host(i).runtime().processes())
      if (p.alive) live.emplace_back(i, pid);
  if (live.empty()) return;
  const auto [i, pid] = live[rng_.uniform(live.size())];
  cluster_.killProcess(i, pid);
}

// ---------------------------------------------------------------- workload

spec::DaemonSpec simService(const std::string& name, int64_t replicas) {
  spec::DaemonSpec s;
  s.name = name;
  s.command = {"/usr/bin/sim-" + name};
  s.replicas = replicas;
  s.restart = spec::RestartPolicy::kAlways;
  s.stop_grace_ms = 2000;
  s.backoff.initial_ms = 200;
  s.backoff.max_ms = 2000;
  spec::HealthCheck ready;
  ready.type = spec::CheckType::kHttp;
  ready.port = 8080;
  ready.interval_ms = 200;
  ready.timeout_ms = 100;
  ready.failure_threshold = 2;
  s.health.readiness = ready;
  s.resources.cpu_millicores = 100;
  s.resources.memory_bytes = 64 << 20;
  return s;
}

Status Workload::begin() {
  std::vector<commits::Operation> ops;
  for (size_t i = 0; i < options_.daemons; ++i) {
    const int64_t replicas = 1 + static_cast<int64_t>(rng_.uniform(3));
    ops.emplace_back(commits::OpPutDaemon{simService("svc" + std::to_string(next_daemon_++), replicas)});
  }
  auto r = cluster_.commit(std::move(ops), "workload: first daemons");
  return r.status();
}

void Workload::schedule() {
  auto& timers = cluster_.world().timers;
  for (int64_t t = cluster_.nowMs() + options_.period_ms; t < options_.end_ms; t += options_.period_ms) {
    const int64_t jitter = rng_.between(-options_.period_ms / 4, options_.period_ms / 4);
    timers.after(t + jitter - cluster_.nowMs(), [this] { change(); });
  }
}

void Workload::change() {
  const auto& daemons = cluster_.desired().daemons;
  std::vector<std::string> names;
  for (const auto& [name, d] : daemons) names.push_back(name);
  std::vector<commits::Operation> ops;
  const uint64_t pick = options_.versions_only ? 5 : rng_.uniform(6);
  if (names.empty() || pick == 0) {
    ops.emplace_back(commits::OpPutDaemon{simService("svc" + std::to_string(next_daemon_++), 1 + rng_.between(0, 2))});
  } else {
    const std::string& name = names[rng_.uniform(names.size())];
    const bool paused = daemons.at(name).paused;
    if (pick == 1) {
      ops.emplace_back(commits::OpScale{name, 1 + rng_.between(0, 3)});
    } else if (pick == 2 && names.size() > 2) {
      ops.emplace_back(commits::OpRemoveDaemon{name});
    } else if (pick == 5) {
      // A new version of the spec: its instances are replaced by a rolling update.
      spec::DaemonSpec next = daemons.at(name).spec;
      next.env["SIM_VERSION"] = std::to_string(++versions_);
      next.update.max_unavailable = 1 + rng_.between(0, 1);
      ops.emplace_back(commits::OpPutDaemon{std::move(next)});
    } else if (pick == 3) {
      if (paused) {
        ops.emplace_back(commits::OpResumeDaemon{name});
      } else {
        ops.emplace_back(commits::OpPauseDaemon{name});
      }
    } else {
      ops.emplace_back(commits::OpScale{name, 1 + rng_.between(0, 2)});
    }
  }
  if (cluster_.commit(std::move(ops), "workload: change")) ++changes_;
}

}  // namespace meshos::sim
