// JSON views of commits and of the commit log, for `meshos-admin show --json` and for
// `meshos-inspect` (through the control socket). Pure; any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "agent/commits/commit_log.h"

namespace meshos::commits {

nlohmann::json daemonSpecToJson(const spec::DaemonSpec& s);
nlohmann::json operationToJson(const Operation& op);
// Names only: a variable shows as "<secret:db>", never a value.
nlohmann::json secretUsesToJson(const spec::SecretUses& u);
// Name and recipients (kind, key, node id, sealed size); never the ciphertext.
nlohmann::json sealedSecretToJson(const SealedSecret& s);

// Which signatures of a commit verify under `trust` (nullopt: only whether they verify at
// all over the commit's bytes).
struct SignatureCheck {
  PublicKey key_id{};
  bool verifies = false;   // the signature is valid for this key over this commit
  bool trusted = false;    // the key is in the trust set given
  bool duplicate = false;  // an earlier signature has the same key
};
std::vector<SignatureCheck> checkSignatures(const DecodedCommit& d, const TrustSet* trust);

// {"hash", "seq", "parent", "cluster", "issued_at_ms", "issuer", "note", "operations": [...],
//  "signatures": [{"key", "verifies", "trusted", "duplicate"}], "valid_signers",
//  "threshold", "meets_threshold"}  (the last three only with a trust set)
nlohmann::json commitToJson(const DecodedCommit& d, const TrustSet* trust);

nlohmann::json headToJson(const Head& h);                    // {"seq", "hash"}
nlohmann::json trustToJson(const TrustSet& t);               // {"admins": [...], "threshold"}
nlohmann::json desiredDaemonsToJson(const DesiredState& s);  // [{"name", "paused", ...}]
// The whole view meshos-inspect shows: {"head", "trust", "freeze", "maintenance",
// "daemons", "pending", "rejected", "counters"}.
nlohmann::json commitLogToJson(const CommitLog& log);

// ---- control-socket replies (the agent answers with these as Reply.json) ----
// submitCommit → {"outcome": "accepted"|"pending"|"duplicate"|"rejected"|"superseded",
//                 "reason": "none"|"bad-signature"|..., "message", "hash", "seq"}
nlohmann::json submitReplyJson(const SubmitResult& r);
// commitHead → {"cluster", "head": {"seq", "hash"}, "trust": {...}, "frozen_until_ms"|null}
nlohmann::json headReplyJson(const CommitLog& log);
// getCommits(from, to) → {"head": {...}, "commits": ["<base64 Commit>", ...]} (bounded by
// max_range; the client asks again from the last seq + 1)
nlohmann::json commitsReplyJson(const CommitLog& log, uint64_t from, uint64_t to);

}  // namespace meshos::commits
