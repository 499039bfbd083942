#include "agent/commits/commit_log.h"

#include <doctest/doctest.h>

#include "agent/commits/commit_json.h"
#include "commit_test_util.h"

using namespace meshos;
using namespace meshos::commits;
using namespace meshos::commits::testing;

namespace {
struct Fixture {
  Fixture() { REQUIRE(initCrypto().isOk()); }
};

SubmitResult submitOk(CommitLog& log, const Bytes& b) {
  LogOutput out;
  SubmitResult r = log.submit(b, out);
  INFO(r.message);
  REQUIRE(r.outcome == Outcome::kAccepted);
  return r;
}

SubmitResult expectReject(CommitLog& log, const Bytes& b, RejectReason reason) {
  Head before = log.head();
  DesiredState state_before = log.desired();
  LogOutput out;
  SubmitResult r = log.submit(b, out);
  INFO(r.message);
  CHECK(r.outcome == Outcome::kRejected);
  CHECK(reasonName(r.reason) == reasonName(reason));
  CHECK_FALSE(r.message.empty());
  // Bad input changes nothing and is audited.
  CHECK(log.head() == before);
  CHECK(log.desired() == state_before);
  CHECK(out.store.empty());
  CHECK(out.announce.empty());
  REQUIRE(out.audit.size() == 1);
  CHECK(out.audit[0].outcome == Outcome::kRejected);
  CHECK(out.audit[0].reason == reason);
  return r;
}
}  // namespace

TEST_CASE_FIXTURE(Fixture, "encode/decode round trip; the hash ignores signatures") {
  Admins a(2);
  Commit c = makeCommit(1, {}, {OpPutDaemon{daemon("web", 3)}, OpFreeze{5000, "release"}});
  c.note = "hello";
  Hash256 h = commitHash(c);
  signCommit(c, a.keys[0]);
  auto d1 = decodeCommit(encodeCommit(c));
  REQUIRE(d1.isOk());
  CHECK(d1->hash == h);
  CHECK(d1->operation_error.isOk());
  REQUIRE(d1->commit.operations.size() == 2);
  CHECK(std::get<OpPutDaemon>(d1->commit.operations[0]).spec.replicas == 3);
  CHECK(d1->commit.note == "hello");
  signCommit(c, a.keys[1]);
  auto d2 = decodeCommit(encodeCommit(c));
  REQUIRE(d2.isOk());
  CHECK(d2->hash == h);
  CHECK(d2->commit.signatures.size() == 2);
  // Re-signing with the same key replaces, not appends.
  signCommit(c, a.keys[1]);
  CHECK(c.signatures.size() == 2);
}

TEST_CASE_FIXTURE(Fixture, "threshold 1: a commit signed by one admin is accepted") {
  Admins a(1);
  CommitLog log(config(a.trust(1)));
  LogOutput out;
  Bytes b = signedBytes(makeCommit(1, {}, {OpPutDaemon{daemon("web")}}), {&a.keys[0]});
  SubmitResult r = log.submit(b, out);
  REQUIRE(r.outcome == Outcome::kAccepted);
  CHECK(log.head().seq == 1);
  CHECK(log.head().hash == r.hash);
  CHECK(log.desired().daemons.count("web") == 1);
  CHECK(out.state_changed);
  REQUIRE(out.audit.size() == 1);
  CHECK(auditKind(out.audit[0]) == "commit.accepted");
  CHECK(out.audit[0].signers == std::vector<PublicKey>{a.keys[0].public_key});
  CHECK(out.store.commits.size() == 1);
  CHECK(out.store.head->seq == 1);
  CHECK(out.announce.size() == 1);
  // Submitting it again is a duplicate: nothing happens, nothing is audited.
  LogOutput again;
  CHECK(log.submit(b, again).outcome == Outcome::kDuplicate);
  CHECK(again.audit.empty());
}

TEST_CASE_FIXTURE(Fixture, "2-of-3: one signature is not enough, two are") {
  Admins a(3);
  CommitLog log(config(a.trust(2)));
  Commit c = makeCommit(1, {}, {OpPutDaemon{daemon("db")}});
  expectReject(log, signedBytes(c, {&a.keys[0]}), RejectReason::kInsufficientSignatures);
  submitOk(log, signedBytes(c, {&a.keys[0], &a.keys[2]}));
  CHECK(log.head().seq == 1);
}

TEST_CASE_FIXTURE(Fixture, "duplicate signatures count once") {
  Admins a(3);
  Commit c = makeCommit(1, {}, {OpPutDaemon{daemon("db")}});
  signCommit(c, a.keys[0]);
  c.signatures.push_back(c.signatures[0]);  // the same key twice
  Bytes b = encodeCommit(c);
  CommitLog two(config(a.trust(2)));
  expectReject(two, b, RejectReason::kDuplicateSigner);
  CommitLog one(config(a.trust(1)));
  submitOk(one, b);  // with threshold 1 the duplicate is simply ignored
}

TEST_CASE_FIXTURE(Fixture, "every rejection reason") {
  Admins a(2);
  SigningKey stranger = SigningKey::generate();
  CommitLog log(config(a.trust(1)));
  Hash256 h1 =
      submitOk(log, signedBytes(makeCommit(1, {}, {OpPutDaemon{daemon("web")}}), {&a.keys[0]}))
          .hash;
  Hash256 h2 =
      submitOk(log, signedBytes(makeCommit(2, h1, {OpScale{"web", 2}}), {&a.keys[1]})).hash;

  SUBCASE("malformed commit") {
    expectReject(log, Bytes{1, 2, 3}, RejectReason::kMalformedCommit);
    expectReject(log, Bytes(64, 0xff), RejectReason::kMalformedCommit);
    Commit c = makeCommit(3, h2, {OpThaw{}});
    Bytes b = signedBytes(c, {&a.keys[0]});
    b.resize(b.size() - 8);  // truncated
    expectReject(log, b, RejectReason::kMalformedCommit);
  }
  SUBCASE("wrong cluster") {
    expectReject(log, signedBytes(makeCommit(3, h2, {OpThaw{}}, 1000, "other"), {&a.keys[0]}),
                 RejectReason::kWrongCluster);
  }
  SUBCASE("unknown key") {
    expectReject(log, signedBytes(makeCommit(3, h2, {OpThaw{}}), {&stranger}),
                 RejectReason::kUnknownKey);
  }
  SUBCASE("bad signature") {
    Commit c = makeCommit(3, h2, {OpScale{"web", 5}});
    signCommit(c, a.keys[0]);
    c.operations[0] = OpScale{"web", 50};  // changed after signing
    expectReject(log, encodeCommit(c), RejectReason::kBadSignature);
    Commit d = makeCommit(3, h2, {OpScale{"web", 5}});
    signCommit(d, a.keys[0]);
    d.signatures[0].signature[10] ^= 1;
    expectReject(log, encodeCommit(d), RejectReason::kBadSignature);
  }
  SUBCASE("a fork candidate is held to the trust set at its parent") {
    expectReject(log, signedBytes(makeCommit(2, h1, {OpScale{"web", 9}}), {&stranger}),
                 RejectReason::kUnknownKey);
    Commit c = makeCommit(2, h1, {OpScale{"web", 9}});
    signCommit(c, a.keys[0]);
    c.signatures[0].signature[0] ^= 1;
    expectReject(log, encodeCommit(c), RejectReason::kBadSignature);
  }
  SUBCASE("insufficient signatures: none at all") {
    expectReject(log, signedBytes(makeCommit(3, h2, {OpThaw{}}), {}),
                 RejectReason::kInsufficientSignatures);
  }
  SUBCASE("wrong parent") {
    expectReject(log, signedBytes(makeCommit(3, h1, {OpThaw{}}), {&a.keys[0]}),
                 RejectReason::kWrongParent);
  }
  SUBCASE("replayed old seq") {
    Hash256 junk{};
    junk[0] = 7;
    expectReject(log, signedBytes(makeCommit(2, junk, {OpThaw{}}), {&a.keys[0]}),
                 RejectReason::kReplayedSeq);
  }
  SUBCASE("future seq beyond the bound") {
    CommitLogConfig cfg = config(a.trust(1));
    cfg.max_ahead = 4;
    CommitLog small(cfg);
    expectReject(small, signedBytes(makeCommit(6, h2, {OpThaw{}}), {&a.keys[0]}),
                 RejectReason::kFutureSeq);
  }
  SUBCASE("malformed operation") {
    expectReject(log, signedBytes(makeCommit(3, h2, {OpRemoveDaemon{"nope"}}), {&a.keys[0]}),
                 RejectReason::kMalformedOperation);
    expectReject(log, signedBytes(makeCommit(3, h2, {}), {&a.keys[0]}),
                 RejectReason::kMalformedOperation);
    spec::DaemonSpec bad = daemon("bad");
    bad.command.clear();  // a daemon needs a command
    Commit c = makeCommit(3, h2, {OpPutDaemon{bad}});
    auto r = expectReject(log, signedBytes(c, {&a.keys[0]}), RejectReason::kMalformedOperation);
    CHECK(r.message.find("bad") != std::string::npos);
    expectReject(log, signedBytes(makeCommit(3, h2, {OpSetThreshold{3}}), {&a.keys[0]}),
                 RejectReason::kMalformedOperation);
    expectReject(log, signedBytes(makeCommit(3, h2, {OpFreeze{500, "past"}}), {&a.keys[0]}),
                 RejectReason::kMalformedOperation);
    spec::DaemonSpec dep = daemon("api");
    dep.depends_on.push_back(spec::Dependency{"missing"});
    expectReject(log, signedBytes(makeCommit(3, h2, {OpPutDaemon{dep}}), {&a.keys[0]}),
                 RejectReason::kMalformedOperation);
  }
  SUBCASE("frozen") {
    submitOk(log,
             signedBytes(makeCommit(3, h2, {OpFreeze{10'000, "incident"}}, 2000), {&a.keys[0]}));
    expectReject(
        log, signedBytes(makeCommit(4, log.head().hash, {OpScale{"web", 4}}, 3000), {&a.keys[0]}),
        RejectReason::kFrozen);
  }
  CHECK(log.counters().accepted >= 2);
}

TEST_CASE_FIXTURE(Fixture, "a future commit waits in pending until its parent arrives") {
  Admins a(1);
  CommitLog log(config(a.trust(1)));
  Commit c1 = makeCommit(1, {}, {OpPutDaemon{daemon("web")}});
  Bytes b1 = signedBytes(c1, {&a.keys[0]});
  Hash256 h1 = commitHash(c1);
  Commit c2 = makeCommit(2, h1, {OpScale{"web", 4}});
  Bytes b2 = signedBytes(c2, {&a.keys[0]});
  Commit c3 = makeCommit(3, commitHash(c2), {OpPauseDaemon{"web"}});
  Bytes b3 = signedBytes(c3, {&a.keys[0]});
  LogOutput out;
  CHECK(log.submit(b3, out).outcome == Outcome::kPending);
  CHECK(log.submit(b2, out).outcome == Outcome::kPending);
  CHECK(log.pending().size() == 2);
  CHECK(out.audit.empty());
  CHECK(log.submit(b1, out).outcome == Outcome::kAccepted);
  CHECK(log.head().seq == 3);
  CHECK(log.pending().empty());
  CHECK(out.audit.size() == 3);
  CHECK(log.desired().daemons.at("web").spec.replicas == 4);
  CHECK(log.desired().daemons.at("web").paused);

  SUBCASE("the pending set is bounded") {
    CommitLogConfig cfg = config(a.trust(1));
    cfg.max_pending = 1;
    CommitLog small(cfg);
    LogOutput o;
    CHECK(small.submit(b3, o).outcome == Outcome::kPending);
    // A lower seq evicts the higher one (audited as future-seq).
    CHECK(small.submit(b2, o).outcome == Outcome::kPending);
    REQUIRE(o.audit.size() == 1);
    CHECK(o.audit[0].reason == RejectReason::kFutureSeq);
    CHECK(small.submit(b3, o).reason == RejectReason::kFutureSeq);
  }
}

TEST_CASE_FIXTURE(Fixture,
                  "trust rotation: a removed key no longer signs; changes need the old set") {
  Admins a(3);
  SigningKey d = SigningKey::generate();
  CommitLog log(config(a.trust(1)));
  // A new key cannot add itself.
  expectReject(log, signedBytes(makeCommit(1, {}, {OpAddAdminKey{d.public_key}}), {&d}),
               RejectReason::kUnknownKey);
  Hash256 h1 =
      submitOk(log,
               signedBytes(makeCommit(1, {},
                                      {OpAddAdminKey{d.public_key},
                                       OpRemoveAdminKey{a.keys[2].public_key}, OpSetThreshold{2}}),
                           {&a.keys[0]}))
          .hash;
  CHECK(log.trust().admins.size() == 3);
  CHECK(log.trust().threshold == 2);
  CHECK(log.trust().contains(d.public_key));
  CHECK_FALSE(log.trust().contains(a.keys[2].public_key));
  // The removed key: rejected now, even alongside a trusted one (threshold 2).
  expectReject(log,
               signedBytes(makeCommit(2, h1, {OpPutDaemon{daemon("x")}}), {&a.keys[0], &a.keys[2]}),
               RejectReason::kInsufficientSignatures);
  expectReject(log, signedBytes(makeCommit(2, h1, {OpPutDaemon{daemon("x")}}), {&a.keys[2]}),
               RejectReason::kUnknownKey);
  // The new key counts.
  submitOk(log, signedBytes(makeCommit(2, h1, {OpPutDaemon{daemon("x")}}), {&a.keys[0], &d}));
  // The last trust change may not leave fewer keys than the threshold.
  expectReject(log,
               signedBytes(makeCommit(3, log.head().hash,
                                      {OpRemoveAdminKey{a.keys[0].public_key},
                                       OpRemoveAdminKey{a.keys[1].public_key}}),
                           {&a.keys[0], &d}),
               RejectReason::kMalformedOperation);
}

TEST_CASE_FIXTURE(Fixture, "freeze, thaw and expiry") {
  Admins a(1);
  CommitLog log(config(a.trust(1)));
  const SigningKey* k = &a.keys[0];
  submitOk(log, signedBytes(makeCommit(1, {}, {OpPutDaemon{daemon("web")}}, 1000), {k}));
  submitOk(log, signedBytes(makeCommit(2, log.head().hash, {OpFreeze{5000, "audit"}}, 1000), {k}));
  CHECK(log.desired().frozenAt(4999));
  CHECK_FALSE(log.desired().frozenAt(5000));
  expectReject(log, signedBytes(makeCommit(3, log.head().hash, {OpScale{"web", 2}}, 2000), {k}),
               RejectReason::kFrozen);
  // A thaw mixed with another operation is still refused.
  expectReject(
      log, signedBytes(makeCommit(3, log.head().hash, {OpThaw{}, OpScale{"web", 2}}, 2000), {k}),
      RejectReason::kFrozen);
  SUBCASE("thaw") {
    submitOk(log, signedBytes(makeCommit(3, log.head().hash, {OpThaw{}}, 2000), {k}));
    CHECK_FALSE(log.desired().freeze.has_value());
    submitOk(log, signedBytes(makeCommit(4, log.head().hash, {OpScale{"web", 2}}, 2100), {k}));
  }
  SUBCASE("trust recovery passes a freeze") {
    SigningKey n = SigningKey::generate();
    submitOk(log,
             signedBytes(makeCommit(3, log.head().hash, {OpAddAdminKey{n.public_key}}, 2000), {k}));
    CHECK(log.desired().frozenAt(2000));
  }
  SUBCASE("expiry: a commit issued after the expiry passes without a thaw") {
    submitOk(log, signedBytes(makeCommit(3, log.head().hash, {OpScale{"web", 2}}, 5000), {k}));
    CHECK(log.desired().daemons.at("web").spec.replicas == 2);
  }
}

TEST_CASE_FIXTURE(Fixture, "desired state operations") {
  Admins a(1);
  CommitLog log(config(a.trust(1)));
  const SigningKey* k = &a.keys[0];
  spec::DaemonSpec cron = daemon("backup");
  cron.kind = spec::DaemonKind::kCron;
  cron.schedule = "@daily";
  submitOk(log,
           signedBytes(makeCommit(1, {}, {OpPutDaemon{daemon("web")}, OpPutDaemon{cron}}), {k}));
  expectReject(log, signedBytes(makeCommit(2, log.head().hash, {OpScale{"backup", 3}}), {k}),
               RejectReason::kMalformedOperation);
  expectReject(log, signedBytes(makeCommit(2, log.head().hash, {OpScale{"web", -1}}), {k}),
               RejectReason::kMalformedOperation);
  submitOk(log, signedBytes(makeCommit(2, log.head().hash,
                                       {OpForceRestart{"web"}, OpKillRelocation{"web"},
                                        OpSetMaintenance{"n1", MaintenanceMode::kDrain, 9000},
                                        OpPauseDaemon{"backup"}}),
                            {k}));
  const auto& s = log.desired();
  CHECK(s.daemons.at("web").restart_generation == 2);
  CHECK(s.daemons.at("web").kill_relocation_generation == 2);
  CHECK(s.daemons.at("backup").paused);
  CHECK(s.maintenance.at("n1").deadline_ms == 9000);
  submitOk(log, signedBytes(makeCommit(3, log.head().hash,
                                       {OpSetMaintenance{"n1", MaintenanceMode::kActive, 0},
                                        OpResumeDaemon{"backup"}, OpRemoveDaemon{"web"}}),
                            {k}));
  CHECK(log.desired().maintenance.empty());
  CHECK_FALSE(log.desired().daemons.at("backup").paused);
  CHECK(log.desired().daemons.count("web") == 0);
  auto j = commitLogToJson(log);
  CHECK(j["head"]["seq"] == 3);
  CHECK(j["daemons"].size() == 1);
  CHECK(j["rejected"].size() == 2);
}

TEST_CASE_FIXTURE(Fixture, "fork choice: the lower hash wins on every node, in any order") {
  Admins a(1);
  const SigningKey* k = &a.keys[0];
  Commit c1 = makeCommit(1, {}, {OpPutDaemon{daemon("web")}});
  Bytes b1 = signedBytes(c1, {k});
  Hash256 h1 = commitHash(c1);
  // Two different commits at seq 2, each with a child.
  Commit x2 = makeCommit(2, h1, {OpScale{"web", 2}}, 2000);
  Commit y2 = makeCommit(2, h1, {OpScale{"web", 3}}, 2001);
  Commit x3 = makeCommit(3, commitHash(x2), {OpPutDaemon{daemon("x-only")}});
  Commit y3 = makeCommit(3, commitHash(y2), {OpPutDaemon{daemon("y-only")}});
  std::vector<Bytes> all = {b1, signedBytes(x2, {k}), signedBytes(y2, {k}), signedBytes(x3, {k}),
                            signedBytes(y3, {k})};
  const bool x_wins = commitHash(x2) < commitHash(y2);
  const Hash256 winner3 = x_wins ? commitHash(x3) : commitHash(y3);
  std::vector<std::vector<int>> orders = {
      {0, 1, 3, 2, 4}, {0, 2, 4, 1, 3}, {4, 2, 0, 3, 1}, {0, 3, 1, 4, 2}, {2, 1, 0, 4, 3}};
  std::optional<DesiredState> first_state;
  for (const auto& order : orders) {
    CommitLog log(config(a.trust(1)));
    LogOutput out;
    for (int i : order) (void)log.submit(all[static_cast<size_t>(i)], out);
    // A child that lost only because its parent was missing is re-fetched by sync; here we
    // simply resubmit everything once more, as gossip would.
    for (const auto& b : all) (void)log.submit(b, out);
    CHECK(log.head().seq == 3);
    CHECK(log.head().hash == winner3);
    CHECK(log.desired().daemons.count(x_wins ? "x-only" : "y-only") == 1);
    CHECK(log.desired().daemons.count(x_wins ? "y-only" : "x-only") == 0);
    CHECK(log.desired().daemons.at("web").spec.replicas == (x_wins ? 2 : 3));
    if (first_state) CHECK(*first_state == log.desired());
    first_state = log.desired();
  }
  // When the loser was on the chain first, it and its child are audited as superseded.
  CommitLog log(config(a.trust(1)));
  LogOutput out;
  Bytes lose2 = x_wins ? all[2] : all[1], lose3 = x_wins ? all[4] : all[3];
  Bytes win2 = x_wins ? all[1] : all[2];
  for (const Bytes* b : {&b1, &lose2, &lose3}) submitOk(log, *b);
  LogOutput fork_out;
  SubmitResult r = log.submit(win2, fork_out);
  CHECK(r.outcome == Outcome::kAccepted);
  CHECK(log.head().seq == 2);
  size_t superseded = 0;
  for (const auto& rec : fork_out.audit) superseded += rec.outcome == Outcome::kSuperseded;
  CHECK(superseded == 2);
  CHECK(log.counters().forks_won == 1);
  REQUIRE(fork_out.store.head.has_value());
  CHECK(fork_out.store.head->seq == 2);
  // The losers come back by gossip: superseded, nothing changes.
  LogOutput late;
  CHECK(log.submit(lose3, late).outcome != Outcome::kAccepted);
  CHECK(log.head().seq == 2);
}
