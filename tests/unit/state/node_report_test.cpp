// NodeReport: the node state each agent gossips, encoded and decoded strictly.
#include <doctest/doctest.h>

#include <capnp/message.h>

#include <cmath>

#include "agent/state/node_report.h"
#include "proto/flat_message.h"
#include "proto/node_state.capnp.h"

using namespace meshos;
using namespace meshos::state;

namespace {

NodeReport sample() {
  NodeReport r;
  r.version = "0.1.0";
  r.labels = {{"zone", "a"}, {"disk", "ssd"}};
  r.capabilities = {"arch:x86_64", "cpus:2", "gpu", "os:linux"};
  r.cpu_millicores = 2000;
  r.memory_bytes = int64_t{8} << 30;
  r.maintenance = Maintenance::kDraining;
  r.maintenance_seq = 7;
  r.coordinate = Coordinate{{1.5, -2.0, 0.25}, 0.1, -0.01, 0.4};
  r.commit_seq = 3;
  r.commit_hash = Bytes(32, 0xab);
  r.daemons["web"] = {2, 1, 3};
  r.daemons["db"] = {1, 1, 2};
  r.inventory = {2, 0.5, 100, 40, 1000, 500, "x86_64", "linux"};
  r.instances = 4;
  r.ready = 2;
  r.isolated = true;
  r.moves = {{"web", "node-b"}};
  return r;
}

// Builds a NodeState message by hand, for inputs encodeNodeReport() never produces.
template <class Fill>
Bytes handMade(Fill fill) {
  capnp::MallocMessageBuilder msg;
  auto b = msg.initRoot<proto::NodeState>();
  fill(b);
  return proto::flatBytes(msg);
}

}  // namespace

TEST_CASE("a report survives encode and decode, field for field") {
  auto r = sample();
  auto d = decodeNodeReport(encodeNodeReport(r));
  REQUIRE(d);
  CHECK(*d == r);
  NodeReport empty;
  auto e = decodeNodeReport(encodeNodeReport(empty));
  REQUIRE(e);
  CHECK(*e == empty);
  CHECK_FALSE(e->coordinate.has_value());
}

TEST_CASE("bytes that are not a node state are refused with a reason") {
  CHECK_FALSE(decodeNodeReport(Bytes{}));
  CHECK_FALSE(decodeNodeReport(Bytes{1, 2, 3}));
  CHECK_FALSE(decodeNodeReport(Bytes(64, 0xff)));
  CHECK_FALSE(decodeNodeReport(Bytes(kMaxNodeReportBytes + 8, 0)));
  auto good = encodeNodeReport(sample());
  Bytes truncated(good.begin(), good.begin() + static_cast<long>(good.size() / 2 / 8 * 8));
  CHECK_FALSE(decodeNodeReport(truncated));
}

TEST_CASE("values a peer must not send are refused") {
  auto ready_over_running = handMade([](proto::NodeState::Builder b) {
    auto d = b.initDaemons(1);
    d[0].setName("web");
    d[0].setRunning(1);
    d[0].setReady(2);
  });
  auto r = decodeNodeReport(ready_over_running);
  REQUIRE_FALSE(r);
  CHECK(r.status().message().find("more ready than running") != std::string::npos);

  auto twice = handMade([](proto::NodeState::Builder b) {
    auto d = b.initDaemons(2);
    d[0].setName("web");
    d[1].setName("web");
  });
  CHECK_FALSE(decodeNodeReport(twice));

  auto unsorted = handMade([](proto::NodeState::Builder b) {
    auto c = b.initCapabilities(2);
    c.set(0, "os:linux");
    c.set(1, "arch:x86_64");
  });
  CHECK_FALSE(decodeNodeReport(unsorted));

  auto negative = handMade([](proto::NodeState::Builder b) { b.setCpuMillicores(-1); });
  CHECK_FALSE(decodeNodeReport(negative));

  auto bad_hash = handMade([](proto::NodeState::Builder b) {
    Bytes h(5, 1);
    b.setCommitHash(capnp::Data::Reader(h.data(), h.size()));
  });
  CHECK_FALSE(decodeNodeReport(bad_hash));

  auto nan_coordinate = handMade([](proto::NodeState::Builder b) {
    auto c = b.initCoordinate();
    c.initVec(2).set(0, std::nan(""));
  });
  CHECK_FALSE(decodeNodeReport(nan_coordinate));

  auto unnamed = handMade([](proto::NodeState::Builder b) { b.initDaemons(1); });
  CHECK_FALSE(decodeNodeReport(unnamed));

  auto move_twice = handMade([](proto::NodeState::Builder b) {
    auto m = b.initMoves(2);
    m[0].setDaemon("web");
    m[0].setTo("a");
    m[1].setDaemon("web");
    m[1].setTo("b");
  });
  auto twice_moved = decodeNodeReport(move_twice);
  REQUIRE_FALSE(twice_moved);
  CHECK(twice_moved.status().message().find("moves daemon web twice") != std::string::npos);

  auto move_nowhere = handMade([](proto::NodeState::Builder b) { b.initMoves(1)[0].setDaemon("web"); });
  CHECK_FALSE(decodeNodeReport(move_nowhere));

  auto too_many_moves = handMade([](proto::NodeState::Builder b) {
    auto m = b.initMoves(static_cast<unsigned>(kMaxReportMoves + 1));
    for (unsigned i = 0; i < m.size(); ++i) {
      m[i].setDaemon("d" + std::to_string(i));
      m[i].setTo("n");
    }
  });
  CHECK_FALSE(decodeNodeReport(too_many_moves));
}

TEST_CASE("the JSON rendering names every part") {
  auto j = nodeReportToJson(sample());
  CHECK(j["maintenance"] == "draining");
  CHECK(j["daemons"]["web"]["ready"] == 1);
  CHECK(j["commit_head"]["seq"] == 3);
  CHECK(j["coordinate"]["vec"].size() == 3);
  CHECK(j["inventory"]["arch"] == "x86_64");
  CHECK(j["moves"]["web"] == "node-b");
  CHECK(maintenanceName(Maintenance::kInMaintenance) == "in-maintenance");
}

TEST_CASE("node report: text that is not UTF-8 is refused (the members view renders it as JSON)") {
  NodeReport r;
  r.labels["zone"] = "a\xb0";
  CHECK_FALSE(decodeNodeReport(encodeNodeReport(r)).isOk());
  r.labels["zone"] = "\xc3\xa4";
  CHECK(decodeNodeReport(encodeNodeReport(r)).isOk());
}

TEST_CASE("node report: live measurements are republished only once they have moved far enough") {
  const NodeReport published = sample();  // 2 CPUs, load 0.5, memory 40 of 100, disk 500 of 1000
  CHECK(reportChange(published, published) == ReportChange::kNone);

  NodeReport r = published;
  r.inventory.load1 = 0.65;  // 0.075 per CPU
  r.inventory.memory_used_bytes = 41;
  r.inventory.disk_used_bytes = 519;
  r.coordinate->vec[0] += 0.1;
  r.coordinate->error = 0.9;  // the error estimate alone never counts
  CHECK(reportChange(published, r) == ReportChange::kNone);

  SUBCASE("load") {
    r.inventory.load1 = 0.75;  // 0.125 per CPU
    CHECK(reportChange(published, r) == ReportChange::kMeasurements);
  }
  SUBCASE("memory") {
    r.inventory.memory_used_bytes = 38;
    CHECK(reportChange(published, r) == ReportChange::kMeasurements);
  }
  SUBCASE("disk") {
    r.inventory.disk_used_bytes = 520;
    CHECK(reportChange(published, r) == ReportChange::kMeasurements);
  }
  SUBCASE("coordinate") {
    r.coordinate->height += 0.2;
    CHECK(reportChange(published, r) == ReportChange::kMeasurements);
  }
  SUBCASE("a coordinate first known") {
    NodeReport none = published;
    none.coordinate.reset();
    CHECK(reportChange(none, r) == ReportChange::kMeasurements);
  }
  SUBCASE("any other field, however small the change") {
    r.ready += 1;
    CHECK(reportChange(published, r) == ReportChange::kOther);
    r = published;
    r.labels["zone"] = "b";
    CHECK(reportChange(published, r) == ReportChange::kOther);
    r = published;
    r.inventory.memory_total_bytes += 1;
    CHECK(reportChange(published, r) == ReportChange::kOther);
  }
}

TEST_CASE("node report: measurements alone wait longer in a larger cluster") {
  CHECK(measurementsRepublishMs(0) == kMeasurementsRepublishMinMs);
  CHECK(measurementsRepublishMs(3) == kMeasurementsRepublishMinMs);
  // Past the minimum the cluster sends about one measurement broadcast per period in all.
  for (size_t n : {20u, 50u, 1000u}) {
    CHECK(measurementsRepublishMs(n) / static_cast<int64_t>(n) == kClusterMeasurementsPeriodMs);
  }
}
