#include <optional>
#include <doctest/doctest.h>

#include "agent/sim/network.h"

using namespace meshos;
using namespace meshos::sim;

namespace {
struct Sink : Endpoint {
  std::vector<std::pair<std::string, Bytes>> got;
  void onDatagram(const std::string& from, Bytes b) override { got.emplace_back(from, std::move(b)); }
  Result<Bytes> onStream(const std::string&, Bytes req) override {
    req.push_back(0xff);
    return req;
  }
};
}  // namespace

TEST_CASE("sim network: latency, loss and one-way blocks") {
  ManualClock clock;
  ManualTimers timers(clock);
  Network net(timers, Rng(7));
  Sink a, b;
  net.attach("a:1", &a);
  net.attach("b:1", &b);
  LinkProfile p;
  p.latency_ms = 10;
  p.jitter_ms = 0;
  net.setDefaultLink(p);
  net.sendDatagram("a:1", "b:1", Bytes{1});
  timers.advanceMs(9);
  CHECK(b.got.empty());
  timers.advanceMs(1);
  CHECK(b.got.size() == 1);
  net.block("a", "b");
  net.sendDatagram("a:1", "b:1", Bytes{2});
  net.sendDatagram("b:1", "a:1", Bytes{3});
  timers.advanceMs(20);
  CHECK(b.got.size() == 1);
  CHECK(a.got.size() == 1);
  net.healAll();
  p.loss = 0.3;
  net.setDefaultLink(p);
  for (int i = 0; i < 1000; ++i) net.sendDatagram("a:1", "b:1", Bytes{4});
  timers.advanceMs(20);
  size_t delivered = b.got.size() - 1;
  CHECK(delivered > 600);
  CHECK(delivered < 800);
  CHECK(net.counters().datagrams_lost == 1000 - delivered);
}

TEST_CASE("sim network: streams deliver replies, fail across partitions after the timeout") {
  ManualClock clock;
  ManualTimers timers(clock);
  Network net(timers, Rng(9));
  Sink a, b;
  net.attach("a:1", &a);
  net.attach("b:1", &b);
  std::optional<Result<Bytes>> reply;
  net.openStream("a:1", "b:1", Bytes{1, 2}, 1000, [&](Result<Bytes> r) { reply = std::move(r); });
  timers.advanceMs(50);
  REQUIRE(reply.has_value());
  REQUIRE(reply->isOk());
  CHECK(**reply == Bytes{1, 2, 0xff});
  reply.reset();
  net.block("b", "a");
  net.openStream("a:1", "b:1", Bytes{1}, 1000, [&](Result<Bytes> r) { reply = std::move(r); });
  timers.advanceMs(999);
  CHECK(!reply.has_value());
  timers.advanceMs(1);
  REQUIRE(reply.has_value());
  CHECK(reply->status().code() == Code::kUnavailable);
  reply.reset();
  net.openStream("a:1", "nobody:1", Bytes{1}, 500, [&](Result<Bytes> r) { reply = std::move(r); });
  timers.advanceMs(500);
  REQUIRE(reply.has_value());
  CHECK(!reply->isOk());
}
