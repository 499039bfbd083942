// Commit verification throughput vs raw libsodium ed25519 verify, one core.
//   bench_commit_verify [--commits N] [--rounds R]
// raw:     crypto_sign_verify_detached over a commit's signing bytes
// verify:  decodeCommit (bounded Cap'n Proto read + canonicalize + BLAKE2b) + signature check
// submit:  CommitLog::submit of a linear chain (decode, verify, freeze check, fold one scale
//          operation, audit record, store writes), threshold 1
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/commits/commit_log.h"

using namespace meshos;
using namespace meshos::commits;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  size_t n = 4000;
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--commits") n = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
  }
  if (!initCrypto()) return 1;
  SigningKey k = SigningKey::generate();
  CommitLogConfig cfg;
  cfg.cluster_id = "bench";
  cfg.genesis_trust.admins = {k.public_key};
  cfg.genesis_trust.threshold = 1;
  std::vector<Bytes> chain;
  Hash256 parent{};
  for (size_t i = 0; i < n; ++i) {
    Commit c;
    c.cluster_id = "bench";
    c.seq = i + 1;
    c.parent = parent;
    c.issued_at_ms = 1'700'000'000'000 + static_cast<int64_t>(i);
    c.issuer = k.public_key;
    if (i == 0) {
      spec::DaemonSpec s;
      s.name = "web";
      s.command = {"/usr/bin/web", "--port", "8080"};
      c.operations.push_back(OpPutDaemon{s});
    } else {
      c.operations.push_back(OpScale{"web", static_cast<int64_t>(1 + i % 9)});
    }
    signCommit(c, k);
    parent = commitHash(c);
    chain.push_back(encodeCommit(c));
  }
  std::vector<DecodedCommit> decoded;
  for (const auto& b : chain) decoded.push_back(*decodeCommit(b));
  std::printf("%zu commits of %zu bytes (signed part %zu bytes), %d rounds, best round shown\n", n,
              chain[1].size(), decoded[1].signing_bytes.size(), rounds);
  double best_raw = 0, best_verify = 0, best_submit = 0;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = Clock::now();
    size_t ok = 0;
    for (const auto& d : decoded) {
      ok += crypto_sign_verify_detached(d.commit.signatures[0].signature.data(),
                                        d.signing_bytes.data(), d.signing_bytes.size(),
                                        d.commit.signatures[0].key_id.data()) == 0;
    }
    auto t1 = Clock::now();
    size_t ok2 = 0;
    for (const auto& b : chain) {
      auto d = decodeCommit(b);
      ok2 += d && verifySignature(d->commit.signatures[0].key_id, d->signing_bytes,
                                  d->commit.signatures[0].signature);
    }
    auto t2 = Clock::now();
    CommitLog log(cfg);
    size_t ok3 = 0;
    for (const auto& b : chain) {
      LogOutput out;
      ok3 += log.submit(b, out).outcome == Outcome::kAccepted;
    }
    auto t3 = Clock::now();
    if (ok != n || ok2 != n || ok3 != n) {
      std::fprintf(stderr, "verification failed: %zu %zu %zu of %zu\n", ok, ok2, ok3, n);
      return 1;
    }
    auto rate = [n](auto a, auto b) {
      return static_cast<double>(n) / std::chrono::duration<double>(b - a).count();
    };
    best_raw = std::max(best_raw, rate(t0, t1));
    best_verify = std::max(best_verify, rate(t1, t2));
    best_submit = std::max(best_submit, rate(t2, t3));
  }
  std::printf("raw ed25519 verify      %9.0f /s\n", best_raw);
  std::printf("decode + verify         %9.0f /s  (%.1f %% of raw)\n", best_verify,
              100.0 * best_verify / best_raw);
  std::printf("CommitLog::submit       %9.0f /s  (%.1f %% of raw)\n", best_submit,
              100.0 * best_submit / best_raw);
  return 0;
}
