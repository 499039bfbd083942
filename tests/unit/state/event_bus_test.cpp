#include <doctest/doctest.h>

#include "agent/state/event_bus.h"
#include "agent/state/event_pump.h"

namespace meshos::state {

TEST_CASE("a subscriber's buffer is bounded: the oldest go, and the count of them comes first") {
  EventBus bus;
  int wakes = 0;
  auto id = bus.subscribe({}, 3, [&] { ++wakes; });
  for (int i = 0; i < 5; ++i) bus.publish("members", 1000 + i, {{"i", i}});
  CHECK(wakes == 1);  // only when the buffer went from empty to not
  auto b = bus.take(id, 10);
  CHECK(b.missed == 2);
  REQUIRE(b.events.size() == 3);
  CHECK(b.events[0]->seq == 3);
  CHECK(nlohmann::json::parse(b.events[2]->json)["data"]["i"] == 4);
  CHECK(!bus.pending(id));
  CHECK(bus.counters().missed == 2);
  bus.publish("members", 2000, {});
  CHECK(wakes == 2);
}

TEST_CASE("kinds filter what a subscriber gets; nobody subscribed costs no serialisation") {
  EventBus bus;
  bus.publish("records", 1, {{"x", 1}});  // nobody listens: only the sequence moves
  CHECK(!bus.wants("members"));
  auto members = bus.subscribe({"members"}, 10, nullptr);
  CHECK(bus.wants("members"));
  CHECK(!bus.wants("records"));
  auto all = bus.subscribe({}, 10, nullptr);
  bus.publish("records", 2, {});
  bus.publish("members", 3, {});
  CHECK(bus.take(members, 10).events.size() == 1);
  auto b = bus.take(all, 10);
  REQUIRE(b.events.size() == 2);
  CHECK(b.events[0]->seq == 2);
  bus.unsubscribe(all);
  CHECK(bus.subscribers() == 1);
  CHECK(parseEventKinds("members,daemons")->size() == 2);
  CHECK(!parseEventKinds("members,bogus"));
  CHECK(parseEventKinds("")->empty());
}

TEST_CASE("a pump writes only while its connection has room, and resumes when it drains") {
  EventBus bus;
  size_t queued = 0;
  std::vector<uint64_t> written;
  uint64_t missed = 0;
  EventPump pump(
      bus, {},
      [&](const EventBatch& b) {
        missed += b.missed;
        for (const auto& e : b.events) written.push_back(e->seq);
        queued += EventPump::kHighWaterBytes;  // every write fills the connection
      },
      [&] { return queued; });
  bus.publish("daemons", 1, {});  // the wake writes it at once
  CHECK(written.size() == 1);
  for (int i = 0; i < 3000; ++i) bus.publish("daemons", 2, {});
  CHECK(written.size() == 1);  // full: nothing more was taken
  queued = 0;
  pump.pump();  // the connection drained one write's worth: one batch
  CHECK(written.size() == 1 + EventPump::kBatch);
  CHECK(missed == 3000 - EventBus::kDefaultCapacity);
  pump.stop();
  CHECK(bus.subscribers() == 0);
}

}  // namespace meshos::state
