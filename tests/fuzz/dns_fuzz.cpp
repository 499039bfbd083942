// DNS target: a datagram from anyone who reaches [dns] bind, through the discovery
// responder (libldns parses it) over a small fixed view. Whatever the bytes: no crash, and
// any reply is a response to that query (its id, QR set) that fits a UDP answer and parses.
#include <memory>

#include "agent/discovery/dns_answer.h"
#include "tests/fuzz/fuzz_target.h"

#include <ldns/ldns.h>  // last: its C headers redefine what <optional> needs

namespace meshos::fuzz {

namespace {

const discovery::DnsResponder& responder() {
  static const auto* dns = [] {
    static spec::DaemonSpec web;
    web.name = "web";
    web.command = {"/bin/web"};
    web.ports = {spec::Port{"http", 8080, spec::PortProtocol::kTcp}};
    static std::vector<state::NodeReport> reports(3);
    std::vector<discovery::MemberEntry> members;
    for (size_t i = 0; i < reports.size(); ++i) {
      reports[i].daemons["web"] = state::DaemonReport{1, 1, 1, 1};
      members.push_back({"id" + std::to_string(i), "n" + std::to_string(i), "127.0.1." + std::to_string(i + 1) + ":7946",
                         state::MemberState::kAlive, &reports[i]});
    }
    members.push_back({"v6", "v6", "[fd00::1]:7946", state::MemberState::kAlive, &reports[0]});
    auto* d = new discovery::DnsResponder(discovery::DnsOptions{"fuzz", 5});
    d->setView(discovery::buildEndpoints(members, {{"web", &web}}));
    return d;
  }();
  return *dns;
}

Bytes query(const char* name, ldns_rr_type type, uint16_t edns) {
  return discovery::dnsQuery(name, static_cast<uint16_t>(type), 1, edns);
}

}  // namespace

int fuzzDnsQuery(const uint8_t* data, size_t size) {
  auto r = responder().answer(ByteView(data, size));
  if (r.wire.empty()) return 0;
  check(r.wire.size() >= 12 && r.wire.size() <= discovery::DnsResponder::kMaxUdpBytes);
  check(r.wire[0] == data[0] && r.wire[1] == data[1]);
  check((r.wire[2] & 0x80) != 0);
  if (r.wire.size() > 12) {
    ldns_pkt* p = nullptr;
    check(ldns_wire2pkt(&p, r.wire.data(), r.wire.size()) == LDNS_STATUS_OK);
    ldns_pkt_free(p);
  }
  return 0;
}

std::vector<Bytes> dnsQuerySeeds() {
  return {
      query("web.service.fuzz.", LDNS_RR_TYPE_A, 0),
      query("_http._tcp.web.service.fuzz.", LDNS_RR_TYPE_SRV, 1232),
      query("v6.node.fuzz.", LDNS_RR_TYPE_AAAA, 0),
      query("WEB.service.FUZZ.", LDNS_RR_TYPE_ANY, 4096),
      query("nope.service.fuzz.", LDNS_RR_TYPE_A, 0),
      query("fuzz.", LDNS_RR_TYPE_SOA, 0),
      query("example.com.", LDNS_RR_TYPE_A, 0),
      Bytes{0x12, 0x34, 0x01, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x0c},  // 2 questions, a loop
  };
}

}  // namespace meshos::fuzz
