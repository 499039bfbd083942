// Node health: the classification rules, one by one, and their order.
#include "probes/node_health.h"

#include <doctest/doctest.h>

using namespace meshos;
using namespace meshos::probes;
using gossip::MemberState;

TEST_CASE("node health: names") {
  CHECK(nodeHealthName(NodeHealth::kHealthy) == "healthy");
  CHECK(nodeHealthName(NodeHealth::kDegraded) == "degraded");
  CHECK(nodeHealthName(NodeHealth::kUnreachable) == "unreachable");
}

TEST_CASE("node health: membership state first") {
  HealthInputs in;
  in.report_age_ms = 1000;
  CHECK(classify(in) == HealthVerdict{NodeHealth::kHealthy, {}});
  in.member_state = MemberState::kSuspect;
  CHECK(classify(in) == HealthVerdict{NodeHealth::kDegraded, "suspect"});
  in.member_state = MemberState::kDead;
  CHECK(classify(in) == HealthVerdict{NodeHealth::kUnreachable, "dead"});
  in.member_state = MemberState::kLeft;
  CHECK(classify(in) == HealthVerdict{NodeHealth::kUnreachable, "left"});
  // Unreachable wins over everything else.
  in.member_state = MemberState::kDead;
  in.probes_failing = 3;
  in.local_health_multiplier = 8;
  in.report_age_ms = -1;
  CHECK(classify(in).health == NodeHealth::kUnreachable);
}

TEST_CASE("node health: report age") {
  HealthRules rules;
  rules.report_stale_ms = 10'000;
  HealthInputs in;
  in.report_age_ms = -1;
  CHECK(classify(in, rules) == HealthVerdict{NodeHealth::kDegraded, "no node state yet"});
  in.report_age_ms = 10'000;
  CHECK(classify(in, rules).health == NodeHealth::kHealthy);
  in.report_age_ms = 10'001;
  CHECK(classify(in, rules) == HealthVerdict{NodeHealth::kDegraded, "node state stale"});
  CHECK(classify(in).health == NodeHealth::kHealthy);  // default rules: 90 s
}

TEST_CASE("node health: probe failures and local health") {
  HealthInputs in;
  in.report_age_ms = 0;
  in.probes_failing = 1;
  CHECK(classify(in) == HealthVerdict{NodeHealth::kDegraded, "probe failing"});
  in.probes_failing = 0;
  in.local_health_multiplier = 1;
  CHECK(classify(in) == HealthVerdict{NodeHealth::kDegraded, "local health degraded"});
  in.local_health_multiplier = 0;
  CHECK(classify(in).health == NodeHealth::kHealthy);
}
