#include "agent/sim/sim_transport.h"

namespace meshos::sim {

Result<std::string> SimTransport::open(const gossip::TransportOptions& options, gossip::TransportReceiver& receiver) {
  if (open_) return Status::exists("transport already open");
  options_ = options;
  receiver_ = &receiver;
  open_ = true;
  network_.attach(address_, this);
  return address_;
}

void SimTransport::close() {
  if (!open_) return;
  open_ = false;
  *alive_ = false;
  alive_ = std::make_shared<bool>(true);
  network_.detach(address_);
}

void SimTransport::send(const std::string& to, Bytes bytes) {
  if (!open_) return;
  network_.sendDatagram(address_, to, std::move(bytes));
}

void SimTransport::request(const std::string& to, Bytes frame, int64_t timeout_ms,
                           std::function<void(Result<Bytes>)> done) {
  if (!open_) return;
  network_.openStream(address_, to, std::move(frame), timeout_ms,
                      [alive = std::weak_ptr<bool>(alive_), this, done = std::move(done)](Result<Bytes> reply) {
                        auto a = alive.lock();
                        if (!a || !*a) return;
                        if (!reply) ++counters_.tcp_errors;
                        done(std::move(reply));
                      });
}

void SimTransport::onDatagram(const std::string& from, Bytes bytes) {
  if (!open_) return;
  receiver_->onDatagram(clock_.monotonicNs() / 1000, from, bytes);
}

Result<Bytes> SimTransport::onStream(const std::string& from, Bytes request) {
  if (!open_) return Status::unavailable("node down");
  return receiver_->onStream(from, request);
}

}  // namespace meshos::sim
