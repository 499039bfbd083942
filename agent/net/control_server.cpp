#include "agent/net/control_server.h"

#include <capnp/message.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>

#include "agent/control/control_frame.h"

namespace meshos::net {

using control::FrameDecoder;
using control::FrameReader;
using control::encodeFrame;

namespace {

// The caller's supplementary groups, as the kernel saw them at connect (SO_PEERGROUPS);
// empty where the kernel cannot tell (before Linux 4.13): then only uid and gid count.
std::vector<gid_t> peerGroups(int fd) {
#ifdef SO_PEERGROUPS
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    if (errno != ERANGE) break;
    groups.resize(len / sizeof(gid_t) + 1);  // the kernel said how many there are
  }
#else
  (void)fd;
#endif
  return {};
}

std::string octalMode(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

}  // namespace

// One accepted connection. Owned by the server's set; its uv_pipe_t is freed in the close
// callback, which also drops the last owning reference.
class ControlConnection final : public ReplySink, public std::enable_shared_from_this<ControlConnection> {
 public:
  ControlConnection(ControlServer* server, PeerCred peer) : server_(server), peer_(peer) {}

  uv_pipe_t* pipe() { return pipe_; }
  void adopt(uv_pipe_t* pipe) {
    pipe_ = pipe;
    pipe_->data = this;
  }

  void startReading() {
    uv_read_start(reinterpret_cast<uv_stream_t*>(pipe_),
                  [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
                    buf->base = new char[suggested];
                    buf->len = suggested;
                  },
                  &ControlConnection::onRead);
  }

  void reply(uint64_t id, const std::function<void(proto::Reply::Builder)>& fill) override {
    if (closing_ || !busy_) return;
    capnp::MallocMessageBuilder message;
    auto r = message.initRoot<proto::Reply>();
    r.setId(id);
    fill(r);
    write(encodeFrame(message));
    busy_ = false;
    if (close_after_reply_) {
      close();
      return;
    }
    processNext();
  }

  bool push(uint64_t id, const std::function<void(proto::Reply::Builder)>& fill) override {
    if (closing_ || !busy_) return false;
    capnp::MallocMessageBuilder message;
    auto r = message.initRoot<proto::Reply>();
    r.setId(id);
    fill(r);
    write(encodeFrame(message));
    return true;
  }

  size_t queuedBytes() const override {
    return pipe_ == nullptr ? 0 : uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(pipe_));
  }

  // The request streams until the connection closes: it stays busy, so what else the
  // client sends on this connection waits forever (a watch takes its connection).
  void onStream(std::function<void(bool closed)> fn) override {
    if (closing_) return fn(true);
    on_stream_ = std::move(fn);
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    if (auto fn = std::move(on_stream_)) fn(true);
    uv_close(reinterpret_cast<uv_handle_t*>(pipe_), [](uv_handle_t* h) {
      auto* conn = static_cast<ControlConnection*>(h->data);
      delete reinterpret_cast<uv_pipe_t*>(h);
      conn->server_->forget(conn);  // may destroy conn
    });
  }

 private:
  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* conn = static_cast<ControlConnection*>(stream->data);
    std::unique_ptr<char[]> owned(buf->base);
    if (nread < 0) {
      conn->close();
      return;
    }
    if (nread == 0 || conn->closing_) return;
    conn->decoder_.feed(ByteView(reinterpret_cast<uint8_t*>(buf->base), static_cast<size_t>(nread)));
    for (;;) {
      auto frame = conn->decoder_.next();
      if (!frame) {
        // The length prefix is beyond the limit: answer once, then hang up.
        ++conn->server_->counters_.oversized;
        uv_read_stop(stream);
        conn->pending_.push_back(Pending{{}, frame.status()});
        conn->close_after_reply_ = true;
        break;
      }
      if (!frame->has_value()) break;
      if (conn->pending_.size() >= kMaxPending) {
        // A client that sends and never reads (or sends behind a watch) is cut off.
        ++conn->server_->counters_.malformed;
        return conn->close();
      }
      conn->pending_.push_back(Pending{std::move(**frame), Status::ok()});
    }
    conn->processNext();
  }

  static constexpr size_t kMaxPending = 64;  // requests read and not yet answered

  struct Pending {
    Bytes payload;
    Status framing;  // not OK: answer with this error
  };

  void processNext() {
    if (busy_ || closing_ || pending_.empty()) return;
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    busy_ = true;
    ++server_->counters_.requests;
    auto self = shared_from_this();
    ControlResponder responder(std::static_pointer_cast<ReplySink>(self), 0);
    if (!p.framing.isOk()) {
      responder.error(p.framing);
      return;
    }
    auto reader = FrameReader::open(std::move(p.payload));
    if (!reader) {
      ++server_->counters_.malformed;
      responder.error(reader.status());
      return;
    }
    uint64_t id = 0;
    try {
      auto request = (*reader)->message().getRoot<proto::Request>();
      id = request.getId();
      ControlResponder with_id(std::static_pointer_cast<ReplySink>(self), id);
      server_->handler_(request, peer_, with_id);
    } catch (const kj::Exception& e) {
      ++server_->counters_.malformed;
      ControlResponder(std::static_pointer_cast<ReplySink>(self), id).error(
          Status::invalid(std::string("malformed request: ") + e.getDescription().cStr()));
    } catch (const std::exception& e) {
      ControlResponder(std::static_pointer_cast<ReplySink>(self), id).error(Status::internal(e.what()));
    }
  }

  void write(Bytes bytes) {
    struct WriteReq {
      uv_write_t req{};
      Bytes bytes;
      ControlConnection* conn;
    };
    auto* w = new WriteReq();
    w->bytes = std::move(bytes);
    w->conn = this;
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->bytes.data()),
                               static_cast<unsigned>(w->bytes.size()));
    w->req.data = w;
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(pipe_), &buf, 1,
                      [](uv_write_t* req, int status) {
                        // Runs before the close callback frees the connection.
                        auto* wr = static_cast<WriteReq*>(req->data);
                        ControlConnection* c = wr->conn;
                        delete wr;
                        if (status == 0 && !c->closing_ && c->on_stream_) c->on_stream_(false);
                      });
    if (rc != 0) delete w;
  }

  ControlServer* server_;
  PeerCred peer_;
  uv_pipe_t* pipe_ = nullptr;
  FrameDecoder decoder_;
  std::deque<Pending> pending_;
  bool busy_ = false;
  bool closing_ = false;
  bool close_after_reply_ = false;
  std::function<void(bool closed)> on_stream_;
};

ControlServer::ControlServer(uv_loop_t* loop, ControlHandler handler)
    : loop_(loop), handler_(std::move(handler)) {}

ControlServer::~ControlServer() { close(); }

Status ControlServer::listen(const std::filesystem::path& path, uint32_t mode) {
  if (pipe_ != nullptr) return Status::exists("the control socket is already listening");
  sockaddr_un addr{};
  if (path.string().size() >= sizeof addr.sun_path) {
    return Status::invalid("control socket path is longer than 107 bytes: " + path.string());
  }
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
    // Is somebody serving it? A live agent answers connect(); a stale file refuses.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    bool live = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (fd >= 0) ::close(fd);
    if (live) {
      return Status::exists("another agent is serving the control socket " + path.string());
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
      return Status::exists(path.string() + " exists and is not a socket; refusing to remove it");
    }
    ::unlink(path.c_str());
  }
  std::filesystem::create_directories(path.parent_path(), ec);
  auto* pipe = new uv_pipe_t();
  uv_pipe_init(loop_, pipe, 0);
  pipe->data = this;
  int rc = uv_pipe_bind(pipe, path.c_str());
  if (rc == 0 && ::chmod(path.c_str(), mode) != 0) {
    // Before listen(): nobody can connect while the mode is not yet what [control] says.
    const int err = errno;
    uv_close(reinterpret_cast<uv_handle_t*>(pipe), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    ::unlink(path.c_str());
    return Status::io("cannot set mode " + octalMode(mode) + " on " + path.string() + ": " + std::strerror(err));
  }
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(pipe), 64, &ControlServer::onConnection);
  }
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(pipe),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    return Status::io("cannot listen on " + path.string() + ": " + uv_strerror(rc));
  }
  pipe_ = pipe;
  path_ = path;
  return Status::ok();
}

void ControlServer::onConnection(uv_stream_t* server_stream, int status) {
  auto* self = static_cast<ControlServer*>(server_stream->data);
  if (status != 0) return;
  auto* client = new uv_pipe_t();
  uv_pipe_init(self->loop_, client, 0);
  if (uv_accept(server_stream, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(client),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    return;
  }
  if (self->connections_.size() >= kMaxConnections) {
    ++self->counters_.refused_connections;
    uv_close(reinterpret_cast<uv_handle_t*>(client),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    return;
  }
  PeerCred peer;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(client), &fd) == 0) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      peer.pid = cred.pid;
      peer.uid = cred.uid;
      peer.gid = cred.gid;
      peer.known = true;
      peer.groups = peerGroups(fd);
    }
  }
  auto conn = std::make_shared<ControlConnection>(self, peer);
  conn->adopt(client);
  self->connections_.insert(conn);
  ++self->counters_.connections;
  conn->startReading();
}

void ControlServer::forget(ControlConnection* conn) {
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == conn) {
      connections_.erase(it);
      return;
    }
  }
}

void ControlServer::close() {
  if (pipe_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(pipe_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    pipe_ = nullptr;
    ::unlink(path_.c_str());
  }
  // Copy: close callbacks erase from the set later, not now.
  auto conns = connections_;
  for (auto& c : conns) c->close();
}

}  // namespace meshos::net
