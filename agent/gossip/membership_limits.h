// Membership's limits and small helpers, shared by the files that implement it
// (membership.cpp: lifecycle, sending, inputs, the member table; membership_app.cpp: app
// channels; membership_handlers.cpp: the protocol messages; membership_time.cpp: the timed
// steps). Private to agent/gossip.
#pragma once

#include <cstdint>
#include <string>

#include "agent/gossip/membership.h"

namespace meshos::gossip::detail {

constexpr size_t kMaxForwards = 1024;
constexpr size_t kMaxPendingStreams = 256;
constexpr int64_t kReapCheckMs = 10'000;
constexpr size_t kMaxUrgentProbes = 256;         // suspects queued to be probed out of turn
constexpr size_t kAtOnceFanoutRounds = 3;        // a leave or a death goes at once to this many rounds' members
constexpr int64_t kNever = INT64_MAX;              // a step with nothing to wait for
constexpr int64_t kSeedRetryBaseMs = 1'000;       // first retry of a seed never reached
constexpr size_t kMaxStateSources = 4;           // announcers remembered per origin
constexpr size_t kMaxStateFetchesPerStep = 8;    // body fetches started per tick
constexpr int64_t kStateFetchMaxBackoffProbes = 5;  // fetch backoff cap, in probe intervals
constexpr int64_t kSyncCooldownProbes = 5;        // per-address wait between sender syncs, in probe intervals
constexpr size_t kMaxSyncCooldowns = 256;         // addresses remembered for that wait
inline std::string stateSubject(const std::string& origin) { return "s:" + origin; }
constexpr size_t kMaxChannelBytes = 64;
inline AppReplyMsg appError(const Status& s) { return AppReplyMsg{false, std::string(codeName(s.code())), s.message(), {}}; }

}  // namespace meshos::gossip::detail
