// DnsResponder: answers DNS queries for discovery from an EndpointView, sans-IO (bytes in,
// bytes out; the UDP socket is agent/net/dns_server.cpp). Packets are parsed and built by
// Debian's libldns. The zone is `<cluster>.`:
//
//   <daemon>.service.<cluster>.                 A / AAAA: the nodes of its ready instances
//   _<port>._<tcp|udp>.<daemon>.service.<cluster>.  SRV: port and node of each, with the
//                                               node's address in the additional section
//   <node>.node.<cluster>.                      A / AAAA: a member alive or suspect
//   <cluster>.                                  SOA
//
// A name under the zone that names nothing is NXDOMAIN, a known name without records of
// the asked type NOERROR with no answer (both with the SOA, so resolvers cache the
// absence for ttl_s); any other zone is REFUSED. Names match case-insensitively. The work
// per packet is bounded: one question, at most kMaxAnswers records, and the answer fits
// the client's UDP size (512 bytes, or its EDNS size up to 1232), records left out
// rather than truncated (the order rotates with the query id, so every instance gets its
// share). Answers are cached by the query's bytes (all but its id) until the view changes:
// a resolver asking the same question again costs a lookup and a copy, not a parse and a
// build. Loop thread or any one thread; not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/core/bytes.h"
#include "agent/discovery/endpoints.h"

namespace meshos::discovery {

struct DnsOptions {
  std::string cluster = "meshos";  // the zone: <cluster>.
  uint32_t ttl_s = 5;
  bool cache = true;  // off: every answer is parsed and built (benchmarks, tests)
};

struct DnsResult {
  Bytes wire;          // empty: no reply (not a query, or too short to answer)
  uint8_t rcode = 0;   // LDNS_RCODE_*: 0 NOERROR, 1 FORMERR, 3 NXDOMAIN, 4 NOTIMP, 5 REFUSED
  uint16_t answers = 0;
  uint16_t left_out = 0;  // records that did not fit the client's UDP size
};

std::string_view rcodeName(uint8_t rcode);  // "noerror", "formerr", "nxdomain", ...

// A query packet as a resolver sends it (RD set; an OPT record when edns_size > 0), for
// tests, benchmarks and fuzz seeds. rr_type: LDNS_RR_TYPE_* (1 A, 28 AAAA, 33 SRV, ...).
Bytes dnsQuery(const std::string& name, uint16_t rr_type, uint16_t id = 1, uint16_t edns_size = 0);

class DnsResponder {
 public:
  static constexpr size_t kMaxQueryBytes = 1232;  // larger is FORMERR
  static constexpr size_t kMaxAnswers = 64;
  static constexpr uint16_t kMaxUdpBytes = 1232;  // the DNS flag day's safe EDNS size
  static constexpr size_t kCacheEntries = 4096;    // then the cache starts again
  static constexpr uint16_t kRotations = 64;       // answer orders: the query id mod this

  explicit DnsResponder(DnsOptions options);
  void setView(const EndpointView& view);
  DnsResult answer(ByteView query) const;

 private:
  DnsResult build(ByteView query) const;

  struct Address {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};
  };
  struct Target {  // one ready instance
    std::string node;  // lower case
    std::vector<Address> addresses;
  };
  struct Service {
    std::vector<spec::Port> ports;
    std::vector<Target> targets;
  };

  DnsOptions options_;
  std::vector<std::string> zone_;                   // the cluster's labels, lower case
  std::map<std::string, Service> services_;         // by lower-case daemon name
  std::map<std::string, std::vector<Address>> nodes_;  // by lower-case node name
  // query bytes but the id, plus the rotation -> the answer (its id patched per query)
  mutable std::unordered_map<std::string, DnsResult> cache_;

  friend struct DnsBuild;
};

}  // namespace meshos::discovery
