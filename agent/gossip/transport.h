// Transport: how a GossipService reaches its peers. Datagrams (one UDP packet each) and
// one-request-one-reply streams (TCP), both addressed "host:port" and bound to one port.
// The libuv shell speaks real sockets (net::GossipTransport); the simulator speaks its
// in-memory network (sim::SimTransport). The gossip code above never knows which.
//
// Loop thread only. The receiver's callbacks and request()'s done run on the loop thread,
// never inside the call that caused them. After close() nothing is called back.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "agent/core/bytes.h"
#include "agent/core/status.h"

namespace meshos::gossip {

class TransportReceiver {
 public:
  virtual ~TransportReceiver() = default;
  // A datagram from `from` ("host:port"), received at at_us (monotonic microseconds, the
  // clock of the Env: the probe RTTs are timed with it).
  virtual void onDatagram(int64_t at_us, const std::string& from, ByteView bytes) = 0;
  // The request frame of an inbound stream; the value is the reply frame, an error closes
  // the stream without a reply.
  virtual Result<Bytes> onStream(const std::string& from, ByteView frame) = 0;
};

struct TransportOptions {
  std::string bind = "0.0.0.0:7946";  // port 0: any free port
  size_t max_frame_bytes = 8 << 20;   // a stream frame over this is refused
  size_t max_connections = 128;       // concurrent streams, in and out
  int64_t inbound_timeout_ms = 10'000;  // an inbound stream must send its request in time
};

struct TransportCounters {
  uint64_t udp_send_errors = 0, udp_send_dropped = 0, tcp_rejected = 0, tcp_errors = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Binds datagrams and streams on one port. The value is the address this node can be
  // reached at: the bind host (for a wildcard bind, the host's first non-loopback IPv4, or
  // ::1) with the port actually bound.
  virtual Result<std::string> open(const TransportOptions& options, TransportReceiver& receiver) = 0;
  // Best effort: a send that fails or is dropped is counted, never reported.
  virtual void send(const std::string& to, Bytes bytes) = 0;
  // Opens a stream, sends `frame`, and calls done exactly once with the reply frame or an
  // error (refused, closed early, timeout_ms passed, frame over the limit).
  virtual void request(const std::string& to, Bytes frame, int64_t timeout_ms,
                       std::function<void(Result<Bytes>)> done) = 0;
  // Closes everything; requests in flight are dropped without calling done. Idempotent.
  virtual void close() = 0;
  virtual TransportCounters counters() const = 0;
};

}  // namespace meshos::gossip
