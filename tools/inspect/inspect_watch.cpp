#include "tools/inspect/inspect_watch.h"

#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/control/control_client.h"
#include "agent/state/event_bus.h"
#include "tools/inspect/cli_guard.h"

namespace meshos::tools {

namespace {

using nlohmann::json;

std::string clockTime(int64_t wall_ms) {
  const std::time_t secs = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03dZ", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(wall_ms % 1000));
  return buf;
}

// One line a person reads: what changed, on which member or instance.
std::string describe(const std::string& kind, const json& d) {
  if (kind == "members") {
    return textAt(d, "name", "?") + " " + textAt(d, "state", "?") + " (" + textAt(d, "event", "") + ", " +
           textAt(d, "address", "") + ")";
  }
  if (kind == "daemons" && d.contains("node")) {  // a peer's replicas, from its node state
    std::string s = "on " + textAt(d, "node", "?") + ":";
    const json daemons = d.value("daemons", json::object());
    for (auto& [name, r] : daemons.items()) {
      s += " " + name + " " + r.value("ready", json(0)).dump() + "/" + r.value("running", json(0)).dump() + " ready";
    }
    return s;
  }
  if (kind == "daemons") {
    std::string s = textAt(d, "instance", "?") + " " + textAt(d, "state", "?");
    if (d.contains("pid") && d["pid"].is_number() && d["pid"].get<int64_t>() > 0) s += " pid " + d["pid"].dump();
    if (!textAt(d, "health", "").empty()) s += " " + textAt(d, "health", "");
    return s;
  }
  if (kind == "commits") return "head " + (d.contains("seq") ? d["seq"].dump() : "?") + " " + textAt(d, "hash", "").substr(0, 16);
  if (kind == "records") {
    return textAt(d, "chain", "?") + " " + textAt(d, "kind", "?") + " " + (d.contains("payload") ? d["payload"].dump() : "");
  }
  return d.dump();
}

}  // namespace

int watchCommand(const std::string& socket, const std::string& kinds, bool as_json, int timeout_ms) {
  if (auto parsed = state::parseEventKinds(kinds); !parsed) {
    std::cerr << "meshos-inspect: watch --kinds: " << parsed.status().message() << "\n";
    return 2;
  }
  Status s = control::streamAgent(
      socket, [&](proto::Request::Builder b) { b.setWatch(kinds); },
      [&](const control::ControlReply& r) {
        json e = json::parse(r.body, nullptr, false);
        if (as_json) {
          std::cout << r.body << "\n" << std::flush;
          return true;
        }
        if (e.is_discarded()) return true;
        const std::string kind = textAt(e, "kind", "?");
        if (kind == "watching") {
          std::cerr << "watching " << textAt(e, "node", "?") << " (" << (kinds.empty() ? "every kind" : kinds)
                    << "); Ctrl-C stops\n";
        } else if (kind == "missed") {
          std::cout << "(missed " << e["missed"].dump() << " events: this watch read too slowly)\n" << std::flush;
        } else {
          const int64_t wall = e.contains("wall_ms") && e["wall_ms"].is_number() ? e["wall_ms"].get<int64_t>() : 0;
          std::cout << clockTime(wall) << "  " << kind << "  " << describe(kind, e.contains("data") ? e["data"] : json())
                    << "\n" << std::flush;
        }
        return true;
      },
      timeout_ms);
  if (!s) {
    std::cerr << "meshos-inspect: watch: " << s.toString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace meshos::tools
