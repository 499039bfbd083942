#include "agent/core/bytes.h"

#include <sodium.h>

namespace meshos {

std::string toHex(ByteView bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

Result<Bytes> fromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return Status::invalid("hex text has an odd length");
  Bytes out(hex.size() / 2);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &len, &end) != 0 ||
      end != hex.data() + hex.size()) {
    return Status::invalid("not hex text");
  }
  out.resize(len);
  return out;
}

std::string toBase64(ByteView bytes) {
  const int variant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), variant);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

Result<Bytes> fromBase64(std::string_view text) {
  Bytes out(text.size() / 4 * 3 + 3);
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return Status::invalid("not base64 text");
  }
  out.resize(len);
  return out;
}

void appendBigEndian64(Bytes& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

uint64_t readBigEndian64(ByteView in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < in.size(); ++i) v = (v << 8) | in[i];
  return v;
}

namespace {

// The length of the well-formed UTF-8 sequence at p[i], or 0 when there is none.
size_t utf8SequenceAt(const unsigned char* p, size_t n, size_t i) {
  const unsigned c = p[i];
  if (c < 0x80) return 1;
  size_t len = 0;
  unsigned lo = 0x80, hi = 0xbf;  // the range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;  // overlong
    if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;  // overlong
    if (c == 0xf4) hi = 0x8f;  // over U+10FFFF
  } else {
    return 0;
  }
  if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((p[i + k] & 0xc0) != 0x80) return 0;
  }
  return len;
}

}  // namespace

bool isUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0, len = 0; i < text.size(); i += len) {
    len = utf8SequenceAt(p, text.size(), i);
    if (len == 0) return false;
  }
  return true;
}

bool isWireText(std::string_view text) {
  return text.find('\0') == std::string_view::npos && isUtf8(text);
}

std::string escapeNonUtf8(std::string text) {
  if (isUtf8(text)) return text;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::string out;
  out.reserve(text.size() + 16);
  for (size_t i = 0; i < text.size();) {
    const size_t len = utf8SequenceAt(p, text.size(), i);
    if (len == 0) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[p[i] >> 4];
      out += kHex[p[i] & 0xf];
      ++i;
    } else {
      out.append(text, i, len);
      i += len;
    }
  }
  return out;
}

}  // namespace meshos
