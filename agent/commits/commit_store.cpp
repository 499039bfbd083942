#include "agent/commits/commit_store.h"

#include <cstring>


namespace meshos::commits {

namespace {
constexpr std::string_view kCommitPrefix = "commits/c";
constexpr std::string_view kHeadKey = "commits/head";

std::string commitKey(uint64_t seq) {
  Bytes b;
  appendBigEndian64(b, seq);
  return std::string(kCommitPrefix) + std::string(asChars(b));
}

std::string encodeHead(const Head& h) {
  Bytes b;
  appendBigEndian64(b, h.seq);
  b.insert(b.end(), h.hash.begin(), h.hash.end());
  return std::string(asChars(b));
}

Result<Head> decodeHead(std::string_view v) {
  if (v.size() != 40) return Status::corruption("commit head record is not 40 bytes");
  Head h;
  h.seq = readBigEndian64(asBytes(v.substr(0, 8)));
  std::memcpy(h.hash.data(), v.data() + 8, 32);
  return h;
}
}  // namespace

Status CommitStore::putCommit(uint64_t seq, ByteView encoded) {
  return kv_.putState(commitKey(seq), asChars(encoded));
}

Result<std::map<uint64_t, Bytes>> CommitStore::loadCommits() const {
  std::map<uint64_t, Bytes> out;
  Status bad = Status::ok();
  Status st = kv_.scanState(kCommitPrefix, [&](std::string_view key, std::string_view value) {
    if (key.size() != kCommitPrefix.size() + 8) {
      bad = Status::corruption("commit record with a malformed key");
      return false;
    }
    uint64_t seq = readBigEndian64(asBytes(key.substr(kCommitPrefix.size())));
    auto b = asBytes(value);
    out.emplace(seq, Bytes(b.begin(), b.end()));
    return true;
  });
  if (!st) return st;
  if (!bad) return bad;
  return out;
}

Status CommitStore::putHead(const Head& head) {
  return kv_.putState(kHeadKey, encodeHead(head));
}

Result<std::optional<Head>> CommitStore::loadHead() const {
  auto v = kv_.getState(kHeadKey);
  if (!v) return v.status();
  if (!v->has_value()) return std::optional<Head>{};
  auto h = decodeHead(**v);
  if (!h) return h.status();
  return std::optional<Head>{*h};
}

Status applyStoreWrites(CommitStore& store, const StoreWrites& writes) {
  for (const auto& [seq, bytes] : writes.commits) {
    MESHOS_RETURN_IF_ERROR(store.putCommit(seq, bytes));
  }
  if (writes.head) MESHOS_RETURN_IF_ERROR(store.putHead(*writes.head));
  return Status::ok();
}

Status loadCommitLog(const CommitStore& store, CommitLog& log, LogOutput& out) {
  auto head = store.loadHead();
  if (!head) return head.status().withContext("loading the commit head");
  auto commits = store.loadCommits();
  if (!commits) return commits.status().withContext("loading commits");
  return log.restore(*commits, *head, out);
}

}  // namespace meshos::commits
