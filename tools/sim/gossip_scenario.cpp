#include "tools/sim/gossip_scenario.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <set>

#include <sys/resource.h>

#include "agent/sim/gossip_cluster.h"

namespace meshos::sim {

namespace {
long peakRssKb() {
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return ru.ru_maxrss;  // KB on Linux
}
}  // namespace

using gossip::MemberEventKind;
using gossip::MemberState;

Result<GossipScenarioResult> runGossipScenario(const GossipScenarioOptions& o, std::ostream& log) {
  if (o.nodes < 3) return Status::invalid("--nodes must be >= 3");
  if (o.loss < 0 || o.loss >= 1) return Status::invalid("--loss must be in [0, 1)");
  auto wall_start = std::chrono::steady_clock::now();
  std::ofstream csv;
  if (!o.csv_path.empty()) {
    csv.open(o.csv_path);
    if (!csv) return Status::io("cannot write " + o.csv_path);
    csv << "phase,t_ms,value\n";
  }
  ClusterOptions co;
  co.link.latency_ms = o.latency_ms;
  co.link.jitter_ms = o.jitter_ms;
  co.encrypt = o.encrypt;
  if (o.push_pull_interval_ms > 0) co.gossip.push_pull_interval_ms = o.push_pull_interval_ms;
  if (o.start_spread_ms < 0) return Status::invalid("--start-spread-ms must be >= 0");
  if (o.join_seeds < 1 || o.join_seeds > o.nodes) return Status::invalid("--join-seeds must be in [1, nodes]");
  GossipCluster c(o.seed, co);
  c.addNodes(o.nodes);
  GossipScenarioResult r;
  const int64_t check_ms = o.nodes > 500 ? 1000 : 100;

  // 1. Join: everyone joins three seeds over a lossless network (or, --prejoined, every
  // node starts with the converged table).
  if (o.prejoined) {
    c.startAllPrejoined(o.start_spread_ms);
    if (!c.converged()) return Status::internal("prejoined cluster is not converged");
    r.join_converged_ms = 0;
    log << "join: " << o.nodes << " nodes prejoined (converged table adopted at start, no join traffic)" << std::endl;
  } else {
    c.startAll(o.join_seeds, o.start_spread_ms);
    if (o.start_spread_ms > 0) (void)c.runFor(o.start_spread_ms);  // every node up before convergence is judged
    if (!c.runUntil([&] { return c.converged(); }, o.max_converge_s * 1000, check_ms))
      return Status::deadline("membership did not converge within " + std::to_string(o.max_converge_s) + " s");
    r.join_converged_ms = c.nowMs();
    log << "join: " << o.nodes << " nodes converged in " << r.join_converged_ms << " ms" << std::endl;
  }
  if (csv) csv << "join," << r.join_converged_ms << "," << o.nodes << "\n";
  if (o.join_only) {
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    r.peak_rss_kb = peakRssKb();
    log << "seed " << o.seed << ", wall " << r.wall_s << " s, peak RSS " << r.peak_rss_kb << " KB" << std::endl;
    return r;
  }

  // Faults for the rest of the run.
  LinkProfile faulty = co.link;
  faulty.loss = o.loss;
  c.network().setDefaultLink(faulty);
  std::set<size_t> starved;
  size_t n_starved = static_cast<size_t>(std::llround(o.starved_fraction * static_cast<double>(o.nodes)));
  for (size_t i = 0; i < n_starved; ++i) {
    size_t idx = 1 + (i * 7919) % (o.nodes - 1);
    if (starved.insert(idx).second) c.node(idx).setStarved(o.starve_ms);
  }
  (void)c.runFor(5'000);

  // Track every membership event about every node from now on.
  std::string crashed_id;
  int64_t crash_at = -1;
  size_t dead_seen = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    c.node(i).on_event = [&](int64_t now, const gossip::MemberEvent& e) {
      bool subject_is_crashed = e.member.id == crashed_id;
      if (e.kind == MemberEventKind::kDead) {
        if (subject_is_crashed) {
          if (r.first_dead_ms < 0) r.first_dead_ms = now - crash_at;
          ++dead_seen;
          if (csv) csv << "dead," << now - crash_at << "," << dead_seen << "\n";
        } else {
          ++r.false_dead;
        }
      } else if (e.kind == MemberEventKind::kSuspect) {
        if (subject_is_crashed) {
          if (r.first_suspect_ms < 0) r.first_suspect_ms = now - crash_at;
        } else {
          ++r.false_suspect;
        }
      }
    };
  }

  // 2. Dissemination: one node publishes a small state update.
  const size_t need = static_cast<size_t>(std::ceil(0.999 * static_cast<double>(o.nodes - 1)));
  size_t have = 0;
  const int64_t publish_at = c.nowMs();
  const std::string origin = c.node(0).id();
  for (size_t i = 1; i < c.size(); ++i) {
    c.node(i).on_state = [&, origin](int64_t now, const gossip::NodeStateUpdate& u) {
      if (u.origin != origin) return;
      ++have;
      if (csv) csv << "disseminate," << now - publish_at << "," << have << "\n";
      if (have == need && r.disseminate_999_ms < 0) r.disseminate_999_ms = now - publish_at;
      if (have == o.nodes - 1) r.disseminate_all_ms = now - publish_at;
    };
  }
  if (Status s = c.node(0).membership().setLocalState(c.nowMs(), Bytes(64, 0x5a)); !s) return s;
  c.runUntil([&] { return r.disseminate_all_ms >= 0; }, 120'000, 50);
  log << "dissemination: 99.9% of " << o.nodes << " nodes in " << r.disseminate_999_ms << " ms, all in "
      << r.disseminate_all_ms << " ms" << std::endl;

  // 3. Steady state: bandwidth and false positives under the configured loss.
  uint64_t bytes0 = c.network().counters().bytes_sent, packets0 = c.network().counters().datagrams_sent;
  uint64_t stream0 = c.network().counters().stream_bytes;
  (void)c.runFor(o.duration_s * 1000);
  r.bytes_per_node_per_s = static_cast<double>(c.network().counters().bytes_sent - bytes0) /
                           static_cast<double>(o.nodes) / static_cast<double>(o.duration_s);
  r.stream_bytes_per_node_per_s = static_cast<double>(c.network().counters().stream_bytes - stream0) /
                                  static_cast<double>(o.nodes) / static_cast<double>(o.duration_s);
  r.packets_per_node_per_s = static_cast<double>(c.network().counters().datagrams_sent - packets0) /
                             static_cast<double>(o.nodes) / static_cast<double>(o.duration_s);
  log << "steady state " << o.duration_s << " s at " << o.loss * 100 << "% loss, " << starved.size()
      << " starved: false dead " << r.false_dead << ", false suspicions " << r.false_suspect << ", "
      << r.bytes_per_node_per_s << " UDP bytes/node/s + " << r.stream_bytes_per_node_per_s
      << " TCP (push-pull) bytes/node/s, " << r.packets_per_node_per_s << " packets/node/s" << std::endl;

  // 4. Failure detection: crash one healthy node.
  size_t victim = o.nodes / 2;
  while (starved.count(victim) != 0) ++victim;
  crashed_id = c.node(victim).id();
  crash_at = c.nowMs();
  c.node(victim).crash();
  bool all = c.runUntil([&] { return c.countSeeing(crashed_id, MemberState::kDead) == o.nodes - 1; }, 600'000, check_ms);
  if (all) r.all_dead_ms = c.nowMs() - crash_at;
  log << "failure detection: first suspect " << r.first_suspect_ms << " ms, first dead " << r.first_dead_ms
      << " ms, all " << o.nodes - 1 << " declared dead " << r.all_dead_ms << " ms" << std::endl;
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  r.peak_rss_kb = peakRssKb();
  log << "seed " << o.seed << ", wall " << r.wall_s << " s, peak RSS " << r.peak_rss_kb << " KB" << std::endl;
  return r;
}

}  // namespace meshos::sim
