// AgentHost: the libuv shell around one Node, what meshos-agent runs. It builds the real
// services on one uv loop — system clock, libuv timers, poster and thread-pool workers,
// the POSIX file system, gossip over UDP and TCP (GossipTransport), processes
// (runtime::ProcessRuntime) with their instance journal, RocksDB on the real disk, the
// inventory from /proc — serves the control socket (and HTTP when configured), turns
// SIGINT/SIGTERM into the Node's staged shutdown (a second signal forces exit 130) and
// SIGHUP into a reload, tells systemd how it is doing, and runs the loop until everything
// is closed. The simulator's counterpart is sim::SimHost.
//
// run() is called once, on the thread that owns the host; it returns the exit status.
#pragma once

#include <functional>

#include "agent/config/node_config.h"
#include "agent/core/node_identity.h"

namespace meshos::net {

class AgentHost {
 public:
  // read_config reads the config file again, for reload (SIGHUP, meshos-admin reload).
  AgentHost(config::NodeConfig config, NodeIdentity identity,
            std::function<Result<config::NodeConfig>()> read_config = nullptr)
      : config_(std::move(config)), identity_(std::move(identity)), read_config_(std::move(read_config)) {}
  // 0 after a clean shutdown, 1 when a stage timed out or start failed, 2 for a start that
  // failed on bad input (an invalid local daemons file, say).
  int run();

 private:
  config::NodeConfig config_;
  NodeIdentity identity_;
  std::function<Result<config::NodeConfig>()> read_config_;
};

}  // namespace meshos::net
