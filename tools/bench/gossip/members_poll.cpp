// members_poll: the membership benchmark's eyes on N meshos agents (real_gossip_bench.py,
// side_by_side.py). One process polls every agent's control socket in turn, so polling
// costs the agents the same as an operator's `meshos-inspect members`, without starting a
// process per question.
//
//   members_poll watch [--interval-ms 100] SOCKET...
//       Each round asks every agent for its member table; prints one JSON line whenever an
//       agent's view changes: {"t": CLOCK_MONOTONIC seconds, "i": agent index, "m":
//       {name: state} or null while it does not answer}. Ends when stdin closes.
//   members_poll join --address HOST:PORT SOCKET...
//       Asks every agent to join HOST:PORT (the control socket's join request: it returns
//       as soon as the agent has started joining).
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/control/control_client.h"

namespace {

using nlohmann::json;

double monotonicSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

bool stdinClosed() {
  pollfd p{STDIN_FILENO, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  char buf[256];
  return read(STDIN_FILENO, buf, sizeof buf) <= 0;
}

json viewOf(const std::string& socket) {
  auto reply = meshos::control::callAgent(socket, [](meshos::proto::Request::Builder b) { b.setMembers(); }, 2000);
  if (!reply) return nullptr;
  json view = json::object();
  const json body = json::parse(reply->body, nullptr, false);
  if (!body.is_object() || !body.contains("members") || !body["members"].is_array()) return nullptr;
  for (const auto& m : body["members"])
    if (m.contains("name") && m["name"].is_string() && m.contains("state") && m["state"].is_string())
      view[m["name"].get<std::string>()] = m["state"];
  return view;
}

int watch(const std::vector<std::string>& sockets, int interval_ms) {
  std::vector<json> last(sockets.size(), json("never asked"));
  while (!stdinClosed()) {
    const double round_start = monotonicSeconds();
    for (size_t i = 0; i < sockets.size(); ++i) {
      json view = viewOf(sockets[i]);
      if (view == last[i]) continue;
      std::cout << json{{"t", monotonicSeconds()}, {"i", i}, {"m", view}}.dump() << std::endl;
      last[i] = std::move(view);
    }
    const double left_ms = interval_ms - (monotonicSeconds() - round_start) * 1000.0;
    if (left_ms > 0) std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(left_ms * 1000)));
  }
  return 0;
}

int join(const std::vector<std::string>& sockets, const std::string& address) {
  int failures = 0;
  for (const auto& s : sockets) {
    auto reply = meshos::control::callAgent(
        s,
        [&](meshos::proto::Request::Builder b) {
          b.setReason("benchmark join");
          b.initJoin(1).set(0, address);
        },
        5000);
    if (!reply) {
      std::cerr << s << ": " << reply.status().toString() << "\n";
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"poll or steer N meshos agents through their control sockets"};
  app.require_subcommand(1);
  std::vector<std::string> sockets;
  int interval_ms = 100;
  std::string address;
  auto* w = app.add_subcommand("watch", "print each agent's member table whenever it changes");
  w->add_option("--interval-ms", interval_ms, "time between rounds")->check(CLI::Range(10, 10000));
  w->add_option("sockets", sockets, "control sockets")->required();
  auto* j = app.add_subcommand("join", "ask every agent to join an address");
  j->add_option("--address", address, "host:port of a member")->required();
  j->add_option("sockets", sockets, "control sockets")->required();
  CLI11_PARSE(app, argc, argv);
  return w->parsed() ? watch(sockets, interval_ms) : join(sockets, address);
}
