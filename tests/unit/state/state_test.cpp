#include <doctest/doctest.h>

#include "agent/state/state.h"

using namespace meshos::state;

namespace {
Member member(const std::string& id, MemberState st = MemberState::kAlive) {
  return Member{id, "n-" + id, "127.0.0.1:7946", st, 1, 0, -1};
}
Instance instance(const std::string& id, InstanceState st) {
  Instance i;
  i.id = id;
  i.daemon = id.substr(0, id.find('/'));
  i.state = st;
  return i;
}
}  // namespace

TEST_CASE("ticks and probe samples are not structural") {
  State s;
  CHECK_FALSE(fold(s, Tick{500}));
  CHECK(s.now_ms == 500);
  CHECK(s.ticks == 1);
  CHECK_FALSE(fold(s, ProbeSample{"inventory", 500, true, "", {{"cpus", 2}}}));
  CHECK(s.probes.at("inventory").values.at("cpus") == 2);
  CHECK(s.structural_generation == 0);
  CHECK(s.events_folded == 2);
}

TEST_CASE("membership: new members and state changes are structural, RTT is not") {
  State s;
  CHECK(fold(s, MembershipChanged{member("a")}));
  Member m = member("a");
  m.rtt_ms = 1.5;
  CHECK_FALSE(fold(s, MembershipChanged{m}));
  CHECK(s.members.at("a").rtt_ms == 1.5);
  m.state = MemberState::kSuspect;
  CHECK(fold(s, MembershipChanged{m}));
  CHECK(s.structural_generation == 2);
}

TEST_CASE("desired daemons are replaced per source") {
  State s;
  DesiredDaemonsChanged local{"local", {{"web", 1, 2, false}, {"db", 1, 1, false}}};
  CHECK(fold(s, local));
  CHECK(s.desired.size() == 2);
  CHECK_FALSE(fold(s, local));  // same set: nothing changes
  CHECK(fold(s, DesiredDaemonsChanged{"commit", {{"api", 3, 1, false}}}));
  CHECK(fold(s, DesiredDaemonsChanged{"local", {{"web", 2, 2, false}}}));
  CHECK(s.desired.count("db") == 0);
  CHECK(s.desired.at("web").generation == 2);
  CHECK(s.desired.at("api").source == "commit");
}

TEST_CASE("instances appear, change and are removed") {
  State s;
  CHECK(fold(s, DaemonSignal{instance("web/0", InstanceState::kStarting)}));
  CHECK(fold(s, DaemonSignal{instance("web/0", InstanceState::kRunning)}));
  CHECK_FALSE(fold(s, DaemonSignal{instance("web/0", InstanceState::kRunning)}));
  CHECK(fold(s, DaemonSignal{instance("web/0", InstanceState::kStopped), true}));
  CHECK(s.instances.empty());
  CHECK_FALSE(fold(s, DaemonSignal{instance("web/9", InstanceState::kStopped), true}));
}

TEST_CASE("peer state and commit head keep the newest") {
  State s;
  NodeReport two, one;
  two.version = "two";
  one.version = "one";
  CHECK(fold(s, PeerStateUpdated{"a", 2, two}));
  CHECK_FALSE(fold(s, PeerStateUpdated{"a", 1, one}));
  CHECK(s.peer_states.at("a").report.version == "two");
  // Load and coordinates are stored but not structural; what placement reads is.
  NodeReport three = two;
  three.inventory.load1 = 3.5;
  three.coordinate = Coordinate{{1.0}, 0.1, 0, 0.5};
  CHECK_FALSE(fold(s, PeerStateUpdated{"a", 3, three}));
  CHECK(s.peer_states.at("a").report.inventory.load1 == 3.5);
  three.daemons["web"] = {1, 1, 1};
  CHECK(fold(s, PeerStateUpdated{"a", 4, three}));
  CHECK(fold(s, CommitReceived{3, "cc"}));
  CHECK_FALSE(fold(s, CommitReceived{2, "bb"}));
  CHECK(s.commit_head.seq == 3);
}

TEST_CASE("recent control commands are bounded") {
  State s;
  for (int i = 0; i < 100; ++i) CHECK_FALSE(fold(s, ControlCommand{"snapshot", "", 1, 0, 0, i}));
  CHECK(s.recent_commands.size() == kRecentCommandsMax);
  CHECK(s.recent_commands.back().at_ms == 99);
}

TEST_CASE("shutdown is structural once") {
  State s;
  CHECK(fold(s, Shutdown{"SIGTERM"}));
  CHECK_FALSE(fold(s, Shutdown{"SIGTERM"}));
  CHECK(s.shutting_down);
}
