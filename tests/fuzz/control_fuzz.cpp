// Control target: bytes from the control socket through the frame decoder (fed in pieces,
// as reads deliver them), the frame reader, and a full read of every field of the request
// (as the agent's server reads it) and of the reply (as meshos-inspect and meshos-admin read
// it). A malformed message makes the reader throw kj::Exception; the server and the client
// catch it at this boundary (agent/net/control_server.cpp, agent/control/control_client.cpp),
// and so does this target — any other exception, or a crash, is a finding.
#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <kj/string.h>

#include <algorithm>

#include "agent/control/control_frame.h"
#include "proto/control.capnp.h"
#include "tests/fuzz/fuzz_target.h"

namespace meshos::fuzz {

using namespace meshos::control;

namespace {

// Every field, recursively: what a handler reading any of them would touch.
template <class Root>
void readAll(FrameReader& reader) {
  try {
    auto root = reader.message().getRoot<Root>();
    kj::String text = kj::str(root);
    check(text.size() < (1u << 30));
  } catch (const kj::Exception&) {
    // Malformed: the server answers "malformed request", the client "malformed reply".
  }
}

Bytes frameOf(capnp::MessageBuilder& message) { return encodeFrame(message); }

}  // namespace

int fuzzControlFrame(const uint8_t* data, size_t size) {
  FrameDecoder decoder;
  // Pieces of 1, 2, 3... bytes, then the rest: frames split across reads.
  size_t at = 0, piece = 1;
  size_t frames = 0;
  while (true) {
    const size_t n = std::min(piece++, size - at);
    decoder.feed(ByteView(data + at, n));
    at += n;
    for (;;) {
      auto frame = decoder.next();
      if (!frame) {
        check(size >= 4);  // only a length over the limit is an error
        return 0;
      }
      if (!frame->has_value()) break;
      ++frames;
      check((*frame)->size() <= kMaxControlFrameBytes);
      auto reader = FrameReader::open(std::move(**frame));
      if (!reader) continue;
      readAll<proto::Request>(**reader);
      readAll<proto::Reply>(**reader);
    }
    if (at == size) break;
  }
  check(frames * 4 <= size);
  return 0;
}

std::vector<Bytes> controlFrameSeeds() {
  std::vector<Bytes> out;
  auto request = [&](auto fill) {
    capnp::MallocMessageBuilder m;
    auto r = m.initRoot<proto::Request>();
    r.setId(7);
    r.setReason("fuzz seed");
    fill(r);
    out.push_back(frameOf(m));
  };
  request([](proto::Request::Builder r) { r.setPing(); });
  request([](proto::Request::Builder r) { r.setSnapshot(); });
  request([](proto::Request::Builder r) {
    auto c = r.initChainTail();
    c.setChain("audit");
    c.setFrom(3);
    c.setCount(10);
  });
  request([](proto::Request::Builder r) {
    auto j = r.initJoin(2);
    j.set(0, "127.0.0.1:7946");
    j.set(1, "127.0.0.1:7947");
  });
  request([](proto::Request::Builder r) {
    const uint8_t key[32] = {1, 2, 3};
    r.initKeyring().setInstall(capnp::Data::Reader(key, sizeof key));
  });
  request([](proto::Request::Builder r) {
    const uint8_t commit[16] = {0, 0, 0, 0, 1};
    r.setSubmitCommit(capnp::Data::Reader(commit, sizeof commit));
  });
  request([](proto::Request::Builder r) {
    auto g = r.initGetCommits();
    g.setFrom(1);
    g.setTo(5);
  });
  request([](proto::Request::Builder r) { r.setPlacement("web"); });
  {
    capnp::MallocMessageBuilder m;
    auto reply = m.initRoot<proto::Reply>();
    reply.setId(7);
    auto e = reply.initError();
    e.setCode("invalid argument");
    e.setMessage("no such daemon");
    out.push_back(frameOf(m));
  }
  {
    capnp::MallocMessageBuilder m;
    m.initRoot<proto::Reply>().setJson(R"({"ok":true})");
    out.push_back(frameOf(m));
  }
  // Two frames in one read; a length over the limit; a payload not a whole number of words.
  Bytes two = out[0];
  two.insert(two.end(), out[1].begin(), out[1].end());
  out.push_back(two);
  out.push_back(Bytes{0xff, 0xff, 0xff, 0xff, 0});
  out.push_back(Bytes{0, 0, 0, 3, 1, 2, 3});
  return out;
}

}  // namespace meshos::fuzz
