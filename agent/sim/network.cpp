#include "agent/sim/network.h"

#include <memory>

namespace meshos::sim {

std::string Network::hostOf(const std::string& address) {
  auto pos = address.rfind(':');
  return pos == std::string::npos ? address : address.substr(0, pos);
}

void Network::traceDelivery(char kind, const std::string& from, const std::string& to, size_t bytes) {
  if (trace_ == nullptr) return;
  const int64_t now_ns = clock_ != nullptr ? clock_->monotonicNs() : 0;
  trace_->mix(static_cast<uint64_t>(now_ns) * 131 + static_cast<uint64_t>(kind));
  trace_->mix(from);
  trace_->mix(to);
  trace_->mix(static_cast<uint64_t>(bytes));
}

void Network::setLink(const std::string& from_host, const std::string& to_host, const LinkProfile& p) {
  links_[{from_host, to_host}] = p;
}

void Network::setProcessingDelay(const std::string& host, int64_t max_delay_ms) {
  if (max_delay_ms <= 0) {
    processing_delay_ms_.erase(host);
  } else {
    processing_delay_ms_[host] = max_delay_ms;
  }
}

const LinkProfile& Network::link(const std::string& from_host, const std::string& to_host) const {
  if (links_.empty()) return default_link_;
  auto it = links_.find({from_host, to_host});
  return it == links_.end() ? default_link_ : it->second;
}

int64_t Network::delayNsFor(const LinkProfile& p, const std::string& to_host) {
  int64_t d = p.latency_ms + (p.jitter_ms > 0 ? rng_.between(0, p.jitter_ms) : 0);
  if (p.reorder > 0 && rng_.chance(p.reorder)) d += rng_.between(1, p.reorder_delay_ms);
  if (!processing_delay_ms_.empty()) {
    auto it = processing_delay_ms_.find(to_host);
    if (it != processing_delay_ms_.end()) d += rng_.between(0, it->second);
  }
  // Drawn only when set, so runs without sub-ms links keep their random sequence.
  int64_t us = p.latency_us + (p.jitter_us > 0 ? rng_.between(0, p.jitter_us) : 0);
  return d * 1'000'000 + us * 1'000;
}

void Network::deliverAfter(int64_t delay_ns, std::function<void()> fn) {
  if (delay_ns % 1'000'000 == 0) {
    timers_.after(delay_ns / 1'000'000, std::move(fn));
    return;
  }
  if (clock_ == nullptr) {
    timers_.after(delay_ns / 1'000'000 + 1, std::move(fn));
    return;
  }
  const int64_t at_ns = clock_->monotonicNs() + delay_ns;
  timers_.after(delay_ns / 1'000'000, [this, at_ns, fn = std::move(fn)] {
    clock_->advanceToNs(at_ns);
    fn();
  });
}

void Network::sendDatagram(const std::string& from, const std::string& to, Bytes bytes) {
  ++counters_.datagrams_sent;
  counters_.bytes_sent += bytes.size();
  const std::string fh = hostOf(from), th = hostOf(to);
  if (isBlocked(fh, th)) {
    ++counters_.datagrams_blocked;
    return;
  }
  const LinkProfile& p = link(fh, th);
  if (p.loss > 0 && rng_.chance(p.loss)) {
    ++counters_.datagrams_lost;
    return;
  }
  int copies = (p.duplicate > 0 && rng_.chance(p.duplicate)) ? 2 : 1;
  if (copies == 2) ++counters_.datagrams_duplicated;
  auto shared = std::make_shared<Bytes>(std::move(bytes));
  for (int i = 0; i < copies; ++i) {
    deliverAfter(delayNsFor(p, th), [this, from, to, shared] {
      auto it = endpoints_.find(to);
      if (it == endpoints_.end()) {
        ++counters_.datagrams_unroutable;
        return;
      }
      ++counters_.datagrams_delivered;
      traceDelivery('d', from, to, shared->size());
      it->second->onDatagram(from, *shared);
    });
  }
}

void Network::openStream(const std::string& from, const std::string& to, Bytes request, int64_t timeout_ms,
                         std::function<void(Result<Bytes>)> done) {
  ++counters_.streams_opened;
  counters_.stream_bytes += request.size();
  const std::string fh = hostOf(from), th = hostOf(to);
  auto fail = [this, timeout_ms, done](std::string why) {
    ++counters_.streams_failed;
    timers_.after(timeout_ms, [done, why] { done(Status::unavailable(why)); });
  };
  if (isBlocked(fh, th) || isBlocked(th, fh)) return fail("partitioned");
  if (endpoints_.find(to) == endpoints_.end()) return fail("connection refused");
  // A stream is reliable (TCP retransmits); it costs a handshake plus the request trip.
  const LinkProfile& p = link(fh, th);
  int64_t there = 2 * delayNsFor(p, th) + delayNsFor(p, th);
  auto req = std::make_shared<Bytes>(std::move(request));
  deliverAfter(there, [this, from, to, fh, th, req, done, timeout_ms] {
    auto it = endpoints_.find(to);
    if (it == endpoints_.end() || isBlocked(fh, th)) {
      ++counters_.streams_failed;
      timers_.after(timeout_ms, [done] { done(Status::unavailable("connection lost")); });
      return;
    }
    traceDelivery('s', from, to, req->size());
    Result<Bytes> reply = it->second->onStream(from, *req);
    if (reply) counters_.stream_bytes += reply->size();
    const LinkProfile& back = link(th, fh);
    int64_t delay = delayNsFor(back, fh);
    auto shared = std::make_shared<Result<Bytes>>(std::move(reply));
    deliverAfter(delay, [this, th, fh, done, shared, timeout_ms] {
      if (isBlocked(th, fh)) {
        ++counters_.streams_failed;
        timers_.after(timeout_ms, [done] { done(Status::unavailable("connection lost")); });
        return;
      }
      done(std::move(*shared));
    });
  });
}

}  // namespace meshos::sim
