// RolloutRecord: what this node runs of a placed daemon as far as rollouts go — the version
// and spec it runs, the one before (for a rollback), a version that failed here. The node
// keeps one per daemon in its state store (key "rollout/<daemon>", written at each step), so
// an agent that restarts mid-rollout keeps running the spec it ran until its turn comes,
// instead of taking the commit's at once, and can still roll back.
//
// Format, version 1 (pinned by unit-vectors): one JSON object
//   {"format": 1, "version": "<16 hex>", "spec": "<base64 canonical spec>",
//    "previous_version": "<16 hex>", "previous": "<base64>" | null, "failed_version": "<16 hex>"}
// Unknown keys are ignored; a missing or malformed one is an error naming it. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/status.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::reconcile {

inline constexpr std::string_view kRolloutKeyPrefix = "rollout/";

struct RolloutRecord {
  uint64_t version = 0;                      // reconcile::specVersion of what runs here
  spec::DaemonSpec spec;                     // materialised for this node
  std::optional<spec::DaemonSpec> previous;  // before the last update here (rollback)
  uint64_t previous_version = 0;
  uint64_t failed_version = 0;               // a version that missed its progress deadline here
  friend bool operator==(const RolloutRecord&, const RolloutRecord&) = default;
};

std::string encodeRolloutRecord(const RolloutRecord& record);
Result<RolloutRecord> decodeRolloutRecord(std::string_view text);

}  // namespace meshos::reconcile
