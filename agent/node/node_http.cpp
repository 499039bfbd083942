// Node, the HTTP half: the read-only routes the HTTP server (agent/net/http_server.h)
// serves from the node. Every route mirrors a read command of the control socket and
// returns the same JSON document; /metrics is the same text as `meshos-inspect metrics`.
// Reads change nothing, so none is audited (a status page would flood the audit chain);
// the HTTP server counts them. No route serves a key, or the values of a daemon's
// environment (redacted: HTTP has no roles).
#include <charconv>

#include "agent/node/node.h"
#include "agent/state/metrics.h"
#include "chains/chain_format.h"

namespace meshos::node {

namespace {

using Done = std::function<void(Result<control::ControlReply>)>;

// HTTP has no roles: whoever reaches the port reads. A daemon's environment may hold
// credentials, so every "env" object is served with its names and without its values.
void redactEnvironments(nlohmann::json& j) {
  if (j.is_array()) {
    for (auto& v : j) redactEnvironments(v);
    return;
  }
  if (!j.is_object()) return;
  for (auto& [k, v] : j.items()) {
    if (k == "env" && v.is_object()) {
      for (auto& [name, value] : v.items()) value = "<redacted>";
    } else {
      redactEnvironments(v);
    }
  }
}

control::ControlReply jsonReply(nlohmann::json j) {
  redactEnvironments(j);
  return {control::ControlReply::Kind::kJson, j.dump()};
}

Result<uint64_t> queryNumber(const std::map<std::string, std::string>& query, const std::string& key) {
  auto it = query.find(key);
  if (it == query.end() || it->second.empty()) return uint64_t{0};
  uint64_t v = 0;
  const auto& s = it->second;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
    return Status::invalid("query parameter " + key + " must be a non-negative integer, not \"" + s + "\"");
  }
  return v;
}

const nlohmann::json& routeIndex() {
  static const nlohmann::json index = {
      {"routes",
       {"/metrics", "/v1/snapshot", "/v1/members", "/v1/daemons", "/v1/placement?daemon=NAME", "/v1/endpoints?daemon=NAME",
        "/v1/commits", "/v1/chains/{audit|log|failure}", "/v1/chains/{chain}/records?from=SEQ&count=N",
        "/v1/chains/{chain}/verify?from=SEQ&count=N", "/v1/events?kinds=members,daemons,commits,records"}}};
  return index;
}

}  // namespace

void Node::httpRead(const std::string& path, const std::map<std::string, std::string>& query, Done done) {
  MESHOS_DCHECK_THREAD(loop_thread_);
  if (stopping_) return done(Status::unavailable("the agent is shutting down"));
  if (!started_) return done(Status::unavailable("the agent is starting"));
  if (path == "/metrics") {
    return done(control::ControlReply{control::ControlReply::Kind::kText,
                                      state::snapshotToPrometheus(currentSnapshot())});
  }
  if (path == "/v1" || path == "/v1/") return done(jsonReply(routeIndex()));
  if (path == "/v1/snapshot") return done(jsonReply(snapshotJsonWithMembers()));
  if (path == "/v1/members") return done(jsonReply(membersJson()));
  if (path == "/v1/daemons") return done(jsonReply(daemonsJson()));
  if (path == "/v1/commits") return done(jsonReply(commits_json_));
  if (path == "/v1/placement" || path == "/v1/endpoints") {
    auto it = query.find("daemon");
    const std::string daemon = it == query.end() ? std::string() : it->second;
    if (!daemon.empty() && commit_log_->desired().daemons.count(daemon) == 0) {
      return done(Status::notFound("no daemon \"" + daemon + "\" in the commit log"));
    }
    return done(jsonReply(path == "/v1/endpoints" ? endpointsJson(daemon) : placementJson(daemon)));
  }
  const std::string chains_prefix = "/v1/chains/";
  if (path.starts_with(chains_prefix)) {
    std::string rest = path.substr(chains_prefix.size());
    std::string what;
    if (auto slash = rest.find('/'); slash != std::string::npos) {
      what = rest.substr(slash + 1);
      rest.resize(slash);
    }
    auto chain = chains::parseChainName(rest);
    if (!chain) return done(Status::notFound(chain.status().message()));
    auto from = queryNumber(query, "from");
    auto count = queryNumber(query, "count");
    if (!from) return done(from.status());
    if (!count) return done(count.status());
    proto::Request::Which which;
    if (what.empty()) {
      which = proto::Request::CHAIN_SHOW;
    } else if (what == "records") {
      which = proto::Request::CHAIN_TAIL;
    } else if (what == "verify") {
      which = proto::Request::CHAIN_VERIFY;
    } else {
      return done(Status::notFound("no route " + path + " (try /v1/)"));
    }
    chainRead(which, *chain, *from, *count, [done](Result<std::string> r) {
      if (!r) return done(r.status());
      done(control::ControlReply{control::ControlReply::Kind::kJson, std::move(*r)});
    });
    return;
  }
  done(Status::notFound("no route " + path + " (try /v1/)"));
}

}  // namespace meshos::node
