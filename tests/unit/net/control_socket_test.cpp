#include "tests/temp_dir.h"
#include <doctest/doctest.h>

#include <algorithm>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <unistd.h>

#include <capnp/message.h>

#include <filesystem>
#include <thread>

#include "agent/net/uv_loop.h"
#include "agent/control/control_client.h"
#include "agent/control/control_frame.h"
#include "agent/net/control_server.h"

using namespace meshos;
using namespace meshos::net;
using namespace meshos::control;
namespace fs = std::filesystem;

namespace {

// A control server on its own loop thread, answering ping with JSON and snapshot with a
// reply sent later from a timer (an asynchronous handler).
struct ServerFixture {
  testing::TempDir tmp{"meshos-net"};
  fs::path dir = tmp.path;
  fs::path socket;
  uv_loop_t loop{};
  std::unique_ptr<UvPoster> poster;
  std::unique_ptr<UvTimers> timers;
  std::unique_ptr<ControlServer> server;
  std::thread thread;
  PeerCred last_peer;

  ServerFixture() {
    socket = dir / "agent.sock";
    uv_loop_init(&loop);
    poster = std::make_unique<UvPoster>(&loop);
    timers = std::make_unique<UvTimers>(&loop);
    server = std::make_unique<ControlServer>(
        &loop, [this](proto::Request::Reader req, const PeerCred& peer, ControlResponder reply) {
          last_peer = peer;
          switch (req.which()) {
            case proto::Request::PING:
              reply.json("{\"pong\":true}");
              break;
            case proto::Request::SNAPSHOT:
              timers->after(5, [reply] { reply.text("later"); });
              break;
            default:
              reply.error(Status::notImplemented("unknown request"));
          }
        });
    REQUIRE(server->listen(socket, 0600).isOk());
    thread = std::thread([this] { uv_run(&loop, UV_RUN_DEFAULT); });
  }

  ~ServerFixture() {
    poster->post([this] {
      server->close();
      timers->close();
      poster->close();
    });
    thread.join();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
};

Result<ControlReply> ping(const fs::path& socket) {
  return callAgent(socket, [](proto::Request::Builder r) { r.setPing(); }, 5000);
}

}  // namespace

TEST_CASE("requests get replies, synchronous and later, with peer credentials") {
  ServerFixture f;
  struct stat st {};
  REQUIRE(::stat(f.socket.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto r = ping(f.socket);
  REQUIRE_MESSAGE(r.isOk(), r.status().toString());
  CHECK(r->body == "{\"pong\":true}");
  CHECK(f.last_peer.pid == ::getpid());
  CHECK(f.last_peer.uid == ::getuid());
  CHECK(f.last_peer.known);
  // The supplementary groups, as the kernel keeps them for this process (SO_PEERGROUPS).
  std::vector<gid_t> mine(static_cast<size_t>(::getgroups(0, nullptr)));
  mine.resize(static_cast<size_t>(::getgroups(static_cast<int>(mine.size()), mine.data())));
  std::vector<gid_t> seen = f.last_peer.groups;
  std::sort(mine.begin(), mine.end());
  std::sort(seen.begin(), seen.end());
  CHECK(seen == mine);
  auto later = callAgent(f.socket, [](proto::Request::Builder r) { r.setSnapshot(); }, 5000);
  REQUIRE(later.isOk());
  CHECK(later->kind == ControlReply::Kind::kText);
  CHECK(later->body == "later");
  auto unknown = callAgent(f.socket, [](proto::Request::Builder r) { r.setMetrics(); }, 5000);
  CHECK(unknown.status().code() == Code::kNotImplemented);
}

TEST_CASE("garbage gets an error reply and the server keeps serving") {
  ServerFixture f;
  // A frame whose payload is not a Cap'n Proto message.
  Bytes garbage{0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
  auto raw = exchangeRaw(f.socket, garbage, 5000);
  REQUIRE(raw.isOk());
  auto reader = FrameReader::open(*raw);
  REQUIRE(reader.isOk());
  auto reply = (*reader)->message().getRoot<proto::Reply>();
  CHECK(reply.which() == proto::Reply::ERROR);
  CHECK(std::string(reply.getError().getCode().cStr()) == "invalid argument");
  // Eight words of random-looking data: a segment table that lies.
  Bytes lies{0, 0, 0, 16, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  auto raw2 = exchangeRaw(f.socket, lies, 5000);
  REQUIRE(raw2.isOk());
  // An oversized length prefix: error reply, then the connection is closed.
  Bytes huge{0x7f, 0xff, 0xff, 0xff, 1, 2, 3};
  auto raw3 = exchangeRaw(f.socket, huge, 5000);
  REQUIRE(raw3.isOk());
  auto reader3 = FrameReader::open(*raw3);
  REQUIRE(reader3.isOk());
  CHECK((*reader3)->message().getRoot<proto::Reply>().which() == proto::Reply::ERROR);
  CHECK(ping(f.socket).isOk());
  CHECK(f.server->counters().malformed >= 1);
  CHECK(f.server->counters().oversized == 1);
}

TEST_CASE("a live socket is refused, a stale one is replaced") {
  ServerFixture f;
  uv_loop_t other;
  uv_loop_init(&other);
  {
    ControlServer second(&other, [](auto, auto&, auto) {});
    CHECK(second.listen(f.socket, 0600).code() == Code::kAlreadyExists);
  }
  uv_run(&other, UV_RUN_DEFAULT);
  uv_loop_close(&other);

  // A stale socket file: bound by a process that is gone.
  fs::path stale = f.dir / "stale.sock";
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, stale.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
  }
  uv_loop_t third;
  uv_loop_init(&third);
  {
    ControlServer s(&third, [](auto, auto&, auto) {});
    CHECK(s.listen(stale, 0600).isOk());
    s.close();
    uv_run(&third, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&third) == 0);
  CHECK_FALSE(fs::exists(stale));
}

TEST_CASE("no agent gives unavailable") {
  auto r = ping("/tmp/meshos-no-such-agent.sock");
  CHECK(r.status().code() == Code::kUnavailable);
}
