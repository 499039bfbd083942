#include "agent/net/dns_server.h"

#include "agent/net/gossip_transport.h"

namespace meshos::net {

DnsServer::DnsServer(uv_loop_t* loop, Answer answer) : loop_(loop), answer_(std::move(answer)) {}

DnsServer::~DnsServer() { close(); }

Status DnsServer::listen(const config::HostPort& address) {
  if (udp_ != nullptr) return Status::exists("the DNS server is already listening");
  sockaddr_storage addr{};
  if (Status s = parseSocketAddress(address.toString(), addr); !s) return s.withContext("dns.bind");
  auto* udp = new uv_udp_t();
  // recvmmsg: one system call takes a batch of queries under load.
  uv_udp_init_ex(loop_, udp, AF_UNSPEC | UV_UDP_RECVMMSG);
  udp->data = this;
  int rc = uv_udp_bind(udp, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_udp_recv_start(
        udp,
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* self = static_cast<DnsServer*>(h->data);
          *buf = uv_buf_init(self->buffer_.data(), static_cast<unsigned>(self->buffer_.size()));
        },
        [](uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned) {
          static_cast<DnsServer*>(h->data)->onDatagram(nread, buf, from);
        });
  }
  if (rc != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(udp), [](uv_handle_t* h) { delete reinterpret_cast<uv_udp_t*>(h); });
    return Status::io("dns: cannot listen on " + address.toString() + " (UDP): " + uv_strerror(rc));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_udp_getsockname(udp, reinterpret_cast<sockaddr*>(&bound), &len);
  address_ = formatSocketAddress(reinterpret_cast<const sockaddr*>(&bound));
  udp_ = udp;
  return Status::ok();
}

void DnsServer::onDatagram(ssize_t nread, const uv_buf_t* buf, const sockaddr* from) {
  // 0 with no address: nothing more to read now, or the end of a batch (the buffer is ours).
  if (nread <= 0 || from == nullptr) return;
  ++queries_;
  auto result = answer_(ByteView(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread)));
  if (result.wire.empty()) {
    ++unanswered_;
    return;
  }
  ++responses_[std::string(discovery::rcodeName(result.rcode))];
  left_out_ += result.left_out;
  uv_buf_t out = uv_buf_init(reinterpret_cast<char*>(result.wire.data()), static_cast<unsigned>(result.wire.size()));
  if (uv_udp_try_send(udp_, &out, 1, from) < 0) ++send_failed_;
}

void DnsServer::close() {
  if (udp_ == nullptr) return;
  uv_udp_recv_stop(udp_);
  uv_close(reinterpret_cast<uv_handle_t*>(udp_), [](uv_handle_t* h) { delete reinterpret_cast<uv_udp_t*>(h); });
  udp_ = nullptr;
}

nlohmann::json DnsServer::toJson() const {
  return {{"address", address_}, {"queries", queries_}, {"responses", responses_},
          {"unanswered", unanswered_}, {"send_failed", send_failed_}, {"left_out", left_out_}};
}

}  // namespace meshos::net
