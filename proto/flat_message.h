// Flat Cap'n Proto messages as bytes, both ways: flatBytes() encodes a builder; readFlat()
// decodes untrusted bytes under a size bound and a traversal limit, turning every Cap'n Proto
// exception into a Status. Header-only; link proto_dep. Any thread.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <string>
#include <utility>

#include "agent/core/bytes.h"
#include "agent/core/status.h"

namespace meshos::proto {

inline Bytes flatBytes(capnp::MessageBuilder& mb) {
  auto words = capnp::messageToFlatArray(mb);
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

// Runs `read(reader)` over the bytes (copied to aligned words); `what` names the message in
// errors ("node state: not a whole number of words"), which carry `code`.
template <class Fn>
auto readFlat(ByteView bytes, size_t max_bytes, const char* what, Fn&& read, Code code = Code::kInvalidArgument)
    -> decltype(read(std::declval<capnp::FlatArrayMessageReader&>())) {
  auto fail = [&](const std::string& m) { return Status(code, std::string(what) + ": " + m); };
  if (bytes.empty()) return fail("empty");
  if (bytes.size() > max_bytes) {
    return fail(std::to_string(bytes.size()) + " bytes, limit " + std::to_string(max_bytes));
  }
  if (bytes.size() % sizeof(capnp::word) != 0) {
    return fail("length " + std::to_string(bytes.size()) + " is not a whole number of words");
  }
  try {
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), bytes.data(), bytes.size());
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = bytes.size() / sizeof(capnp::word) * 4 + 64;
    opts.nestingLimit = 16;
    capnp::FlatArrayMessageReader reader(words.asPtr(), opts);
    return read(reader);
  } catch (const kj::Exception& e) {
    return fail(e.getDescription().cStr());
  }
}

}  // namespace meshos::proto
