#include "chains/chain_writer.h"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "chain_test_util.h"
#include "chains/chain_verify.h"
#include "fault_fs.h"

using namespace meshos;
using namespace meshos::chains;
using namespace meshos::chains::testing;

namespace {

struct Fixture {
  TempDir dir;
  ManualClock clock{0, 1'700'000'000'000};
  ManualPoster poster;
  SigningKey key;
  std::unique_ptr<ChainStore> store;
  std::unique_ptr<ChainWriter> writer;
  std::vector<AckEvent> acks;
  std::vector<WriteFailure> failures;
  std::shared_ptr<FaultFs> fs;
  std::unique_ptr<rocksdb::Env> env;

  explicit Fixture(bool faulty = false) {
    REQUIRE(initCrypto().isOk());
    key = SigningKey::generate();
    if (faulty) {
      fs = std::make_shared<FaultFs>();
      env = rocksdb::NewCompositeEnv(fs);
    }
  }
  ~Fixture() {
    writer.reset();
    store.reset();
  }

  void open(ChainWriterOptions opts = {}) {
    ChainStoreOptions so;
    so.env = env.get();
    auto s = ChainStore::open(dir.path, so);
    REQUIRE_MESSAGE(s.isOk(), s.status().toString());
    store = std::move(*s);
    opts.retry_initial_ms = 2;
    opts.retry_max_ms = 20;
    ChainWriter::Callbacks cbs;
    cbs.on_acked = [this](const AckEvent& e) { acks.push_back(e); };
    cbs.on_write_failed = [this](const WriteFailure& f) { failures.push_back(f); };
    auto w = ChainWriter::create(*store, key, clock, poster, opts, cbs);
    REQUIRE_MESSAGE(w.isOk(), w.status().toString());
    writer = std::move(*w);
  }
  void reopen(ChainWriterOptions opts = {}) {
    writer.reset();
    store.reset();
    poster.runPending();
    acks.clear();
    open(opts);
  }
  uint64_t durable(ChainName c) { return writer->durableHead(c).seq; }
};

}  // namespace

TEST_CASE("appends are acked in order, after they are durable, and survive reopen") {
  Fixture f;
  f.open();
  std::vector<uint64_t> acked_seqs;
  std::vector<Hash256> acked_hashes, appended_hashes;
  for (int i = 0; i < 100; ++i) {
    auto t = f.writer->append(ChainName::kAudit, "test.record", "payload " + std::to_string(i),
                              [&](const AppendTicket& t) {
                                acked_seqs.push_back(t.seq);
                                acked_hashes.push_back(t.hash);
                              });
    REQUIRE(t.isOk());
    appended_hashes.push_back(t->hash);
    CHECK(t->seq == static_cast<uint64_t>(i + 1));
  }
  // Nothing is acked inside append(): acks arrive only through the poster.
  CHECK(acked_seqs.empty());
  CHECK(f.writer->appendedHead(ChainName::kAudit).seq == 100);
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kAudit) == 100; }));
  REQUIRE(acked_seqs.size() == 100);
  for (size_t i = 0; i < acked_seqs.size(); ++i) CHECK(acked_seqs[i] == i + 1);
  CHECK(acked_hashes == appended_hashes);
  // Every ack event's records are readable.
  for (const auto& e : f.acks) {
    auto r = f.store->get(e.chain, e.last_seq);
    REQUIRE(r.isOk());
    CHECK(r->hash == e.last_hash);
  }
  auto s = f.writer->summary(ChainName::kAudit);
  CHECK(s.appended == 100);
  CHECK(s.acked == 100);
  CHECK(s.pending == 0);
  CHECK(s.length == 100);
  CHECK(s.first_seq == 1);
  CHECK(f.writer->summary(ChainName::kLog).length == 0);

  Hash256 head_hash = f.writer->durableHead(ChainName::kAudit).hash;
  f.reopen();
  CHECK(f.writer->appendedHead(ChainName::kAudit).seq == 100);
  CHECK(f.writer->appendedHead(ChainName::kAudit).hash == head_hash);
  auto t = f.writer->append(ChainName::kAudit, "after.reopen", "x");
  REQUIRE(t.isOk());
  CHECK(t->seq == 101);
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kAudit) == 101; }));
  auto rep = verifyChain(*f.store, ChainName::kAudit, {}, f.key.public_key);
  CHECK_MESSAGE(rep.ok, rep.detail);
  CHECK(rep.records == 101);
}

TEST_CASE("checkpoints every K records and at close") {
  Fixture f;
  ChainWriterOptions o;
  o.checkpoint_every = 10;
  f.open(o);
  for (int i = 0; i < 35; ++i) REQUIRE(f.writer->append(ChainName::kLog, "k", "p").isOk());
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kLog) == 35; }));
  auto cp = f.store->lastCheckpoint(ChainName::kLog);
  REQUIRE(cp.isOk());
  REQUIRE(cp->has_value());
  CHECK((*cp)->seq == 30);
  CHECK(checkpointSignatureValid(**cp, f.key.public_key));
  CHECK(f.writer->summary(ChainName::kLog).last_checkpoint_seq == 30);
  for (int i = 0; i < 3; ++i) REQUIRE(f.writer->append(ChainName::kLog, "k", "p").isOk());
  REQUIRE(f.writer->close(5000).isOk());
  // close() returned: the flush and the final checkpoint are on disk already.
  CHECK(f.store->head(ChainName::kLog)->seq == 38);
  cp = f.store->lastCheckpoint(ChainName::kLog);
  REQUIRE(cp->has_value());
  CHECK((*cp)->seq == 38);
  CHECK(f.writer->append(ChainName::kLog, "k", "p").status().code() == Code::kUnavailable);
  auto rep = verifyChain(*f.store, ChainName::kLog, {}, f.key.public_key);
  CHECK_MESSAGE(rep.ok, rep.detail);
  CHECK(rep.checkpoints == 4);
  // Verifying with another node's key fails at the first checkpoint.
  auto bad = verifyChain(*f.store, ChainName::kLog, {}, SigningKey::generate().public_key);
  CHECK_FALSE(bad.ok);
  CHECK(bad.problem == VerifyProblem::kBadCheckpointSignature);
  CHECK(bad.bad_seq == 10);
}

TEST_CASE("a full queue refuses appends and counts them") {
  Fixture f(/*faulty=*/true);
  ChainWriterOptions o;
  o.queue_capacity = 5;
  f.open(o);
  f.fs->fail_syncs = true;  // keep everything pending
  for (int i = 0; i < 5; ++i) REQUIRE(f.writer->append(ChainName::kFailure, "k", "p").isOk());
  auto r = f.writer->append(ChainName::kFailure, "k", "p");
  CHECK(r.status().code() == Code::kOverloaded);
  CHECK(f.writer->summary(ChainName::kFailure).dropped == 1);
  CHECK(f.writer->appendedHead(ChainName::kFailure).seq == 5);  // the refused one took no seq
  CHECK(f.writer->append(ChainName::kFailure, std::string(300, 'k'), "p").status().code() ==
        Code::kInvalidArgument);
  f.fs->fail_syncs = false;
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kFailure) == 5; }));
  CHECK(f.writer->append(ChainName::kFailure, "k", "p").isOk());
}

TEST_CASE("failed syncs are reported, nothing is acked until a retry succeeds") {
  Fixture f(/*faulty=*/true);
  f.open();
  for (int i = 0; i < 20; ++i) REQUIRE(f.writer->append(ChainName::kAudit, "ok", "p").isOk());
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kAudit) == 20; }));

  f.fs->fail_syncs = true;
  for (int i = 0; i < 20; ++i) REQUIRE(f.writer->append(ChainName::kAudit, "later", "p").isOk());
  REQUIRE(pollUntil(f.poster, [&] { return f.failures.size() >= 3; }));
  CHECK(f.durable(ChainName::kAudit) == 20);
  auto s = f.writer->summary(ChainName::kAudit);
  CHECK(s.failed_writes >= 3);
  CHECK(s.pending == 20);
  CHECK(f.failures.front().status.code() == Code::kIoError);
  CHECK(f.failures.front().attempt == 1);

  f.fs->fail_syncs = false;
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kAudit) == 40; }));
  s = f.writer->summary(ChainName::kAudit);
  CHECK(s.retries >= 3);
  CHECK(s.pending == 0);
  auto rep = verifyChain(*f.store, ChainName::kAudit, {}, f.key.public_key);
  CHECK_MESSAGE(rep.ok, rep.detail);
  CHECK(rep.records == 40);
}

TEST_CASE("failed writes (disk full) are retried and then succeed") {
  Fixture f(/*faulty=*/true);
  f.open();
  f.fs->fail_writes = true;
  for (int i = 0; i < 10; ++i) REQUIRE(f.writer->append(ChainName::kLog, "k", "p").isOk());
  REQUIRE(pollUntil(f.poster, [&] { return f.failures.size() >= 2; }));
  CHECK(f.durable(ChainName::kLog) == 0);
  f.fs->fail_writes = false;
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kLog) == 10; }));
  auto rep = verifyChain(*f.store, ChainName::kLog, {}, f.key.public_key);
  CHECK_MESSAGE(rep.ok, rep.detail);
}

TEST_CASE("a full disk at open: a read-only handle, writes fenced until a reopen succeeds") {
  Fixture f(/*faulty=*/true);
  f.open();
  REQUIRE(f.writer->append(ChainName::kAudit, "before", "p").isOk());
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kAudit) == 1; }));
  REQUIRE(f.store->putState("k", "v").isOk());
  f.fs->disk_full = true;
  f.reopen();  // the store opens read-only, the writer starts from the stored heads
  Status fence = f.store->writeFence();
  REQUIRE_FALSE(fence.isOk());
  CHECK(fence.message().starts_with("disk full"));
  CHECK(f.durable(ChainName::kAudit) == 1);
  CHECK(f.store->getState("k")->value_or("") == "v");
  Status put = f.store->putState("k2", "v2");
  CHECK_FALSE(put.isOk());
  CHECK(put.message().find("disk full") != std::string::npos);
  REQUIRE(f.writer->append(ChainName::kAudit, "while.full", "p").isOk());
  REQUIRE(pollUntil(f.poster, [&] { return f.failures.size() >= 1; }));
  CHECK(f.failures.front().status.message().find("disk full") != std::string::npos);
  CHECK(f.durable(ChainName::kAudit) == 1);
  CHECK(f.store->get(ChainName::kAudit, 1).isOk());  // reads go on between retries
  // While no space comes back the writer only checks for it: no reopen (two database
  // opens each), so the disk refuses nothing more over ~15 retries of 20 ms.
  const uint64_t refused = f.fs->injected;
  for (int i = 0; i < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    f.poster.runPending();
  }
  CHECK(f.fs->injected == refused);
  CHECK(f.failures.size() == 1);
  // After kFenceRecheckMs it tries a reopen regardless (space may return as inodes).
  f.clock.advanceMs(5000);
  REQUIRE(pollUntil(f.poster, [&] { return f.failures.size() >= 2; }));
  CHECK(f.fs->injected > refused);
  CHECK(f.durable(ChainName::kAudit) == 1);
  f.fs->disk_full = false;
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kAudit) == 2; }));
  CHECK(f.store->writeFence().isOk());
  CHECK(f.store->putState("k2", "v2").isOk());
  auto rep = verifyChain(*f.store, ChainName::kAudit, {}, f.key.public_key);
  CHECK_MESSAGE(rep.ok, rep.detail);
}

TEST_CASE("a power cut loses only unacknowledged records") {
  Fixture f(/*faulty=*/true);
  f.open();
  for (int i = 0; i < 50; ++i) REQUIRE(f.writer->append(ChainName::kAudit, "acked", "p").isOk());
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kAudit) == 50; }));
  // The next batch reaches the WAL but its sync fails: written, not durable, not acked.
  f.fs->fail_syncs = true;
  for (int i = 0; i < 50; ++i) REQUIRE(f.writer->append(ChainName::kAudit, "lost", "p").isOk());
  REQUIRE(pollUntil(f.poster, [&] { return !f.failures.empty(); }));
  CHECK(f.durable(ChainName::kAudit) == 50);
  CHECK(f.fs->unsyncedBytes() > 0);
  // Power cut: nothing more reaches the disk, unsynced WAL bytes vanish.
  f.fs->fail_writes = true;
  f.writer.reset();
  f.store.reset();
  f.fs->dropUnsyncedWal();
  f.fs->fail_writes = false;
  f.fs->fail_syncs = false;
  f.poster.runPending();
  f.open();
  auto head = f.store->head(ChainName::kAudit);
  REQUIRE(head.isOk());
  CHECK(head->seq >= 50);  // every acked record is there
  auto rep = verifyChain(*f.store, ChainName::kAudit, {}, f.key.public_key);
  CHECK_MESSAGE(rep.ok, rep.detail);
  CHECK(rep.last_seq == head->seq);
  // The chain continues from what is on disk.
  auto t = f.writer->append(ChainName::kAudit, "next", "p");
  REQUIRE(t.isOk());
  CHECK(t->seq == head->seq + 1);
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kAudit) == t->seq; }));
  rep = verifyChain(*f.store, ChainName::kAudit, {}, f.key.public_key);
  CHECK_MESSAGE(rep.ok, rep.detail);
}

TEST_CASE("retention prunes the oldest records and keeps a signed genesis") {
  Fixture f;
  ChainWriterOptions o;
  o.checkpoint_every = 7;
  o.max_records[chainIndex(ChainName::kLog)] = 40;
  f.open(o);
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 20; ++i) REQUIRE(f.writer->append(ChainName::kLog, "k", "p").isOk());
    REQUIRE(pollUntil(f.poster, [&] {
      return f.durable(ChainName::kLog) == static_cast<uint64_t>(20 * (round + 1));
    }));
  }
  // Pruning runs on the writer thread after the group's acks were posted.
  REQUIRE(pollUntil(f.poster, [&] {
    auto s = f.writer->summary(ChainName::kLog);
    return s.length <= 45 && s.first_seq == *f.store->firstSeq(ChainName::kLog);
  }));
  auto first = f.store->firstSeq(ChainName::kLog);
  REQUIRE(first.isOk());
  CHECK(*first > 1);
  uint64_t length = 200 - *first + 1;
  CHECK(length >= 40);
  CHECK(length <= 45);
  auto g = f.store->genesis(ChainName::kLog);
  REQUIRE(g.isOk());
  REQUIRE(g->has_value());
  CHECK((*g)->seq == *first - 1);
  auto rep = verifyChain(*f.store, ChainName::kLog, {}, f.key.public_key);
  CHECK_MESSAGE(rep.ok, rep.detail);
  CHECK(rep.genesis_seq == *first - 1);
  CHECK(rep.first_seq == *first);
  CHECK(rep.records == length);
  auto s = f.writer->summary(ChainName::kLog);
  CHECK(s.first_seq == *first);
  CHECK(s.pruned == *first - 1);
  CHECK(s.length == length);
  // A forged genesis (signed by another key) is caught.
  Checkpoint forged =
      signCheckpoint(ChainName::kLog, (*g)->seq, (*g)->head_hash, 0, SigningKey::generate());
  rawPut(*f.store, ChainName::kLog, std::string(kGenesisKey), encodeCheckpoint(forged));
  rep = verifyChain(*f.store, ChainName::kLog, {}, f.key.public_key);
  CHECK_FALSE(rep.ok);
  CHECK(rep.problem == VerifyProblem::kBadGenesis);
}

TEST_CASE("verify runs on a worker thread while the writer appends") {
  Fixture f;
  ChainWriterOptions o;
  o.checkpoint_every = 100;
  f.open(o);
  for (int i = 0; i < 2000; ++i) REQUIRE(f.writer->append(ChainName::kAudit, "k", "p").isOk());
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kAudit) == 2000; }));
  std::atomic<bool> done{false};
  VerifyReport rep;
  std::thread worker([&] {
    // Every other walk is the parallel one (several segment iterators), which must see
    // the same moment of the database as the head and checkpoints it read.
    VerifyTuning parallel;
    parallel.threads = 3;
    parallel.segment_records = 64;
    for (int i = 0; i < 6; ++i) {
      rep = verifyChain(*f.store, ChainName::kAudit, {}, f.key.public_key, {}, 1 << 18,
                        i % 2 == 0 ? VerifyTuning{} : parallel);
      if (!rep.ok) break;
    }
    done = true;
  });
  uint64_t n = 2000;
  while (!done) {
    if (f.writer->pendingTotal() < 1000) {
      REQUIRE(f.writer->append(ChainName::kAudit, "k", "p").isOk());
      ++n;
    }
    f.poster.runPending();
  }
  worker.join();
  CHECK_MESSAGE(rep.ok, rep.detail);
  CHECK(rep.records >= 2000);
  REQUIRE(pollUntil(f.poster, [&] { return f.durable(ChainName::kAudit) == n; }));
}

TEST_CASE("state area: put, get, delete, prefix scan, read-only refuses writes") {
  Fixture f;
  f.open();
  REQUIRE(f.store->putState("commit/0001", "a").isOk());
  REQUIRE(f.store->putState("commit/0002", "b").isOk());
  REQUIRE(f.store->putState("gossip/incarnation", "7").isOk());
  auto v = f.store->getState("commit/0002");
  REQUIRE(v.isOk());
  REQUIRE(v->has_value());
  CHECK(**v == "b");
  CHECK_FALSE(f.store->getState("nope")->has_value());
  std::vector<std::string> keys;
  REQUIRE(f.store
              ->scanState("commit/",
                          [&](std::string_view k, std::string_view) {
                            keys.emplace_back(k);
                            return true;
                          })
              .isOk());
  CHECK(keys == std::vector<std::string>{"commit/0001", "commit/0002"});
  REQUIRE(f.store->deleteState("commit/0001").isOk());
  REQUIRE(f.store->deleteState("never/there").isOk());
  CHECK_FALSE(f.store->getState("commit/0001")->has_value());
  for (int i = 0; i < 5; ++i) REQUIRE(f.writer->append(ChainName::kAudit, "k", "p").isOk());
  REQUIRE(f.writer->close(5000).isOk());
  f.writer.reset();
  f.store.reset();

  auto ro = ChainStore::openReadOnly(f.dir.path);
  REQUIRE_MESSAGE(ro.isOk(), ro.status().toString());
  CHECK((*ro)->getState("gossip/incarnation")->value() == "7");
  CHECK((*ro)->putState("x", "y").code() == Code::kPermissionDenied);
  CHECK((*ro)->head(ChainName::kAudit)->seq == 5);
  auto rep = verifyChain(**ro, ChainName::kAudit, {}, f.key.public_key);
  CHECK_MESSAGE(rep.ok, rep.detail);
  ManualPoster p;
  ManualClock c;
  CHECK(ChainWriter::create(**ro, f.key, c, p, {}).status().code() == Code::kPermissionDenied);
  TempDir empty;
  CHECK(ChainStore::openReadOnly(empty.path).status().code() == Code::kNotFound);
}
