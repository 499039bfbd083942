#include <doctest/doctest.h>

#include <string>

#include "agent/net/http_request.h"

namespace meshos::net {

using State = HttpRequestReader::State;

namespace {

State feedAll(HttpRequestReader& r, const std::string& s, size_t piece) {
  State st = State::kIncomplete;
  for (size_t i = 0; i < s.size(); i += piece) st = r.feed(s.data() + i, std::min(piece, s.size() - i));
  return st;
}

}  // namespace

TEST_CASE("a request is read whole, in one piece or byte by byte") {
  const std::string req = "GET /v1/members?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
  for (size_t piece : {req.size(), size_t{1}, size_t{7}}) {
    HttpRequestReader r(16 * 1024, 64);
    CHECK(feedAll(r, req, piece) == State::kComplete);
    CHECK(r.method() == "GET");
    CHECK(r.target() == "/v1/members?x=1");
  }
  HttpRequestReader partial(16 * 1024, 64);
  CHECK(partial.feed(req.data(), 20) == State::kIncomplete);
}

TEST_CASE("the bounds: head size, header count, no body; garbage is a 400") {
  HttpRequestReader big(1024, 64);
  CHECK(feedAll(big, "GET / HTTP/1.1\r\nX: " + std::string(2000, 'y') + "\r\n\r\n", 100) == State::kFailed);
  CHECK(big.errorStatus() == 431);
  HttpRequestReader many(16 * 1024, 4);
  std::string headers;
  for (int i = 0; i < 5; ++i) headers += "H" + std::to_string(i) + ": v\r\n";
  CHECK(feedAll(many, "GET / HTTP/1.1\r\n" + headers + "\r\n", 1000) == State::kFailed);
  CHECK(many.errorStatus() == 431);
  HttpRequestReader body(16 * 1024, 64);
  CHECK(feedAll(body, "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 1000) == State::kFailed);
  CHECK(body.errorStatus() == 413);
  HttpRequestReader junk(16 * 1024, 64);
  CHECK(feedAll(junk, "NOT HTTP AT ALL\r\n\r\n", 1000) == State::kFailed);
  CHECK(junk.errorStatus() == 400);
  CHECK(junk.feed("GET / HTTP/1.1\r\n\r\n", 18) == State::kFailed);  // final
}

TEST_CASE("a target splits into a decoded path and query") {
  auto t = splitTarget("/v1/chains/log/records?from=3&count=5&k=a%2Cb+c&flag");
  REQUIRE(t);
  CHECK(t->first == "/v1/chains/log/records");
  CHECK(t->second.at("from") == "3");
  CHECK(t->second.at("k") == "a,b c");
  CHECK(t->second.at("flag").empty());
  CHECK(splitTarget("/a%20b")->first == "/a b");
  CHECK(!splitTarget("/v1/%zz"));
  CHECK(!splitTarget("/v1/%4"));
  CHECK(!splitTarget("http://example/"));
  CHECK(!splitTarget(""));
}

}  // namespace meshos::net
