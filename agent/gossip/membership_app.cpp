// Membership: application channels on the gossip streams (requests, handlers, replies).
#include "agent/gossip/membership.h"

#include <algorithm>

#include "agent/core/node_identity.h"
#include "agent/gossip/membership_limits.h"
#include "agent/gossip/suspicion.h"

namespace meshos::gossip {

using namespace detail;

Status Membership::setAppHandler(const std::string& channel, AppHandler handler) {
  if (channel.empty() || channel.size() > kMaxChannelBytes) return Status::invalid("app channel name must be 1..64 bytes");
  if (handler) {
    app_handlers_[channel] = std::move(handler);
  } else {
    app_handlers_.erase(channel);
  }
  return Status::ok();
}

Result<uint64_t> Membership::requestApp(int64_t, const std::string& to, const std::string& channel, Bytes body) {
  if (!started_) return Status::unavailable("gossip not started");
  if (channel.empty() || channel.size() > kMaxChannelBytes) return Status::invalid("app channel name must be 1..64 bytes");
  if (body.size() > options_.max_app_body_bytes) {
    ++counters_.app_oversized;
    return Status::invalid("app request of " + std::to_string(body.size()) + " bytes is over max_app_body_bytes (" +
                           std::to_string(options_.max_app_body_bytes) + ")");
  }
  if (streams_.size() >= kMaxPendingStreams) return Status::overloaded("too many gossip streams pending");
  Bytes sealed = keyring_.seal(options_.cluster_id,
                               encodeStreamFrame(AppRequestMsg{channel, self_.id, self_.address, std::move(body)}));
  uint64_t id = next_stream_id_++;
  streams_.emplace(id, PendingStream{StreamKind::kApp, to, 0, false});
  ++counters_.streams_out;
  ++counters_.app_requests_out;
  counters_.stream_bytes_out += sealed.size();
  out_.streams.push_back(StreamRequest{id, StreamKind::kApp, to, std::move(sealed)});
  return id;
}

Bytes Membership::serveApp(const std::string& from, const AppRequestMsg& req) {
  ++counters_.app_requests_in;
  AppReplyMsg reply;
  auto it = app_handlers_.find(req.channel);
  if (req.body.size() > options_.max_app_body_bytes) {
    ++counters_.app_oversized;
    reply = appError(Status::invalid("app request body over max_app_body_bytes"));
  } else if (it == app_handlers_.end()) {
    ++counters_.app_unknown_channel;
    reply = appError(Status::notFound("unknown app channel '" + req.channel.substr(0, kMaxChannelBytes) + "'"));
  } else {
    // Copied: the handler may replace itself.
    AppHandler handler = it->second;
    Result<Bytes> r = handler(req.source_address.empty() ? from : req.source_address, req.body);
    if (!r) {
      ++counters_.app_handler_errors;
      reply = appError(r.status());
    } else if (r->size() > options_.max_app_body_bytes) {
      ++counters_.app_oversized;
      reply = appError(Status::overloaded("app reply body over max_app_body_bytes"));
    } else {
      reply.ok = true;
      reply.body = std::move(*r);
    }
  }
  return keyring_.seal(options_.cluster_id, encodeStreamFrame(reply));
}

Result<Bytes> Membership::appReplyOf(const Result<Bytes>& sealed) {
  if (!sealed) return sealed.status();
  auto plain = openInput(*sealed, options_.max_stream_bytes);
  if (!plain) return plain.status();
  auto decoded = decodeStreamFrame(*plain, limits_);
  if (!decoded) {
    ++counters_.drop_decode;
    return decoded.status();
  }
  auto* r = std::get_if<AppReplyMsg>(&*decoded);
  if (r == nullptr) {
    ++counters_.drop_decode;
    return Status::invalid("app request answered with another kind of frame");
  }
  if (!r->ok) {
    Code code = codeFromName(r->error_code);
    if (code == Code::kOk) code = Code::kInternal;
    return Status(code, "peer: " + r->error_message);
  }
  if (r->body.size() > options_.max_app_body_bytes) {
    ++counters_.app_oversized;
    return Status::invalid("app reply body over max_app_body_bytes");
  }
  return std::move(r->body);
}

}  // namespace meshos::gossip
