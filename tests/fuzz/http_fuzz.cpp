// HTTP target: bytes from an HTTP client through the agent's request reader (http-parser
// with the server's bounds), fed in pieces as reads deliver them (the first byte picks the
// piece size), then the request target split into path and query, as the server does.
#include <algorithm>

#include "agent/net/http_request.h"
#include "tests/fuzz/fuzz_target.h"

namespace meshos::fuzz {

int fuzzHttpRequest(const uint8_t* data, size_t size) {
  constexpr size_t kHead = 16 * 1024, kHeaders = 64;  // the server's bounds (http_server.h)
  if (size == 0) return 0;
  const size_t piece = static_cast<size_t>(data[0] % 64) + 1;
  const char* p = reinterpret_cast<const char*>(data + 1);
  size_t left = size - 1;
  net::HttpRequestReader r(kHead, kHeaders);
  using State = net::HttpRequestReader::State;
  State s = State::kIncomplete;
  while (left > 0) {
    const size_t n = std::min(piece, left);
    s = r.feed(p, n);
    p += n;
    left -= n;
  }
  check(r.state() == s);
  check(r.feed("GET / HTTP/1.1\r\n\r\n", 18) == s || s == State::kIncomplete);  // final states stay
  if (s == State::kComplete) {
    check(!r.method().empty());
    check(r.target().size() <= kHead);
    auto t = net::splitTarget(r.target());
    if (t) check(!t->first.empty() && t->first[0] == '/');
  } else if (s == State::kFailed) {
    check(r.errorStatus() == 400 || r.errorStatus() == 413 || r.errorStatus() == 431);
    check(!r.error().empty());
  }
  return 0;
}

std::vector<Bytes> httpRequestSeeds() {
  auto seed = [](char piece, std::string_view text) {
    Bytes b{static_cast<uint8_t>(piece)};
    b.insert(b.end(), text.begin(), text.end());
    return b;
  };
  return {
      seed(63, "GET / HTTP/1.1\r\nHost: 127.0.0.1:9464\r\n\r\n"),
      seed(0, "GET /v1/chains/log/records?from=1&count=2 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"),
      seed(7, "HEAD /metrics HTTP/1.0\r\n\r\n"),
      seed(63, "GET /v1/events?kinds=members%2Cdaemons HTTP/1.1\r\nConnection: keep-alive\r\n\r\n"),
      seed(63, "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
      seed(3, "GET /v1/%zz?a=%4 HTTP/1.1\r\n\r\n"),
      seed(63, "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
      seed(63, "GARBAGE\r\n\r\n"),
      seed(1, "GET /a b HTTP/1.1\r\n\r\n"),
  };
}

}  // namespace meshos::fuzz
