#include "probes/vivaldi.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace meshos::probes {

namespace {

// Below this, a distance or an error is treated as zero (ms).
constexpr double kTiny = 1e-6;

bool finite(double v) { return std::isfinite(v); }

double norm(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x * x;
  return std::sqrt(sum);
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

Status validateVivaldiConfig(const VivaldiConfig& c) {
  if (c.dimensionality < 1 || c.dimensionality > 64) {
    return Status::invalid("vivaldi: dimensionality must be in [1, 64]");
  }
  if (!(c.vivaldi_error_max > 0) || !finite(c.vivaldi_error_max)) {
    return Status::invalid("vivaldi: vivaldi_error_max must be > 0");
  }
  if (!(c.vivaldi_ce > 0 && c.vivaldi_ce <= 1)) return Status::invalid("vivaldi: vivaldi_ce must be in (0, 1]");
  if (!(c.vivaldi_cc > 0 && c.vivaldi_cc <= 1)) return Status::invalid("vivaldi: vivaldi_cc must be in (0, 1]");
  if (c.adjustment_window_size > 1024) return Status::invalid("vivaldi: adjustment_window_size must be <= 1024");
  if (!(c.height_min_ms >= 0) || !finite(c.height_min_ms)) {
    return Status::invalid("vivaldi: height_min_ms must be >= 0");
  }
  if (c.latency_filter_size < 1 || c.latency_filter_size > 64) {
    return Status::invalid("vivaldi: latency_filter_size must be in [1, 64]");
  }
  if (!(c.gravity_rho_ms > 0) || !finite(c.gravity_rho_ms)) {
    return Status::invalid("vivaldi: gravity_rho_ms must be > 0");
  }
  if (c.max_peers < 1) return Status::invalid("vivaldi: max_peers must be >= 1");
  return Status::ok();
}

Status validateCoordinate(const state::Coordinate& c, size_t dimensionality) {
  if (c.vec.size() != dimensionality) {
    return Status::invalid("coordinate has " + std::to_string(c.vec.size()) + " dimensions, expected " +
                           std::to_string(dimensionality));
  }
  for (size_t i = 0; i < c.vec.size(); ++i) {
    if (!finite(c.vec[i])) return Status::invalid("coordinate component " + std::to_string(i) + " is not finite");
  }
  if (!finite(c.height) || c.height < 0) return Status::invalid("coordinate height " + num(c.height) + " is not >= 0");
  if (!finite(c.adjustment)) return Status::invalid("coordinate adjustment is not finite");
  if (!finite(c.error) || c.error < 0) return Status::invalid("coordinate error " + num(c.error) + " is not >= 0");
  return Status::ok();
}

placement::Coordinate toPlacement(const state::Coordinate& c) {
  placement::Coordinate out;
  out.vec.reserve(c.vec.size());
  for (double x : c.vec) out.vec.push_back(x * kPlacementUnitsPerMs);
  out.height = c.height * kPlacementUnitsPerMs;
  out.adjustment = c.adjustment * kPlacementUnitsPerMs;
  return out;
}

double estimateRttMs(const state::Coordinate& a, const state::Coordinate& b) {
  return placement::estimateRttMs(toPlacement(a), toPlacement(b));
}

VivaldiClient::VivaldiClient(VivaldiConfig config, Rng& rng) : config_(std::move(config)), rng_(rng) {
  Status s = validateVivaldiConfig(config_);
  if (!s.isOk()) {
    std::fprintf(stderr, "VivaldiClient: %s\n", s.toString().c_str());
    std::abort();
  }
  origin_ = initial();
  coord_ = initial();
  adjustment_samples_.assign(config_.adjustment_window_size, 0.0);
}

state::Coordinate VivaldiClient::initial() const {
  state::Coordinate c;
  c.vec.assign(config_.dimensionality, 0.0);
  c.height = config_.height_min_ms;
  c.adjustment = 0;
  c.error = config_.vivaldi_error_max;
  return c;
}

void VivaldiClient::reset() {
  coord_ = initial();
  std::fill(adjustment_samples_.begin(), adjustment_samples_.end(), 0.0);
  adjustment_index_ = 0;
}

void VivaldiClient::forget(const std::string& peer_id) { filters_.erase(peer_id); }

double VivaldiClient::filteredRttMs(const std::string& peer_id) const {
  auto it = filters_.find(peer_id);
  if (it == filters_.end() || it->second.empty()) return -1;
  std::vector<double> sorted(it->second.begin(), it->second.end());
  std::sort(sorted.begin(), sorted.end());
  return sorted[sorted.size() / 2];
}

double VivaldiClient::filter(const std::string& peer_id, double rtt_ms) {
  auto it = filters_.find(peer_id);
  if (it == filters_.end()) {
    if (filters_.size() >= config_.max_peers) {
      filters_.erase(filters_.begin());
      ++stats_.evicted;
    }
    it = filters_.emplace(peer_id, std::deque<double>{}).first;
  }
  auto& samples = it->second;
  samples.push_back(rtt_ms);
  while (samples.size() > config_.latency_filter_size) samples.pop_front();
  return filteredRttMs(peer_id);
}

void VivaldiClient::applyForce(state::Coordinate& c, double force, const state::Coordinate& other) {
  // Unit vector pointing from `other` to `c`; a random one when they coincide.
  std::vector<double> unit(c.vec.size());
  for (size_t i = 0; i < unit.size(); ++i) unit[i] = c.vec[i] - other.vec[i];
  double mag = norm(unit);
  if (mag > kTiny) {
    for (double& x : unit) x /= mag;
  } else {
    double m = 0;
    for (int attempt = 0; attempt < 8 && m <= kTiny; ++attempt) {
      for (double& x : unit) x = rng_.unit() - 0.5;
      m = norm(unit);
    }
    if (m <= kTiny) {
      std::fill(unit.begin(), unit.end(), 0.0);
      unit[0] = 1;
      m = 1;
    }
    for (double& x : unit) x /= m;
    mag = 0;
  }
  for (size_t i = 0; i < unit.size(); ++i) c.vec[i] += unit[i] * force;
  // The height absorbs the part of the force that the plane cannot (access links), in
  // proportion to the two heights; only when there is a direction to speak of.
  if (mag > kTiny) {
    c.height = std::max(c.height + (c.height + other.height) * force / mag, config_.height_min_ms);
  }
}

Status VivaldiClient::update(const std::string& peer_id, const state::Coordinate& peer, double rtt_ms) {
  if (!finite(rtt_ms) || rtt_ms <= 0 || rtt_ms > kMaxRttMs) {
    ++stats_.rejected;
    return Status::invalid("vivaldi: rtt " + num(rtt_ms) + " ms from " + peer_id + " is outside (0, " +
                           num(kMaxRttMs) + "]");
  }
  if (Status s = validateCoordinate(peer, config_.dimensionality); !s.isOk()) {
    ++stats_.rejected;
    return s.withContext("vivaldi: peer " + peer_id);
  }

  const double rtt = filter(peer_id, rtt_ms);
  state::Coordinate next = coord_;

  // Vivaldi: the error-weighted spring between the two coordinates.
  const double dist = estimateRttMs(next, peer);
  const double wrongness = std::abs(dist - rtt) / rtt;
  const double total_error = std::max(next.error + peer.error, kTiny);
  const double weight = next.error / total_error;
  next.error = std::min(config_.vivaldi_ce * weight * wrongness + next.error * (1 - config_.vivaldi_ce * weight),
                        config_.vivaldi_error_max);
  applyForce(next, config_.vivaldi_cc * weight * (rtt - dist), peer);

  // Adjustment: half the mean residual over the window, so the sum of both ends' adjustments
  // corrects a bias the Euclidean part cannot represent.
  if (!adjustment_samples_.empty()) {
    state::Coordinate raw_self = next, raw_peer = peer;
    raw_self.adjustment = 0;
    raw_peer.adjustment = 0;
    adjustment_samples_[adjustment_index_] = rtt - estimateRttMs(raw_self, raw_peer);
    adjustment_index_ = (adjustment_index_ + 1) % adjustment_samples_.size();
    double sum = 0;
    for (double s : adjustment_samples_) sum += s;
    next.adjustment = sum / (2.0 * static_cast<double>(adjustment_samples_.size()));
  }

  // Gravity: a pull toward the origin growing with the square of the distance from it.
  const double from_origin = estimateRttMs(origin_, next);
  applyForce(next, -std::pow(from_origin / config_.gravity_rho_ms, 2.0), origin_);

  if (!validateCoordinate(next, config_.dimensionality).isOk()) {
    ++stats_.resets;
    reset();
    return Status::ok();
  }
  coord_ = std::move(next);
  ++stats_.updates;
  return Status::ok();
}

}  // namespace meshos::probes
