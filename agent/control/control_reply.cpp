#include "agent/control/control_reply.h"

#include <capnp/message.h>

namespace meshos::control {

namespace {
void fillError(proto::Reply::Builder r, const Status& status) {
  auto e = r.initError();
  e.setCode(std::string(codeName(status.code())));
  e.setMessage(status.message());
}
}  // namespace

void ControlResponder::json(std::string body) const {
  if (auto s = sink_.lock()) s->reply(id_, [&](proto::Reply::Builder r) { r.setJson(body); });
}
void ControlResponder::text(std::string body) const {
  if (auto s = sink_.lock()) s->reply(id_, [&](proto::Reply::Builder r) { r.setText(body); });
}
void ControlResponder::error(const Status& status) const {
  if (auto s = sink_.lock()) s->reply(id_, [&](proto::Reply::Builder r) { fillError(r, status); });
}

bool ControlResponder::push(const std::string& json) const {
  auto s = sink_.lock();
  return s && s->push(id_, [&](proto::Reply::Builder r) { r.setJson(json); });
}
size_t ControlResponder::queuedBytes() const {
  auto s = sink_.lock();
  return s ? s->queuedBytes() : 0;
}
void ControlResponder::onStream(std::function<void(bool closed)> fn) const {
  if (auto s = sink_.lock()) {
    s->onStream(std::move(fn));
  } else {
    fn(true);
  }
}

void KeptReply::reply(uint64_t, const std::function<void(proto::Reply::Builder)>& fill) {
  if (reply_) return;
  capnp::MallocMessageBuilder message;
  auto r = message.initRoot<proto::Reply>();
  fill(r);
  switch (r.which()) {
    case proto::Reply::JSON: reply_ = ControlReply{ControlReply::Kind::kJson, r.getJson().cStr()}; break;
    case proto::Reply::TEXT: reply_ = ControlReply{ControlReply::Kind::kText, r.getText().cStr()}; break;
    case proto::Reply::ERROR: {
      auto e = r.getError();
      reply_ = Result<ControlReply>(Status(codeFromName(e.getCode().cStr()), e.getMessage().cStr()));
      break;
    }
    default: reply_ = Result<ControlReply>(Status::internal("empty reply")); break;
  }
}

}  // namespace meshos::control
