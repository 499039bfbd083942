#include "agent/reconcile/rollout_record.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "agent/core/bytes.h"

namespace meshos::reconcile {

namespace {

std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

Result<uint64_t> readHex64(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().size() != 16) {
    return Status::invalid(std::string("rollout record: '") + key + "' must be 16 hex digits");
  }
  auto bytes = fromHex(j[key].get<std::string>());
  if (!bytes) return Status::invalid(std::string("rollout record: '") + key + "' must be 16 hex digits");
  uint64_t v = 0;
  for (uint8_t b : *bytes) v = (v << 8) | b;
  return v;
}

Result<spec::DaemonSpec> readSpec(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) {
    return Status::invalid(std::string("rollout record: '") + key + "' must be a base64 spec");
  }
  auto bytes = fromBase64(j[key].get<std::string>());
  if (!bytes) return bytes.status().withContext(std::string("rollout record: '") + key + "'");
  auto s = spec::fromBytes(*bytes);
  if (!s) return s.status().withContext(std::string("rollout record: '") + key + "'");
  return s;
}

}  // namespace

std::string encodeRolloutRecord(const RolloutRecord& r) {
  nlohmann::json j = {{"format", 1},
                      {"version", hex64(r.version)},
                      {"spec", toBase64(spec::canonicalBytes(r.spec))},
                      {"previous_version", hex64(r.previous_version)},
                      {"previous", r.previous ? nlohmann::json(toBase64(spec::canonicalBytes(*r.previous))) : nullptr},
                      {"failed_version", hex64(r.failed_version)}};
  return j.dump();
}

Result<RolloutRecord> decodeRolloutRecord(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::invalid("rollout record: not a JSON object");
  if (!j.contains("format") || !j["format"].is_number_integer() || j["format"].get<int64_t>() != 1) {
    return Status::invalid("rollout record: 'format' must be 1");
  }
  auto version = readHex64(j, "version");
  auto previous_version = readHex64(j, "previous_version");
  auto failed_version = readHex64(j, "failed_version");
  for (const auto* v : {&version, &previous_version, &failed_version}) {
    if (!*v) return v->status();
  }
  auto spec = readSpec(j, "spec");
  if (!spec) return spec.status();
  if (!j.contains("previous")) return Status::invalid("rollout record: 'previous' is missing");
  RolloutRecord r{*version, std::move(*spec), std::nullopt, *previous_version, *failed_version};
  if (!j["previous"].is_null()) {
    auto prev = readSpec(j, "previous");
    if (!prev) return prev.status();
    r.previous = std::move(*prev);
  }
  return r;
}

}  // namespace meshos::reconcile
