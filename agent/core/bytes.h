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

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF). Text
// from the wire is checked with this at decode time: JSON rendering (snapshots, audit
// records) refuses anything else, and one bad name must not break every view of a node.
bool isUtf8(std::string_view text);
// Text as the wire carries it: well-formed UTF-8 without NUL. Cap'n Proto's Text ends at
// its first NUL when it is encoded again, so a name with a NUL inside would change on its
// way through a node (a peer forwarding it, a commit re-encoded): refused at decode time.
bool isWireText(std::string_view text);
// The text with every byte that is not part of well-formed UTF-8 written as \xNN.
std::string escapeNonUtf8(std::string text);

// Appends v big-endian: keys that sort like the numbers they hold.
void appendBigEndian64(Bytes& out, uint64_t v);
uint64_t readBigEndian64(ByteView in);

}  // namespace meshos
