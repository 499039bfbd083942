// The commit target: arbitrary bytes through decodeCommit(), the desired-state fold and a
// CommitLog (single submit and batch), which must never crash and never change the log for
// bytes that are not a validly signed commit.
#include "tests/fuzz/commit_world.h"
#include "tests/fuzz/fuzz_target.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>

#include "agent/commits/commit_json.h"
#include "agent/commits/commit_log.h"

namespace meshos::fuzz {

using namespace meshos::commits;

namespace {

// Fixed keys so a crash input replays: derived from constant seeds.
SigningKey fixedKey(uint8_t n) {
  SigningKey k;
  unsigned char seed[crypto_sign_SEEDBYTES];
  std::memset(seed, n, sizeof seed);
  crypto_sign_seed_keypair(k.public_key.data(), k.secret_key.data(), seed);
  return k;
}

struct World {
  SigningKey a = fixedKey(1), b = fixedKey(2);
  CommitLogConfig cfg;
  Bytes first;  // a valid seq-1 commit, so fuzz inputs can build on a non-empty log
  World() {
    if (initCrypto().isOk() == false) std::abort();
    cfg.cluster_id = "fuzz";
    cfg.genesis_trust.admins = {a.public_key, b.public_key};
    cfg.genesis_trust.threshold = 1;
    Commit c;
    c.cluster_id = "fuzz";
    c.seq = 1;
    c.issued_at_ms = 1000;
    spec::DaemonSpec s;
    s.name = "base";
    s.command = {"/bin/true"};
    c.operations.push_back(OpPutDaemon{s});
    signCommit(c, a);
    first = encodeCommit(c);
  }
};

World& world() {
  static World w;
  return w;
}

}  // namespace

CommitLog seededCommitLog() {
  World& w = world();
  CommitLog log(w.cfg);
  LogOutput out;
  check(log.submit(w.first, out).outcome == Outcome::kAccepted);
  return log;
}

int fuzzCommitOne(const uint8_t* data, size_t size) {
  World& w = world();
  ByteView in(data, size);
  auto d = decodeCommit(in);
  // What `meshos-admin show` and the snapshot render of any decodable commit.
  if (d) (void)commitToJson(*d, &w.cfg.genesis_trust).dump();
  if (d && d->operation_error.isOk()) {
    // The fold of any decodable commit: either an error or a state that holds together.
    DesiredState empty;
    empty.trust = w.cfg.genesis_trust;
    auto next = applyCommitOps(empty, d->commit, d->hash);
    if (next) check(next->trust.validate().isOk());
    // Co-signing keeps the body, so the hash, and the new signature verifies.
    auto cosigned = addSignature(*d, w.b);
    if (cosigned) {
      auto d2 = decodeCommit(*cosigned);
      check(d2.isOk() && d2->hash == d->hash);
      bool found = false;
      for (const auto& s : d2->commit.signatures) {
        if (s.key_id == w.b.public_key)
          found = verifySignature(s.key_id, d2->signing_bytes, s.signature);
      }
      check(found);
    }
  }
  CommitLog log(w.cfg);
  LogOutput out;
  (void)log.submit(w.first, out);
  const Head before = log.head();
  LogOutput out2;
  SubmitResult r = log.submit(in, out2);
  if (r.outcome != Outcome::kAccepted) {
    check(log.head() == before);
    check(out2.store.empty());
  } else {
    check(d.isOk());
    check(log.head().hash == d->hash);
  }
  // The same bytes as a fetched batch, and as a peer's advertised head.
  CommitLog log2(w.cfg);
  LogOutput out3;
  (void)log2.acceptBatch({w.first, Bytes(in.begin(), in.end())}, out3);
  if (size >= 40) {
    Head h;
    h.seq = readBigEndian64(in.subspan(0, 8));
    std::memcpy(h.hash.data(), data + 8, 32);
    if (auto range = log2.planFetch(h)) check(range->from <= range->to);
  }
  return 0;
}

std::vector<Bytes> commitSeedCorpus() {
  World& w = world();
  Hash256 parent = decodeCommit(w.first)->hash;
  spec::DaemonSpec web;
  web.name = "web";
  web.command = {"/usr/bin/web", "--port", "80"};
  web.replicas = 3;
  web.env = {{"A", "1"}};
  std::vector<std::vector<Operation>> ops = {
      {OpPutDaemon{web}},
      {OpScale{"base", 2}},
      {OpRemoveDaemon{"base"}},
      {OpPauseDaemon{"base"}, OpResumeDaemon{"base"}},
      {OpSetMaintenance{"node-1", MaintenanceMode::kDrain, 5000}},
      {OpSetMaintenance{"node-1", MaintenanceMode::kActive, 0}},
      {OpFreeze{9000, "release"}},
      {OpThaw{}},
      {OpForceRestart{"base"}, OpKillRelocation{"base"}},
      {OpAddAdminKey{fixedKey(3).public_key}, OpSetThreshold{2}},
      {OpRemoveAdminKey{w.b.public_key}},
  };
  std::vector<Bytes> out = {w.first};
  for (auto& o : ops) {
    Commit c;
    c.cluster_id = "fuzz";
    c.seq = 2;
    c.parent = parent;
    c.issued_at_ms = 2000;
    c.operations = std::move(o);
    signCommit(c, w.a);
    out.push_back(encodeCommit(c));
  }
  return out;
}

}  // namespace meshos::fuzz
