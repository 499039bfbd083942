#include <doctest/doctest.h>

#include "agent/gossip/broadcast_queue.h"
#include "agent/gossip/suspicion.h"

using namespace meshos::gossip;

TEST_CASE("broadcast queue: retransmit limit is mult * ceil(log10(N+1))") {
  CHECK(retransmitLimit(4, 1) == 4);
  CHECK(retransmitLimit(4, 9) == 4);
  CHECK(retransmitLimit(4, 10) == 8);
  CHECK(retransmitLimit(4, 99) == 8);
  CHECK(retransmitLimit(4, 100) == 12);
  CHECK(retransmitLimit(3, 5000) == 12);
}

TEST_CASE("broadcast queue: each update sent at most the limit, then retired") {
  BroadcastQueue q(100);
  q.queue("a", SuspectMsg{1, "a", "x"});
  for (int i = 0; i < 3; ++i) CHECK(q.take(1000, 3).size() == 1);
  CHECK(q.empty());
  CHECK(q.take(1000, 3).empty());
}

TEST_CASE("broadcast queue: newer update replaces older about the same subject") {
  BroadcastQueue q(100);
  q.queue("a", SuspectMsg{1, "a", "x"});
  q.queue("a", DeadMsg{2, "a", "x"});
  CHECK(q.size() == 1);
  auto out = q.take(1000, 5);
  REQUIRE(out.size() == 1);
  CHECK(std::holds_alternative<DeadMsg>(out[0]));
}

TEST_CASE("broadcast queue: fewest transmitted first, newest first among equals, budget respected") {
  BroadcastQueue q(100);
  q.queue("old", SuspectMsg{1, "old", "x"});
  (void)q.take(1000, 10);  // old now sent once
  q.queue("new1", SuspectMsg{1, "new1", "x"});
  q.queue("new2", SuspectMsg{1, "new2", "x"});
  size_t one = encodedSizeHint(SuspectMsg{1, "new1", "x"});
  auto out = q.take(one, 10);
  REQUIRE(out.size() == 1);
  CHECK(std::get<SuspectMsg>(out[0]).id == "new2");
  out = q.take(one * 2, 10);
  REQUIRE(out.size() == 2);
  CHECK(std::get<SuspectMsg>(out[0]).id == "new1");
  CHECK(std::get<SuspectMsg>(out[1]).id == "new2");  // sent once, newer than "old"
  CHECK(q.take(10, 10).empty());  // nothing fits in 10 bytes
}

TEST_CASE("broadcast queue: bounded, dropping the most sent / oldest") {
  BroadcastQueue q(3);
  for (int i = 0; i < 5; ++i) q.queue("s" + std::to_string(i), AckMsg{static_cast<uint32_t>(i)});
  CHECK(q.size() == 3);
  CHECK(q.dropped() == 2);
  CHECK(!q.contains("s0"));
  CHECK(q.contains("s4"));
}

TEST_CASE("suspicion: timeout math as Lifeguard") {
  CHECK(suspicionMinTimeoutMs(4, 1, 1000) == 4000);
  CHECK(suspicionMinTimeoutMs(4, 10, 1000) == 4000);
  CHECK(suspicionMinTimeoutMs(4, 100, 1000) == 8000);
  CHECK(suspicionMinTimeoutMs(4, 1000, 1000) == 12000);
  CHECK(suspicionExpectedConfirmations(4, 100) == 2);
  CHECK(suspicionExpectedConfirmations(4, 3) == 0);
  const int64_t min = 8000, max = 48000;
  CHECK(suspicionTimeoutMs(0, 2, min, max) == max);
  int64_t one = suspicionTimeoutMs(1, 2, min, max);
  CHECK(one < max);
  CHECK(one > min);
  CHECK(suspicionTimeoutMs(2, 2, min, max) == min);
  CHECK(suspicionTimeoutMs(5, 2, min, max) == min);
  CHECK(suspicionTimeoutMs(0, 0, min, max) == min);
  // log(2)/log(3) of the way from max to min
  CHECK(one == 48000 - static_cast<int64_t>(0.6309297535714574 * 40000) - 1);
}

TEST_CASE("push-pull interval scales past 32 nodes") {
  CHECK(pushPullScaledIntervalMs(30000, 32) == 30000);
  CHECK(pushPullScaledIntervalMs(30000, 33) == 60000);
  CHECK(pushPullScaledIntervalMs(30000, 64) == 60000);
  CHECK(pushPullScaledIntervalMs(30000, 65) == 90000);
  CHECK(pushPullScaledIntervalMs(30000, 1000) == 30000 * 6);
}
