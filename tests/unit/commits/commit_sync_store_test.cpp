#include "tests/temp_dir.h"
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>

#include "agent/commits/commit_store.h"
#include "chains/chain_store.h"
#include "commit_test_util.h"

using namespace meshos;
using namespace meshos::commits;
using namespace meshos::commits::testing;

namespace {
using TempDir = meshos::testing::TempDir;


void feed(CommitLog& log, const std::vector<Bytes>& bs) {
  for (const auto& b : bs) {
    LogOutput out;
    (void)log.submit(b, out);
  }
}
}  // namespace

TEST_CASE("spreading: plan, serve, accept a range") {
  REQUIRE(initCrypto().isOk());
  Admins a(1);
  CommitLog ahead(config(a.trust(1))), behind(config(a.trust(1)));
  feed(ahead, chainOf(a.keys[0], 100, "d"));
  REQUIRE(ahead.head().seq == 100);
  CHECK_FALSE(ahead.planFetch(behind.head()).has_value());
  CHECK_FALSE(ahead.planFetch(Head{50, *ahead.hashAt(50)}).has_value());
  size_t rounds = 0;
  while (auto range = behind.planFetch(ahead.head())) {
    REQUIRE(++rounds < 10);
    auto batch = ahead.getCommits(range->from, range->to);
    CHECK(batch.size() <= ahead.config().max_range);
    LogOutput out;
    BatchResult br = behind.acceptBatch(batch, out);
    CHECK(br.accepted > 0);
    CHECK_FALSE(br.refetch.has_value());
  }
  CHECK(rounds == 2);
  CHECK(behind.head() == ahead.head());
  CHECK(behind.desired() == ahead.desired());
  CHECK(ahead.getCommits(0, 1000).size() == ahead.config().max_range);
  CHECK(ahead.getCommits(101, 200).empty());
}

TEST_CASE("spreading: a fork deep in the past is found by re-fetching further back") {
  REQUIRE(initCrypto().isOk());
  Admins a(1);
  const SigningKey& k = a.keys[0];
  auto common = chainOf(k, 5, "c");
  Hash256 h5 = decodeCommit(common.back())->hash;
  auto left = chainOf(k, 80, "l", h5, 6);
  auto right = chainOf(k, 80, "r", h5, 6);
  CommitLog l(config(a.trust(1))), r(config(a.trust(1)));
  feed(l, common);
  feed(l, left);
  feed(r, common);
  feed(r, right);
  REQUIRE(l.head().seq == 85);
  REQUIRE(r.head().seq == 85);
  const bool left_wins = decodeCommit(left[0])->hash < decodeCommit(right[0])->hash;
  // Anti-entropy both ways until neither wants anything.
  auto sync = [](CommitLog& me, const CommitLog& peer) {
    size_t steps = 0;
    std::optional<CommitRange> range = me.planFetch(peer.head());
    while (range && steps++ < 20) {
      LogOutput out;
      BatchResult br = me.acceptBatch(peer.getCommits(range->from, range->to), out);
      range = br.refetch ? br.refetch : me.planFetch(peer.head());
    }
    return steps;
  };
  for (int round = 0; round < 4; ++round) {
    sync(l, r);
    sync(r, l);
  }
  CHECK(l.head() == r.head());
  CHECK(l.head().seq == 85);
  CHECK(l.desired() == r.desired());
  CHECK(l.desired().daemons.count(left_wins ? "l85" : "r85") == 1);
  CHECK((left_wins ? r : l).counters().forks_won == 1);
}

TEST_CASE("persistence: memory and RocksDB stores restore the log and its state") {
  REQUIRE(initCrypto().isOk());
  Admins a(2);
  TempDir dir;
  auto opened = chains::ChainStore::open(dir.path);
  REQUIRE(opened.isOk());
  std::unique_ptr<chains::ChainStore> chain_store = std::move(*opened);
  MemoryKvStore mem_kv;
  CommitStore mem(mem_kv);
  CommitStore rocks(*chain_store);
  CommitLog log(config(a.trust(1)));
  auto commits = chainOf(a.keys[0], 6, "p");
  for (const auto& b : commits) {
    LogOutput out;
    REQUIRE(log.submit(b, out).outcome == Outcome::kAccepted);
    REQUIRE(applyStoreWrites(mem, out.store).isOk());
    REQUIRE(applyStoreWrites(rocks, out.store).isOk());
  }
  for (CommitStore* store : {static_cast<CommitStore*>(&mem), static_cast<CommitStore*>(&rocks)}) {
    CommitLog restored(config(a.trust(1)));
    LogOutput out;
    REQUIRE(loadCommitLog(*store, restored, out).isOk());
    CHECK(restored.head() == log.head());
    CHECK(restored.desired() == log.desired());
  }
  // Reopen the database: still there.
  chain_store.reset();
  auto again = chains::ChainStore::open(dir.path);
  REQUIRE(again.isOk());
  CommitStore rocks2(**again);
  CommitLog restored(config(a.trust(1)));
  LogOutput out;
  REQUIRE(loadCommitLog(rocks2, restored, out).isOk());
  CHECK(restored.head() == log.head());
  CHECK(restored.desired().daemons.size() == 6);

  SUBCASE("a corrupt stored commit ends the chain there, reported") {
    Bytes junk = {0, 0, 0, 0, 1, 0, 0, 0};
    REQUIRE(rocks2.putCommit(4, junk).isOk());
    CommitLog partial(config(a.trust(1)));
    LogOutput o;
    Status st = loadCommitLog(rocks2, partial, o);
    CHECK(st.code() == Code::kCorruption);
    CHECK(partial.head().seq == 3);
    REQUIRE(o.store.head.has_value());
    CHECK(o.store.head->seq == 3);
  }
  SUBCASE("a different genesis trust set does not accept the stored commits") {
    Admins other(1);
    CommitLog strange(config(other.trust(1)));
    LogOutput o;
    CHECK_FALSE(loadCommitLog(rocks2, strange, o).isOk());
    CHECK(strange.head().seq == 0);
  }
}
