// gossip::Options: every timing and bound of the membership protocol. Defaults are
// hashicorp/memberlist's LAN profile (DefaultLANConfig) where memberlist has one.
// A value; whoever builds a Membership or GossipService passes it in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/core/status.h"

namespace meshos::gossip {

struct Options {
  int64_t probe_interval_ms = 1000;         // one probe per interval (x (health+1))
  int64_t probe_timeout_ms = 500;           // direct ack deadline (x (health+1))
  int indirect_checks = 3;                  // k members asked to ping-req
  int64_t gossip_interval_ms = 200;         // separate gossip round
  int gossip_nodes = 3;                     // members per gossip round
  int64_t gossip_to_dead_ms = 30'000;       // keep gossiping to dead members this long
  int suspicion_mult = 3;                   // min suspicion = mult * log10(N) * interval
  int suspicion_max_timeout_mult = 6;       // max suspicion = this * min
  int retransmit_mult = 4;                  // each broadcast sent mult * ceil(log10(N+1)) times
  int64_t push_pull_interval_ms = 30'000;   // scaled up past 32 members
  int awareness_max_multiplier = 8;         // local health score in [0, this - 1]
  int64_t reconnect_interval_ms = 30'000;   // push-pull with a dead member / re-join a seed
  // One UDP ping to a random dead member per interval: its ack (or its ping to us) is the
  // first sign that a path is back, and starts a push-pull at once (heals in seconds).
  int64_t dead_probe_interval_ms = 2'000;
  int64_t reap_dead_after_ms = 24LL * 3600 * 1000;  // forget dead members
  int64_t reap_left_after_ms = 24LL * 3600 * 1000;  // forget members that left
  int64_t stream_timeout_ms = 10'000;       // push-pull and TCP probe deadline (shell)
  bool tcp_fallback_probe = true;
  size_t max_packet_bytes = 1400;           // UDP payload, envelope included
  size_t membership_budget_bytes = 600;     // piggybacked membership updates per packet
  size_t state_budget_bytes = 600;          // piggybacked node-state updates per packet
  size_t max_stream_bytes = 8u << 20;       // one push-pull frame
  size_t max_node_state_bytes = 1u << 20;   // one node's state blob
  size_t max_broadcasts = 4096;             // queued updates per kind; oldest dropped
  size_t max_members = 100'000;
  // Application channels (GossipService::onAppStream / requestApp).
  size_t max_app_body_bytes = 4u << 20;     // one app request or reply body
  size_t max_app_in_flight = 64;            // outbound app requests at once (shell)
  int64_t app_timeout_ms = 5000;            // one app request, connect to reply (shell)
  std::string cluster_id = "default";

  Status validate() const;
};

}  // namespace meshos::gossip
