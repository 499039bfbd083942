#include "agent/control/control_client.h"

#include <capnp/message.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/core/clock.h"
#include "agent/control/control_frame.h"

namespace meshos::control {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Status connectUnix(const std::filesystem::path& path, Fd& fd) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof addr.sun_path) return Status::invalid("socket path too long");
  std::strcpy(addr.sun_path, path.c_str());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Status::unavailable("no agent answers at " + path.string() + ": " + std::strerror(errno));
  }
  return Status::ok();
}

// Waits for fd to be ready for `events` until the deadline.
Status waitFor(int fd, short events, int64_t deadline_ms, const SystemClock& clock) {
  int64_t left = deadline_ms - clock.monotonicMs();
  if (left <= 0) return Status::deadline("the agent did not answer in time");
  pollfd p{fd, events, 0};
  int r = ::poll(&p, 1, static_cast<int>(left));
  if (r == 0) return Status::deadline("the agent did not answer in time");
  if (r < 0 && errno != EINTR) return Status::io(std::string("poll: ") + std::strerror(errno));
  return Status::ok();
}

}  // namespace

Result<Bytes> exchangeRaw(const std::filesystem::path& socket, ByteView bytes, int timeout_ms) {
  SystemClock clock;
  const int64_t deadline = clock.monotonicMs() + timeout_ms;
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Status::io(std::string("socket: ") + std::strerror(errno));
  MESHOS_RETURN_IF_ERROR(connectUnix(socket, fd));
  size_t sent = 0;
  while (sent < bytes.size()) {
    MESHOS_RETURN_IF_ERROR(waitFor(fd.get(), POLLOUT, deadline, clock));
    ssize_t n = ::send(fd.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
      return Status::unavailable(std::string("sending to the agent: ") + std::strerror(errno));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  FrameDecoder decoder(kMaxControlReplyBytes);
  uint8_t buf[65536];
  for (;;) {
    auto frame = decoder.next();
    if (!frame) return frame.status();
    if (frame->has_value()) return std::move(**frame);
    MESHOS_RETURN_IF_ERROR(waitFor(fd.get(), POLLIN, deadline, clock));
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n == 0) return Status::unavailable("the agent closed the connection without a reply");
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
      return Status::unavailable(std::string("reading from the agent: ") + std::strerror(errno));
    }
    if (n > 0) decoder.feed(ByteView(buf, static_cast<size_t>(n)));
  }
}

namespace {

Result<ControlReply> decodeReply(Bytes raw) {
  auto reader = FrameReader::open(std::move(raw));
  if (!reader) return reader.status().withContext("reply from the agent");
  try {
    auto reply = (*reader)->message().getRoot<proto::Reply>();
    switch (reply.which()) {
      case proto::Reply::ERROR: {
        auto e = reply.getError();
        return Status(codeFromName(e.getCode().cStr()), e.getMessage().cStr());
      }
      case proto::Reply::JSON:
        return ControlReply{ControlReply::Kind::kJson, reply.getJson().cStr()};
      case proto::Reply::TEXT:
        return ControlReply{ControlReply::Kind::kText, reply.getText().cStr()};
    }
  } catch (const kj::Exception& e) {
    return Status::invalid(std::string("malformed reply from the agent: ") +
                           e.getDescription().cStr());
  }
  return Status::invalid("reply of an unknown kind (is the agent newer than this tool?)");
}

Bytes requestFrame(const RequestFiller& fill) {
  capnp::MallocMessageBuilder message;
  auto req = message.initRoot<proto::Request>();
  req.setId(1);
  fill(req);
  return encodeFrame(message);
}

}  // namespace

Result<ControlReply> callAgent(const std::filesystem::path& socket, const RequestFiller& fill,
                               int timeout_ms) {
  auto raw = exchangeRaw(socket, requestFrame(fill), timeout_ms);
  if (!raw) return raw.status();
  return decodeReply(std::move(*raw));
}

Status streamAgent(const std::filesystem::path& socket, const RequestFiller& fill,
                   const std::function<bool(const ControlReply&)>& on_reply, int timeout_ms) {
  SystemClock clock;
  const int64_t first_deadline = clock.monotonicMs() + timeout_ms;
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Status::io(std::string("socket: ") + std::strerror(errno));
  MESHOS_RETURN_IF_ERROR(connectUnix(socket, fd));
  const Bytes frame = requestFrame(fill);
  if (::send(fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size())) {
    return Status::unavailable(std::string("sending to the agent: ") + std::strerror(errno));
  }
  FrameDecoder decoder(kMaxControlReplyBytes);
  uint8_t buf[65536];
  bool first = true;
  for (;;) {
    auto next = decoder.next();
    if (!next) return next.status();
    if (next->has_value()) {
      auto reply = decodeReply(std::move(**next));
      if (!reply) return reply.status();
      first = false;
      if (!on_reply(*reply)) return Status::ok();
      continue;
    }
    if (first) MESHOS_RETURN_IF_ERROR(waitFor(fd.get(), POLLIN, first_deadline, clock));
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n == 0) return Status::unavailable("the agent closed the stream");
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
      return Status::unavailable(std::string("reading from the agent: ") + std::strerror(errno));
    }
    if (n > 0) decoder.feed(ByteView(buf, static_cast<size_t>(n)));
  }
}

}  // namespace meshos::control
