#include "agent/net/http_request.h"

namespace meshos::net {

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return Status::invalid("a % escape is cut short");
      const int hi = hexValue(s[i + 1]), lo = hexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return Status::invalid("a % escape is not two hex digits");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

HttpRequestReader* readerOf(http_parser* p) { return static_cast<HttpRequestReader*>(p->data); }

}  // namespace

HttpRequestReader::HttpRequestReader(size_t max_head_bytes, size_t max_headers)
    : max_head_bytes_(max_head_bytes), max_headers_(max_headers) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

const http_parser_settings& HttpRequestReader::settings() {
  // Each callback may stop the parser (return 1) when a bound is crossed.
  static const http_parser_settings s = [] {
    http_parser_settings x;
    http_parser_settings_init(&x);
    x.on_url = [](http_parser* p, const char* at, size_t n) {
      HttpRequestReader* r = readerOf(p);
      r->target_.append(at, n);
      return r->target_.size() > r->max_head_bytes_ ? 1 : 0;
    };
    x.on_header_field = [](http_parser* p, const char*, size_t) {
      HttpRequestReader* r = readerOf(p);
      if (!r->in_field_) ++r->headers_;
      r->in_field_ = true;
      return r->headers_ > r->max_headers_ ? 1 : 0;
    };
    x.on_header_value = [](http_parser* p, const char*, size_t) {
      readerOf(p)->in_field_ = false;
      return 0;
    };
    x.on_headers_complete = [](http_parser* p) {
      readerOf(p)->headers_done_ = true;
      return 0;
    };
    x.on_body = [](http_parser* p, const char*, size_t) {
      readerOf(p)->body_ = true;
      return 1;
    };
    x.on_message_complete = [](http_parser* p) {
      readerOf(p)->complete_ = true;
      return 1;  // one request: stop here (pipelined bytes after it are not read)
    };
    return x;
  }();
  return s;
}

void HttpRequestReader::fail(int status, std::string why) {
  state_ = State::kFailed;
  error_status_ = status;
  error_ = std::move(why);
}

HttpRequestReader::State HttpRequestReader::feed(const char* data, size_t n) {
  if (state_ != State::kIncomplete) return state_;
  const size_t parsed = http_parser_execute(&parser_, &settings(), data, n);
  if (!headers_done_) head_bytes_ += parsed;
  if (body_) {
    fail(413, "requests here carry no body");
  } else if (headers_ > max_headers_ || head_bytes_ > max_head_bytes_ || target_.size() > max_head_bytes_) {
    fail(431, "the request's headers are too large");
  } else if (complete_) {
    method_ = http_method_str(static_cast<http_method>(parser_.method));
    state_ = State::kComplete;
  } else if (HTTP_PARSER_ERRNO(&parser_) != HPE_OK) {
    fail(400, std::string("malformed request: ") + http_errno_description(HTTP_PARSER_ERRNO(&parser_)));
  } else if (parsed < n) {
    fail(400, "malformed request");
  }
  return state_;
}

Result<std::pair<std::string, std::map<std::string, std::string>>> splitTarget(const std::string& target) {
  if (target.empty() || target[0] != '/') return Status::invalid("the request target must be a path");
  const size_t q = target.find('?');
  auto path = percentDecode(std::string_view(target).substr(0, q), false);
  if (!path) return path.status();
  std::map<std::string, std::string> query;
  if (q != std::string::npos) {
    std::string_view rest = std::string_view(target).substr(q + 1);
    while (!rest.empty()) {
      const size_t amp = rest.find('&');
      std::string_view pair = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
      if (pair.empty()) continue;
      const size_t eq = pair.find('=');
      auto k = percentDecode(pair.substr(0, eq), true);
      auto v = percentDecode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
      if (!k) return k.status();
      if (!v) return v.status();
      query[*k] = *v;
    }
  }
  return std::make_pair(std::move(*path), std::move(query));
}

}  // namespace meshos::net
