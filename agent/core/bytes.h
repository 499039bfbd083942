// Byte strings and their text forms (hex, base64), shared by every module.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"

namespace meshos {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView asBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view asChars(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::string toHex(ByteView bytes);
Result<Bytes> fromHex(std::string_view hex);
// Standard base64 with padding (RFC 4648 section 4).
std::string toBase64(ByteView bytes);
Result<Bytes> fromBase64(std::string_view text);

// Appends v big-endian: keys that sort like the numbers they hold.
void appendBigEndian64(Bytes& out, uint64_t v);
uint64_t readBigEndian64(ByteView in);

}  // namespace meshos
