// meshos-inspect: reads a running agent through its control socket and prints what it
// sees, as tables or (--json) as one JSON object per command.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/core/crypto.h"
#include "agent/control/control_client.h"
#include "chains/chain_json.h"
#include "chains/chain_recover.h"
#include "tools/inspect/cli_guard.h"
#include "tools/inspect/inspect_recover.h"
#include "tools/inspect/inspect_watch.h"
#include "tools/inspect/table.h"

using namespace meshos;
using nlohmann::json;

namespace {

struct Options {
  std::string socket;
  std::string reason;
  bool json = false;
  int timeout_ms = 10000;
};

std::string str(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return "-";
  if (j.is_number_float()) {
    double v = j.get<double>();
    if (v < 0) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
  }
  return j.dump();
}

// A field that may be absent (older or newer agents): "-" then.
std::string field(const json& j, const char* key) {
  return j.is_object() && j.contains(key) ? str(j[key]) : "-";
}

void printMembers(const json& members) {
  tools::Table t({"NAME", "ID", "ADDRESS", "STATE", "HEALTH", "MAINTENANCE", "READY", "HEAD", "LOAD",
                  "RTT_MS", "EST_RTT_MS"});
  for (const auto& m : members) {
    std::string ready = m.contains("ready") ? field(m, "ready") + "/" + field(m, "instances") : "-";
    t.add({field(m, "name"), field(m, "id"), field(m, "address"), field(m, "state"), field(m, "health"),
           field(m, "maintenance"), ready, field(m, "commit_seq"), field(m, "load1"), field(m, "rtt_ms"),
           field(m, "rtt_estimate_ms")});
  }
  if (t.empty()) {
    std::cout << "(no members yet)\n";
  } else {
    t.print(std::cout);
  }
}

// "http:8080/tcp,dns:53/udp" from a "ports" list, "-" for none.
std::string portsText(const json& d) {
  std::string out;
  if (d.is_object() && d.contains("ports") && d["ports"].is_array()) {
    for (const auto& p : d["ports"]) out += (out.empty() ? "" : ",") + field(p, "name") + ":" + field(p, "port") + "/" + field(p, "protocol");
  }
  return out.empty() ? "-" : out;
}

// `meshos-inspect endpoints [DAEMON]`: the ready instances of each commit daemon, where.
void printEndpoints(const json& j) {
  tools::Table t({"DAEMON", "NODE", "ADDRESS", "PORTS", "READY", "READY_FOR"});
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& e : j.value("endpoints", json::array())) {
    const int64_t since = tools::intAt(e, "ready_since_ms");
    t.add({field(e, "daemon"), field(e, "node"), field(e, "address"), portsText(e), field(e, "ready"),
           since > 0 ? tools::humanDuration(std::max<int64_t>(0, now - since)) : "-"});
  }
  if (t.empty()) {
    std::cout << "(no ready instances)\n";
  } else {
    t.print(std::cout);
  }
}

// `meshos-inspect rollout DAEMON`: the order of its rollout and where each node stands.
void printRollout(const json& j) {
  std::cout << field(j, "daemon") << ": " << field(j, "state") << " to version " << field(j, "target") << ", "
            << field(j, "done") << "/" << field(j, "total") << " done (max_unavailable " << field(j, "max_unavailable")
            << ", min_ready_ms " << field(j, "min_ready_ms") << ", on failure " << field(j, "on_failure") << ")\n";
  if (!str(j.value("why", json(""))).empty()) std::cout << str(j["why"]) << "\n";
  tools::Table t({"ORDER", "NODE", "VERSION", "READY", "DONE", "FAILED"});
  int i = 0;
  for (const auto& n : j.value("nodes", json::array())) {
    t.add({std::to_string(++i), field(n, "node"), field(n, "version"), field(n, "ready"), field(n, "done"), field(n, "failed")});
  }
  t.print(std::cout);
}

void printDaemons(const json& daemons, const json& desired, const json& groups = json::array()) {
  tools::Table t({"NAME", "INSTANCE", "GROUP", "STATE", "PID", "RESTARTS", "READY", "LIVENESS", "REASON"});
  for (const auto& d : daemons) {
    const std::string group = d.contains("group") ? field(d, "group") + " (" + field(d, "strategy") + ")" : "-";
    t.add({field(d, "name"), field(d, "instance"), group, field(d, "state"), field(d, "pid"),
           field(d, "restarts"), field(d, "ready"), field(d, "liveness"), field(d, "reason")});
  }
  if (t.empty()) {
    std::cout << "(no daemon instances on this node)\n";
  } else {
    t.print(std::cout);
  }
  for (const auto& d : daemons) {
    // Limits a best-effort daemon runs without.
    if (!d.contains("warnings")) continue;
    for (const auto& w : d["warnings"]) std::cout << "warning: " << field(d, "instance") << ": " << str(w) << "\n";
  }
  for (const auto& d : daemons) {
    if (d.contains("last_restart")) std::cout << "last restart: " << field(d, "instance") << ": " << field(d, "last_restart") << "\n";
  }
  if (groups.is_array() && !groups.empty()) {
    std::cout << "\ngroups:\n";
    tools::Table gt({"GROUP", "STRATEGY", "MEMBERS", "RESTARTS", "INTENSITY", "STATE"});
    for (const auto& g : groups) {
      std::string members;
      for (const auto& m : g.value("members", json::array())) members += (members.empty() ? "" : ",") + str(m);
      gt.add({field(g, "name"), field(g, "strategy"), members, field(g, "restarts_in_window"), field(g, "restart_intensity"),
              tools::flagAt(g, "quarantined") ? "quarantined: " + field(g, "reason") : "running"});
    }
    gt.print(std::cout);
  }
  if (!desired.empty()) {
    std::cout << "\ndesired:\n";
    tools::Table dt({"NAME", "GENERATION", "REPLICAS", "PAUSED", "SOURCE", "PORTS"});
    for (const auto& d : desired) {
      dt.add({field(d, "name"), field(d, "generation"), field(d, "replicas"), field(d, "paused"),
              field(d, "source"), portsText(d)});
    }
    dt.print(std::cout);
  }
}

// `meshos-inspect placement [DAEMON]`: per daemon, where it is assigned, where it runs and
// is ready, and why nodes were excluded.
void printPlacement(json j) {
  std::cout << "maintenance " << str(j["maintenance"]) << (tools::flagAt(j, "isolated") ? ", ISOLATED" : "")
            << (tools::flagAt(j, "frozen") ? ", FROZEN" : "") << ", " << str(j["alive"]) << " members alive\n";
  if (j["decisions"].empty()) {
    std::cout << "(no daemons in the commit log)\n";
    return;
  }
  auto names = [](const json& list) {
    std::string out;
    for (const auto& n : list) out += (out.empty() ? "" : ",") + str(n);
    return out.empty() ? std::string("-") : out;
  };
  tools::Table t({"DAEMON", "WANTED", "ASSIGNED", "RUNNING_ON", "READY_ON", "HERE", "PORTS", "WHY"});
  for (const auto& d : j["decisions"]) {
    std::string wanted = field(d, "wanted") + (tools::flagAt(d, "infeasible") ? " (infeasible)" : "") +
                         (tools::flagAt(d, "paused") ? " (paused)" : "");
    t.add({field(d, "daemon"), wanted, names(d["assigned"]), names(d["running_on"]), names(d["ready_on"]),
           field(d, "here"), portsText(d), field(d, "why")});
  }
  t.print(std::cout);
  if (j.contains("explain")) {
    auto& e = j["explain"];
    std::cout << "\n" << str(e["daemon"]) << ": feasible nodes, best first\n";
    tools::Table ft({"NODE", "SCORE"});
    for (const auto& f : e["feasible"]) {
      char score[32];
      std::snprintf(score, sizeof score, "%.3f", f.contains("score") && f["score"].is_number() ? f["score"].get<double>() : 0.0);
      ft.add({str(f["node"]), score});
    }
    if (ft.empty()) {
      std::cout << "(none)\n";
    } else {
      ft.print(std::cout);
    }
    for (auto& [node, why] : e["excluded"].items()) std::cout << "  excluded " << node << ": " << str(why) << "\n";
    return;
  }
  for (const auto& d : j["decisions"]) {
    if (d["excluded"].empty()) continue;
    std::cout << "\n" << str(d["daemon"]) << ": " << str(d["excluded_count"]) << " node(s) excluded\n";
    for (auto& [node, why] : d["excluded"].items()) std::cout << "  " << node << ": " << str(why) << "\n";
  }
}

// Sections other than the ones printed as tables: "key: value" lines, nested by indent.
void printSection(const std::string& name, const json& j, int indent = 0) {
  std::cout << std::string(indent, ' ') << name << ":";
  if (!j.is_object()) {
    std::cout << " " << str(j) << "\n";
    return;
  }
  std::cout << "\n";
  for (auto& [k, v] : j.items()) {
    if (v.is_object()) {
      printSection(k, v, indent + 2);
    } else if (v.is_array()) {
      std::cout << std::string(indent + 2, ' ') << k << ": " << v.size() << " item(s)\n";
    } else {
      std::cout << std::string(indent + 2, ' ') << k << ": " << str(v) << "\n";
    }
  }
}

void printSnapshot(json s) {  // by value: [] on a missing key gives null, not an abort
  auto& n = s["node"];
  std::cout << "node " << str(n["name"]) << " (" << str(n["id"]) << "), meshos " << str(n["version"])
            << ", cluster " << str(n["cluster"]) << ", up "
            << tools::humanDuration(tools::intAt(n, "uptime_ms"))
            << (tools::flagAt(n, "shutting_down") ? ", SHUTTING DOWN" : "") << "\n";
  auto& l = s["loop"];
  std::cout << "loop: " << str(l["ticks"]) << " ticks, " << str(l["events_folded"])
            << " events folded, lag p99 " << str(l["lag_p99_us"]) << " us, max " << str(l["lag_max_us"])
            << " us; snapshot generation " << str(s["generation"]) << "\n";
  std::cout << "commit head: seq " << str(s["commit_head"]["seq"]) << "\n\n";
  std::cout << "members:\n";
  printMembers(s["members"]);
  std::cout << "\ndaemons:\n";
  printDaemons(s["daemons"], s["desired"]);
  std::cout << "\n";
  for (auto& [k, v] : s.items()) {
    if (k == "placement") {
      std::cout << "placement:\n";
      printPlacement(v);
      std::cout << "\n";
      continue;
    }
    if (k == "node" || k == "loop" || k == "members" || k == "daemons" || k == "desired" || k == "nodes" ||
        k == "generation" || k == "commit_head") {
      continue;
    }
    printSection(k, v);
  }
}

int call(const Options& o, const control::RequestFiller& fill, control::ControlReply& out) {
  auto r = control::callAgent(
      o.socket,
      [&](proto::Request::Builder b) {
        b.setReason(o.reason);
        fill(b);
      },
      o.timeout_ms);
  if (!r) {
    std::cerr << "meshos-inspect: " << r.status().toString() << "\n";
    return 1;
  }
  out = std::move(*r);
  return 0;
}

int jsonCommand(const Options& o, const control::RequestFiller& fill,
                const std::function<void(const json&)>& human) {
  control::ControlReply reply;
  if (int rc = call(o, fill, reply); rc != 0) return rc;
  json j = json::parse(reply.body, nullptr, false);
  if (j.is_discarded()) {
    std::cerr << "meshos-inspect: the agent sent a reply that is not JSON\n";
    return 1;
  }
  if (o.json) {
    std::cout << j.dump() << "\n";
  } else {
    human(j);
  }
  return 0;
}

struct ChainOptions {
  std::string action;  // verify | tail | show
  std::string chain;
  uint64_t from = 0;
  uint64_t count = 0;
  std::string data_dir;
};

void printChainJson(const std::string& action, json j) {
  if (action == "verify") {
    auto& r = j["verify"];
    if (tools::flagAt(r, "ok")) {
      std::cout << "chain " << str(r["chain"]) << ": OK, " << str(r["records"]) << " records, "
                << str(r["checkpoints"]) << " checkpoints, seq " << str(r["first_seq"]) << ".."
                << str(r["last_seq"]) << "\n";
    } else {
      std::cout << "chain " << str(r["chain"]) << ": FAILED at seq " << str(r["bad_seq"]) << ": "
                << str(r["problem"]) << " (" << str(r["detail"]) << ")\n";
    }
    return;
  }
  if (action == "tail") {
    tools::Table t({"SEQ", "TIME_MS", "KIND", "PAYLOAD"});
    for (auto rec : j["records"]) {
      std::string payload = rec.contains("payload_text") ? str(rec["payload_text"]) : str(rec["payload_b64"]);
      if (payload.size() > 100) payload = payload.substr(0, 97) + "...";
      t.add({str(rec["seq"]), str(rec["time_ms"]), str(rec["kind"]), payload});
    }
    t.print(std::cout);
    return;
  }
  std::cout << j.dump(2) << "\n";
}

// Offline: a stopped agent's data directory, opened read-only.
int chainOffline(const Options& o, const ChainOptions& c) {
  auto name = chains::parseChainName(c.chain);
  if (!name) {
    std::cerr << "meshos-inspect: " << name.status().message() << "\n";
    return 2;
  }
  auto store = chains::ChainStore::openReadOnly(c.data_dir);
  if (!store) return tools::reportUnopenable(c.data_dir, store.status(), o.json);
  json j;
  if (c.action == "verify") {
    if (Status s = initCrypto(); !s) return 1;
    std::optional<PublicKey> key;
    auto k = readKeyFile(std::filesystem::path(c.data_dir) / "node.key");
    if (k) {
      key = k->public_key;
    } else {
      std::cerr << "note: " << k.status().message()
                << "; checkpoint signatures are checked against the key stored with them\n";
    }
    chains::VerifyRange range;
    range.from = c.from;
    if (c.count > 0) range.to = c.from + c.count - 1;
    bool tty = ::isatty(2) != 0;
    j = chains::chainVerifyJson(**store, *name, range, key, [&](const chains::VerifyProgress& p) {
      std::cerr << chains::verifyProgressText(*name, p) << (tty ? "\r" : "\n") << std::flush;
    });
    if (tty) std::cerr << "\n";
  } else if (c.action == "tail") {
    auto r = chains::chainTailJson(**store, *name, c.from, c.count == 0 ? 20 : c.count);
    if (!r) {
      std::cerr << "meshos-inspect: " << r.status().toString() << "\n";
      return 1;
    }
    j = *r;
  } else {
    auto r = chains::chainShowJson(**store, *name, c.from == 0 ? std::nullopt : std::optional<uint64_t>(c.from));
    if (!r) {
      std::cerr << "meshos-inspect: " << r.status().toString() << "\n";
      return 1;
    }
    j = *r;
  }
  if (o.json) {
    std::cout << j.dump() << "\n";
  } else {
    printChainJson(c.action, j);
  }
  if (c.action == "verify" && !tools::flagAt(j["verify"], "ok")) {
    // A table that cannot be read is damage to recover from, not a tampered record.
    if (tools::textAt(j["verify"], "problem") == "read_error" &&
        chains::looksDamaged(Status::io(tools::textAt(j["verify"], "detail")))) {
      std::cerr << "the database is DAMAGED; " << chains::recoveryHint(c.data_dir) << "\n";
    }
    return 3;
  }
  return 0;
}

int chainCommand(const Options& o, const ChainOptions& c) {
  if (!c.data_dir.empty()) return chainOffline(o, c);
  int rc = jsonCommand(
      o,
      [&](proto::Request::Builder b) {
        auto r = c.action == "verify" ? b.initChainVerify()
                 : c.action == "tail" ? b.initChainTail()
                                      : b.initChainShow();
        r.setChain(c.chain);
        r.setFrom(c.from);
        r.setCount(c.count);
      },
      [&](json j) { printChainJson(c.action, j); });
  return rc;
}

struct DaemonOptions {
  std::string op;
  std::string target;
  std::vector<std::string> argv;
  uint32_t tail = 50;
  bool follow = false;
};

int daemonCommand(const Options& o, const DaemonOptions& d) {
  static const std::map<std::string, proto::DaemonControl::Op> kOps = {
      {"restart", proto::DaemonControl::Op::RESTART}, {"pause", proto::DaemonControl::Op::PAUSE},
      {"resume", proto::DaemonControl::Op::RESUME}, {"quarantine", proto::DaemonControl::Op::QUARANTINE},
      {"stop", proto::DaemonControl::Op::STOP}, {"start", proto::DaemonControl::Op::START},
      {"trigger", proto::DaemonControl::Op::TRIGGER}, {"exec", proto::DaemonControl::Op::EXEC},
      {"enable", proto::DaemonControl::Op::ENABLE}, {"disable", proto::DaemonControl::Op::DISABLE},
      {"signal", proto::DaemonControl::Op::SIGNAL}};
  bool is_instance = d.target.find('#') != std::string::npos;
  return jsonCommand(
      o,
      [&](proto::Request::Builder b) {
        auto c = b.initDaemonControl();
        if (is_instance) {
          c.setInstance(d.target);
          c.setName(d.target.substr(0, d.target.find('#')));
        } else {
          c.setName(d.target);
        }
        c.setOp(kOps.at(d.op));
        if (d.op == "signal") {
          c.setSignal(d.argv.front());
          return;
        }
        auto argv = c.initArgv(static_cast<unsigned>(d.argv.size()));
        for (size_t i = 0; i < d.argv.size(); ++i) argv.set(static_cast<unsigned>(i), d.argv[i]);
      },
      [&](json j) {
        if (d.op == "exec") {
          std::cout << str(j["output"]);
          std::cout << "(exit " << str(j["exit_code"]) << ")\n";
        } else {
          std::cout << d.op << " " << d.target << ": ok\n";
        }
      });
}

int logsCommand(const Options& o, const DaemonOptions& d) {
  bool is_instance = d.target.find('#') != std::string::npos;
  uint64_t offset = 0;
  for (bool first = true;; first = false) {
    control::ControlReply reply;
    int rc = call(
        o,
        [&](proto::Request::Builder b) {
          auto q = b.initDaemonLogs();
          q.setName(is_instance ? d.target.substr(0, d.target.find('#')) : d.target);
          if (is_instance) q.setInstance(d.target);
          if (first) {
            q.setTailLines(d.tail);
          } else {
            q.setOffset(offset);
          }
        },
        reply);
    if (rc != 0) return rc;
    json j = json::parse(reply.body, nullptr, false);
    if (j.is_discarded()) return 1;
    std::cout << tools::textAt(j, "data", "") << std::flush;
    if (!d.follow) return 0;
    offset = static_cast<uint64_t>(tools::intAt(j, "next_offset"));
    if (first) {
      // The tail did not say where the file ends: ask for the end once, print nothing.
      control::ControlReply end;
      if (call(o, [&](proto::Request::Builder b) {
            auto q = b.initDaemonLogs();
            q.setName(is_instance ? d.target.substr(0, d.target.find('#')) : d.target);
            if (is_instance) q.setInstance(d.target);
            q.setOffset(~uint64_t{0} >> 2);
          }, end) == 0) {
        json e = json::parse(end.body, nullptr, false);
        if (!e.is_discarded()) offset = static_cast<uint64_t>(tools::intAt(e, "next_offset", static_cast<int64_t>(offset)));
      }
    }
    ::usleep(500 * 1000);
  }
}

}  // namespace

int inspectMain(int argc, char** argv) {
  tools::libraryLogsToStderr();
  CLI::App app{"meshos-inspect: read a running meshos agent"};
  app.set_version_flag("--version", std::string("meshos-inspect ") + MESHOS_VERSION);
  app.require_subcommand(1);
  Options o;
  const char* env_socket = std::getenv("MESHOS_SOCKET");
  o.socket = env_socket != nullptr ? env_socket : "/run/meshos/agent.sock";
  app.add_option("-s,--socket", o.socket, "the agent's control socket (default: $MESHOS_SOCKET or /run/meshos/agent.sock)");
  app.add_flag("--json", o.json, "print one JSON object instead of tables");
  app.add_option("--reason", o.reason, "why you ask (recorded by the agent)");
  app.add_option("--timeout-ms", o.timeout_ms, "how long to wait for the agent")->check(CLI::Range(1, 3600000));

  auto* snapshot = app.add_subcommand("snapshot", "everything the agent knows, as of its last tick");
  auto* members = app.add_subcommand("members", "the cluster members this agent sees");
  auto* daemons = app.add_subcommand("daemons", "daemon instances on this node and the desired set");
  auto* metrics = app.add_subcommand("metrics", "Prometheus text exposition");
  auto* ping = app.add_subcommand("ping", "check that the agent answers");
  ChainOptions chain_opts;
  auto* chain = app.add_subcommand("chain", "hash chains: verify, tail or show audit|log|failure");
  chain->add_option("action", chain_opts.action, "verify | tail | show")
      ->required()
      ->check(CLI::IsMember({"verify", "tail", "show"}));
  chain->add_option("chain", chain_opts.chain, "audit | log | failure")
      ->required()
      ->check(CLI::IsMember({"audit", "log", "failure"}));
  chain->add_option("--from", chain_opts.from, "first seq (verify, tail), or the record to show");
  chain->add_option("--count", chain_opts.count, "how many records (tail: default 20; verify: default all)");
  chain->add_option("--data-dir", chain_opts.data_dir,
                    "read a stopped agent's data directory instead of asking the agent");
  std::string recover_dir;
  auto* recover = app.add_subcommand("recover", "offline: keep a damaged chain database aside, start new chains");
  recover->add_option("--data-dir", recover_dir, "the stopped agent's data directory")->required();
  recover->add_option("--reason", o.reason, "why (recorded in the first record of each new chain)")->required();
  recover->add_flag("--json", o.json, "print JSON");
  DaemonOptions daemon_opts;
  auto* daemon = app.add_subcommand("daemon", "operate a daemon on this node (recorded in the audit chain)");
  daemon->add_option("op", daemon_opts.op,
                     "restart | pause | resume | quarantine | stop | start | trigger | signal | exec | enable | disable "
                     "(enable, disable: a cron daemon's schedule)")
      ->required()
      ->check(CLI::IsMember({"restart", "pause", "resume", "quarantine", "stop", "start", "trigger", "signal", "exec",
                             "enable", "disable"}));
  daemon->add_option("target", daemon_opts.target, "a daemon name, or one instance as name#N")->required();
  daemon->add_option("argv", daemon_opts.argv,
                     "for exec: the command to run in the daemon's environment; for signal: the signal (HUP, SIGUSR1, 10)");
  auto* placement = app.add_subcommand("placement", "where each commit daemon is assigned and runs, and why");
  std::string placement_daemon;
  placement->add_option("daemon", placement_daemon, "one daemon (default: all)");
  auto* endpoints = app.add_subcommand("endpoints", "where the ready instances of each commit daemon are (node, address, ports)");
  std::string endpoints_daemon;
  endpoints->add_option("daemon", endpoints_daemon, "one daemon (default: all)");
  auto* rollout = app.add_subcommand("rollout", "a commit daemon's rolling update: the order, who is done, halted or not");
  std::string rollout_daemon;
  rollout->add_option("daemon", rollout_daemon, "the daemon")->required();
  auto* logs = app.add_subcommand("logs", "a daemon instance's output");
  logs->add_option("target", daemon_opts.target, "a daemon name (its first instance) or name#N")->required();
  logs->add_option("--tail", daemon_opts.tail, "lines to show (default 50)");
  logs->add_flag("-f,--follow", daemon_opts.follow, "keep printing new output");
  std::string watch_kinds;
  auto* watch = app.add_subcommand("watch", "print what changes on the agent as it happens (Ctrl-C stops)");
  watch->add_option("--kinds", watch_kinds, "members,daemons,commits,records (default: all)");
  for (auto* sub : {snapshot, members, daemons, metrics, ping, chain, daemon, logs, placement, endpoints, rollout, watch}) {
    sub->add_option("-s,--socket", o.socket, "the agent's control socket");
    sub->add_flag("--json", o.json, "print JSON");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // 0 for --help and --version
    return rc == 0 ? 0 : 2;
  }

  if (snapshot->parsed()) {
    return jsonCommand(o, [](proto::Request::Builder b) { b.setSnapshot(); }, printSnapshot);
  }
  if (members->parsed()) {
    return jsonCommand(o, [](proto::Request::Builder b) { b.setMembers(); },
                       [](json j) { printMembers(j["members"]); });
  }
  if (daemons->parsed()) {
    return jsonCommand(o, [](proto::Request::Builder b) { b.setDaemons(); },
                       [](json j) {
                         printDaemons(j.contains("daemons") ? j["daemons"] : json::array(),
                                      j.contains("desired") ? j["desired"] : json::array(),
                                      j.contains("groups") ? j["groups"] : json::array());
                       });
  }
  if (ping->parsed()) {
    return jsonCommand(o, [](proto::Request::Builder b) { b.setPing(); },
                       [](json j) { std::cout << "pong from " << str(j["node"]) << "\n"; });
  }
  if (chain->parsed()) return chainCommand(o, chain_opts);
  if (recover->parsed()) return tools::recoverCommand(recover_dir, o.reason, o.json);
  if (placement->parsed()) {
    return jsonCommand(o, [&](proto::Request::Builder b) { b.setPlacement(placement_daemon); }, printPlacement);
  }
  if (rollout->parsed()) {
    return jsonCommand(o, [&](proto::Request::Builder b) { b.setRollout(rollout_daemon); }, printRollout);
  }
  if (endpoints->parsed()) {
    return jsonCommand(o, [&](proto::Request::Builder b) { b.setEndpoints(endpoints_daemon); }, printEndpoints);
  }
  if (daemon->parsed()) {
    if (daemon_opts.op == "exec" && daemon_opts.argv.empty()) {
      std::cerr << "meshos-inspect: daemon exec needs a command: daemon exec NAME -- CMD ARGS...\n";
      return 2;
    }
    if (daemon_opts.op == "signal" && daemon_opts.argv.size() != 1) {
      std::cerr << "meshos-inspect: daemon signal needs one signal: daemon signal NAME HUP\n";
      return 2;
    }
    if (o.reason.empty()) {
      // The agent refuses a change without one; saying so here saves a round trip.
      std::cerr << "meshos-inspect: daemon " << daemon_opts.op
                << " changes the node: --reason is required (it is recorded in the audit chain), e.g.\n"
                << "  meshos-inspect --reason \"deploy 42\" daemon " << daemon_opts.op << " " << daemon_opts.target << "\n";
      return 2;
    }
    return daemonCommand(o, daemon_opts);
  }
  if (logs->parsed()) return logsCommand(o, daemon_opts);
  if (watch->parsed()) return tools::watchCommand(o.socket, watch_kinds, o.json, o.timeout_ms);
  if (metrics->parsed()) {
    control::ControlReply reply;
    if (int rc = call(o, [](proto::Request::Builder b) { b.setMetrics(); }, reply); rc != 0) return rc;
    std::cout << reply.body;
    return 0;
  }
  return 2;
}

int main(int argc, char** argv) {
  return tools::runGuarded("meshos-inspect", [&] { return inspectMain(argc, argv); });
}
