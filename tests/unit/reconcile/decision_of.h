// The decision a local plan made for one daemon, for the reconcile tests.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "agent/reconcile/local_plan.h"

namespace meshos::reconcile::testing {

inline const DaemonDecision& decision(const LocalPlan& p, const std::string& name) {
  auto it = std::find_if(p.decisions.begin(), p.decisions.end(),
                         [&](const DaemonDecision& d) { return d.daemon == name; });
  REQUIRE(it != p.decisions.end());
  return *it;
}

}  // namespace meshos::reconcile::testing
