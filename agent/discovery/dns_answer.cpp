#include "agent/discovery/dns_answer.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include <ldns/ldns.h>  // after the C++ headers: its C headers redefine what some need

namespace meshos::discovery {

namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string> splitLabels(std::string_view name) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    if (dot > start) out.push_back(lower(name.substr(start, dot - start)));
    start = dot + 1;
  }
  return out;
}

// The labels of a wire-format name, lower case (a label may hold any byte; it is matched,
// never printed).
std::vector<std::string> wireLabels(const ldns_rdf* dname) {
  std::vector<std::string> out;
  const uint8_t* p = ldns_rdf_data(dname);
  size_t size = ldns_rdf_size(dname), i = 0;
  while (i < size && p[i] != 0) {
    size_t len = p[i];
    if (i + 1 + len > size) break;
    out.push_back(lower(std::string_view(reinterpret_cast<const char*>(p + i + 1), len)));
    i += 1 + len;
  }
  return out;
}

std::string join(const std::vector<std::string>& labels, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) out += (i > from ? "." : "") + labels[i];
  return out;
}

// FORMERR (or NOTIMP) from the header alone, when ldns cannot parse the rest.
Bytes headerOnly(ByteView query, uint8_t rcode) {
  Bytes out(12, 0);
  out[0] = query[0];
  out[1] = query[1];
  out[2] = static_cast<uint8_t>(0x80 | (query[2] & 0x79));  // QR, the opcode and RD kept
  out[3] = rcode;
  return out;
}

ldns_rr* record(const ldns_rdf* owner, ldns_rr_type type, uint32_t ttl) {
  ldns_rr* rr = ldns_rr_new();
  ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
  ldns_rr_set_type(rr, type);
  ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr, ttl);
  return rr;
}

}  // namespace

Bytes dnsQuery(const std::string& name, uint16_t rr_type, uint16_t id, uint16_t edns_size) {
  ldns_pkt* q = ldns_pkt_query_new(ldns_dname_new_frm_str(name.c_str()), static_cast<ldns_rr_type>(rr_type),
                                   LDNS_RR_CLASS_IN, LDNS_RD);
  if (q == nullptr) return {};
  ldns_pkt_set_id(q, id);
  if (edns_size != 0) ldns_pkt_set_edns_udp_size(q, edns_size);
  uint8_t* wire = nullptr;
  size_t size = 0;
  Bytes out;
  if (ldns_pkt2wire(&wire, q, &size) == LDNS_STATUS_OK) out.assign(wire, wire + size);
  std::free(wire);
  ldns_pkt_free(q);
  return out;
}

std::string_view rcodeName(uint8_t rcode) {
  switch (rcode) {
    case LDNS_RCODE_NOERROR: return "noerror";
    case LDNS_RCODE_FORMERR: return "formerr";
    case LDNS_RCODE_SERVFAIL: return "servfail";
    case LDNS_RCODE_NXDOMAIN: return "nxdomain";
    case LDNS_RCODE_NOTIMPL: return "notimp";
    case LDNS_RCODE_REFUSED: return "refused";
    default: return "other";
  }
}

DnsResponder::DnsResponder(DnsOptions options) : options_(std::move(options)), zone_(splitLabels(options_.cluster)) {}

void DnsResponder::setView(const EndpointView& view) {
  cache_.clear();
  auto parse = [](const std::string& host) -> std::optional<Address> {
    Address a;
    if (inet_pton(AF_INET, host.c_str(), a.bytes.data()) == 1) return a;
    a.v6 = true;
    if (inet_pton(AF_INET6, host.c_str(), a.bytes.data()) == 1) return a;
    return std::nullopt;  // a host name: no address record for it
  };
  nodes_.clear();
  for (const auto& n : view.nodes) {
    auto& list = nodes_[lower(n.name)];
    if (auto a = parse(n.host)) list.push_back(*a);
  }
  services_.clear();
  for (const auto& [name, s] : view.daemons) {
    Service& out = services_[lower(name)];
    out.ports = s.ports;
    for (const auto& e : s.ready) {
      Target t{lower(e.node), {}};
      if (auto a = parse(e.host)) t.addresses.push_back(*a);
      out.targets.push_back(std::move(t));
    }
  }
}

// One answer under construction.
struct DnsBuild {
  const DnsResponder& r;
  ldns_pkt* query;
  const ldns_rdf* owner;  // the question's name, as asked (its case kept)
  ldns_rr_type type;
  uint16_t rotate;        // the query id: where the rotation starts
  std::vector<ldns_rr*> answers, additional;
  bool exists = false;    // the name exists (else NXDOMAIN)

  void addresses(const ldns_rdf* name, const std::vector<DnsResponder::Address>& list, bool to_additional) {
    for (const auto& a : list) {
      const ldns_rr_type t = a.v6 ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A;
      if (!to_additional && type != t && type != LDNS_RR_TYPE_ANY) continue;
      ldns_rr* rr = record(name, t, r.options_.ttl_s);
      ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(a.v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, a.v6 ? 16 : 4, a.bytes.data()));
      (to_additional ? additional : answers).push_back(rr);
    }
  }

  std::string zoneText() const { return join(r.zone_, 0, r.zone_.size()) + "."; }

  void service(const DnsResponder::Service& s) {
    exists = true;
    const size_t n = s.targets.size();
    for (size_t i = 0; i < n && answers.size() < DnsResponder::kMaxAnswers; ++i) {
      addresses(owner, s.targets[(i + rotate) % n].addresses, false);
    }
  }

  void srv(const DnsResponder::Service& s, const spec::Port& port) {
    exists = true;
    if (type != LDNS_RR_TYPE_SRV && type != LDNS_RR_TYPE_ANY) return;
    const size_t n = s.targets.size();
    for (size_t i = 0; i < n && answers.size() < DnsResponder::kMaxAnswers; ++i) {
      const auto& t = s.targets[(i + rotate) % n];
      ldns_rdf* target = ldns_dname_new_frm_str((t.node + ".node." + zoneText()).c_str());
      if (target == nullptr) continue;  // a node name that is no DNS name
      ldns_rr* rr = record(owner, LDNS_RR_TYPE_SRV, r.options_.ttl_s);
      ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 1));  // priority
      ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 1));  // weight
      ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, static_cast<uint16_t>(port.port)));
      ldns_rr_push_rdf(rr, target);
      answers.push_back(rr);
      addresses(target, t.addresses, true);
    }
  }

  ldns_rr* soa() const {
    ldns_rdf* apex = ldns_dname_new_frm_str(zoneText().c_str());
    ldns_rr* rr = record(apex, LDNS_RR_TYPE_SOA, r.options_.ttl_s);
    ldns_rdf_deep_free(apex);
    ldns_rr_push_rdf(rr, ldns_dname_new_frm_str(("ns." + zoneText()).c_str()));
    ldns_rr_push_rdf(rr, ldns_dname_new_frm_str(("hostmaster." + zoneText()).c_str()));
    for (uint32_t v : {1u, 3600u, 600u, 86400u, r.options_.ttl_s}) {  // serial .. minimum
      ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, v));
    }
    return rr;
  }

  // Fills answers/additional for the name; returns the rcode.
  uint8_t resolve() {
    const auto labels = wireLabels(owner);
    const auto& zone = r.zone_;
    if (labels.size() < zone.size() || !std::equal(zone.rbegin(), zone.rend(), labels.rbegin())) {
      return LDNS_RCODE_REFUSED;
    }
    const size_t rel = labels.size() - zone.size();
    if (rel == 0) {
      exists = true;
      if (type == LDNS_RR_TYPE_SOA || type == LDNS_RR_TYPE_ANY) answers.push_back(soa());
      return LDNS_RCODE_NOERROR;
    }
    const std::string& kind = labels[rel - 1];
    if (kind == "node" && rel >= 2) {
      auto it = r.nodes_.find(join(labels, 0, rel - 1));
      if (it != r.nodes_.end()) {
        exists = true;
        addresses(owner, it->second, false);
      }
    } else if (kind == "service" && rel >= 4 && labels[0].size() > 1 && labels[0][0] == '_' && labels[1].size() > 1 &&
               labels[1][0] == '_') {
      auto it = r.services_.find(join(labels, 2, rel - 1));
      if (it != r.services_.end()) {
        for (const auto& p : it->second.ports) {
          if ("_" + p.name == labels[0] && "_" + std::string(spec::protocolName(p.protocol)) == labels[1]) {
            srv(it->second, p);
          }
        }
      }
    } else if (kind == "service" && rel >= 2) {
      auto it = r.services_.find(join(labels, 0, rel - 1));
      if (it != r.services_.end()) service(it->second);
    }
    return exists ? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN;
  }

  // The reply with the first `keep` answers (and their additional records).
  PktPtr reply(uint8_t rcode, size_t keep, uint16_t udp_size) const {
    PktPtr out(ldns_pkt_new());
    ldns_pkt_set_id(out.get(), ldns_pkt_id(query));
    ldns_pkt_set_qr(out.get(), true);
    ldns_pkt_set_aa(out.get(), rcode != LDNS_RCODE_REFUSED);
    ldns_pkt_set_rd(out.get(), ldns_pkt_rd(query));
    ldns_pkt_set_opcode(out.get(), LDNS_PACKET_QUERY);
    ldns_pkt_set_rcode(out.get(), rcode);
    ldns_pkt_push_rr(out.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(query), 0)));
    for (size_t i = 0; i < keep; ++i) ldns_pkt_push_rr(out.get(), LDNS_SECTION_ANSWER, ldns_rr_clone(answers[i]));
    // Additional records belong to SRV answers: keep those whose name an answer targets.
    for (ldns_rr* a : additional) {
      for (size_t i = 0; i < keep; ++i) {
        if (ldns_dname_compare(ldns_rr_rdf(answers[i], 3), ldns_rr_owner(a)) == 0) {
          ldns_pkt_push_rr(out.get(), LDNS_SECTION_ADDITIONAL, ldns_rr_clone(a));
          break;
        }
      }
    }
    if (answers.empty() && rcode != LDNS_RCODE_REFUSED) ldns_pkt_push_rr(out.get(), LDNS_SECTION_AUTHORITY, soa());
    if (ldns_pkt_edns(query)) ldns_pkt_set_edns_udp_size(out.get(), udp_size);
    return out;
  }

  ~DnsBuild() {
    for (ldns_rr* rr : answers) ldns_rr_free(rr);
    for (ldns_rr* rr : additional) ldns_rr_free(rr);
  }
};

DnsResult DnsResponder::answer(ByteView query) const {
  if (!options_.cache || query.size() < 12 || query.size() > kMaxQueryBytes) return build(query);
  std::string key(reinterpret_cast<const char*>(query.data()) + 2, query.size() - 2);
  key.push_back(static_cast<char>(query[1] % kRotations));
  if (auto it = cache_.find(key); it != cache_.end()) {
    DnsResult hit = it->second;
    if (hit.wire.empty()) return hit;
    hit.wire[0] = query[0];
    hit.wire[1] = query[1];
    return hit;
  }
  DnsResult result = build(query);
  if (cache_.size() >= kCacheEntries) cache_.clear();
  cache_.emplace(std::move(key), result);
  return result;
}

DnsResult DnsResponder::build(ByteView query) const {
  DnsResult result;
  if (query.size() < 12 || (query[2] & 0x80) != 0) return result;  // no header, or a response: silence
  if (query.size() > kMaxQueryBytes) {
    result.rcode = LDNS_RCODE_FORMERR;
    result.wire = headerOnly(query, result.rcode);
    return result;
  }
  if (((query[2] >> 3) & 0x0f) != LDNS_PACKET_QUERY) {
    result.rcode = LDNS_RCODE_NOTIMPL;
    result.wire = headerOnly(query, result.rcode);
    return result;
  }
  ldns_pkt* raw = nullptr;
  if (ldns_wire2pkt(&raw, query.data(), query.size()) != LDNS_STATUS_OK || raw == nullptr ||
      ldns_pkt_qdcount(raw) != 1 || ldns_rr_list_rr_count(ldns_pkt_question(raw)) != 1) {
    if (raw != nullptr) ldns_pkt_free(raw);
    result.rcode = LDNS_RCODE_FORMERR;
    result.wire = headerOnly(query, result.rcode);
    return result;
  }
  PktPtr q(raw);
  const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(q.get()), 0);
  DnsBuild b{*this, q.get(), ldns_rr_owner(question), ldns_rr_get_type(question),
             static_cast<uint16_t>(ldns_pkt_id(q.get()) % kRotations), {}, {}};
  const ldns_rr_class cls = ldns_rr_get_class(question);
  result.rcode = (cls == LDNS_RR_CLASS_IN || cls == LDNS_RR_CLASS_ANY) ? b.resolve() : static_cast<uint8_t>(LDNS_RCODE_REFUSED);
  uint16_t limit = 512;
  if (ldns_pkt_edns(q.get())) limit = std::clamp<uint16_t>(ldns_pkt_edns_udp_size(q.get()), 512, kMaxUdpBytes);
  // Fewer records until the reply fits (rare: 64 A records fit 1232 bytes).
  for (size_t keep = b.answers.size();; keep = keep / 2) {
    PktPtr reply = b.reply(result.rcode, keep, limit);
    uint8_t* wire = nullptr;
    size_t size = 0;
    if (ldns_pkt2wire(&wire, reply.get(), &size) != LDNS_STATUS_OK) {
      result.rcode = LDNS_RCODE_SERVFAIL;
      result.wire = headerOnly(query, result.rcode);
      return result;
    }
    if (size <= limit || keep == 0) {
      result.wire.assign(wire, wire + size);
      result.answers = static_cast<uint16_t>(keep);
      result.left_out = static_cast<uint16_t>(b.answers.size() - keep);
      std::free(wire);
      return result;
    }
    std::free(wire);
  }
}

}  // namespace meshos::discovery
