// sim::Network: an in-memory datagram + stream network over a virtual clock, with per-link
// latency, jitter, loss, duplication, reordering and (asymmetric) partitions, every fault
// drawn from one Rng so a run is repeatable from its seed.
//
// Endpoints register at an address ("host:port"); anything that speaks datagrams and
// request/reply streams can sit there (a gossip node today, commit spreading or placement
// tomorrow). Deliveries are ManualTimers callbacks, so the harness decides when time moves.
// Single-threaded: the simulation loop owns everything.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include "agent/core/bytes.h"
#include "agent/core/clock.h"
#include "agent/core/rng.h"
#include "agent/core/status.h"
#include "agent/core/timers.h"
#include "agent/sim/trace.h"

namespace meshos::sim {

struct LinkProfile {
  int64_t latency_ms = 1;      // one-way base latency
  int64_t jitter_ms = 1;       // + uniform [0, jitter]
  double loss = 0.0;           // probability a datagram is lost
  double duplicate = 0.0;      // probability a datagram is delivered twice
  double reorder = 0.0;        // probability a datagram is held back by up to reorder_delay_ms
  int64_t reorder_delay_ms = 20;
  // Sub-millisecond parts, added to latency_ms / jitter_ms (+ uniform [0, jitter_us]). They
  // take effect only on a Network given the clock (setClock); without it they are rounded
  // up to whole milliseconds.
  int64_t latency_us = 0;
  int64_t jitter_us = 0;
};

class Endpoint {
 public:
  virtual ~Endpoint() = default;
  virtual void onDatagram(const std::string& from, Bytes bytes) = 0;
  // A request on a new stream; the reply (or error) goes back to the caller.
  virtual Result<Bytes> onStream(const std::string& from, Bytes request) = 0;
};

struct NetworkCounters {
  uint64_t datagrams_sent = 0, datagrams_delivered = 0, datagrams_lost = 0, datagrams_blocked = 0,
           datagrams_duplicated = 0, datagrams_unroutable = 0, bytes_sent = 0;
  uint64_t streams_opened = 0, streams_failed = 0, stream_bytes = 0;
};

class Network {
 public:
  Network(ManualTimers& timers, Rng rng) : timers_(timers), rng_(rng) {}

  void attach(const std::string& address, Endpoint* endpoint) { endpoints_[address] = endpoint; }
  void detach(const std::string& address) { endpoints_.erase(address); }

  void setDefaultLink(const LinkProfile& p) { default_link_ = p; }
  // The clock under `timers`. With it, a delivery whose delay has a sub-millisecond part
  // fires at the whole millisecond below and first moves the clock on to its exact time
  // (never back), so endpoints see microsecond arrival times. Deliveries due within the
  // same millisecond keep their scheduling order.
  void setClock(ManualClock* clock) { clock_ = clock; }
  // Every delivery (datagram, stream request, stream reply) is mixed into `trace`.
  void setTrace(TraceHash* trace) { trace_ = trace; }
  // A profile for the directed link from -> to (host parts of the addresses).
  void setLink(const std::string& from_host, const std::string& to_host, const LinkProfile& p);
  // Blocks from -> to (one way; call twice for a symmetric cut).
  void block(const std::string& from_host, const std::string& to_host) { blocked_.insert({from_host, to_host}); }
  void unblock(const std::string& from_host, const std::string& to_host) { blocked_.erase({from_host, to_host}); }
  void healAll() { blocked_.clear(); }
  // Extra receive-side delay at a host: a CPU-starved node handles its input late.
  void setProcessingDelay(const std::string& host, int64_t max_delay_ms);

  void sendDatagram(const std::string& from, const std::string& to, Bytes bytes);
  // Opens a stream to `to`, sends request, and calls done with the reply or an error
  // (after timeout_ms when the peer is unreachable).
  void openStream(const std::string& from, const std::string& to, Bytes request, int64_t timeout_ms,
                  std::function<void(Result<Bytes>)> done);

  const NetworkCounters& counters() const { return counters_; }
  static std::string hostOf(const std::string& address);

 private:
  const LinkProfile& link(const std::string& from_host, const std::string& to_host) const;
  bool isBlocked(const std::string& from_host, const std::string& to_host) const {
    return !blocked_.empty() && blocked_.count({from_host, to_host}) != 0;
  }
  int64_t delayNsFor(const LinkProfile& p, const std::string& to_host);
  void traceDelivery(char kind, const std::string& from, const std::string& to, size_t bytes);
  // Runs fn delay_ns from now (see setClock).
  void deliverAfter(int64_t delay_ns, std::function<void()> fn);

  ManualTimers& timers_;
  ManualClock* clock_ = nullptr;
  TraceHash* trace_ = nullptr;
  Rng rng_;
  LinkProfile default_link_;
  std::map<std::pair<std::string, std::string>, LinkProfile> links_;
  std::set<std::pair<std::string, std::string>> blocked_;
  std::unordered_map<std::string, int64_t> processing_delay_ms_;
  std::unordered_map<std::string, Endpoint*> endpoints_;
  NetworkCounters counters_;
};

}  // namespace meshos::sim
