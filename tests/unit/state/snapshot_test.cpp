#include <doctest/doctest.h>

#include "agent/state/metrics.h"
#include "agent/state/snapshot.h"

using namespace meshos::state;

TEST_CASE("loop lag meter: max and p99 over the window") {
  LoopLagMeter m;
  for (int i = 1; i <= 100; ++i) m.record(i);
  auto l = m.summary();
  CHECK(l.max_us == 100);
  CHECK(l.p99_us == 100);
  CHECK(l.last_us == 100);
  CHECK(l.samples == 100);
  LoopLagMeter empty;
  CHECK(empty.summary().p99_us == 0);
  m.record(-5);  // early ticks count as zero lag
  CHECK(m.summary().last_us == 0);
}

TEST_CASE("snapshots share lists until something structural changes or they go stale") {
  State s;
  s.node_id = "abc";
  s.node_name = "n1";
  fold(s, MembershipChanged{Member{"a", "na", "x:1", MemberState::kAlive, 1, 0, -1}});
  int64_t built_at = -1'000'000;
  auto first = makeSnapshot(s, {}, nullptr, built_at);
  CHECK(first->members->size() == 1);
  fold(s, Tick{100});
  auto second = makeSnapshot(s, {}, first, built_at);
  CHECK(second->members == first->members);  // shared
  CHECK(second->ticks == 1);
  fold(s, MembershipChanged{Member{"b", "nb", "x:2", MemberState::kAlive, 1, 0, -1}});
  auto third = makeSnapshot(s, {}, second, built_at);
  CHECK(third->members != second->members);
  CHECK(third->members->size() == 2);
  CHECK(third->generation == s.structural_generation);
  fold(s, Tick{5000});  // stale after refresh_ms: rebuilt even with no structural change
  auto fourth = makeSnapshot(s, {}, third, built_at);
  CHECK(fourth->members != third->members);
}

TEST_CASE("json and prometheus renderings carry the fields") {
  State s;
  s.node_id = "abc";
  s.node_name = "n1";
  fold(s, MembershipChanged{Member{"a", "na", "x:1", MemberState::kSuspect, 3, 0, 2.5}});
  Instance i;
  i.id = "web/0";
  i.daemon = "web";
  i.state = InstanceState::kReady;
  i.pid = 42;
  fold(s, DaemonSignal{i});
  int64_t built_at = 0;
  SnapshotInputs in;
  in.version = "0.1.0";
  in.sections["executor"] = {{"queued", 3}, {"dropped", 1}};
  auto snap = makeSnapshot(s, in, nullptr, built_at);
  auto j = snapshotToJson(*snap);
  CHECK(j["node"]["id"] == "abc");
  CHECK(j["members"][0]["state"] == "suspect");
  CHECK(j["members"][0]["incarnation"] == 3);
  CHECK(j["daemons"][0]["pid"] == 42);
  CHECK(j["daemons"][0]["state"] == "ready");
  CHECK(j["executor"]["queued"] == 3);
  CHECK(j.contains("loop"));
  std::string prom = snapshotToPrometheus(*snap);
  CHECK(prom.find("meshos_members{state=\"suspect\"} 1") != std::string::npos);
  CHECK(prom.find("meshos_executor_actions_dropped_total 1") != std::string::npos);
  CHECK(prom.find("meshos_loop_ticks_total 0") != std::string::npos);
}
