#include "agent/core/status.h"

#include "agent/core/bytes.h"

namespace meshos {

std::string_view codeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kCorruption: return "corruption";
    case Code::kUnavailable: return "unavailable";
    case Code::kOverloaded: return "overloaded";
    case Code::kIoError: return "i/o error";
    case Code::kPermissionDenied: return "permission denied";
    case Code::kDeadlineExceeded: return "deadline exceeded";
    case Code::kNotImplemented: return "not implemented";
    case Code::kInternal: return "internal error";
  }
  return "unknown";
}

Code codeFromName(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(Code::kInternal); ++c) {
    if (codeName(static_cast<Code>(c)) == name) return static_cast<Code>(c);
  }
  return Code::kInternal;
}

std::string Status::toString() const {
  if (isOk()) return "ok";
  std::string out(codeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status::Status(Code code, std::string message) : code_(code), message_(escapeNonUtf8(std::move(message))) {}

Status Status::withContext(std::string_view context) const {
  if (isOk()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

}  // namespace meshos
