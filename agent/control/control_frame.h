// Control-socket framing: a 4-byte big-endian length, then one Cap'n Proto message
// (standard unpacked serialisation) of proto/control.capnp. Shared by the agent's server
// and every client (meshos-inspect, meshos-admin). Values only; no I/O here.
#pragma once

#include <capnp/message.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/core/bytes.h"
#include "agent/core/status.h"

namespace meshos::control {

inline constexpr size_t kMaxControlFrameBytes = 1 << 20;  // requests and replies alike
inline constexpr size_t kMaxControlReplyBytes = 64 << 20;  // replies may carry long chains

// Serialises a message into one frame.
Bytes encodeFrame(capnp::MessageBuilder& message);

// Incremental decoder: feed bytes as they arrive, take whole frames out.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame_bytes = kMaxControlFrameBytes)
      : max_frame_bytes_(max_frame_bytes) {}
  void feed(ByteView data) { buffer_.insert(buffer_.end(), data.begin(), data.end()); }
  // A whole frame's payload, std::nullopt while incomplete, or an error (oversized frame)
  // after which the stream cannot be trusted.
  Result<std::optional<Bytes>> next();
  size_t buffered() const { return buffer_.size(); }

 private:
  size_t max_frame_bytes_;
  Bytes buffer_;
};

// Reads a frame payload as a Cap'n Proto message. The payload must outlive the reader;
// malformed bytes give kInvalidArgument, never an exception.
class FrameReader {
 public:
  static Result<std::unique_ptr<FrameReader>> open(Bytes payload);
  capnp::MessageReader& message() { return *reader_; }

 private:
  Bytes payload_;  // 8-byte aligned copy lives in words_
  kj::Array<capnp::word> words_;
  std::unique_ptr<capnp::MessageReader> reader_;
};

}  // namespace meshos::control
