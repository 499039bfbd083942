// JSON (nlohmann::json) and human text for chain records, heads, checkpoints, summaries
// and verify reports, plus the store-level functions behind
//   meshos-inspect chain verify|tail|show <chain> [--from N] [--json] [--data-dir DIR]
// and the control socket. Hashes are lowercase hex; payloads are base64 ("payload_b64")
// plus "payload_text" when they are printable UTF-8 text.
//
// Threads: any; the store functions only read (see ChainStore, verifyChain).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "chains/chain_format.h"
#include "chains/chain_store.h"
#include "chains/chain_verify.h"
#include "chains/chain_writer.h"

namespace meshos::chains {

nlohmann::json recordToJson(ChainName chain, const ChainRecord& record);
nlohmann::json headToJson(const ChainHead& head);
nlohmann::json checkpointToJson(const Checkpoint& cp);
nlohmann::json verifyReportToJson(const VerifyReport& report);
nlohmann::json summaryToJson(const ChainSummary& summary);
nlohmann::json summariesToJson(const ChainWriter& writer);  // {"chains": [...]} loop thread

std::string recordToText(ChainName chain, const ChainRecord& record);
std::string verifyReportToText(const VerifyReport& report);
std::string summaryToText(const ChainSummary& summary);
std::string verifyProgressText(ChainName chain, const VerifyProgress& progress);

// `chain tail`: {"chain": name, "records": [...]}. from = 0: the newest `count` records;
// otherwise `count` records starting at seq `from`.
Result<nlohmann::json> chainTailJson(const ChainStore& store, ChainName chain, uint64_t from,
                                     size_t count);
Result<std::string> chainTailText(const ChainStore& store, ChainName chain, uint64_t from,
                                  size_t count);
// `chain show`: without a seq, the chain's stored state {"chain": {name, first_seq, length,
// head, last_checkpoint, genesis}}; with a seq, that record {"record": {...}}.
Result<nlohmann::json> chainShowJson(const ChainStore& store, ChainName chain,
                                     std::optional<uint64_t> seq);
Result<std::string> chainShowText(const ChainStore& store, ChainName chain,
                                  std::optional<uint64_t> seq);
// `chain verify`: {"verify": report}. The progress callback sees the walk as it goes.
nlohmann::json chainVerifyJson(const ChainStore& store, ChainName chain, VerifyRange range,
                               std::optional<PublicKey> public_key,
                               const VerifyProgressFn& progress = {});

}  // namespace meshos::chains
