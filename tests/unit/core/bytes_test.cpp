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

TEST_CASE("isWireText: UTF-8 without NUL, which Cap'n Proto Text would cut at") {
  CHECK(isWireText("n1"));
  CHECK(isWireText(""));
  CHECK_FALSE(isWireText(std::string_view("a\0b", 3)));
  CHECK_FALSE(isWireText(std::string_view("\0", 1)));
  CHECK_FALSE(isWireText("\xb0"));
  CHECK(isUtf8(std::string_view("a\0b", 3)));  // well-formed UTF-8, all the same
}

TEST_CASE("isUtf8 accepts well-formed UTF-8 only, as JSON rendering does") {
  CHECK(isUtf8(""));
  CHECK(isUtf8("plain ascii\twith tab"));
  CHECK(isUtf8("gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac \xf0\x9f\x98\x80"));  // ü ß € 😀
  CHECK(isUtf8("\xf4\x8f\xbf\xbf"));                                   // U+10FFFF
  CHECK_FALSE(isUtf8("\xb0"));                                         // lone continuation
  CHECK_FALSE(isUtf8("\xc3"));                                         // cut short
  CHECK_FALSE(isUtf8("\xc0\x80"));                                     // overlong NUL
  CHECK_FALSE(isUtf8("\xe0\x80\xaf"));                                 // overlong '/'
  CHECK_FALSE(isUtf8("\xed\xa0\x80"));                                 // surrogate
  CHECK_FALSE(isUtf8("\xf4\x90\x80\x80"));                             // over U+10FFFF
  CHECK_FALSE(isUtf8("\xf5\x80\x80\x80"));
  CHECK_FALSE(isUtf8("\xe2\x82"));
  CHECK_FALSE(isUtf8("\xe2\x28\xa1"));                                 // bad continuation
}
