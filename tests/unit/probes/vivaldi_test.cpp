// Vivaldi: convergence in seeded simulations (nodes on a plane with access delays and noisy
// RTTs), the per-peer median filter, bad input refused without touching the coordinate,
// reset on a non-finite result, and the unit contract with placement::estimateRttMs.
#include "probes/vivaldi.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

using namespace meshos;
using namespace meshos::probes;

namespace {

state::Coordinate coord(std::vector<double> vec, double height = 0, double adjustment = 0, double error = 1.5) {
  state::Coordinate c;
  c.vec = std::move(vec);
  c.height = height;
  c.adjustment = adjustment;
  c.error = error;
  return c;
}

std::vector<double> zeros(size_t n = 8) { return std::vector<double>(n, 0.0); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct SimResult {
  double median_relative_error = 0;
  double max_relative_error = 0;
  uint64_t resets = 0;
};

// n nodes at random points of a side_ms x side_ms plane, each with an access delay (height)
// in [0.5, 5] ms; every round each node measures one random peer with +-noise multiplicative
// noise and updates from that peer's current coordinate.
SimResult simulate(uint64_t seed, size_t n, size_t rounds, double side_ms, double noise) {
  Rng rng(seed);
  struct Node {
    double x, y, access_ms;
    std::unique_ptr<Rng> rng;
    std::unique_ptr<VivaldiClient> client;
  };
  std::vector<Node> nodes;
  for (size_t i = 0; i < n; ++i) {
    Node node;
    node.x = rng.unit() * side_ms;
    node.y = rng.unit() * side_ms;
    node.access_ms = 0.5 + rng.unit() * 4.5;
    node.rng = std::make_unique<Rng>(rng.fork());
    node.client = std::make_unique<VivaldiClient>(VivaldiConfig{}, *node.rng);
    nodes.push_back(std::move(node));
  }
  auto truth = [&](size_t i, size_t j) {
    return std::hypot(nodes[i].x - nodes[j].x, nodes[i].y - nodes[j].y) + nodes[i].access_ms + nodes[j].access_ms;
  };
  for (size_t round = 0; round < rounds; ++round) {
    for (size_t i = 0; i < n; ++i) {
      size_t j = rng.uniform(n - 1);
      if (j >= i) ++j;
      double rtt = truth(i, j) * (1 + noise * (2 * rng.unit() - 1));
      Status s = nodes[i].client->update(std::to_string(j), nodes[j].client->coordinate(), rtt);
      REQUIRE_MESSAGE(s.isOk(), s.toString());
    }
  }
  SimResult out;
  std::vector<double> errors;
  for (size_t i = 0; i < n; ++i) {
    out.resets += nodes[i].client->stats().resets;
    for (size_t j = i + 1; j < n; ++j) {
      double est = estimateRttMs(nodes[i].client->coordinate(), nodes[j].client->coordinate());
      double err = std::abs(est - truth(i, j)) / truth(i, j);
      errors.push_back(err);
      out.max_relative_error = std::max(out.max_relative_error, err);
    }
  }
  out.median_relative_error = median(errors);
  return out;
}

}  // namespace

TEST_CASE("vivaldi: coordinates are milliseconds for placement::estimateRttMs") {
  // A 3-4-5 triangle plus heights and adjustments: 5 + 1 + 2 + 0.5 + 0.25 ms.
  auto a = coord({0, 0, 0, 0, 0, 0, 0, 0}, 1, 0.5);
  auto b = coord({3, 4, 0, 0, 0, 0, 0, 0}, 2, 0.25);
  CHECK(estimateRttMs(a, b) == doctest::Approx(8.75));
  // A negative adjustment applies only while the total stays positive.
  auto c = coord({3, 4, 0, 0, 0, 0, 0, 0}, 2, -100);
  CHECK(estimateRttMs(a, c) == doctest::Approx(8.0));
  auto p = toPlacement(b);
  CHECK(p.vec.size() == 8);
  CHECK(placement::estimateRttMs(toPlacement(a), p) == doctest::Approx(8.75));
}

TEST_CASE("vivaldi: a new client sits at the origin with the maximum error") {
  Rng rng(1);
  VivaldiClient client(VivaldiConfig{}, rng);
  auto c = client.coordinate();
  CHECK(c.vec == zeros());
  CHECK(c.height == doctest::Approx(0.01));
  CHECK(c.error == doctest::Approx(1.5));
  CHECK(c.adjustment == 0);
  CHECK(validateCoordinate(c, 8).isOk());
}

TEST_CASE("vivaldi: two nodes converge to their RTT") {
  Rng rng(7);
  VivaldiClient a(VivaldiConfig{}, rng), b(VivaldiConfig{}, rng);
  for (int i = 0; i < 200; ++i) {
    REQUIRE(a.update("b", b.coordinate(), 20.0).isOk());
    REQUIRE(b.update("a", a.coordinate(), 20.0).isOk());
  }
  CHECK(estimateRttMs(a.coordinate(), b.coordinate()) == doctest::Approx(20.0).epsilon(0.05));
  CHECK(a.coordinate().error < 0.5);
  CHECK(a.stats().updates == 200);
}

TEST_CASE("vivaldi: 10 nodes on a plane converge (seeded)") {
  for (uint64_t seed : {1ULL, 2ULL, 3ULL, 42ULL, 0xdecafULL}) {
    INFO("seed = " << seed);
    auto r = simulate(seed, 10, 300, 100.0, 0.05);
    INFO("median relative error = " << r.median_relative_error << ", max = " << r.max_relative_error);
    CHECK(r.median_relative_error < 0.20);
    CHECK(r.resets == 0);
  }
}

TEST_CASE("vivaldi: 50 nodes with 20% noise still converge (seeded)") {
  for (uint64_t seed : {11ULL, 12ULL}) {
    INFO("seed = " << seed);
    auto r = simulate(seed, 50, 400, 200.0, 0.20);
    INFO("median relative error = " << r.median_relative_error << ", max = " << r.max_relative_error);
    CHECK(r.median_relative_error < 0.20);
  }
}

TEST_CASE("vivaldi: a continent-wide cluster (1 s across) converges too (seeded)") {
  for (uint64_t seed : {21ULL, 22ULL}) {
    INFO("seed = " << seed);
    auto r = simulate(seed, 10, 300, 1000.0, 0.05);
    INFO("median relative error = " << r.median_relative_error << ", max = " << r.max_relative_error);
    CHECK(r.median_relative_error < 0.20);
  }
}

TEST_CASE("vivaldi: the per-peer median filter") {
  Rng rng(3);
  VivaldiClient client(VivaldiConfig{}, rng);
  auto peer = coord(zeros());
  CHECK(client.filteredRttMs("p") == -1);
  REQUIRE(client.update("p", peer, 10).isOk());
  CHECK(client.filteredRttMs("p") == 10);
  REQUIRE(client.update("p", peer, 100).isOk());  // [10, 100] -> upper middle
  CHECK(client.filteredRttMs("p") == 100);
  REQUIRE(client.update("p", peer, 12).isOk());  // [10, 100, 12]: the spike is filtered
  CHECK(client.filteredRttMs("p") == 12);
  REQUIRE(client.update("p", peer, 11).isOk());  // [100, 12, 11]
  CHECK(client.filteredRttMs("p") == 12);
  REQUIRE(client.update("p", peer, 13).isOk());  // [12, 11, 13]: the spike has left the window
  CHECK(client.filteredRttMs("p") == 12);
  // Peers are filtered separately.
  REQUIRE(client.update("q", peer, 50).isOk());
  CHECK(client.filteredRttMs("q") == 50);
  CHECK(client.filteredRttMs("p") == 12);
  CHECK(client.peerCount() == 2);
  client.forget("p");
  CHECK(client.peerCount() == 1);
  CHECK(client.filteredRttMs("p") == -1);
}

TEST_CASE("vivaldi: a single spike moves the coordinate less with the filter than without") {
  auto run = [](size_t filter_size) {
    Rng rng(5);
    VivaldiConfig cfg;
    cfg.latency_filter_size = filter_size;
    VivaldiClient a(cfg, rng), b(cfg, rng);
    for (int i = 0; i < 200; ++i) {
      REQUIRE(a.update("b", b.coordinate(), 20.0).isOk());
      REQUIRE(b.update("a", a.coordinate(), 20.0).isOk());
    }
    REQUIRE(a.update("b", b.coordinate(), 2000.0).isOk());
    return estimateRttMs(a.coordinate(), b.coordinate());
  };
  double filtered = run(3), unfiltered = run(1);
  CHECK(filtered == doctest::Approx(20.0).epsilon(0.05));
  CHECK(unfiltered > filtered + 10);
}

TEST_CASE("vivaldi: bad input is refused and changes nothing") {
  Rng rng(9);
  VivaldiClient client(VivaldiConfig{}, rng);
  // Give it a non-trivial state first.
  auto peer = coord({5, 0, 0, 0, 0, 0, 0, 0}, 1, 0, 0.5);
  for (int i = 0; i < 20; ++i) REQUIRE(client.update("p", peer, 30).isOk());
  const auto before = client.coordinate();
  const double filtered_before = client.filteredRttMs("p");
  const auto updates_before = client.stats().updates;

  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    const char* what;
    state::Coordinate peer;
    double rtt_ms;
    const char* mentions;
  };
  auto with = [&](auto mutate) {
    auto c = peer;
    mutate(c);
    return c;
  };
  std::vector<Case> cases = {
      {"zero rtt", peer, 0, "outside (0, 10000]"},
      {"negative rtt", peer, -3, "outside"},
      {"rtt over 10 s", peer, 10'000.5, "outside"},
      {"nan rtt", peer, nan, "outside"},
      {"infinite rtt", peer, inf, "outside"},
      {"other dimensionality", coord({1, 2, 3}), 10, "3 dimensions, expected 8"},
      {"empty coordinate", state::Coordinate{}, 10, "0 dimensions"},
      {"nan component", with([&](auto& c) { c.vec[3] = nan; }), 10, "component 3 is not finite"},
      {"infinite height", with([&](auto& c) { c.height = inf; }), 10, "height"},
      {"negative height", with([&](auto& c) { c.height = -1; }), 10, "height"},
      {"nan adjustment", with([&](auto& c) { c.adjustment = nan; }), 10, "adjustment"},
      {"negative error", with([&](auto& c) { c.error = -0.1; }), 10, "error"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    Status s = client.update("p", c.peer, c.rtt_ms);
    REQUIRE_FALSE(s.isOk());
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(s.message().find(c.mentions) != std::string::npos);
    CHECK(client.coordinate() == before);
    CHECK(client.filteredRttMs("p") == filtered_before);
  }
  // A refused first sample from a new peer leaves no filter behind.
  CHECK_FALSE(client.update("new", peer, -1).isOk());
  CHECK(client.filteredRttMs("new") == -1);
  CHECK(client.peerCount() == 1);
  CHECK(client.stats().rejected == cases.size() + 1);
  CHECK(client.stats().updates == updates_before);
}

TEST_CASE("vivaldi: a result that is not finite resets the coordinate") {
  Rng rng(11);
  VivaldiClient client(VivaldiConfig{}, rng);
  auto peer = coord(std::vector<double>(8, 1e300), 1e300, 0, 0.1);
  REQUIRE(validateCoordinate(peer, 8).isOk());  // finite, so not refused as input
  REQUIRE(client.update("p", coord({5, 0, 0, 0, 0, 0, 0, 0}), 30).isOk());
  REQUIRE(client.update("huge", peer, 30).isOk());
  CHECK(client.stats().resets == 1);
  auto c = client.coordinate();
  CHECK(validateCoordinate(c, 8).isOk());
  CHECK(c.vec == zeros());
  CHECK(c.error == doctest::Approx(1.5));
  // And it keeps working afterwards.
  REQUIRE(client.update("p", coord({5, 0, 0, 0, 0, 0, 0, 0}), 30).isOk());
  CHECK(validateCoordinate(client.coordinate(), 8).isOk());
}

TEST_CASE("vivaldi: coincident coordinates are pushed apart in a random direction") {
  Rng rng(13);
  VivaldiClient client(VivaldiConfig{}, rng);
  REQUIRE(client.update("p", coord(zeros(), 0.01), 10).isOk());
  auto c = client.coordinate();
  double norm = 0;
  for (double x : c.vec) norm += x * x;
  CHECK(std::sqrt(norm) > 0.1);
}

TEST_CASE("vivaldi: the latency filter table is bounded") {
  Rng rng(17);
  VivaldiConfig cfg;
  cfg.max_peers = 2;
  VivaldiClient client(cfg, rng);
  auto peer = coord(zeros());
  for (const char* id : {"a", "b", "c", "d"}) REQUIRE(client.update(id, peer, 10).isOk());
  CHECK(client.peerCount() == 2);
  CHECK(client.stats().evicted == 2);
}

TEST_CASE("vivaldi: config validation") {
  CHECK(validateVivaldiConfig(VivaldiConfig{}).isOk());
  auto bad = [](auto mutate) {
    VivaldiConfig c;
    mutate(c);
    return validateVivaldiConfig(c);
  };
  CHECK_FALSE(bad([](auto& c) { c.dimensionality = 0; }).isOk());
  CHECK_FALSE(bad([](auto& c) { c.vivaldi_error_max = 0; }).isOk());
  CHECK_FALSE(bad([](auto& c) { c.vivaldi_ce = 1.5; }).isOk());
  CHECK_FALSE(bad([](auto& c) { c.vivaldi_cc = 0; }).isOk());
  CHECK_FALSE(bad([](auto& c) { c.height_min_ms = -1; }).isOk());
  CHECK_FALSE(bad([](auto& c) { c.latency_filter_size = 0; }).isOk());
  CHECK_FALSE(bad([](auto& c) { c.gravity_rho_ms = 0; }).isOk());
  CHECK_FALSE(bad([](auto& c) { c.max_peers = 0; }).isOk());
  CHECK(bad([](auto& c) { c.adjustment_window_size = 0; }).isOk());
}
