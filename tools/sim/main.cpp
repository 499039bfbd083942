// meshos-sim: deterministic cluster simulations from the command line.
//   meshos-sim cluster --nodes 20 --seed 1 --duration-s 600 --faults crash,partition,loss,disk-full,clock [--json]
//   meshos-sim gossip --nodes 100 --loss 0.1 --seed 7 [--duration-s 120] [--csv out.csv]
#include <CLI/CLI.hpp>

#include <iostream>

#include "agent/core/logging.h"
#include "agent/sim/cluster_scenario.h"
#include "tools/sim/gossip_scenario.h"

namespace {

int runCluster(meshos::sim::ScenarioOptions o, const std::string& faults, bool json, const std::string& log_level) {
  auto kinds = meshos::sim::parseFaultKinds(faults);
  if (!kinds) {
    std::cerr << "meshos-sim: --faults: " << kinds.status().message() << "\n";
    return 2;
  }
  o.faults = *kinds;
  if (meshos::Status s = meshos::setupLogging(log_level, "text"); !s) {
    std::cerr << "meshos-sim: " << s.message() << "\n";
    return 2;
  }
  auto r = meshos::sim::runClusterScenario(o);
  if (json) {
    std::cout << meshos::sim::scenarioToJson(o, r).dump(2) << "\n";
  } else {
    std::cout << meshos::sim::scenarioToText(o, r);
  }
  return r.status ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"meshos-sim: seeded, deterministic cluster simulations"};
  app.require_subcommand(1);

  meshos::sim::ScenarioOptions co;
  std::string faults = "none";
  bool json = false;
  std::string log_level = "off";
  int64_t duration_s = 600;
  int64_t quiet_end_s = -1;
  int64_t workload_period_s = 25;
  auto* c = app.add_subcommand("cluster", "the whole agent on N simulated machines, under faults drawn from the seed");
  c->add_option("--nodes,-n", co.nodes, "cluster size")->check(CLI::Range(3, 500));
  c->add_option("--seed", co.seed, "random seed (MESHOS_SEED in the tests)");
  c->add_option("--duration-s", duration_s, "simulated seconds")->check(CLI::Range(60, 86400));
  c->add_option("--faults", faults, "comma-separated: crash,partition,loss,disk-full,clock,slow,kill (or all, none)");
  c->add_option("--daemons", co.daemons, "daemons the admin commits at the start")->check(CLI::Range(0, 200));
  c->add_option("--quiet-end-s", quiet_end_s, "the fault-free end of the run (default: 120, at most a third)")
      ->check(CLI::Range(10, 86400));
  c->add_option("--workload-period-s", workload_period_s, "the admin commits a change about this often")
      ->check(CLI::Range(1, 3600));
  c->add_flag("--versions", co.versions_only, "every change a new version of a spec (rolling updates)");
  c->add_flag("--json", json, "print the summary as one JSON object");
  c->add_option("--log-level", log_level, "the agents' log level (default off)");

  meshos::sim::GossipScenarioOptions o;
  auto* g = app.add_subcommand("gossip", "membership convergence, dissemination and failure detection");
  g->add_option("--nodes,-n", o.nodes, "cluster size")->check(CLI::Range(3, 100000));
  g->add_option("--loss", o.loss, "packet loss probability after the join, 0..1")->check(CLI::Range(0.0, 0.99));
  g->add_option("--seed", o.seed, "random seed");
  g->add_option("--duration-s", o.duration_s, "steady-state window in simulated seconds")->check(CLI::Range(1, 86400));
  g->add_option("--starved", o.starved_fraction, "fraction of CPU-starved nodes, 0..1")->check(CLI::Range(0.0, 0.5));
  g->add_option("--starve-ms", o.starve_ms, "extra delay of a starved node's work, max ms");
  g->add_option("--latency-ms", o.latency_ms, "one-way link latency");
  g->add_option("--jitter-ms", o.jitter_ms, "link jitter");
  g->add_flag("--encrypt", o.encrypt, "seal packets with a cluster key");
  g->add_option("--join-seeds", o.join_seeds, "every node joins the first N nodes (default 3)");
  g->add_option("--max-converge-s", o.max_converge_s, "give up the join after this many simulated seconds")
      ->check(CLI::Range(1, 86400));
  g->add_flag("--join-only", o.join_only, "stop after the join (for seed sweeps)");
  g->add_flag("--prejoined", o.prejoined,
              "start from a converged membership (every node adopts the full member list at start, "
              "no join traffic) instead of the all-at-once join");
  g->add_option("--start-spread-ms", o.start_spread_ms,
                 "nodes start at random times over this many ms (default 0: all at once, gossip rounds in lockstep)");
  g->add_option("--push-pull-ms", o.push_pull_interval_ms, "push-pull interval (default: gossip default)");
  g->add_option("--csv", o.csv_path, "write per-event figures as CSV (phase,t_ms,value)");
  CLI11_PARSE(app, argc, argv);
  if (c->parsed()) {
    co.duration_ms = duration_s * 1000;
    co.quiet_end_ms = quiet_end_s > 0 ? std::min<int64_t>(quiet_end_s * 1000, co.duration_ms)
                                      : std::min<int64_t>(co.quiet_end_ms, co.duration_ms / 3);
    co.workload_period_ms = workload_period_s * 1000;
    return runCluster(co, faults, json, log_level);
  }
  auto r = meshos::sim::runGossipScenario(o, std::cout);
  if (!r) {
    std::cerr << "meshos-sim: " << r.status().toString() << " (seed " << o.seed << ")\n";
    return 1;
  }
  return 0;
}
