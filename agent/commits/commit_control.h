// The commit requests of the control socket (proto/control.capnp): submitCommit,
// getCommits and commitHead, answered from a CommitLog. The agent's control handler calls
// handleCommitRequest() on the loop thread (the log's owner) for these three request kinds
// and sends the JSON back with ControlResponder::json(), or the Status with error(); the
// LogOutput goes where every other LogOutput goes (audit chain, store, push to peers).
#pragma once

#include <nlohmann/json.hpp>

#include "agent/commits/commit_log.h"
#include "proto/control.capnp.h"

namespace meshos::commits {

// True for submitCommit, getCommits and commitHead.
bool isCommitRequest(proto::Request::Reader request);

// The reply body (see commit_json.h: submitReplyJson, commitsReplyJson, headReplyJson), or
// kInvalidArgument for a bad range / another request kind. A rejected commit is not an
// error: the reply says "rejected" and why.
Result<nlohmann::json> handleCommitRequest(CommitLog& log, proto::Request::Reader request,
                                           LogOutput& out);

}  // namespace meshos::commits
