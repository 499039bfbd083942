// The Prometheus text exposition of a snapshot (served on the control socket's `metrics`
// and on HTTP /metrics).
//
// Every exported family is named in one catalogue (metrics.cpp): its name (base units,
// `_total` on counters), its type, its HELP text, and where its value lives in the
// snapshot's sections. A section key that varies (a chain's name, a drop reason) becomes a
// label, not part of the name. A figure the catalogue does not name is not exported, so a
// new section field never leaks out as an unnamed, untyped family; a family whose value is
// missing from an early or partial snapshot is left out rather than shown as zero.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "agent/state/snapshot.h"

namespace meshos::state {

enum class MetricType { kCounter, kGauge };

struct MetricFamily {
  std::string_view name;
  MetricType type;
  std::string_view help;
  // Dotted path into the snapshot's sections. One segment may be "*": each key there is a
  // sample, with that key as the value of `label`.
  std::string_view path;
  std::string_view label = {};
  double scale = 1;  // milliseconds to seconds, say
};

// The catalogue, in exposition order.
const std::vector<MetricFamily>& metricCatalogue();

std::string snapshotToPrometheus(const Snapshot& s);

}  // namespace meshos::state
