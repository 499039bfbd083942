// Status and Result<T>: the error values every module boundary returns.
//
// A Status is a small value: a code a caller can branch on and a message a human can read.
// Result<T> holds either a T or a non-OK Status. Both are [[nodiscard]]: an ignored error
// is a compile error. Nothing here throws; exceptions from libraries (Cap'n Proto, toml++)
// are caught at the decode boundary and turned into a Status with context.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace meshos {

enum class Code {
  kOk = 0,
  kInvalidArgument,   // the input is wrong; retrying the same input will not help
  kNotFound,
  kAlreadyExists,
  kCorruption,        // stored or received data does not hold together
  kUnavailable,       // the other side or a resource is not there now; retry may help
  kOverloaded,        // a bound was reached; the caller should back off or drop
  kIoError,
  kPermissionDenied,
  kDeadlineExceeded,
  kNotImplemented,
  kInternal,
};

std::string_view codeName(Code code);
// The inverse of codeName(); unknown names give kInternal.
Code codeFromName(std::string_view name);

class [[nodiscard]] Status {
 public:
  Status() = default;
  // Messages are UTF-8: a byte of bad input quoted in one (a name, a Cap'n Proto error's
  // description) is written as \xNN, so every message can go into JSON.
  Status(Code code, std::string message);

  static Status ok() { return {}; }
  static Status invalid(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status notFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status exists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status overloaded(std::string m) { return {Code::kOverloaded, std::move(m)}; }
  static Status io(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status denied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
  static Status deadline(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
  static Status notImplemented(std::string m) { return {Code::kNotImplemented, std::move(m)}; }
  static Status internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool isOk() const { return code_ == Code::kOk; }
  explicit operator bool() const { return isOk(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "invalid argument: <message>", or "ok".
  std::string toString() const;

  // Prefixes the message with context ("reading node.toml: ..."), keeping the code.
  Status withContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) { return a.code_ == b.code_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).isOk() && "Result built from an OK status has no value");
  }

  bool isOk() const { return v_.index() == 0; }
  explicit operator bool() const { return isOk(); }

  const Status& status() const {
    static const Status kOkStatus;
    return isOk() ? kOkStatus : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace meshos

// Returns early from the enclosing function when a Status-producing expression fails.
#define MESHOS_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::meshos::Status meshos_status_ = (expr);     \
    if (!meshos_status_.isOk()) return meshos_status_; \
  } while (0)
