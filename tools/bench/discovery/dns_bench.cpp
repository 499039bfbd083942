// dns_bench: answers per second of the discovery DNS responder on one core, in process
// (agent/discovery/dns_answer.cpp), cold (parse with libldns, look up, build, encode) and
// warm (the answer cache: the same question with another id), over a view
// of N nodes with a daemon ready on R of them. A mix of the queries resolvers send: A for
// the service, SRV for its port, A for a node, and a name that does not exist.
//
//   build/tools/bench/discovery/dns_bench [--nodes 5] [--ready 3] [--seconds 3]
//
// The path over UDP, with the agent's loop around it, is dns_load.py (dnsperf).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "agent/discovery/dns_answer.h"
#include "agent/discovery/endpoints.h"

#include <ldns/ldns.h>

using namespace meshos;
using namespace meshos::discovery;

namespace {

Bytes query(const std::string& name, ldns_rr_type type) { return dnsQuery(name, static_cast<uint16_t>(type)); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"DNS answers per second on one core (in process)"};
  int nodes = 5, ready = 3;
  double seconds = 3;
  app.add_option("--nodes", nodes, "members")->check(CLI::Range(1, 100000));
  app.add_option("--ready", ready, "members with a ready instance of web")->check(CLI::Range(0, 100000));
  app.add_option("--seconds", seconds, "how long to run")->check(CLI::Range(0.1, 600.0));
  CLI11_PARSE(app, argc, argv);
  ready = std::min(ready, nodes);

  spec::DaemonSpec web;
  web.name = "web";
  web.command = {"/bin/web"};
  web.ports = {spec::Port{"http", 8080, spec::PortProtocol::kTcp}};
  std::vector<state::NodeReport> reports(static_cast<size_t>(nodes));
  std::vector<MemberEntry> members;
  for (int i = 0; i < nodes; ++i) {
    if (i < ready) reports[static_cast<size_t>(i)].daemons["web"] = state::DaemonReport{1, 1, 1, 1};
    members.push_back({"id" + std::to_string(i), "n" + std::to_string(i),
                       "10." + std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." +
                           std::to_string(i % 256) + ":7946",
                       state::MemberState::kAlive, &reports[static_cast<size_t>(i)]});
  }
  const auto view = buildEndpoints(members, {{"web", &web}});
  const std::vector<std::pair<const char*, Bytes>> mix = {
      {"A web.service", query("web.service.bench.", LDNS_RR_TYPE_A)},
      {"SRV _http._tcp.web.service", query("_http._tcp.web.service.bench.", LDNS_RR_TYPE_SRV)},
      {"A n1.node", query("n1.node.bench.", LDNS_RR_TYPE_A)},
      {"A nope.service (NXDOMAIN)", query("nope.service.bench.", LDNS_RR_TYPE_A)},
  };
  std::printf("dns_bench: %d nodes, web ready on %d; one thread\n", nodes, ready);
  for (bool cache : {false, true}) {
    DnsResponder dns(DnsOptions{"bench", 5, cache});
    dns.setView(view);
    std::printf("%s\n", cache ? "warm (the answer cache: the same question again)" : "cold (every answer parsed and built)");
    uint64_t total = 0;
    double total_s = 0;
    for (const auto& [what, q] : mix) {
      uint64_t n = 0, bytes = 0;
      Bytes asked = q;
      const auto start = std::chrono::steady_clock::now();
      double elapsed = 0;
      while (elapsed < seconds / static_cast<double>(mix.size() * 2)) {
        for (int k = 0; k < 256; ++k) {
          asked[1] = static_cast<uint8_t>(k);  // ids vary, as from a real resolver
          bytes += dns.answer(asked).wire.size();
        }
        n += 256;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
      std::printf("  %-28s %10.0f answers/s  (%.2f us each, %llu bytes per answer)\n", what,
                  static_cast<double>(n) / elapsed, elapsed / static_cast<double>(n) * 1e6,
                  static_cast<unsigned long long>(bytes / n));
      total += n;
      total_s += elapsed;
    }
    std::printf("  %-28s %10.0f answers/s\n", "mix", static_cast<double>(total) / total_s);
  }
  return 0;
}
