#include "agent/control/control_frame.h"

#include <capnp/serialize.h>

#include <cstring>

namespace meshos::control {

Bytes encodeFrame(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  Bytes out;
  out.reserve(4 + bytes.size());
  uint32_t n = static_cast<uint32_t>(bytes.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(n >> shift));
  out.insert(out.end(), bytes.begin(), bytes.end());
  return out;
}

Result<std::optional<Bytes>> FrameDecoder::next() {
  if (buffer_.size() < 4) return std::optional<Bytes>();
  uint32_t n = (uint32_t{buffer_[0]} << 24) | (uint32_t{buffer_[1]} << 16) |
               (uint32_t{buffer_[2]} << 8) | uint32_t{buffer_[3]};
  if (n > max_frame_bytes_) {
    return Status::invalid("frame of " + std::to_string(n) + " bytes is over the limit of " +
                           std::to_string(max_frame_bytes_));
  }
  if (buffer_.size() < 4 + size_t{n}) return std::optional<Bytes>();
  Bytes payload(buffer_.begin() + 4, buffer_.begin() + 4 + n);
  buffer_.erase(buffer_.begin(), buffer_.begin() + 4 + n);
  return std::optional<Bytes>(std::move(payload));
}

Result<std::unique_ptr<FrameReader>> FrameReader::open(Bytes payload) {
  if (payload.empty() || payload.size() % sizeof(capnp::word) != 0) {
    return Status::invalid("message of " + std::to_string(payload.size()) +
                           " bytes is not a whole number of 8-byte words");
  }
  auto r = std::unique_ptr<FrameReader>(new FrameReader());
  r->words_ = kj::heapArray<capnp::word>(payload.size() / sizeof(capnp::word));
  std::memcpy(r->words_.begin(), payload.data(), payload.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = payload.size() / sizeof(capnp::word) * 4 + 64;
  options.nestingLimit = 16;
  try {
    r->reader_ = std::make_unique<capnp::FlatArrayMessageReader>(r->words_.asPtr(), options);
  } catch (const kj::Exception& e) {
    return Status::invalid(std::string("malformed message: ") + e.getDescription().cStr());
  }
  return r;
}

}  // namespace meshos::control
