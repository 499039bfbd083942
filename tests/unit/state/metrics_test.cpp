#include <doctest/doctest.h>

#include <regex>
#include <set>
#include <string>

#include "agent/state/metrics.h"

namespace meshos::state {

TEST_CASE("every catalogued family follows the Prometheus naming conventions") {
  const std::regex name_re("meshos_[a-z][a-z0-9_]*[a-z0-9]");
  std::set<std::string_view> names;
  for (const MetricFamily& f : metricCatalogue()) {
    CAPTURE(f.name);
    CHECK(std::regex_match(std::string(f.name), name_re));
    CHECK(names.insert(f.name).second);  // one family, one entry
    const bool total = f.name.ends_with("_total");
    CHECK(total == (f.type == MetricType::kCounter));
    CHECK(!f.help.empty());
    CHECK(f.help.back() == '.');
    // A varying key is a label, and a label has a varying key to fill it.
    CHECK((f.path.find('*') != std::string_view::npos) == !f.label.empty());
  }
}

TEST_CASE("sections become labelled families; missing values are left out, not zero") {
  State s;
  s.node_id = "id1";
  s.node_name = "n\"1";
  int64_t built_at = 0;
  SnapshotInputs in;
  in.version = "0.1.0";
  in.sections["chains"] = {{"audit", {{"acked", 7}, {"head", {{"seq", 7}}}}},
                           {"log", {{"acked", 3}, {"head", {{"seq", 3}}}}},
                           {"write_failures", 2}};
  in.sections["gossip"] = {{"dropped", {{"decode", 4}, {"stale", 0}}}, {"local_health", 1}};
  in.sections["placement"] = {{"frozen", true}};
  auto prom = snapshotToPrometheus(*makeSnapshot(s, in, nullptr, built_at));
  CHECK(prom.find("# HELP meshos_chain_records_acked_total ") != std::string::npos);
  CHECK(prom.find("# TYPE meshos_chain_records_acked_total counter\n") != std::string::npos);
  CHECK(prom.find("meshos_chain_records_acked_total{chain=\"audit\"} 7\n") != std::string::npos);
  CHECK(prom.find("meshos_chain_records_acked_total{chain=\"log\"} 3\n") != std::string::npos);
  CHECK(prom.find("meshos_chain_head_sequence{chain=\"log\"} 3\n") != std::string::npos);
  CHECK(prom.find("meshos_chain_write_failures_total 2\n") != std::string::npos);
  CHECK(prom.find("meshos_gossip_packets_dropped_total{reason=\"decode\"} 4\n") != std::string::npos);
  CHECK(prom.find("meshos_gossip_local_health_score 1\n") != std::string::npos);
  CHECK(prom.find("meshos_placement_frozen 1\n") != std::string::npos);
  CHECK(prom.find("node=\"n\\\"1\"") != std::string::npos);  // label values are escaped
  CHECK(prom.find("meshos_executor_") == std::string::npos);   // no section, no family
  CHECK(prom.find("meshos_chains_") == std::string::npos);     // never a flattened path
}

}  // namespace meshos::state
