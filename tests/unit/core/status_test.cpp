#include <doctest/doctest.h>

#include "agent/core/status.h"
#include "agent/core/bytes.h"

using namespace meshos;

namespace {
Result<int> parsePositive(int v) {
  if (v <= 0) return Status::invalid("must be positive");
  return v;
}
Status chained(int v) {
  MESHOS_RETURN_IF_ERROR(parsePositive(v).status().withContext("chained"));
  return Status::ok();
}
}  // namespace

TEST_CASE("status carries a code and a message") {
  Status s = Status::invalid("port out of range");
  CHECK_FALSE(s.isOk());
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.toString() == "invalid argument: port out of range");
  CHECK(s.withContext("node.toml").message() == "node.toml: port out of range");
  CHECK(Status::ok().toString() == "ok");
}

TEST_CASE("result holds a value or an error") {
  auto good = parsePositive(3);
  REQUIRE(good.isOk());
  CHECK(*good == 3);
  CHECK(good.status().isOk());
  auto bad = parsePositive(-1);
  CHECK_FALSE(bad.isOk());
  CHECK(bad.status().code() == Code::kInvalidArgument);
  CHECK(chained(1).isOk());
  CHECK(chained(0).message() == "chained: must be positive");
}

TEST_CASE("a status message is UTF-8: bytes of bad input quoted in it are escaped") {
  // Found by fuzzing: a Cap'n Proto error describing a malformed commit quoted a raw byte,
  // and rendering the commit's error as JSON threw.
  Status s = Status::invalid(std::string("expected '\\0', got '") + '\xe8' + "' in gr\xc3\xbc" "n");
  CHECK(s.message() == "expected '\\0', got '\\xe8' in gr\xc3\xbc" "n");
  CHECK(isUtf8(s.withContext("op \xff").message()));
}
