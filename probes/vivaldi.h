// VivaldiClient: this node's network coordinate, learned from RTT samples the way Serf and
// Consul do it (Dabek et al., "Vivaldi: A Decentralized Network Coordinate System", with the
// height vector, the adjustment term and gravity of Ledlie et al.). Any node can then
// estimate the RTT between any two nodes from their coordinates alone
// (placement::estimateRttMs), which is what placement's "near" strategy and
// `meshos-inspect members` use.
//
// Sans-IO: the owner hands in (peer id, the peer's coordinate from its node state, the RTT
// of the last direct probe ack to it) and reads coordinate() back to publish in node state.
// Each update:
//   1. rejects bad input (RTT <= 0, > 10 s or not finite; a peer coordinate that is not
//      finite, has negative height/error, or another dimensionality) and changes nothing;
//   2. median-filters the RTT over the last latency_filter_size samples of that peer;
//   3. moves the coordinate along the spring between the two (Vivaldi), weighted by the
//      relative error of both; updates the local error estimate;
//   4. updates the adjustment term (mean of the last adjustment_window_size residuals / 2);
//   5. pulls the coordinate a little toward the origin (gravity) so the whole system does
//      not drift;
//   6. if the result is not finite, resets to the initial coordinate (counted).
// Coordinates are in milliseconds. One owner, one thread (the loop); the Rng (only used to
// pick a direction when two coordinates coincide) must outlive the client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "agent/core/rng.h"
#include "agent/core/status.h"
#include "agent/state/node_report.h"
#include "placement/placement.h"

namespace meshos::probes {

struct VivaldiConfig {
  size_t dimensionality = 8;
  double vivaldi_error_max = 1.5;    // initial and maximum local error estimate
  double vivaldi_ce = 0.25;          // how fast the error estimate moves
  double vivaldi_cc = 0.25;          // how far one sample moves the coordinate
  size_t adjustment_window_size = 20;  // 0 disables the adjustment term
  double height_min_ms = 0.01;       // 10 µs
  size_t latency_filter_size = 3;    // per-peer median filter; 1 disables it
  // Serf's rho is 150 with coordinates in seconds; ours are in ms, so 150 s = 150,000 ms.
  // (150 ms would pull a 100 ms-wide cluster together enough to double its error.)
  double gravity_rho_ms = 150'000;   // larger pulls less
  size_t max_peers = 4096;           // latency filters kept; the oldest-keyed is evicted past it
};
Status validateVivaldiConfig(const VivaldiConfig& config);

inline constexpr double kMaxRttMs = 10'000;

// A coordinate any peer may publish: finite, height >= 0, error >= 0, `dimensionality` entries.
Status validateCoordinate(const state::Coordinate& c, size_t dimensionality);

// state::Coordinate (node state, milliseconds) -> placement::Coordinate (what placement
// estimates with; in seconds, as Serf's coordinates are: placement::estimateRttMs multiplies
// its distance by 1000). Every coordinate handed to placement goes through this.
inline constexpr double kPlacementUnitsPerMs = 1e-3;
placement::Coordinate toPlacement(const state::Coordinate& c);
// placement::estimateRttMs over two node-state coordinates, in ms.
double estimateRttMs(const state::Coordinate& a, const state::Coordinate& b);

class VivaldiClient {
 public:
  struct Stats {
    uint64_t updates = 0;    // accepted samples
    uint64_t rejected = 0;   // bad input refused
    uint64_t resets = 0;     // coordinate became non-finite and was reset
    uint64_t evicted = 0;    // latency filters dropped at max_peers
  };

  // The config must pass validateVivaldiConfig (a bad one is a programming error: abort).
  VivaldiClient(VivaldiConfig config, Rng& rng);

  Status update(const std::string& peer_id, const state::Coordinate& peer, double rtt_ms);

  state::Coordinate coordinate() const { return coord_; }
  // Drops a peer's latency filter (call when it dies or leaves).
  void forget(const std::string& peer_id);
  // Back to the initial coordinate (origin, maximum error); filters are kept.
  void reset();

  const VivaldiConfig& config() const { return config_; }
  const Stats& stats() const { return stats_; }
  size_t peerCount() const { return filters_.size(); }
  // The median of the peer's filtered samples, or -1 when it has none (for tests / inspect).
  double filteredRttMs(const std::string& peer_id) const;

 private:
  state::Coordinate initial() const;
  double filter(const std::string& peer_id, double rtt_ms);
  // Moves `c` by `force` ms along the unit vector from `other` to `c` (Serf's ApplyForce).
  void applyForce(state::Coordinate& c, double force, const state::Coordinate& other);

  VivaldiConfig config_;
  Rng& rng_;
  state::Coordinate coord_;
  state::Coordinate origin_;
  std::vector<double> adjustment_samples_;
  size_t adjustment_index_ = 0;
  std::map<std::string, std::deque<double>> filters_;
  Stats stats_;
};

}  // namespace meshos::probes
