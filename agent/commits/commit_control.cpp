#include "agent/commits/commit_control.h"

#include <kj/exception.h>

#include "agent/commits/commit_json.h"

namespace meshos::commits {

bool isCommitRequest(proto::Request::Reader request) {
  switch (request.which()) {
    case proto::Request::SUBMIT_COMMIT:
    case proto::Request::GET_COMMITS:
    case proto::Request::COMMIT_HEAD:
      return true;
    default:
      return false;
  }
}

Result<nlohmann::json> handleCommitRequest(CommitLog& log, proto::Request::Reader request,
                                           LogOutput& out) {
  try {
    switch (request.which()) {
      case proto::Request::SUBMIT_COMMIT: {
        auto data = request.getSubmitCommit();
        return submitReplyJson(log.submit(ByteView(data.begin(), data.size()), out));
      }
      case proto::Request::GET_COMMITS: {
        auto r = request.getGetCommits();
        if (r.getFrom() == 0 || r.getTo() < r.getFrom()) {
          return Status::invalid("getCommits: want 1 <= from <= to, got " +
                                 std::to_string(r.getFrom()) + ".." + std::to_string(r.getTo()));
        }
        return commitsReplyJson(log, r.getFrom(), r.getTo());
      }
      case proto::Request::COMMIT_HEAD:
        return headReplyJson(log);
      default:
        return Status::invalid("not a commit request");
    }
  } catch (const kj::Exception& e) {
    return Status::invalid(std::string("commit request: ") + e.getDescription().cStr());
  }
}

}  // namespace meshos::commits
