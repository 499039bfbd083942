// Helpers for the commit tests: admin keys, commits built and signed in one line.
#pragma once

#include <vector>

#include "agent/commits/commit_log.h"

namespace meshos::commits::testing {

inline spec::DaemonSpec daemon(const std::string& name, int64_t replicas = 1) {
  spec::DaemonSpec s;
  s.name = name;
  s.command = {"/bin/sleep", "1000"};
  s.replicas = replicas;
  return s;
}

struct Admins {
  std::vector<SigningKey> keys;
  explicit Admins(size_t n) {
    for (size_t i = 0; i < n; ++i) keys.push_back(SigningKey::generate());
  }
  TrustSet trust(uint32_t threshold) const {
    TrustSet t;
    for (const auto& k : keys) t.admins.insert(k.public_key);
    t.threshold = threshold;
    return t;
  }
};

inline Commit makeCommit(uint64_t seq, const Hash256& parent, std::vector<Operation> ops,
                         int64_t issued_at_ms = 1'000, const std::string& cluster = "test") {
  Commit c;
  c.cluster_id = cluster;
  c.seq = seq;
  c.parent = parent;
  c.issued_at_ms = issued_at_ms;
  c.operations = std::move(ops);
  return c;
}

inline Bytes signedBytes(Commit c, const std::vector<const SigningKey*>& signers) {
  for (const auto* k : signers) signCommit(c, *k);
  return encodeCommit(c);
}

// A linear chain of n commits signed by `k`, from `start` (genesis by default).
inline std::vector<Bytes> chainOf(const SigningKey& k, size_t n, const std::string& tag,
                                  const Hash256& start = {}, uint64_t first_seq = 1) {
  std::vector<Bytes> out;
  Hash256 parent = start;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t seq = first_seq + i;
    Commit c = makeCommit(seq, parent, {OpPutDaemon{daemon(tag + std::to_string(seq))}});
    out.push_back(signedBytes(c, {&k}));
    parent = commitHash(c);
  }
  return out;
}

inline CommitLogConfig config(const TrustSet& trust) {
  CommitLogConfig c;
  c.cluster_id = "test";
  c.genesis_trust = trust;
  return c;
}

}  // namespace meshos::commits::testing
