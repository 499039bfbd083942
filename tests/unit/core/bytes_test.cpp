#include <doctest/doctest.h>

#include "agent/core/bytes.h"

using namespace meshos;

TEST_CASE("hex round trip and bad hex") {
  Bytes b{0x00, 0xab, 0xff};
  CHECK(toHex(b) == "00abff");
  auto back = fromHex("00abff");
  REQUIRE(back.isOk());
  CHECK(*back == b);
  CHECK_FALSE(fromHex("abc").isOk());
  CHECK_FALSE(fromHex("zz").isOk());
}

TEST_CASE("base64 round trip and bad base64") {
  Bytes b{'m', 'e', 's', 'h'};
  CHECK(toBase64(b) == "bWVzaA==");
  auto back = fromBase64("bWVzaA==");
  REQUIRE(back.isOk());
  CHECK(*back == b);
  CHECK_FALSE(fromBase64("bWVz*A==").isOk());
  CHECK(fromBase64("")->empty());
}

TEST_CASE("big-endian keys sort like numbers") {
  Bytes a, b;
  appendBigEndian64(a, 255);
  appendBigEndian64(b, 256);
  CHECK(a < b);
  CHECK(readBigEndian64(a) == 255);
  CHECK(readBigEndian64(b) == 256);
}
