// Rollout record target: a node's "rollout/<daemon>" state entry as a damaged disk may leave
// it. Decoding never throws; a record that decodes encodes again to bytes that decode to
// the same record (what a restarted agent stores is what it read).
#include <string>

#include "agent/reconcile/rollout_record.h"
#include "tests/fuzz/fuzz_target.h"

namespace meshos::fuzz {

using reconcile::RolloutRecord;

namespace {

bool sameRecord(const RolloutRecord& a, const RolloutRecord& b) {
  if (a.version != b.version || a.previous_version != b.previous_version || a.failed_version != b.failed_version ||
      a.previous.has_value() != b.previous.has_value()) {
    return false;
  }
  if (!spec::canonicalEqual(a.spec, b.spec)) return false;
  return !a.previous || spec::canonicalEqual(*a.previous, *b.previous);
}

}  // namespace

int fuzzRolloutRecord(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto r = reconcile::decodeRolloutRecord(text);
  if (!r) return 0;
  auto again = reconcile::decodeRolloutRecord(reconcile::encodeRolloutRecord(*r));
  check(again.isOk());
  check(sameRecord(*r, *again));
  return 0;
}

std::vector<Bytes> rolloutRecordSeeds() {
  spec::DaemonSpec s;
  s.name = "web";
  s.command = {"/usr/bin/web", "--port", "${port.http}"};
  s.ports = {spec::Port{"http", 8080, spec::PortProtocol::kTcp}};
  s.env = {{"VERSION", "2"}};
  RolloutRecord r{0x1122334455667788, s, std::nullopt, 0, 0};
  std::vector<Bytes> out;
  out.push_back(bytesOf(reconcile::encodeRolloutRecord(r)));
  r.previous = s;
  r.previous->env["VERSION"] = "1";
  r.previous_version = 0x0102030405060708;
  r.failed_version = 0x1122334455667788;
  out.push_back(bytesOf(reconcile::encodeRolloutRecord(r)));
  out.push_back(bytesOf(R"({"format": 1, "version": "00", "spec": "", "previous": null})"));
  return out;
}

}  // namespace meshos::fuzz
