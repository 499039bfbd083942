#include "agent/sim/cluster_scenario.h"

#include <chrono>
#include <sstream>

namespace meshos::sim {

namespace {

constexpr int64_t kSettleMaxMs = 90'000;

Status settle(AgentCluster& c, int64_t max_ms) {
  Status last = Status::ok();
  Status s = c.runUntil(
      [&] {
        for (size_t i = 0; i < c.size(); ++i)
          if (!c.host(i).up()) return (last = Status::unavailable(c.host(i).name() + " is not up")), false;
        last = c.checkConverged();
        if (last) last = c.checkAtReplicas();
        if (last) last = c.checkFeasible();
        return last.isOk();
      },
      max_ms);
  if (s.code() == Code::kDeadlineExceeded) return Status::deadline(c.failure("did not settle: " + last.message()));
  return s;
}

void summarise(AgentCluster& c, ScenarioResult& r) {
  for (size_t i = 0; i < c.size(); ++i) {
    SimHost& h = c.host(i);
    nlohmann::json n = {{"name", h.name()}, {"up", h.up()}, {"starts", h.starts()}};
    if (const node::Node* node = h.node(); node != nullptr && node->commitLog() != nullptr) {
      n["commit_seq"] = node->commitLog()->head().seq;
      n["commit_hash"] = toHex(ByteView(node->commitLog()->head().hash.data(), 8));
      size_t alive = 0;
      for (const auto& m : node->gossip()->members()) alive += m.state == gossip::MemberState::kAlive;
      n["members_alive"] = alive + 1;
    }
    r.nodes.push_back(std::move(n));
  }
  const auto act = c.actual();
  for (const auto& [name, d] : c.desired().daemons) {
    nlohmann::json on = nlohmann::json::object();
    if (auto it = act.find(name); it != act.end())
      for (const auto& [host, count] : it->second.running_on) on[host] = count;
    r.placements[name] = {{"wanted", d.paused ? 0 : d.spec.replicas}, {"paused", d.paused}, {"running_on", on}};
  }
}

}  // namespace

std::string replayCommand(const ScenarioOptions& o) {
  std::string faults;
  for (FaultKind k : o.faults) faults += (faults.empty() ? "" : ",") + std::string(faultKindName(k));
  return "meshos-sim cluster --nodes " + std::to_string(o.nodes) + " --seed " + std::to_string(o.seed) +
         " --duration-s " + std::to_string(o.duration_ms / 1000) + " --faults " + (faults.empty() ? "none" : faults) +
         " --daemons " + std::to_string(o.daemons) + " --quiet-end-s " + std::to_string(o.quiet_end_ms / 1000) +
         " --workload-period-s " + std::to_string(o.workload_period_ms / 1000) + (o.versions_only ? " --versions" : "");
}

ScenarioResult runClusterScenario(const ScenarioOptions& o) {
  const auto wall_start = std::chrono::steady_clock::now();
  ScenarioResult r;
  AgentClusterOptions co;
  co.link = o.link;
  AgentCluster c(o.seed, co);
  c.addHosts(o.nodes);
  c.startAll();
  auto finish = [&](Status s) {
    r.status = std::move(s);
    r.trace_hash = c.traceHash();
    r.trace_events = c.world().trace.events();
    r.sim_ms = c.nowMs();
    r.figures = c.figures();
    r.commits = c.figures().commits;
    summarise(c, r);
    r.wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - wall_start).count();
    return r;
  };
  if (Status s = c.runFor(5'000); !s) return finish(s);
  Workload work(c, c.forkRng(),
                WorkloadOptions{o.daemons, o.workload_period_ms, o.duration_ms - o.quiet_end_ms, o.versions_only});
  if (Status s = work.begin(); !s) return finish(s.withContext("first commit"));
  if (Status s = settle(c, kSettleMaxMs); !s) return finish(s.withContext("first settle"));
  FaultPlanOptions fo;
  fo.kinds = o.faults;
  fo.begin_ms = c.nowMs();
  fo.end_ms = o.duration_ms - o.quiet_end_ms;
  FaultPlan plan(c, c.forkRng(), fo);
  plan.schedule();
  work.schedule();
  r.faults_scheduled = plan.scheduled();
  if (c.nowMs() < fo.end_ms) {
    if (Status s = c.runFor(fo.end_ms - c.nowMs()); !s) return finish(s);
  }
  c.heal();
  if (Status s = settle(c, std::max<int64_t>(o.duration_ms - c.nowMs(), kSettleMaxMs)); !s)
    return finish(s.withContext("final settle"));
  if (c.nowMs() < o.duration_ms) {
    if (Status s = c.runFor(o.duration_ms - c.nowMs()); !s) return finish(s);
  }
  r.workload_changes = work.changes();
  Status s = c.checkConverged();
  if (s) s = c.checkAtReplicas();
  if (s) s = c.checkChains();
  if (!s) return finish(Status(s.code(), c.failure(s.message())));
  return finish(Status::ok());
}

nlohmann::json scenarioToJson(const ScenarioOptions& o, const ScenarioResult& r) {
  nlohmann::json faults = nlohmann::json::object();
  for (const auto& [k, n] : r.figures.faults) faults[k] = n;
  return {{"ok", r.status.isOk()},
          {"error", r.status.isOk() ? "" : r.status.message()},
          {"seed", o.seed},
          {"nodes", o.nodes},
          {"duration_ms", o.duration_ms},
          {"trace_hash", toHex(ByteView(reinterpret_cast<const uint8_t*>(&r.trace_hash), 8))},
          {"trace_events", r.trace_events},
          {"sim_ms", r.sim_ms},
          {"wall_ms", r.wall_ms},
          {"speedup", r.wall_ms > 0 ? static_cast<double>(r.sim_ms) / static_cast<double>(r.wall_ms) : 0.0},
          {"invariant_checks", r.figures.invariant_checks},
          {"agent_starts", r.figures.agent_starts},
          {"failed_starts", r.figures.failed_starts},
          {"commits", r.commits},
          {"actions_ended", r.figures.actions_ended},
          {"chain_records_acked", r.figures.chain_records_acked},
          {"faults_scheduled", r.faults_scheduled},
          {"faults", faults},
          {"members", r.nodes},
          {"placements", r.placements},
          {"replay", replayCommand(o)}};
}

std::string scenarioToText(const ScenarioOptions& o, const ScenarioResult& r) {
  std::ostringstream os;
  const nlohmann::json j = scenarioToJson(o, r);
  os << "meshos-sim cluster: " << o.nodes << " agents, seed " << o.seed << ", " << o.duration_ms / 1000
     << " s simulated in " << r.wall_ms << " ms (" << j["speedup"].get<double>() << "x real time)\n";
  os << "result: " << (r.status ? "ok" : "FAILED") << "\n";
  if (!r.status) os << r.status.message() << "\n";
  os << "trace hash " << j["trace_hash"].get<std::string>() << " (" << r.trace_events << " events)\n";
  os << "invariant checks " << r.figures.invariant_checks << ", agent starts " << r.figures.agent_starts
     << " (failed " << r.figures.failed_starts << "), commits " << r.commits << ", actions ended "
     << r.figures.actions_ended << ", chain records acked " << r.figures.chain_records_acked << "\n";
  os << "faults:";
  if (r.figures.faults.empty()) os << " none";
  for (const auto& [k, n] : r.figures.faults) os << " " << k << "=" << n;
  os << "\n\nNODE   UP   STARTS  COMMIT           ALIVE\n";
  for (const auto& n : r.nodes) {
    os << n["name"].get<std::string>() << std::string(7 - std::min<size_t>(6, n["name"].get<std::string>().size()), ' ')
       << (n["up"].get<bool>() ? "yes  " : "no   ") << n["starts"] << "       ";
    if (n.contains("commit_seq")) {
      os << n["commit_seq"] << " " << n["commit_hash"].get<std::string>() << "  " << n["members_alive"] << "/" << o.nodes;
    }
    os << "\n";
  }
  os << "\nDAEMON   WANTED  RUNNING ON\n";
  for (const auto& [name, p] : r.placements.items()) {
    os << name << std::string(9 - std::min<size_t>(8, name.size()), ' ') << p["wanted"] << (p["paused"].get<bool>() ? " (paused)" : "")
       << "       ";
    for (const auto& [host, count] : p["running_on"].items()) os << host << (count.get<int>() > 1 ? "x" + count.dump() : "") << " ";
    os << "\n";
  }
  os << "\nreplay: " << replayCommand(o) << "\n";
  return os.str();
}

}  // namespace meshos::sim
