// Tamper tests: change the stored chain behind the writer's back and check that verify
// names the exact seq and reason.
#include "chains/chain_verify.h"

#include <doctest/doctest.h>

#include "chain_test_util.h"
#include "chains/chain_writer.h"

using namespace meshos;
using namespace meshos::chains;
using namespace meshos::chains::testing;

namespace {

constexpr ChainName kChain = ChainName::kAudit;

// A closed, verified chain of `n` records with a checkpoint every `k`.
struct Chain {
  TempDir dir;
  SigningKey key;
  std::unique_ptr<ChainStore> store;

  Chain(uint64_t n, uint64_t k) {
    REQUIRE(initCrypto().isOk());
    key = SigningKey::generate();
    auto s = ChainStore::open(dir.path);
    REQUIRE(s.isOk());
    store = std::move(*s);
    ManualClock clock;
    ManualPoster poster;
    ChainWriterOptions o;
    o.checkpoint_every = k;
    auto w = ChainWriter::create(*store, key, clock, poster, o);
    REQUIRE(w.isOk());
    for (uint64_t i = 1; i <= n; ++i) {
      clock.advanceMs(1);
      REQUIRE((*w)->append(kChain, "test", "payload number " + std::to_string(i)).isOk());
    }
    REQUIRE((*w)->close(10'000).isOk());
    auto rep = verify();
    REQUIRE_MESSAGE(rep.ok, rep.detail);
    REQUIRE(rep.records == n);
  }
  VerifyReport verify() { return verifyChain(*store, kChain, {}, key.public_key); }
  ChainRecord record(uint64_t seq) {
    auto r = store->get(kChain, seq);
    REQUIRE(r.isOk());
    return *r;
  }
  void put(const ChainRecord& r) { rawPut(*store, kChain, recordKey(r.seq), encodeRecord(r)); }
};

void expectFailure(const VerifyReport& rep, VerifyProblem problem, uint64_t seq) {
  INFO("report: " << rep.detail);
  CHECK_FALSE(rep.ok);
  CHECK(verifyProblemName(rep.problem) == verifyProblemName(problem));
  CHECK(rep.bad_seq == seq);
}

}  // namespace

TEST_CASE("an untouched chain verifies, with counts") {
  Chain c(250, 100);
  auto rep = c.verify();
  CHECK(rep.ok);
  CHECK(rep.records == 250);
  CHECK(rep.first_seq == 1);
  CHECK(rep.last_seq == 250);
  CHECK(rep.head_seq == 250);
  CHECK(rep.checkpoints == 3);  // 100, 200 and the one written at close (250)
  CHECK(rep.signer_authenticated);
  auto unauth = verifyChain(*c.store, kChain);
  CHECK(unauth.ok);
  CHECK_FALSE(unauth.signer_authenticated);
  // An empty chain verifies too.
  auto empty = verifyChain(*c.store, ChainName::kLog, {}, c.key.public_key);
  CHECK(empty.ok);
  CHECK(empty.records == 0);
}

TEST_CASE("a flipped payload byte is named at its record") {
  Chain c(50, 10);
  std::string raw = rawGet(*c.store, kChain, recordKey(23));
  size_t pos = raw.find("payload number 23");
  REQUIRE(pos != std::string::npos);
  raw[pos + 3] ^= 0x01;
  rawPut(*c.store, kChain, recordKey(23), raw);
  expectFailure(c.verify(), VerifyProblem::kHashMismatch, 23);
}

TEST_CASE("flipping any byte of a record is caught at that record or changes nothing") {
  Chain c(20, 5);
  const uint64_t seq = 12;
  const std::string original = rawGet(*c.store, kChain, recordKey(seq));
  const ChainRecord before = c.record(seq);
  size_t caught = 0;
  for (size_t i = 0; i < original.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80}) {
      std::string raw = original;
      raw[i] = static_cast<char>(raw[i] ^ mask);
      rawPut(*c.store, kChain, recordKey(seq), raw);
      auto rep = c.verify();
      if (rep.ok) {
        // Only bytes that carry no content (word padding) may change unnoticed.
        auto after = decodeRecord(raw);
        REQUIRE(after.isOk());
        CHECK(after->seq == before.seq);
        CHECK(after->time_ms == before.time_ms);
        CHECK(after->kind == before.kind);
        CHECK(after->payload == before.payload);
        CHECK(after->prev_hash == before.prev_hash);
        CHECK(after->hash == before.hash);
      } else {
        INFO("byte " << i << ": " << rep.detail);
        CHECK(rep.bad_seq == seq);
        ++caught;
      }
    }
  }
  rawPut(*c.store, kChain, recordKey(seq), original);
  CHECK(c.verify().ok);
  CHECK(caught > original.size());  // most flips matter
}

TEST_CASE("a deleted record is a gap at its seq") {
  Chain c(50, 10);
  rawDelete(*c.store, kChain, recordKey(17));
  expectFailure(c.verify(), VerifyProblem::kGap, 17);
}

TEST_CASE("two swapped records are named at the first of them") {
  Chain c(50, 10);
  std::string a = rawGet(*c.store, kChain, recordKey(31));
  std::string b = rawGet(*c.store, kChain, recordKey(32));
  rawPut(*c.store, kChain, recordKey(31), b);
  rawPut(*c.store, kChain, recordKey(32), a);
  expectFailure(c.verify(), VerifyProblem::kSeqMismatch, 31);
}

TEST_CASE("two swapped records with their seq fields rewritten break the link") {
  Chain c(50, 10);
  ChainRecord a = c.record(31);
  ChainRecord b = c.record(32);
  std::swap(a.seq, b.seq);
  RecordHasher h(kChain);
  a.hash = h.hash(a);
  b.hash = h.hash(b);
  c.put(a);
  c.put(b);
  expectFailure(c.verify(), VerifyProblem::kBrokenLink, 31);
}

TEST_CASE("a tail truncated after a checkpoint is named at the first missing seq") {
  Chain c(50, 10);
  for (uint64_t s = 36; s <= 50; ++s) rawDelete(*c.store, kChain, recordKey(s));
  expectFailure(c.verify(), VerifyProblem::kTruncated, 36);
  // Rewriting the head to match does not hide it: the checkpoints at 40 and 50 remain.
  ChainRecord last = c.record(35);
  rawPut(*c.store, kChain, std::string(kHeadKey), encodeHead(ChainHead{35, last.hash}));
  expectFailure(c.verify(), VerifyProblem::kTruncated, 36);
}

TEST_CASE("a replaced record with every later hash recomputed fails at the next checkpoint") {
  Chain c(50, 10);
  RecordHasher h(kChain);
  ChainRecord r = c.record(23);
  r.payload = {'f', 'o', 'r', 'g', 'e', 'd'};
  r.hash = h.hash(r);
  c.put(r);
  Hash256 prev = r.hash;
  for (uint64_t s = 24; s <= 50; ++s) {
    ChainRecord x = c.record(s);
    x.prev_hash = prev;
    x.hash = h.hash(x);
    c.put(x);
    prev = x.hash;
  }
  rawPut(*c.store, kChain, std::string(kHeadKey), encodeHead(ChainHead{50, prev}));
  auto rep = c.verify();
  expectFailure(rep, VerifyProblem::kCheckpointMismatch, 30);
  CHECK(rep.last_good_checkpoint_seq == 20);  // the rewrite lies in 21..30
  CHECK(rep.records == 29);

  // Re-signing the checkpoints with another key does not help the forger.
  SigningKey forger = SigningKey::generate();
  for (uint64_t s = 30; s <= 50; s += 10) {
    Hash256 hh = c.record(s).hash;
    rawPut(*c.store, kChain, checkpointKey(s),
           encodeCheckpoint(signCheckpoint(kChain, s, hh, 0, forger)));
  }
  expectFailure(c.verify(), VerifyProblem::kBadCheckpointSignature, 30);
}

TEST_CASE("a checkpoint moved to another seq or corrupted is named") {
  Chain c(50, 10);
  std::string cp20 = rawGet(*c.store, kChain, checkpointKey(20));
  rawPut(*c.store, kChain, checkpointKey(30), cp20);
  expectFailure(c.verify(), VerifyProblem::kBadCheckpoint, 30);
  rawPut(*c.store, kChain, checkpointKey(30), "garbage!");
  expectFailure(c.verify(), VerifyProblem::kBadCheckpoint, 30);
}

TEST_CASE("a record that does not decode is named") {
  Chain c(20, 10);
  rawPut(*c.store, kChain, recordKey(7), std::string(24, '\x55'));
  expectFailure(c.verify(), VerifyProblem::kUndecodable, 7);
}

TEST_CASE("a head that disagrees with the records is named") {
  Chain c(20, 10);
  ChainRecord r = c.record(20);
  Hash256 wrong = r.hash;
  wrong[0] ^= 1;
  rawPut(*c.store, kChain, std::string(kHeadKey), encodeHead(ChainHead{20, wrong}));
  expectFailure(c.verify(), VerifyProblem::kBadHead, 20);
}

TEST_CASE("a range verify checks only the range") {
  Chain c(100, 10);
  auto rep = verifyChain(*c.store, kChain, VerifyRange{41, 60}, c.key.public_key);
  CHECK_MESSAGE(rep.ok, rep.detail);
  CHECK(rep.partial);
  CHECK(rep.first_seq == 41);
  CHECK(rep.last_seq == 60);
  CHECK(rep.records == 20);
  CHECK(rep.checkpoints == 2);
  rawDelete(*c.store, kChain, recordKey(90));
  CHECK(verifyChain(*c.store, kChain, VerifyRange{41, 60}, c.key.public_key).ok);
  expectFailure(verifyChain(*c.store, kChain, VerifyRange{41}, c.key.public_key),
                VerifyProblem::kGap, 90);
}

TEST_CASE("progress is reported during a long verify") {
  Chain c(1000, 100);
  std::vector<VerifyProgress> seen;
  auto rep = verifyChain(
      *c.store, kChain, {}, c.key.public_key, [&](const VerifyProgress& p) { seen.push_back(p); },
      100);
  CHECK(rep.ok);
  REQUIRE(seen.size() >= 10);
  CHECK(seen.front().records_checked == 100);
  CHECK(seen.back().records_checked == 1000);
  CHECK(seen.back().last_seq == 1000);
}

TEST_CASE("tampering deep in a long chain is named (batched, multi-threaded walk)") {
  Chain c(20000, 1000);
  auto raw = rawGet(*c.store, kChain, recordKey(12345));
  size_t pos = raw.find("payload number 12345");
  REQUIRE(pos != std::string::npos);
  raw[pos] ^= 0x20;
  rawPut(*c.store, kChain, recordKey(12345), raw);
  rawDelete(*c.store, kChain, recordKey(17000));
  auto rep = c.verify();
  expectFailure(rep, VerifyProblem::kHashMismatch, 12345);
  CHECK(rep.records == 12344);
  CHECK(rep.last_good_checkpoint_seq == 12000);
}

// The parallel walk (segments read, decoded and hashed on worker threads) must report
// exactly what the sequential walk reports, wherever the damage sits relative to the
// segment boundaries.
TEST_CASE("the parallel walk reports exactly what the sequential walk reports") {
  auto both = [](Chain& c, VerifyRange range = {}) {
    VerifyReport seq = verifyChain(*c.store, kChain, range, c.key.public_key, {}, 1 << 18,
                                   VerifyTuning{1, 16384});
    for (size_t seg : {1, 3, 7, 8, 16}) {
      VerifyReport par = verifyChain(*c.store, kChain, range, c.key.public_key, {}, 1 << 18,
                                     VerifyTuning{2, seg});
      INFO("segment_records " << seg << ": " << par.detail << " / " << seq.detail);
      CHECK(par.ok == seq.ok);
      CHECK(verifyProblemName(par.problem) == verifyProblemName(seq.problem));
      CHECK(par.bad_seq == seq.bad_seq);
      CHECK(par.detail == seq.detail);
      CHECK(par.records == seq.records);
      CHECK(par.checkpoints == seq.checkpoints);
      CHECK(par.last_good_checkpoint_seq == seq.last_good_checkpoint_seq);
    }
    return seq;
  };
  SUBCASE("untouched") {
    Chain c(100, 10);
    CHECK(both(c).ok);
    CHECK(both(c, VerifyRange{41, 90}).ok);
  }
  SUBCASE("deleted records at and around segment boundaries") {
    for (uint64_t gone : {1, 8, 9, 16, 17, 64, 99, 100}) {
      Chain c(100, 10);
      rawDelete(*c.store, kChain, recordKey(gone));
      auto rep = both(c);
      CHECK(rep.bad_seq == gone);
    }
  }
  SUBCASE("a run of deleted records spanning segments") {
    Chain c(100, 10);
    for (uint64_t s = 30; s <= 70; ++s) rawDelete(*c.store, kChain, recordKey(s));
    expectFailure(both(c), VerifyProblem::kGap, 30);
  }
  SUBCASE("truncated tail") {
    Chain c(100, 10);
    for (uint64_t s = 57; s <= 100; ++s) rawDelete(*c.store, kChain, recordKey(s));
    expectFailure(both(c), VerifyProblem::kTruncated, 57);
  }
  SUBCASE("records past the head") {
    Chain c(100, 10);
    ChainRecord r = c.record(40);
    rawPut(*c.store, kChain, std::string(kHeadKey), encodeHead(ChainHead{40, r.hash}));
    expectFailure(both(c), VerifyProblem::kBadHead, 41);
  }
  SUBCASE("a head far past the records") {
    Chain c(100, 10);
    ChainRecord r = c.record(100);
    rawPut(*c.store, kChain, std::string(kHeadKey),
           encodeHead(ChainHead{uint64_t{1} << 60, r.hash}));
    expectFailure(both(c), VerifyProblem::kTruncated, 101);
  }
  SUBCASE("flipped byte, undecodable record, malformed key, swapped records") {
    Chain c(100, 10);
    auto raw = rawGet(*c.store, kChain, recordKey(33));
    size_t pos = raw.find("payload number 33");
    REQUIRE(pos != std::string::npos);
    raw[pos] ^= 0x20;
    rawPut(*c.store, kChain, recordKey(33), raw);
    expectFailure(both(c), VerifyProblem::kHashMismatch, 33);
    rawPut(*c.store, kChain, recordKey(24), std::string(24, '\x55'));
    expectFailure(both(c), VerifyProblem::kUndecodable, 24);
    rawPut(*c.store, kChain, recordKey(16) + "x", "junk");  // sorts between 16 and 17
    expectFailure(both(c), VerifyProblem::kUndecodable, 17);
    std::string a = rawGet(*c.store, kChain, recordKey(8));
    std::string b = rawGet(*c.store, kChain, recordKey(9));
    rawPut(*c.store, kChain, recordKey(8), b);
    rawPut(*c.store, kChain, recordKey(9), a);
    expectFailure(both(c), VerifyProblem::kSeqMismatch, 8);
  }
}
