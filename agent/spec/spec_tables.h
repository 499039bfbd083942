// The names of a spec's enums and the ranges of its numbers, shared by validation
// (daemon_spec.cpp), the TOML reader (daemon_spec_toml.cpp) and the Cap'n Proto form
// (daemon_spec_capnp.cpp). Private to agent/spec.
#pragma once

#include <cstdint>
#include <string_view>

#include "agent/config/toml_table.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::spec::detail {

using config::Bounds;
using config::NameTable;
using config::TomlTable;
using config::choices;
using config::nameOf;
using config::parseName;

constexpr NameTable<DaemonKind, 3> kKinds = {{{DaemonKind::kService, "service"},
                                             {DaemonKind::kJob, "job"},
                                             {DaemonKind::kCron, "cron"}}};
constexpr NameTable<RestartPolicy, 3> kPolicies = {{{RestartPolicy::kAlways, "always"},
                                                   {RestartPolicy::kOnFailure, "on-failure"},
                                                   {RestartPolicy::kNever, "never"}}};
constexpr NameTable<PlacementStrategy, 3> kStrategies = {
    {{PlacementStrategy::kSpread, "spread"},
     {PlacementStrategy::kBinpack, "binpack"},
     {PlacementStrategy::kNear, "near"}}};
constexpr NameTable<ConstraintOp, 3> kOps = {{{ConstraintOp::kEquals, "equals"},
                                             {ConstraintOp::kIn, "in"},
                                             {ConstraintOp::kNotIn, "not-in"}}};
constexpr NameTable<CheckType, 3> kCheckTypes = {
    {{CheckType::kExec, "exec"}, {CheckType::kTcp, "tcp"}, {CheckType::kHttp, "http"}}};
constexpr NameTable<DependencyCondition, 3> kConditions = {
    {{DependencyCondition::kStarted, "started"},
     {DependencyCondition::kHealthy, "healthy"},
     {DependencyCondition::kReady, "ready"}}};
constexpr NameTable<OnTimeout, 3> kOnTimeouts = {{{OnTimeout::kFail, "fail"},
                                                 {OnTimeout::kWarn, "warn"},
                                                 {OnTimeout::kContinue, "continue"}}};
constexpr NameTable<MissedRunPolicy, 2> kMissed = {
    {{MissedRunPolicy::kSkip, "skip"}, {MissedRunPolicy::kRunOnce, "run-once"}}};
constexpr NameTable<LimitsMode, 2> kLimitsModes = {
    {{LimitsMode::kEnforce, "enforce"}, {LimitsMode::kBestEffort, "best-effort"}}};

constexpr NameTable<PortProtocol, 2> kProtocols = {
    {{PortProtocol::kTcp, "tcp"}, {PortProtocol::kUdp, "udp"}}};

constexpr NameTable<OnUpdateFailure, 2> kOnUpdateFailure = {
    {{OnUpdateFailure::kPause, "pause"}, {OnUpdateFailure::kRollback, "rollback"}}};

constexpr NameTable<GroupStrategy, 3> kGroupStrategies = {{{GroupStrategy::kOneForOne, "one-for-one"},
                                                          {GroupStrategy::kOneForAll, "one-for-all"},
                                                          {GroupStrategy::kRestForOne, "rest-for-one"}}};

constexpr NameTable<RuntimeKind, 2> kRuntimeKinds = {{{RuntimeKind::kProcess, "process"}, {RuntimeKind::kOci, "oci"}}};
constexpr NameTable<ContainerNetwork, 2> kContainerNetworks = {
    {{ContainerNetwork::kHost, "host"}, {ContainerNetwork::kNone, "none"}}};

// Ranges shared by the TOML parser (which reports the line) and validate().
constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kMaxBytes = int64_t{1} << 50;
using Range = Bounds;
constexpr Range kReplicas{0, 10'000};
constexpr Range kMillicores{0, 1'000'000'000};
constexpr Range kBytes{0, kMaxBytes};
constexpr Range kPerNode{0, 10'000};
constexpr Range kDelayMs{0, kDayMs};
constexpr Range kPositiveMs{1, kDayMs};
constexpr Range kCrashes{0, 1'000'000};
constexpr Range kWeekMs{0, 7 * kDayMs};
constexpr Range kExitCode{0, 255};
constexpr Range kPort{1, 65'535};
constexpr Range kThreshold{1, 1'000};
constexpr Range kGraceMs{0, 3'600'000};
constexpr Range kOpenFiles{0, int64_t{1} << 30};
constexpr Range kMemoryMax{4'096, kMaxBytes};
constexpr Range kCpuMax{1, 1'000'000'000};
constexpr Range kPidsMax{1, 4'194'304};
constexpr Range kLogBytes{4'096, int64_t{1} << 40};
constexpr Range kKeepFiles{0, 100};
constexpr Range kRetries{0, 1'000};
constexpr Range kMaxUnavailable{1, 10'000};
constexpr Range kIntensity{0, 1'000};
constexpr Range kWindowMs{1'000, kDayMs};

inline bool inRange(int64_t v, Range r) { return v >= r.lo && v <= r.hi; }

}  // namespace meshos::spec::detail
