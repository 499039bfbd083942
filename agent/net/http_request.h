// HttpRequestReader: one HTTP/1.x request from bytes as they arrive, with the bounds the
// agent's HTTP server keeps (http_server.h). Parsing is http-parser's (Debian's
// libhttp-parser); this adds the limits and the verdict: a request line and headers of at
// most max_head_bytes, at most max_headers fields, and no body (the server serves reads
// only). No I/O, no libuv: the server feeds it, and a fuzz target and unit tests feed it
// arbitrary bytes.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <map>
#include <string>
#include <utility>

#include "agent/core/status.h"

namespace meshos::net {

class HttpRequestReader {
 public:
  enum class State { kIncomplete, kComplete, kFailed };

  HttpRequestReader(size_t max_head_bytes, size_t max_headers);
  HttpRequestReader(const HttpRequestReader&) = delete;
  HttpRequestReader& operator=(const HttpRequestReader&) = delete;

  // Takes the next bytes (once complete or failed, later bytes are ignored).
  State feed(const char* data, size_t n);
  State state() const { return state_; }
  // Once complete: the method ("GET", ...) and the request target as sent.
  const std::string& method() const { return method_; }
  const std::string& target() const { return target_; }
  // Once failed: the HTTP status to answer with (400, 413, 431) and why.
  int errorStatus() const { return error_status_; }
  const std::string& error() const { return error_; }

 private:
  static const http_parser_settings& settings();
  void fail(int status, std::string why);

  http_parser parser_{};
  const size_t max_head_bytes_;
  const size_t max_headers_;
  State state_ = State::kIncomplete;
  std::string method_;
  std::string target_;
  size_t head_bytes_ = 0;
  size_t headers_ = 0;
  bool in_field_ = false;
  bool headers_done_ = false;
  bool body_ = false;
  bool complete_ = false;
  int error_status_ = 0;
  std::string error_;
};

// Splits "/v1/chains/log/records?from=3&count=5" into its path and decoded query (%XX
// escapes; '+' is a space in the query). A target that is not a path, or a bad escape, is
// an error.
Result<std::pair<std::string, std::map<std::string, std::string>>> splitTarget(const std::string& target);

}  // namespace meshos::net
