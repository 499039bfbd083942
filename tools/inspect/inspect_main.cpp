// meshos-inspect: reads a running agent through its control socket and prints what it
// sees, as tables or (--json) as one JSON object per command.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/net/control_client.h"
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

void printMembers(const json& members) {
  tools::Table t({"NAME", "ID", "ADDRESS", "STATE", "INCARNATION", "RTT_MS"});
  for (const auto& m : members) {
    t.add({str(m["name"]), str(m["id"]), str(m["address"]), str(m["state"]), str(m["incarnation"]),
           str(m["rtt_ms"])});
  }
  if (t.empty()) {
    std::cout << "(no members yet)\n";
  } else {
    t.print(std::cout);
  }
}

void printDaemons(const json& daemons, const json& desired) {
  tools::Table t({"NAME", "INSTANCE", "STATE", "PID", "RESTARTS", "HEALTH"});
  for (const auto& d : daemons) {
    t.add({str(d["name"]), str(d["instance"]), str(d["state"]), str(d["pid"]), str(d["restarts"]),
           d["health"].get<std::string>().empty() ? "-" : str(d["health"])});
  }
  if (t.empty()) {
    std::cout << "(no daemon instances on this node)\n";
  } else {
    t.print(std::cout);
  }
  if (!desired.empty()) {
    std::cout << "\ndesired:\n";
    tools::Table dt({"NAME", "GENERATION", "REPLICAS", "PAUSED", "SOURCE"});
    for (const auto& d : desired) {
      dt.add({str(d["name"]), str(d["generation"]), str(d["replicas"]), str(d["paused"]), str(d["source"])});
    }
    dt.print(std::cout);
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

void printSnapshot(const json& s) {
  const auto& n = s["node"];
  std::cout << "node " << str(n["name"]) << " (" << str(n["id"]) << "), meshos " << str(n["version"])
            << ", cluster " << str(n["cluster"]) << ", up "
            << tools::humanDuration(n["uptime_ms"].get<int64_t>())
            << (n["shutting_down"].get<bool>() ? ", SHUTTING DOWN" : "") << "\n";
  const auto& l = s["loop"];
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
    if (k == "node" || k == "loop" || k == "members" || k == "daemons" || k == "desired" ||
        k == "generation" || k == "commit_head") {
      continue;
    }
    printSection(k, v);
  }
}

int call(const Options& o, const net::RequestFiller& fill, net::ControlReply& out) {
  auto r = net::callAgent(
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

int jsonCommand(const Options& o, const net::RequestFiller& fill,
                const std::function<void(const json&)>& human) {
  net::ControlReply reply;
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"meshos-inspect: read a running meshos agent"};
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
  for (auto* sub : {snapshot, members, daemons, metrics, ping}) {
    sub->add_option("-s,--socket", o.socket, "the agent's control socket");
    sub->add_flag("--json", o.json, "print JSON");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  if (snapshot->parsed()) {
    return jsonCommand(o, [](proto::Request::Builder b) { b.setSnapshot(); }, printSnapshot);
  }
  if (members->parsed()) {
    return jsonCommand(o, [](proto::Request::Builder b) { b.setMembers(); },
                       [](const json& j) { printMembers(j["members"]); });
  }
  if (daemons->parsed()) {
    return jsonCommand(o, [](proto::Request::Builder b) { b.setDaemons(); },
                       [](const json& j) { printDaemons(j["daemons"], j["desired"]); });
  }
  if (ping->parsed()) {
    return jsonCommand(o, [](proto::Request::Builder b) { b.setPing(); },
                       [](const json& j) { std::cout << "pong from " << str(j["node"]) << "\n"; });
  }
  if (metrics->parsed()) {
    net::ControlReply reply;
    if (int rc = call(o, [](proto::Request::Builder b) { b.setMetrics(); }, reply); rc != 0) return rc;
    std::cout << reply.body;
    return 0;
  }
  return 2;
}
