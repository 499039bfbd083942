// Node, reload: SIGHUP and `meshos-admin reload` read the config file again and apply what
// can change while the agent runs: [log] level, the [runtime] local daemons file (its path
// or its contents) and [probes] inventory_interval_ms. Everything is read and validated
// before anything is applied, so a bad file (a typo in the local daemons, an invalid key)
// is refused with its file:line and changes nothing. Any other section that changed is
// named in the reply as needing a restart; the running values stay.
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "agent/core/logging.h"
#include "agent/node/node.h"

namespace meshos::node {

namespace {

// The sections whose changes wait for a restart (the parts of [log], [runtime] and
// [probes] that reload applies are compared apart).
std::vector<std::string> restartNeeded(const config::NodeConfig& running, const config::NodeConfig& next) {
  std::vector<std::string> out;
  auto section = [&](bool same, const char* name) {
    if (!same) out.emplace_back(name);
  };
  section(running.node == next.node, "node");
  section(running.gossip == next.gossip, "gossip");
  section(running.control == next.control, "control");
  section(running.trust == next.trust, "trust");
  section(running.executor == next.executor, "executor");
  section(running.placement == next.placement, "placement");
  section(running.chains == next.chains, "chains");
  section(running.dns == next.dns, "dns");
  section(running.log.format == next.log.format, "log.format");
  section(running.runtime.cgroup_parent == next.runtime.cgroup_parent, "runtime.cgroup_parent");
  return out;
}

}  // namespace

Result<nlohmann::json> Node::reload(const std::string& why) {
  MESHOS_DCHECK_THREAD(loop_thread_);
  if (!started_ || stopping_) return Status::unavailable("the agent is not running");
  if (!services_.read_config) return Status::unavailable("this agent has no config file to read again");
  auto next = services_.read_config();
  if (!next) return next.status().withContext("reload refused, nothing changed");
  auto level = parseLogLevel(next->log.level);
  if (!level) return level.status().withContext("reload refused, nothing changed");
  // The local daemons, read as they would be at a start, before anything changes.
  auto local = loadLocalDaemons(next->runtime.local);
  if (!local) return local.status().withContext("reload refused, nothing changed");

  std::vector<std::string> applied;
  if (next->log.level != config_.log.level) {
    spdlog::set_level(*level);
    config_.log.level = next->log.level;
    applied.emplace_back("log.level");
  }
  if (next->runtime.local != config_.runtime.local || *local != config_specs_) {
    config_.runtime.local = next->runtime.local;
    config_specs_ = std::move(*local);
    plan_key_.reset();
    updateRunSet();
    applied.emplace_back("runtime.local");
  }
  if (next->probes.inventory_interval_ms != config_.probes.inventory_interval_ms) {
    config_.probes.inventory_interval_ms = next->probes.inventory_interval_ms;
    startInventory();
    applied.emplace_back("probes.inventory_interval_ms");
  }
  const std::vector<std::string> restart = restartNeeded(config_, *next);
  nlohmann::json result = {{"applied", applied}, {"needs_restart", restart}};
  spdlog::info("reload ({}): applied [{}]; changed but needing a restart [{}]", why, fmt::join(applied, ", "),
               fmt::join(restart, ", "));
  record(chains::ChainName::kAudit, "reload", {{"why", why}, {"applied", applied}, {"needs_restart", restart}});
  snapshot_stale_ = true;
  return result;
}

}  // namespace meshos::node
