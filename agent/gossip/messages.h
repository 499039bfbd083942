// The gossip messages as plain C++ values, and their Cap'n Proto codec (packed encoding).
//
// Decoders take bytes that the keyring already authenticated, read them with ReaderOptions
// limits, catch every kj::Exception and return a Status: bad input is counted by the caller
// and changes nothing. Values only; no state; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "agent/core/bytes.h"
#include "agent/core/status.h"

namespace meshos::gossip {

enum class MemberState : uint8_t { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };
const char* memberStateName(MemberState s);

struct PingMsg {
  uint32_t seq_no = 0;
  std::string target_id;
  std::string source_address;
  std::string source_id;
};
struct IndirectPingMsg {
  uint32_t seq_no = 0;
  std::string target_id;
  std::string target_address;
  bool want_nack = false;
  std::string source_address;
};
struct AckMsg {
  uint32_t seq_no = 0;
};
struct NackMsg {
  uint32_t seq_no = 0;
};
struct AliveMsg {
  uint64_t incarnation = 0;
  std::string id;
  std::string name;
  std::string address;
  Bytes public_key;
};
struct SuspectMsg {
  uint64_t incarnation = 0;
  std::string id;
  std::string from;
};
struct DeadMsg {
  uint64_t incarnation = 0;
  std::string id;
  std::string from;
};
struct NodeStateMsg {
  std::string origin;
  uint64_t version = 0;
  bool has_body = false;
  Bytes body;
};

using Message = std::variant<PingMsg, IndirectPingMsg, AckMsg, NackMsg, AliveMsg, SuspectMsg, DeadMsg,
                             NodeStateMsg>;

struct MemberRecord {
  std::string id;
  std::string name;
  std::string address;
  Bytes public_key;
  uint64_t incarnation = 0;
  MemberState state = MemberState::kAlive;
};

struct PushPullMsg {
  bool join = false;
  std::vector<MemberRecord> members;
  std::vector<NodeStateMsg> states;
};

// An application request over the gossip TCP stream (see GossipService::onAppStream).
struct AppRequestMsg {
  std::string channel;
  std::string source_id;
  std::string source_address;
  Bytes body;
};
// The reply: ok with a body, or an error (Status code name and message).
struct AppReplyMsg {
  bool ok = false;
  std::string error_code;
  std::string error_message;
  Bytes body;
};

using StreamFrame = std::variant<PushPullMsg, PingMsg, AckMsg, AppRequestMsg, AppReplyMsg>;

// Limits for decoding; a packet or frame that exceeds them is refused.
struct DecodeLimits {
  uint64_t traversal_limit_words = 1u << 20;  // 8 MiB of message data
  int nesting_limit = 16;
  size_t max_messages = 256;
};

Bytes encodePacket(const std::vector<Message>& messages);
Result<std::vector<Message>> decodePacket(ByteView bytes, const DecodeLimits& limits = {});
Bytes encodeStreamFrame(const StreamFrame& frame);
Result<StreamFrame> decodeStreamFrame(ByteView bytes, const DecodeLimits& limits = {});

// Upper bound of what one message adds to a packed packet (for packing packets by budget).
size_t encodedSizeHint(const Message& m);

}  // namespace meshos::gossip
