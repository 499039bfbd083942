// Endpoints from node states, and the DNS answers over them (agent/discovery). Queries are
// built and answers read back with libldns, the same library as the responder, but only
// through its packet API: the checks are on what a resolver would see.
#include <doctest/doctest.h>

#include <memory>
#include <set>

#include "agent/discovery/dns_answer.h"
#include "agent/discovery/endpoints.h"

#include <ldns/ldns.h>  // last: its C headers redefine what <optional> needs

using namespace meshos;
using namespace meshos::discovery;

namespace {

state::NodeReport reportWith(const std::string& daemon, uint32_t ready, uint32_t running) {
  state::NodeReport r;
  r.daemons[daemon] = state::DaemonReport{running, ready, 7, ready > 0 ? 1'700'000'000'000 : 0};
  return r;
}

struct Cluster {
  std::vector<state::NodeReport> reports;
  std::vector<MemberEntry> members;
  spec::DaemonSpec web;
  std::map<std::string, const spec::DaemonSpec*> daemons;

  explicit Cluster(size_t n, state::MemberState dead_state = state::MemberState::kDead) {
    web.name = "web";
    web.command = {"/bin/web"};
    web.ports = {spec::Port{"http", 8080, spec::PortProtocol::kTcp}};
    daemons["web"] = &web;
    reports.reserve(n);
    for (size_t i = 1; i <= n; ++i) {
      reports.push_back(reportWith("web", i == 4 ? 0 : 1, 1));  // n4 runs web, not ready
      members.push_back({"id" + std::to_string(i), "n" + std::to_string(i), "127.0.1." + std::to_string(i) + ":7946",
                         i == 5 ? dead_state : state::MemberState::kAlive, &reports.back()});
    }
  }
  EndpointView view() const { return buildEndpoints(members, daemons); }
};

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

Bytes query(const std::string& name, ldns_rr_type type, uint16_t id = 1, uint16_t edns = 0) {
  Bytes out = dnsQuery(name, static_cast<uint16_t>(type), id, edns);
  REQUIRE(!out.empty());
  return out;
}

Pkt parse(const DnsResult& r) {
  ldns_pkt* p = nullptr;
  REQUIRE(ldns_wire2pkt(&p, r.wire.data(), r.wire.size()) == LDNS_STATUS_OK);
  return Pkt(p);
}

std::string rdf(const ldns_rdf* r) {
  char* s = ldns_rdf2str(r);
  std::string out(s);
  std::free(s);
  return out;
}

// Each answer's last field as text ("127.0.1.1", or an SRV's target).
std::multiset<std::string> answers(const ldns_pkt* p, ldns_pkt_section section = LDNS_SECTION_ANSWER) {
  std::multiset<std::string> out;
  ldns_rr_list* list = ldns_pkt_get_section_clone(p, section);
  for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(list, i);
    out.insert(rdf(ldns_rr_rdf(rr, ldns_rr_rd_count(rr) - 1)));
  }
  ldns_rr_list_deep_free(list);
  return out;
}

}  // namespace

TEST_CASE("endpoints: ready instances of commit daemons on live members, with the daemon's ports") {
  Cluster c(5);
  auto v = c.view();
  REQUIRE(v.daemons.count("web") == 1);
  const auto& ready = v.daemons["web"].ready;
  REQUIRE(ready.size() == 3);  // n4 not ready, n5 dead
  CHECK(ready[0].node == "n1");
  CHECK(ready[0].host == "127.0.1.1");
  CHECK(ready[0].ready_since_ms == 1'700'000'000'000);
  CHECK(v.nodes.size() == 4);
  auto j = endpointsToJson(v, "web");
  CHECK(j["endpoints"].size() == 3);
  CHECK(j["endpoints"][0]["ports"][0]["port"] == 8080);
  CHECK(endpointsToJson(v, "other")["endpoints"].empty());
  // A suspect member still serves (suspicion is often wrong); a member that left does not.
  CHECK(Cluster(5, state::MemberState::kSuspect).view().daemons["web"].ready.size() == 4);
  CHECK(Cluster(5, state::MemberState::kLeft).view().daemons["web"].ready.size() == 3);
  // A daemon a node reports but the commit log does not hold is no endpoint.
  c.reports[0].daemons["gone"] = state::DaemonReport{1, 1, 1, 1};
  CHECK(c.view().daemons.count("gone") == 0);
}

TEST_CASE("endpoints: hostOf") {
  CHECK(hostOf("127.0.1.2:7946") == "127.0.1.2");
  CHECK(hostOf("[::1]:7946") == "::1");
  CHECK(hostOf("10.0.0.1") == "10.0.0.1");
  CHECK(hostOf("fe80::1") == "fe80::1");
}

TEST_CASE("dns: A, SRV and node names; NXDOMAIN, NODATA and REFUSED") {
  Cluster c(5);
  DnsResponder dns(DnsOptions{"e2e", 5});
  dns.setView(c.view());

  auto a = dns.answer(query("web.service.e2e.", LDNS_RR_TYPE_A));
  CHECK(a.rcode == LDNS_RCODE_NOERROR);
  auto p = parse(a);
  CHECK(ldns_pkt_qr(p.get()));
  CHECK(ldns_pkt_aa(p.get()));
  CHECK(ldns_pkt_id(p.get()) == 1);
  CHECK(answers(p.get()) == std::multiset<std::string>{"127.0.1.1", "127.0.1.2", "127.0.1.3"});
  CHECK(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0)) == 5);
  // Case-insensitive, the question's case echoed.
  auto upper = parse(dns.answer(query("WEB.Service.E2E.", LDNS_RR_TYPE_A)));
  CHECK(answers(upper.get()).size() == 3);
  CHECK(rdf(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(upper.get()), 0))) == "WEB.Service.E2E.");

  auto srv = parse(dns.answer(query("_http._tcp.web.service.e2e.", LDNS_RR_TYPE_SRV)));
  CHECK(answers(srv.get()) == std::multiset<std::string>{"n1.node.e2e.", "n2.node.e2e.", "n3.node.e2e."});
  const ldns_rr* first = ldns_rr_list_rr(ldns_pkt_answer(srv.get()), 0);
  CHECK(ldns_rdf2native_int16(ldns_rr_rdf(first, 2)) == 8080);
  CHECK(answers(srv.get(), LDNS_SECTION_ADDITIONAL) == std::multiset<std::string>{"127.0.1.1", "127.0.1.2", "127.0.1.3"});

  auto node = parse(dns.answer(query("n4.node.e2e.", LDNS_RR_TYPE_A)));
  CHECK(answers(node.get()) == std::multiset<std::string>{"127.0.1.4"});

  auto nx = dns.answer(query("nope.service.e2e.", LDNS_RR_TYPE_A));
  CHECK(nx.rcode == LDNS_RCODE_NXDOMAIN);
  CHECK(ldns_pkt_nscount(parse(nx).get()) == 1);  // the SOA, for negative caching
  CHECK(dns.answer(query("_ftp._tcp.web.service.e2e.", LDNS_RR_TYPE_SRV)).rcode == LDNS_RCODE_NXDOMAIN);
  CHECK(dns.answer(query("_http._udp.web.service.e2e.", LDNS_RR_TYPE_SRV)).rcode == LDNS_RCODE_NXDOMAIN);
  CHECK(dns.answer(query("n5.node.e2e.", LDNS_RR_TYPE_A)).rcode == LDNS_RCODE_NXDOMAIN);  // dead
  CHECK(dns.answer(query("x.y.e2e.", LDNS_RR_TYPE_A)).rcode == LDNS_RCODE_NXDOMAIN);
  auto nodata = dns.answer(query("web.service.e2e.", LDNS_RR_TYPE_AAAA));
  CHECK(nodata.rcode == LDNS_RCODE_NOERROR);
  CHECK(nodata.answers == 0);
  CHECK(dns.answer(query("e2e.", LDNS_RR_TYPE_SOA)).answers == 1);
  auto refused = dns.answer(query("example.com.", LDNS_RR_TYPE_A));
  CHECK(refused.rcode == LDNS_RCODE_REFUSED);
  CHECK(dns.answer(query("web.service.e2e2.", LDNS_RR_TYPE_A)).rcode == LDNS_RCODE_REFUSED);
}

TEST_CASE("dns: the order rotates with the query id") {
  Cluster c(3);
  DnsResponder dns(DnsOptions{"e2e", 5});
  dns.setView(c.view());
  std::set<std::string> firsts;
  for (uint16_t id = 0; id < 3; ++id) {
    auto p = parse(dns.answer(query("web.service.e2e.", LDNS_RR_TYPE_A, id)));
    firsts.insert(rdf(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0), 0)));
  }
  CHECK(firsts.size() == 3);
}

TEST_CASE("dns: bad packets get FORMERR or NOTIMP or nothing, never a crash") {
  DnsResponder dns(DnsOptions{"e2e", 5});
  dns.setView(Cluster(3).view());
  CHECK(dns.answer(Bytes{1, 2, 3}).wire.empty());  // no header
  Bytes q = query("web.service.e2e.", LDNS_RR_TYPE_A, 0x1234);
  Bytes response = q;
  response[2] |= 0x80;
  CHECK(dns.answer(response).wire.empty());  // a response is never answered (no loops)
  Bytes cut(q.begin(), q.begin() + 15);
  auto formerr = dns.answer(cut);
  CHECK(formerr.rcode == LDNS_RCODE_FORMERR);
  REQUIRE(formerr.wire.size() == 12);
  CHECK(formerr.wire[0] == 0x12);
  CHECK(formerr.wire[1] == 0x34);
  Bytes two = q;
  two[5] = 2;  // qdcount 2
  CHECK(dns.answer(two).rcode == LDNS_RCODE_FORMERR);
  Bytes notify = q;
  notify[2] = static_cast<uint8_t>((notify[2] & 0x87) | (4 << 3));
  CHECK(dns.answer(notify).rcode == LDNS_RCODE_NOTIMPL);
  CHECK(dns.answer(Bytes(2000, 0)).rcode == LDNS_RCODE_FORMERR);
}

TEST_CASE("dns: an answer fits the client's UDP size; records are left out, not truncated") {
  Cluster c(200);
  DnsResponder dns(DnsOptions{"e2e", 5});
  dns.setView(c.view());
  auto plain = dns.answer(query("_http._tcp.web.service.e2e.", LDNS_RR_TYPE_SRV));
  CHECK(plain.wire.size() <= 512);
  CHECK(plain.answers > 0);
  CHECK(plain.left_out > 0);
  CHECK(!ldns_pkt_tc(parse(plain).get()));
  auto big = dns.answer(query("web.service.e2e.", LDNS_RR_TYPE_A, 1, 4096));
  CHECK(big.wire.size() <= DnsResponder::kMaxUdpBytes);
  CHECK(big.answers == DnsResponder::kMaxAnswers);
  CHECK(big.answers > plain.answers);
}

TEST_CASE("dns: a cached answer is the built one with the query's id; a new view empties the cache") {
  Cluster c(5);
  DnsResponder dns(DnsOptions{"e2e", 5});
  dns.setView(c.view());
  auto first = dns.answer(query("web.service.e2e.", LDNS_RR_TYPE_A, 0x0101));
  auto again = dns.answer(query("web.service.e2e.", LDNS_RR_TYPE_A, 0x0201));  // same rotation, other id
  REQUIRE(again.wire.size() == first.wire.size());
  CHECK(again.wire[0] == 0x02);
  CHECK(std::equal(first.wire.begin() + 2, first.wire.end(), again.wire.begin() + 2));
  CHECK(again.answers == 3);
  Bytes response = query("web.service.e2e.", LDNS_RR_TYPE_A, 7);
  response[2] |= 0x80;
  CHECK(dns.answer(response).wire.empty());
  CHECK(dns.answer(response).wire.empty());  // cached silence stays silence
  c.reports[0].daemons["web"].ready = 0;     // n1 no longer ready
  dns.setView(c.view());
  auto p = parse(dns.answer(query("web.service.e2e.", LDNS_RR_TYPE_A, 0x0101)));
  CHECK(answers(p.get()) == std::multiset<std::string>{"127.0.1.2", "127.0.1.3"});
}
