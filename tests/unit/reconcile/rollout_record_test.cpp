// Rollout records round trip, and every malformed one is refused with the field it names
// (a damaged state store must not stop the agent: the node says so and starts fresh).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "agent/reconcile/rollout_record.h"

using namespace meshos;
using namespace meshos::reconcile;

namespace {

RolloutRecord sample() {
  spec::DaemonSpec s;
  s.name = "web";
  s.command = {"/usr/bin/web", "--v2"};
  RolloutRecord r{0xabcdef0123456789, s, s, 0x0fedcba987654321, 0x42};
  r.previous->command = {"/usr/bin/web", "--v1"};
  return r;
}

std::string withField(const std::string& key, const nlohmann::json& value) {
  nlohmann::json j = nlohmann::json::parse(encodeRolloutRecord(sample()));
  if (value.is_discarded()) {
    j.erase(key);
  } else {
    j[key] = value;
  }
  return j.dump();
}

}  // namespace

TEST_CASE("a rollout record round trips, with and without a previous spec") {
  RolloutRecord r = sample();
  auto back = decodeRolloutRecord(encodeRolloutRecord(r));
  REQUIRE(back.isOk());
  CHECK(back->version == r.version);
  CHECK(back->previous_version == r.previous_version);
  CHECK(back->failed_version == 0x42);
  CHECK(back->spec.command == r.spec.command);
  REQUIRE(back->previous.has_value());
  CHECK(back->previous->command == r.previous->command);
  r.previous.reset();
  back = decodeRolloutRecord(encodeRolloutRecord(r));
  REQUIRE(back.isOk());
  CHECK(!back->previous.has_value());
}

TEST_CASE("a malformed rollout record names what is wrong") {
  const nlohmann::json missing = nlohmann::json::value_t::discarded;
  struct Case {
    std::string text;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", "not a JSON object"},
      {"[1]", "not a JSON object"},
      {withField("format", 2), "'format' must be 1"},
      {withField("version", "12"), "'version' must be 16 hex digits"},
      {withField("version", "zzzzzzzzzzzzzzzz"), "'version' must be 16 hex digits"},
      {withField("failed_version", missing), "'failed_version' must be 16 hex digits"},
      {withField("spec", 7), "'spec' must be a base64 spec"},
      {withField("spec", "!!!!"), "'spec'"},
      {withField("spec", "AAAA"), "'spec'"},
      {withField("previous", missing), "'previous' is missing"},
      {withField("previous", "AAAA"), "'previous'"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto r = decodeRolloutRecord(c.text);
    REQUIRE(!r.isOk());
    CHECK(r.status().message().find(c.says) != std::string::npos);
  }
}
