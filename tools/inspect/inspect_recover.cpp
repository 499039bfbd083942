#include "tools/inspect/inspect_recover.h"

#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/core/bytes.h"
#include "agent/core/clock.h"
#include "agent/core/crypto.h"
#include "chains/chain_recover.h"

namespace meshos::tools {

void libraryLogsToStderr() {
  spdlog::set_default_logger(spdlog::stderr_color_mt("meshos-inspect"));
  spdlog::set_level(spdlog::level::err);
}

int reportUnopenable(const std::filesystem::path& data_dir, const Status& why, bool json) {
  const bool damaged = chains::looksDamaged(why);
  if (json) {
    nlohmann::json r = {{"ok", false}, {"problem", damaged ? "damaged" : "unreadable"}, {"detail", why.toString()}};
    if (damaged) r["hint"] = chains::recoveryHint(data_dir);
    std::cout << nlohmann::json{{"verify", r}}.dump() << "\n";
  } else if (damaged) {
    std::cout << "chain database " << (data_dir / "db").string() << " is DAMAGED: " << why.message() << "\n"
              << chains::recoveryHint(data_dir) << "\n";
  } else {
    std::cerr << "meshos-inspect: " << why.toString() << "\n";
  }
  return damaged ? 3 : 1;
}

int recoverCommand(const std::filesystem::path& data_dir, const std::string& reason, bool json) {
  if (Status s = initCrypto(); !s) {
    std::cerr << "meshos-inspect: " << s.toString() << "\n";
    return 1;
  }
  // The new chains' checkpoints are signed with the node's own key, as the agent's are.
  auto key = readKeyFile(data_dir / "node.key");
  if (!key) {
    std::cerr << "meshos-inspect: " << key.status().toString() << "\n";
    return 1;
  }
  SystemClock clock;
  auto r = chains::recoverStore(data_dir, *key, clock, reason);
  if (!r) {
    std::cerr << "meshos-inspect: recovery failed: " << r.status().toString() << "\n";
    return 1;
  }
  nlohmann::json heads = nlohmann::json::array();
  for (const auto& h : r->heads) {
    heads.push_back({{"chain", chains::chainNameString(h.chain)}, {"seq", h.seq}, {"hash", toHex(h.hash)},
                     {"whole", h.whole}, {"detail", h.detail}});
  }
  if (json) {
    nlohmann::json j = {{"damaged_store", r->damaged.string()}, {"heads", heads}, {"state_keys", r->state_keys}};
    if (!r->salvage_error.empty()) j["salvage_error"] = r->salvage_error;
    std::cout << j.dump() << "\n";
    return 0;
  }
  std::cout << "damaged store kept at " << r->damaged.string() << "\n";
  if (!r->salvage_error.empty()) std::cout << "salvage: " << r->salvage_error << "\n";
  for (const auto& h : heads) {
    std::cout << "chain " << h["chain"].get<std::string>() << ": new chain starts after seq " << h["seq"]
              << (h["whole"].get<bool>() ? " (the old chain verified whole)" : " (" + h["detail"].get<std::string>() + ")")
              << "\n";
  }
  std::cout << r->state_keys << " state entries carried over; start the agent again\n";
  return 0;
}

}  // namespace meshos::tools
