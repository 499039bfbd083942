#include "placement/placement.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <queue>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "placement/hashing.h"
#include "placement/rendezvous_scan.h"

namespace meshos::placement {

// ---------------------------------------------------------------------------------------
// Coordinates and scores.

double estimateRttMs(const Coordinate& a, const Coordinate& b) {
  if (a.vec.size() != b.vec.size()) return std::numeric_limits<double>::infinity();
  double sum = 0;
  for (size_t i = 0; i < a.vec.size(); ++i) {
    const double d = a.vec[i] - b.vec[i];
    sum += d * d;
  }
  const double dist = std::sqrt(sum) + a.height + b.height;
  const double adjusted = dist + a.adjustment + b.adjustment;
  return (adjusted > 0 ? adjusted : dist) * 1000.0;
}

double utilization(const NodeView& node, const NodeLoad& load) {
  double sum = 0;
  int dims = 0;
  if (node.cpu_millicores > 0) {
    sum += static_cast<double>(load.cpu_reserved) / static_cast<double>(node.cpu_millicores);
    ++dims;
  }
  if (node.memory_bytes > 0) {
    sum += static_cast<double>(load.memory_reserved) / static_cast<double>(node.memory_bytes);
    ++dims;
  }
  return dims == 0 ? 0.0 : sum / dims;
}

double utilizationStep(const NodeView& node, const NodeLoad& load) {
  return std::floor(utilization(node, load) * kUtilizationSteps) / kUtilizationSteps;
}

namespace {

// "label=value" → (label, value); a node name or id → nullopt.
std::optional<std::pair<std::string_view, std::string_view>> labelTarget(const std::string& near) {
  const auto eq = near.find('=');
  if (eq == std::string::npos) return std::nullopt;
  return std::pair{std::string_view(near.data(), eq), std::string_view(near.data() + eq + 1, near.size() - eq - 1)};
}

bool carries(const NodeView& n, std::string_view label, std::string_view value) {
  auto it = n.labels.find(std::string(label));
  return it != n.labels.end() && it->second == value;
}

}  // namespace

bool isNearTarget(const NodeView& node, const std::string& near) {
  if (near.empty()) return false;
  if (auto lv = labelTarget(near)) return node.alive && carries(node, lv->first, lv->second);
  return node.name == near || node.id == near;
}

std::vector<Coordinate> nearTargets(const std::string& near, const std::vector<NodeView>& all) {
  std::vector<Coordinate> out;
  for (const auto& n : all) {
    if (n.coordinate && isNearTarget(n, near)) out.push_back(*n.coordinate);
  }
  return out;
}

double nearScore(const NodeView& node, const std::string& near, const std::vector<Coordinate>& targets) {
  if (targets.empty()) return 0.0;
  if (isNearTarget(node, near)) return 0.0;
  if (!node.coordinate) return -kUnknownRttMs;
  double best = std::numeric_limits<double>::infinity();
  for (const auto& t : targets) best = std::min(best, estimateRttMs(*node.coordinate, t));
  if (!std::isfinite(best) || best >= kUnknownRttMs) return -kUnknownRttMs;
  return -best;
}

namespace {

bool asksResources(const DaemonRequest& d) {
  return d.resources.cpu_millicores > 0 || d.resources.memory_bytes > 0;
}

class SpreadScorer final : public PlacementScorer {
 public:
  double score(const DaemonRequest& d, const NodeView& node, const NodeLoad& load,
               const std::vector<NodeView>&) const override {
    return asksResources(d) ? -utilizationStep(node, load) : 0.0;
  }
};

class BinpackScorer final : public PlacementScorer {
 public:
  double score(const DaemonRequest&, const NodeView& node, const NodeLoad& load,
               const std::vector<NodeView>&) const override {
    return utilizationStep(node, load);
  }
};

class NearScorer final : public PlacementScorer {
 public:
  double score(const DaemonRequest& d, const NodeView& node, const NodeLoad&,
               const std::vector<NodeView>& all) const override {
    return nearScore(node, d.placement.near, nearTargets(d.placement.near, all));
  }
};

}  // namespace

const PlacementScorer& scorerFor(spec::PlacementStrategy strategy) {
  static const SpreadScorer kSpread;
  static const BinpackScorer kBinpack;
  static const NearScorer kNear;
  switch (strategy) {
    case spec::PlacementStrategy::kBinpack: return kBinpack;
    case spec::PlacementStrategy::kNear: return kNear;
    case spec::PlacementStrategy::kSpread: break;
  }
  return kSpread;
}

DaemonRequest requestFromSpec(const spec::DaemonSpec& spec) {
  DaemonRequest r;
  r.name = spec.name;
  if (spec.kind == spec::DaemonKind::kService) {
    r.replicas = static_cast<uint32_t>(
        std::clamp<int64_t>(spec.replicas, 0, std::numeric_limits<uint32_t>::max()));
  } else {
    r.replicas = 1;
  }
  r.resources = spec.resources;
  r.placement = spec.placement;
  r.depends_on.reserve(spec.depends_on.size());
  for (const auto& dep : spec.depends_on) r.depends_on.push_back(dep.name);
  return r;
}

// ---------------------------------------------------------------------------------------
// Fingerprint.

namespace {

uint64_t hashNode(const NodeView& n, bool with_coordinate = true) {
  Hasher h(0x6e6f64655f766965ULL);
  h.add(n.id);
  h.add(n.name);
  h.add(uint64_t{n.alive} | (uint64_t{n.active} << 1));
  h.add(n.labels.size());
  for (const auto& [k, v] : n.labels) {
    h.add(k);
    h.add(v);
  }
  h.add(n.capabilities.size());
  for (const auto& c : n.capabilities) h.add(c);
  h.add(static_cast<uint64_t>(n.cpu_millicores));
  h.add(static_cast<uint64_t>(n.memory_bytes));
  if (n.coordinate && with_coordinate) {
    h.add(n.coordinate->vec.size() + 1);
    for (double x : n.coordinate->vec) h.add(std::bit_cast<uint64_t>(x));
    h.add(std::bit_cast<uint64_t>(n.coordinate->height));
    h.add(std::bit_cast<uint64_t>(n.coordinate->adjustment));
  } else {
    h.add(uint64_t{0});
  }
  return h.done();
}

uint64_t hashDaemon(const DaemonRequest& d) {
  Hasher h(0x6461656d6f6e5f72ULL);
  h.add(d.name);
  h.add(d.replicas);
  h.add(static_cast<uint64_t>(d.resources.cpu_millicores));
  h.add(static_cast<uint64_t>(d.resources.memory_bytes));
  const auto& p = d.placement;
  h.add(static_cast<uint64_t>(p.strategy));
  h.add(p.near);
  h.add(p.constraints.size());
  for (const auto& c : p.constraints) {
    h.add(c.label);
    h.add(static_cast<uint64_t>(c.op));
    h.add(c.values.size());
    for (const auto& v : c.values) h.add(v);
  }
  h.add(p.capabilities.size());
  for (const auto& c : p.capabilities) h.add(c);
  h.add(static_cast<uint64_t>(p.max_per_node));
  h.add(d.depends_on.size());
  for (const auto& x : d.depends_on) h.add(x);
  h.add(d.pinned.size());
  for (const auto& x : d.pinned) h.add(x);
  return h.done();
}

}  // namespace

uint64_t fingerprint(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons) {
  // Sums of well-mixed item hashes: independent of order, and a duplicate does not cancel.
  // Coordinates only matter to daemons placed near something: without one, their constant
  // drift (Vivaldi) must not make every tick a recomputation.
  uint64_t sum_daemons = 0;
  bool near = false;
  for (const auto& d : daemons) {
    sum_daemons += hashDaemon(d);
    near = near || d.placement.strategy == spec::PlacementStrategy::kNear;
  }
  uint64_t sum_nodes = 0;
  for (const auto& n : nodes) sum_nodes += hashNode(n, near);
  Hasher h(0x66696e6765727072ULL);
  h.add(nodes.size());
  h.add(sum_nodes);
  h.add(daemons.size());
  h.add(sum_daemons);
  return h.done();
}

// ---------------------------------------------------------------------------------------
// Feasibility.

namespace {

std::string joinValues(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += values[i];
  }
  out += "]";
  return out;
}

std::string humanBytes(int64_t bytes) {
  if (bytes < 0) bytes = 0;
  constexpr double kKiB = 1024.0, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
  const double b = static_cast<double>(bytes);
  if (b >= kGiB) return fmt::format("{:.1f}GiB", b / kGiB);
  if (b >= kMiB) return fmt::format("{:.1f}MiB", b / kMiB);
  if (b >= kKiB) return fmt::format("{:.1f}KiB", b / kKiB);
  return fmt::format("{}B", bytes);
}

// True when the node's labels meet the constraint; otherwise false, and *why says how.
bool constraintOk(const NodeView& node, const spec::Constraint& c, std::string* why) {
  auto it = node.labels.find(c.label);
  const bool present = it != node.labels.end();
  const bool listed = present && std::find(c.values.begin(), c.values.end(), it->second) != c.values.end();
  switch (c.op) {
    case spec::ConstraintOp::kNotIn:
      if (!listed) return true;
      if (why) *why = fmt::format("label {}={} in excluded {}", c.label, it->second, joinValues(c.values));
      return false;
    case spec::ConstraintOp::kEquals:
      if (listed) return true;
      if (why) {
        const std::string want = c.values.empty() ? std::string() : c.values.front();
        *why = present ? fmt::format("label {}={}, wants {}", c.label, it->second, want)
                       : fmt::format("label {} missing, wants {}", c.label, want);
      }
      return false;
    case spec::ConstraintOp::kIn:
      if (listed) return true;
      if (why) {
        *why = present ? fmt::format("label {}={} not in {}", c.label, it->second, joinValues(c.values))
                       : fmt::format("label {} missing, wants one of {}", c.label, joinValues(c.values));
      }
      return false;
  }
  if (why) *why = fmt::format("label {}: unknown constraint op", c.label);
  return false;
}

struct PreparedNode {
  const NodeView* view = nullptr;
  uint64_t hash = 0;                    // rendezvous hash of the id
  std::vector<std::string_view> caps;   // sorted, unique
};

// The part of feasibility that does not depend on the pass: alive, active, capabilities,
// labels. True when the node passes; otherwise *why (when given) says the first failure.
bool staticOk(const PreparedNode& n, const DaemonRequest& d, std::string* why) {
  const NodeView& v = *n.view;
  if (!v.alive) {
    if (why) *why = "not alive";
    return false;
  }
  if (!v.active) {
    if (why) *why = "not active (draining or in maintenance)";
    return false;
  }
  for (const auto& cap : d.placement.capabilities) {
    if (!std::binary_search(n.caps.begin(), n.caps.end(), std::string_view(cap))) {
      if (why) *why = fmt::format("missing capability {}", cap);
      return false;
    }
  }
  for (const auto& c : d.placement.constraints) {
    if (!constraintOk(v, c, why)) return false;
  }
  return true;
}

// Ranking compares scores at float precision (32 bits): the score's level is its float's
// bits mapped so that unsigned order is numeric order (and -0 is 0). The hot loops then
// compare one 64-bit key, level above the rendezvous hash's high half, without a branch
// on the score.
inline uint32_t scoreLevel(double score) {
  if (std::isnan(score)) return 1;  // below every number; 0 means "not feasible" in a scan
  float f = static_cast<float>(score);
  if (f == 0.0f) f = 0.0f;  // -0 ranks as 0
  const uint32_t b = std::bit_cast<uint32_t>(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
inline uint64_t rankKey(uint32_t level, uint64_t tie) { return (uint64_t{level} << 32) | (tie >> 32); }

struct Candidate {
  double score;
  uint64_t tie;
  uint32_t node;
  uint32_t level;
};
// Higher level (score) first, then higher rendezvous hash, then the lower node index.
inline bool better(const Candidate& a, const Candidate& b) {
  if (a.level != b.level) return a.level > b.level;
  if (a.tie != b.tie) return a.tie > b.tie;
  return a.node < b.node;
}

// The hot loops of a pass: plain arrays, and the hash only for nodes that can still win.
// Both skip marked nodes and, when kResources, nodes without the cpu and memory asked (a
// dimension not asked is compared against INT64_MIN, so it always passes).
struct ScanInput {
  const std::vector<uint32_t>* candidates;  // ascending node indices
  const uint32_t* stamp;
  uint32_t mark;
  const int64_t* cpu_left;
  const int64_t* memory_left;
  int64_t cpu;
  int64_t memory;
  const double* scores;
  const uint32_t* levels;
  const uint64_t* node_hash;
  uint64_t daemon_hash;
};

// The best k, sorted best first. Branch-light: every node gets a key (0 when it does not
// fit) and only a key at or above the current threshold takes the slow path.
template <bool kResources>
void scanTop(const ScanInput& in, size_t k, std::vector<Candidate>& top) {
  top.clear();
  if (k == 0) return;
  uint64_t threshold = 1;  // while top is not full: any feasible node; then top.back()'s key
  for (const uint32_t i : *in.candidates) {
    bool ok = in.stamp[i] != in.mark;
    if constexpr (kResources) ok = ok & (in.cpu_left[i] >= in.cpu) & (in.memory_left[i] >= in.memory);
    const uint64_t t = rendezvous(in.daemon_hash, in.node_hash[i]);
    const uint64_t key = ok ? rankKey(in.levels[i], t) : 0;
    if (key < threshold) continue;
    const Candidate c{in.scores[i], t, i, in.levels[i]};
    if (top.size() == k) {
      if (!better(c, top.back())) continue;
      top.pop_back();
    }
    top.insert(std::upper_bound(top.begin(), top.end(), c, better), c);
    if (top.size() == k) threshold = rankKey(top.back().level, top.back().tie);
  }
}

// k == 1, most daemons: one running maximum of the key, no branch on the score. Candidates
// ascend, so on a full tie the earlier (lower) index stays, as better() wants.
template <bool kResources>
void scanBest(const ScanInput& in, std::vector<Candidate>& top) {
  top.clear();
  uint64_t best_key = 0, best_tie = 0;
  uint32_t best = std::numeric_limits<uint32_t>::max();
  for (const uint32_t i : *in.candidates) {
    bool ok = in.stamp[i] != in.mark;
    if constexpr (kResources) ok = ok & (in.cpu_left[i] >= in.cpu) & (in.memory_left[i] >= in.memory);
    const uint64_t t = rendezvous(in.daemon_hash, in.node_hash[i]);
    const uint64_t key = ok ? rankKey(in.levels[i], t) : 0;  // every real level is > 0
    if (key > best_key) {
      best_key = key;
      best_tie = t;
      best = i;
    } else if (key == best_key && key != 0 && t > best_tie) {  // equal high halves: rare
      best_tie = t;
      best = i;
    }
  }
  if (best != std::numeric_limits<uint32_t>::max()) {
    top.push_back({in.scores[best], best_tie, best, in.levels[best]});
  }
}

std::string constraintKey(const spec::Constraint& c) {
  std::string key = c.label;
  key += '\0';
  key += static_cast<char>('0' + static_cast<int>(c.op));
  for (const auto& v : c.values) {
    key += v;
    key += '\0';
  }
  return key;
}

// The first 8 bytes of a string as a big-endian number (zero-padded): its order is the
// strings' order wherever they differ in those bytes.
inline uint64_t namePrefix(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | (i < s.size() ? static_cast<uint8_t>(s[i]) : 0u);
  return v;
}

// Sorted by key (a string; the first 8 bytes as a big-endian number decide most
// comparisons), one item per key. Of items sharing a key (a broken input) the one with the
// lowest `content` (a hash of the whole item) is kept: chosen by content, not by input order.
// `prefixes` (optional) gets each kept item's key prefix (namePrefix), in the same order.
template <class T, class Key, class Content>
std::vector<const T*> sortedUnique(const std::vector<T>& input, Key key, Content content,
                                   std::vector<uint64_t>* prefixes = nullptr) {
  std::vector<std::pair<uint64_t, const T*>> sorted;
  sorted.reserve(input.size());
  for (const auto& x : input) sorted.emplace_back(namePrefix(key(x)), &x);
  std::sort(sorted.begin(), sorted.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : key(*a.second) < key(*b.second);
  });
  // Items sharing a key are adjacent, and so share the prefix: the keys themselves are
  // compared only where the prefixes are equal.
  std::vector<const T*> out;
  out.reserve(sorted.size());
  for (size_t i = 0; i < sorted.size();) {
    const T* keep = sorted[i].second;
    size_t j = i + 1;
    if (j < sorted.size() && sorted[j].first == sorted[i].first && key(*sorted[j].second) == key(*keep)) {
      uint64_t best = content(*keep);
      for (; j < sorted.size() && sorted[j].first == sorted[i].first && key(*sorted[j].second) == key(*keep); ++j) {
        const uint64_t c = content(*sorted[j].second);
        if (c < best) {
          best = c;
          keep = sorted[j].second;
        }
      }
    }
    out.push_back(keep);
    if (prefixes) prefixes->push_back(sorted[i].first);
    i = j;
  }
  return out;
}

// Nodes that pass the static checks for one (capabilities, constraints) signature.
struct Signature {
  const spec::Placement* placement;  // the first daemon's: capabilities and constraints
  std::vector<uint8_t> ok;      // per node
  std::vector<uint32_t> nodes;  // indices of the ok nodes, ascending
};

// The usable nodes (alive and active) ordered by one score table's level, best first, in
// runs of equal level, with each node's id hash beside it. A scan walks the runs from
// the best and stops after the first run that fills the daemon's top k: every node of a later
// run ranks below every node of an earlier one, whatever its hash. So a daemon evaluates only
// the nodes that can still win, not every node, and the answer is the full scan's (the order
// within a run does not matter: a run is scanned whole and ranked by (hash, index)).
// A node whose level changes (its reservations grew) moves by swaps across run boundaries.
class LevelOrder {
 public:
  struct Run {
    uint32_t level;
    uint32_t begin, end;  // positions in node/hash; runs are contiguous, end == next begin
  };
  static constexpr uint32_t kAbsent = std::numeric_limits<uint32_t>::max();

  // cpu_left/memory_left: null when the order does not keep resources by position (the
  // scans then read them by node).
  void build(const std::vector<uint32_t>& level, const std::vector<uint8_t>& usable,
             const std::vector<uint64_t>& node_hash, const std::vector<int64_t>* cpu_left,
             const std::vector<int64_t>* memory_left) {
    // Level descending, then index ascending: one integer key each.
    std::vector<uint64_t> keys;
    keys.reserve(level.size());
    for (uint32_t i = 0; i < level.size(); ++i) {
      if (usable[i]) keys.push_back((uint64_t{~level[i]} << 32) | i);
    }
    std::sort(keys.begin(), keys.end());
    node_.resize(keys.size());
    for (size_t p = 0; p < keys.size(); ++p) node_[p] = static_cast<uint32_t>(keys[p]);
    pos_.assign(level.size(), kAbsent);
    hash_.resize(node_.size());
    by_position_ = cpu_left != nullptr && memory_left != nullptr;
    cpu_.resize(by_position_ ? node_.size() : 0);
    memory_.resize(by_position_ ? node_.size() : 0);
    runs_.clear();
    for (uint32_t p = 0; p < node_.size(); ++p) {
      const uint32_t i = node_[p];
      pos_[i] = p;
      hash_[p] = node_hash[i] ^ kRendezvousNodeMix;
      if (by_position_) {
        cpu_[p] = (*cpu_left)[i];
        memory_[p] = (*memory_left)[i];
      }
      if (runs_.empty() || runs_.back().level != level[i]) runs_.push_back({level[i], p, p});
      ++runs_.back().end;
    }
    built_ = true;
  }
  bool built() const { return built_; }

  // Node i's level became `level` (it was in the run holding its position).
  void move(uint32_t i, uint32_t level) {
    if (!built_ || pos_[i] == kAbsent) return;
    uint32_t p = pos_[i];
    size_t r = static_cast<size_t>(
        std::upper_bound(runs_.begin(), runs_.end(), p, [](uint32_t x, const Run& run) { return x < run.begin; }) -
        runs_.begin() - 1);
    // Skip empty runs that share the position (begin == end == p cannot hold p).
    while (runs_[r].end <= p) ++r;
    if (runs_[r].level == level) return;
    // The run for the new level: found, or inserted empty where its level belongs.
    auto it = std::lower_bound(runs_.begin(), runs_.end(), level,
                               [](const Run& run, uint32_t l) { return run.level > l; });
    size_t t = static_cast<size_t>(it - runs_.begin());
    if (it == runs_.end() || it->level != level) {
      const uint32_t at = it == runs_.end() ? static_cast<uint32_t>(node_.size()) : it->begin;
      runs_.insert(it, Run{level, at, at});
      if (t <= r) ++r;
    }
    while (r < t) {  // down: to the end of its run, then across the boundary
      const uint32_t last = runs_[r].end - 1;
      swapAt(p, last);
      p = last;
      --runs_[r].end;
      --runs_[r + 1].begin;
      ++r;
    }
    while (r > t) {  // up: to the start of its run, then across the boundary
      const uint32_t first = runs_[r].begin;
      swapAt(p, first);
      p = first;
      ++runs_[r].begin;
      ++runs_[r - 1].end;
      --r;
    }
  }

  // Node i's resources left changed (a reservation).
  void setLeft(uint32_t i, int64_t cpu, int64_t memory) {
    if (!built_ || !by_position_ || pos_[i] == kAbsent) return;
    cpu_[pos_[i]] = cpu;
    memory_[pos_[i]] = memory;
  }

  const std::vector<Run>& runs() const { return runs_; }
  const uint32_t* nodes() const { return node_.data(); }
  const uint64_t* hashes() const { return hash_.data(); }
  const int64_t* cpuLeft() const { return by_position_ ? cpu_.data() : nullptr; }
  const int64_t* memoryLeft() const { return by_position_ ? memory_.data() : nullptr; }

 private:
  void swapAt(uint32_t a, uint32_t b) {
    if (a == b) return;
    std::swap(node_[a], node_[b]);
    std::swap(hash_[a], hash_[b]);
    if (by_position_) {
      std::swap(cpu_[a], cpu_[b]);
      std::swap(memory_[a], memory_[b]);
    }
    pos_[node_[a]] = a;
    pos_[node_[b]] = b;
  }

  bool built_ = false;
  bool by_position_ = false;
  std::vector<uint32_t> node_;   // by position
  std::vector<uint64_t> hash_;   // by position: the node's rendezvous hash ^ kRendezvousNodeMix
  std::vector<int64_t> cpu_, memory_;  // by position: the node's resources left
  std::vector<uint32_t> pos_;    // by node index: its position, or kAbsent (not usable)
  std::vector<Run> runs_;        // by level, descending
};

// One strategy's score for every node, its ranking level, and the usable nodes by level.
struct Scores {
  std::vector<double> score;
  std::vector<uint32_t> level;
  LevelOrder order;
  void resize(size_t n) {
    score.resize(n);
    level.resize(n);
  }
  void set(size_t i, double s) {
    score[i] = s;
    const uint32_t l = scoreLevel(s);
    if (l != level[i]) order.move(static_cast<uint32_t>(i), l);
    level[i] = l;
  }
};

// The same answers as scanTop/scanBest over every node of the signature, from the level
// order: runs best first, stop after the run that fills the top k. Everything the loop reads
// is by position (hash, resources left) except the signature and the pin stamps, and each
// check is compiled in only when the daemon needs it: kSig when the signature excludes some
// usable node, kStamp when the daemon has pins, kResources when it reserves something.
struct OrderedInput {
  const LevelOrder* order;
  const uint8_t* sig_ok;
};

// Everything a scan reads, copied into locals so that the hot loop keeps it in registers
// (stores into the top list could otherwise alias it and force reloads).
struct ScanLocals {
  const uint32_t* node;
  const uint64_t* hash;  // by position, xored with kRendezvousNodeMix
  const int64_t* cpu;     // by position, or by node when !by_position
  const int64_t* memory;
  const uint8_t* sig_ok;  // by node
  const uint32_t* stamp;  // by node
  uint32_t mark;
  int64_t want_cpu, want_memory;
  uint64_t daemon_mixed;  // daemon hash ^ kRendezvousDaemonMix
};

template <bool kSig, bool kStamp, bool kResources, bool kByPosition>
inline bool orderedOk(const ScanLocals& l, uint32_t p) {
  bool ok = true;
  if constexpr (kSig) ok = ok & (l.sig_ok[l.node[p]] != 0);
  if constexpr (kStamp) ok = ok & (l.stamp[l.node[p]] != l.mark);
  if constexpr (kResources) {
    const uint32_t at = kByPosition ? p : l.node[p];
    ok = ok & (l.cpu[at] >= l.want_cpu) & (l.memory[at] >= l.want_memory);
  }
  return ok;
}

ScanLocals scanLocals(const ScanInput& in, const OrderedInput& o) {
  const bool by_position = o.order->cpuLeft() != nullptr;
  return ScanLocals{o.order->nodes(),
                    o.order->hashes(),
                    by_position ? o.order->cpuLeft() : in.cpu_left,
                    by_position ? o.order->memoryLeft() : in.memory_left,
                    o.sig_ok,
                    in.stamp,
                    in.mark,
                    in.cpu,
                    in.memory,
                    in.daemon_hash ^ kRendezvousDaemonMix};
}

// The exact path of scanOrderedTop: offers one feasible candidate; returns the new
// threshold (0 while the top is not full, then its last entry's hash).
inline uint64_t offerCandidate(std::vector<Candidate>& top, size_t k, const Candidate& c) {
  if (top.size() == k) {
    if (!better(c, top.back())) return top.back().tie;
    top.pop_back();
  }
  top.insert(std::upper_bound(top.begin(), top.end(), c, better), c);
  // Full: its last entry is of this run (an earlier run that filled it ended the scan).
  return top.size() == k ? top.back().tie : 0;
}

// Asks for the cache line holding p (a hint; never faults). GCC drops __builtin_prefetch
// in some loops here, hence the instruction itself on x86-64.
inline void prefetchLine(const void* p) {
#if defined(__x86_64__) && defined(__GNUC__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}


// Within a run the level is equal, so the rendezvous hash alone screens: the hot loop only
// computes each node's hash and compares it with the threshold (what the worst entry of
// the top holds); feasibility (signature, pins, resources left) is checked only for a node
// whose hash could enter the top, which is rare once a few feasible nodes are seen. The
// exact path then ranks it as before, so the answer is the full scan's.
template <bool kSig, bool kStamp, bool kResources, bool kByPosition>
void scanOrderedTop(const ScanLocals l, const ScanInput& in, const LevelOrder& order, size_t k,
                    std::vector<Candidate>& top) {
  top.clear();
  if (k == 0) return;
  for (const auto& run : order.runs()) {
    uint64_t threshold = 0;
    const uint32_t end = run.end;
    for (uint32_t p = run.begin;; ++p) {
      p = nextAtLeast(l.hash, p, end, l.daemon_mixed, threshold);
      if (p == end) break;
      if (!orderedOk<kSig, kStamp, kResources, kByPosition>(l, p)) continue;
      const uint64_t t = rendezvousMixed(l.daemon_mixed, l.hash[p]);
      const uint32_t i = l.node[p];
      threshold = offerCandidate(top, k, Candidate{in.scores[i], t, i, run.level});
    }
    if (top.size() == k) return;
  }
}

template <bool kSig, bool kStamp, bool kResources, bool kByPosition>
void scanOrderedBest(const ScanLocals l, const ScanInput& in, const LevelOrder& order,
                     std::vector<Candidate>& top) {
  top.clear();
  constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  for (const auto& run : order.runs()) {
    uint64_t best_key = 0;
    uint32_t best = kNone;  // a node index
    const uint32_t end = run.end;
    for (uint32_t p = run.begin;; ++p) {
      // A hash at least the best so far (rare once a few feasible nodes are seen): checked
      // for feasibility; on an equal hash the lower node index wins.
      p = nextAtLeast(l.hash, p, end, l.daemon_mixed, best_key);
      if (p == end) break;
      if (!orderedOk<kSig, kStamp, kResources, kByPosition>(l, p)) continue;
      const uint64_t t = rendezvousMixed(l.daemon_mixed, l.hash[p]);
      const uint32_t i = l.node[p];
      if (t > best_key || i < best) {
        best_key = t;
        best = i;
      }
    }
    if (best != kNone) {
      top.push_back({in.scores[best], best_key, best, run.level});
      return;
    }
  }
}

template <bool kSig, bool kStamp, bool kResources>
void scanOrdered(const ScanInput& in, const OrderedInput& o, size_t k, std::vector<Candidate>& top) {
  const ScanLocals l = scanLocals(in, o);
  const bool by_position = o.order->cpuLeft() != nullptr;
  if (k == 1) {
    by_position ? scanOrderedBest<kSig, kStamp, kResources, true>(l, in, *o.order, top)
                : scanOrderedBest<kSig, kStamp, kResources, false>(l, in, *o.order, top);
  } else {
    by_position ? scanOrderedTop<kSig, kStamp, kResources, true>(l, in, *o.order, k, top)
                : scanOrderedTop<kSig, kStamp, kResources, false>(l, in, *o.order, k, top);
  }
}

class Pass {
 public:
  Pass(const std::vector<NodeView>& input_nodes, const std::vector<DaemonRequest>& input_daemons)
      : input_nodes_(input_nodes) {
    prepareNodes(input_nodes);
    prepareDaemons(input_daemons);
  }

  // detail_all: fill feasible/excluded for every daemon; otherwise for infeasible ones (a
  // sample) and in full for `explain_only` (an index into the sorted daemons, or npos).
  Assignment run(bool detail_all, size_t explain_only);

  std::optional<size_t> daemonIndex(std::string_view name) const {
    // By the names' prefixes first (one array), then the names sharing the prefix (sorted).
    const uint64_t prefix = namePrefix(name);
    auto it = std::lower_bound(daemon_prefix_.begin(), daemon_prefix_.end(), prefix);
    for (auto i = static_cast<size_t>(it - daemon_prefix_.begin()); i < daemons_.size() && daemon_prefix_[i] == prefix;
         ++i) {
      const std::string& n = daemons_[i]->name;
      if (n == name) return i;
      if (std::string_view(n) > name) break;
    }
    return std::nullopt;
  }

 private:
  std::optional<uint32_t> nodeIndex(std::string_view id) const {
    auto it = std::lower_bound(nodes_.begin(), nodes_.end(), id,
                               [](const PreparedNode& n, std::string_view x) { return n.view->id < x; });
    if (it == nodes_.end() || it->view->id != id) return std::nullopt;
    return static_cast<uint32_t>(it - nodes_.begin());
  }
  void prepareNodes(const std::vector<NodeView>& input);
  void prepareDaemons(const std::vector<DaemonRequest>& input);
  uint32_t signatureFor(const DaemonRequest& d);
  const std::vector<uint8_t>& constraintMask(const spec::Constraint& c);
  const std::vector<const std::string*>& labelValues(const std::string& label);
  const std::vector<uint8_t>& capabilityMask(const std::string& cap);
  const Scores& scoresFor(const DaemonRequest& d);
  void place(size_t di, bool detail);
  void refreshScores(uint32_t node);
  // The instances of an already placed daemon (node indices, with repeats).
  std::pair<const uint32_t*, const uint32_t*> instancesOf(size_t di) const {
    return {instances_.data() + instances_begin_[di], instances_.data() + instances_end_[di]};
  }
  bool hasInstance(size_t di, uint32_t node) const {
    auto [b, e] = instancesOf(di);
    return std::find(b, e, node) != e;
  }

  const std::vector<NodeView>& input_nodes_;
  std::vector<PreparedNode> nodes_;  // sorted by id, duplicates dropped
  std::vector<uint64_t> node_hash_;  // per node: rendezvous hash of the id
  std::vector<uint8_t> base_ok_;     // per node: alive and active
  size_t usable_ = 0;                // nodes alive and active

  std::vector<const DaemonRequest*> daemons_;  // sorted by name, duplicates dropped
  std::vector<uint64_t> daemon_prefix_;        // per daemon: namePrefix of its name
  std::vector<size_t> order_;                  // dependencies first, then by name
  std::vector<uint32_t> deps_begin_, deps_end_;  // per daemon: its dependencies in deps_
  std::vector<uint32_t> deps_;
  std::vector<uint8_t> done_;
  std::vector<uint32_t> signature_of_;  // per daemon: its signature
  std::vector<uint64_t> daemon_hash_;   // per daemon: rendezvous hash of the name

  std::vector<Signature> signatures_;
  static constexpr uint32_t kNoSignature = std::numeric_limits<uint32_t>::max();
  std::unordered_map<uint64_t, std::vector<uint32_t>> signature_index_;  // hash -> signatures
  uint32_t base_signature_ = kNoSignature;  // no capabilities, no constraints
  std::unordered_map<std::string, std::vector<uint8_t>> constraint_masks_;
  std::unordered_map<std::string, std::vector<const std::string*>> label_values_;  // per node, or null
  std::unordered_map<std::string, std::vector<uint8_t>> capability_masks_;

  std::vector<NodeLoad> load_;
  std::vector<int64_t> cpu_left_, memory_left_;
  Scores spread_score_, binpack_score_, zero_score_;
  std::unordered_map<std::string, Scores> near_scores_;
  std::vector<LevelOrder*> orders_;  // orders with resources by position (follow reservations)

  std::vector<uint32_t> stamp_;  // per node: 1 + the daemon index that last marked it
  std::vector<uint32_t> colocated_mark_;  // per node: 1 + the daemon index it is co-located for
  std::vector<uint32_t> instances_;  // every daemon's instances, in placing order
  std::vector<uint32_t> instances_begin_, instances_end_;
  Assignment out_;  // the answer, filled in place: one entry per daemon, in name order

  // Scratch, reused across daemons.
  std::vector<size_t> placed_deps_;
  std::vector<uint32_t> colocated_;
  std::vector<Candidate> chosen_, top_;
  std::vector<int64_t> cpu_rem_, memory_rem_;
};

void Pass::prepareNodes(const std::vector<NodeView>& input) {
  const auto unique = sortedUnique(
      input, [](const NodeView& v) -> const std::string& { return v.id; },
      [](const NodeView& v) { return hashNode(v); });
  nodes_.reserve(unique.size());
  for (const NodeView* v : unique) {
    PreparedNode p;
    p.view = v;
    p.hash = hashString(v->id, kNodeSeed);
    p.caps.assign(v->capabilities.begin(), v->capabilities.end());
    std::sort(p.caps.begin(), p.caps.end());
    p.caps.erase(std::unique(p.caps.begin(), p.caps.end()), p.caps.end());
    nodes_.push_back(std::move(p));
  }
  const size_t n = nodes_.size();
  load_.assign(n, NodeLoad{});
  cpu_left_.resize(n);
  memory_left_.resize(n);
  spread_score_.resize(n);
  binpack_score_.resize(n);
  zero_score_.resize(n);
  stamp_.assign(n, 0);
  colocated_mark_.assign(n, 0);
  node_hash_.resize(n);
  base_ok_.resize(n);
  static const DaemonRequest kReservesNothing;
  for (uint32_t i = 0; i < n; ++i) {
    const NodeView& v = *nodes_[i].view;
    node_hash_[i] = nodes_[i].hash;
    base_ok_[i] = v.alive && v.active ? 1 : 0;
    cpu_left_[i] = std::max<int64_t>(0, v.cpu_millicores);
    memory_left_[i] = std::max<int64_t>(0, v.memory_bytes);
    zero_score_.set(i, scorerFor(spec::PlacementStrategy::kSpread).score(kReservesNothing, v, load_[i], input_nodes_));
    refreshScores(i);
  }
  usable_ = static_cast<size_t>(std::count(base_ok_.begin(), base_ok_.end(), uint8_t{1}));
  for (Scores* s : {&spread_score_, &binpack_score_, &zero_score_}) {
    s->order.build(s->level, base_ok_, node_hash_, &cpu_left_, &memory_left_);
    orders_.push_back(&s->order);
  }
}

void Pass::prepareDaemons(const std::vector<DaemonRequest>& input) {
  daemon_prefix_.reserve(input.size());
  daemons_ = sortedUnique(
      input, [](const DaemonRequest& d) -> const std::string& { return d.name; },
      [](const DaemonRequest& d) { return hashDaemon(d); }, &daemon_prefix_);
  const size_t m = daemons_.size();

  // Dependency order (Kahn), ties by name. Dependencies outside the set are ignored; a cycle
  // (specs are validated, so it should not happen) is broken by appending what is left by name.
  deps_begin_.resize(m);
  deps_end_.resize(m);
  std::vector<uint32_t> indegree(m, 0);
  std::vector<std::pair<uint32_t, uint32_t>> edges;  // (dependency, dependent)
  for (size_t i = 0; i < m; ++i) {
    deps_begin_[i] = static_cast<uint32_t>(deps_.size());
    for (const auto& name : daemons_[i]->depends_on) {
      auto dep = daemonIndex(name);
      if (!dep || *dep == i) continue;
      const auto d32 = static_cast<uint32_t>(*dep);
      if (std::find(deps_.begin() + deps_begin_[i], deps_.end(), d32) != deps_.end()) continue;
      deps_.push_back(d32);
      edges.emplace_back(d32, static_cast<uint32_t>(i));
      ++indegree[i];
    }
    deps_end_[i] = static_cast<uint32_t>(deps_.size());
  }
  order_.reserve(m);
  if (edges.empty()) {
    for (size_t i = 0; i < m; ++i) order_.push_back(i);
  } else {
    std::sort(edges.begin(), edges.end());
    std::vector<uint32_t> first_edge(m + 1, 0);
    for (const auto& e : edges) ++first_edge[e.first + 1];
    for (size_t i = 0; i < m; ++i) first_edge[i + 1] += first_edge[i];
    // The lowest ready index next, as one priority queue of every ready daemon would give;
    // but the daemons ready from the start are taken in index order by a cursor, and only
    // those that become ready later (dependents) go through the heap.
    std::vector<uint8_t> initial(m, 0);
    for (size_t i = 0; i < m; ++i) initial[i] = indegree[i] == 0 ? 1 : 0;
    std::priority_queue<size_t, std::vector<size_t>, std::greater<>> later;
    std::vector<uint8_t> queued(m, 0);
    size_t cursor = 0;
    for (;;) {
      while (cursor < m && !initial[cursor]) ++cursor;
      size_t i;
      if (cursor < m && (later.empty() || cursor < later.top())) {
        i = cursor++;
      } else if (!later.empty()) {
        i = later.top();
        later.pop();
      } else {
        break;
      }
      queued[i] = 1;
      order_.push_back(i);
      for (uint32_t e = first_edge[i]; e < first_edge[i + 1]; ++e) {
        if (--indegree[edges[e].second] == 0) later.push(edges[e].second);
      }
    }
    for (size_t i = 0; i < m; ++i) {
      if (!queued[i]) order_.push_back(i);
    }
  }

  done_.assign(m, 0);
  // Signatures and name hashes in the input's order (memory order: the requests and their
  // strings were most likely allocated in that order), not in name order, which would visit
  // the requests at random; place() then finds them ready.
  signature_of_.assign(m, 0);
  daemon_hash_.assign(m, 0);
  constexpr uint32_t kDropped = std::numeric_limits<uint32_t>::max();
  std::vector<uint32_t> by_input(input.size(), kDropped);
  for (size_t i = 0; i < m; ++i) by_input[static_cast<size_t>(daemons_[i] - input.data())] = static_cast<uint32_t>(i);
  for (const uint32_t i : by_input) {
    if (i == kDropped) continue;
    signature_of_[i] = signatureFor(*daemons_[i]);
    daemon_hash_[i] = hashString(daemons_[i]->name, kDaemonSeed);
  }
  instances_begin_.assign(m, 0);
  instances_end_.assign(m, 0);
  out_.daemons.reserve(m);
  for (size_t i = 0; i < m; ++i) out_.daemons.emplace(daemons_[i]->name, DaemonAssignment{});
}

const std::vector<const std::string*>& Pass::labelValues(const std::string& label) {
  auto it = label_values_.find(label);
  if (it != label_values_.end()) return it->second;
  std::vector<const std::string*> values(nodes_.size(), nullptr);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const auto& labels = nodes_[i].view->labels;
    if (auto l = labels.find(label); l != labels.end()) values[i] = &l->second;
  }
  return label_values_.emplace(label, std::move(values)).first->second;
}

const std::vector<uint8_t>& Pass::constraintMask(const spec::Constraint& c) {
  std::string key = constraintKey(c);
  auto it = constraint_masks_.find(key);
  if (it != constraint_masks_.end()) return it->second;
  // constraintOk() for every node, from the label's value on each (looked up once per label).
  const auto& values = labelValues(c.label);
  std::vector<uint8_t> mask(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const bool listed = values[i] != nullptr && std::find(c.values.begin(), c.values.end(), *values[i]) != c.values.end();
    switch (c.op) {
      case spec::ConstraintOp::kNotIn: mask[i] = listed ? 0 : 1; break;
      case spec::ConstraintOp::kEquals:
      case spec::ConstraintOp::kIn: mask[i] = listed ? 1 : 0; break;
      default: mask[i] = 0; break;
    }
  }
  return constraint_masks_.emplace(std::move(key), std::move(mask)).first->second;
}

const std::vector<uint8_t>& Pass::capabilityMask(const std::string& cap) {
  auto it = capability_masks_.find(cap);
  if (it != capability_masks_.end()) return it->second;
  std::vector<uint8_t> mask(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    mask[i] = std::binary_search(nodes_[i].caps.begin(), nodes_[i].caps.end(), std::string_view(cap)) ? 1 : 0;
  }
  return capability_masks_.emplace(cap, std::move(mask)).first->second;
}

// The static checks (staticOk) for every node, once per distinct signature, from one mask
// per distinct capability and constraint.
// Daemons are matched to a signature by a hash of their capabilities and constraints (as
// written, in order), confirmed by comparing them: no string is built per daemon. Two
// daemons that list the same ones in another order get two signatures with equal masks.
uint32_t Pass::signatureFor(const DaemonRequest& d) {
  const auto& p = d.placement;
  const bool base = p.capabilities.empty() && p.constraints.empty();
  if (base && base_signature_ != kNoSignature) return base_signature_;
  Hasher h(0x7369676e61747572ULL);
  h.add(p.capabilities.size());
  for (const auto& c : p.capabilities) h.add(c);
  h.add(p.constraints.size());
  for (const auto& c : p.constraints) {
    h.add(c.label);
    h.add(static_cast<uint64_t>(c.op));
    h.add(c.values.size());
    for (const auto& v : c.values) h.add(v);
  }
  const uint64_t key = h.done();
  auto& same_hash = signature_index_[key];
  for (uint32_t idx : same_hash) {
    const spec::Placement& q = *signatures_[idx].placement;
    if (q.capabilities == p.capabilities && q.constraints == p.constraints) return idx;
  }
  Signature sig;
  sig.placement = &p;
  sig.ok = base_ok_;
  for (const auto& cap : d.placement.capabilities) {
    const auto& mask = capabilityMask(cap);
    for (size_t i = 0; i < sig.ok.size(); ++i) sig.ok[i] &= mask[i];
  }
  for (const auto& c : d.placement.constraints) {
    const auto& mask = constraintMask(c);
    for (size_t i = 0; i < sig.ok.size(); ++i) sig.ok[i] &= mask[i];
  }
  for (uint32_t i = 0; i < sig.ok.size(); ++i) {
    if (sig.ok[i]) sig.nodes.push_back(i);
  }
  const auto idx = static_cast<uint32_t>(signatures_.size());
  signatures_.push_back(std::move(sig));
  same_hash.push_back(idx);
  if (base) base_signature_ = idx;
  return idx;
}

void Pass::refreshScores(uint32_t i) {
  // What the spread and binpack scorers return for a daemon that reserves: -step and +step
  // of the same utilizationStep, computed once (the unit tests check it against them).
  const double step = utilizationStep(*nodes_[i].view, load_[i]);
  spread_score_.set(i, -step);
  binpack_score_.set(i, step);
}

const Scores& Pass::scoresFor(const DaemonRequest& d) {
  switch (d.placement.strategy) {
    case spec::PlacementStrategy::kBinpack: return binpack_score_;
    case spec::PlacementStrategy::kNear: {
      // Near scores depend only on coordinates: computed once per target per pass (the same
      // functions NearScorer uses).
      auto it = near_scores_.find(d.placement.near);
      if (it == near_scores_.end()) {
        const auto targets = nearTargets(d.placement.near, input_nodes_);
        Scores scores;
        scores.resize(nodes_.size());
        for (size_t i = 0; i < nodes_.size(); ++i) scores.set(i, nearScore(*nodes_[i].view, d.placement.near, targets));
        // By node: near runs are short (scores rarely tie), and a reservation would
        // otherwise update every near order.
        scores.order.build(scores.level, base_ok_, node_hash_, nullptr, nullptr);
        it = near_scores_.emplace(d.placement.near, std::move(scores)).first;
      }
      return it->second;
    }
    case spec::PlacementStrategy::kSpread: break;
  }
  return asksResources(d) ? spread_score_ : zero_score_;
}

void Pass::place(size_t di, bool detail) {
  const DaemonRequest& d = *daemons_[di];
  const Signature& sig = signatures_[signature_of_[di]];
  const uint64_t dh = daemon_hash_[di];
  const Scores& ranked = scoresFor(d);
  const double* scores = ranked.score.data();
  const uint32_t* levels = ranked.level.data();
  const int64_t cpu = std::max<int64_t>(0, d.resources.cpu_millicores);
  const int64_t memory = std::max<int64_t>(0, d.resources.memory_bytes);
  const uint32_t wanted = std::min(d.replicas, kMaxReplicas);
  const auto per_node = static_cast<uint32_t>(std::clamp<int64_t>(d.placement.max_per_node, 1, kMaxReplicas));
  const uint32_t mark = static_cast<uint32_t>(di) + 1;
  auto tieOf = [&](uint32_t i) { return rendezvous(dh, node_hash_[i]); };

  // Co-location: only nodes where every dependency (already placed) has an instance.
  placed_deps_.clear();
  for (uint32_t k = deps_begin_[di]; k < deps_end_[di]; ++k) {
    if (done_[deps_[k]]) placed_deps_.push_back(deps_[k]);
  }
  const bool colocate = !placed_deps_.empty();
  colocated_.clear();
  if (colocate) {
    auto [b, e] = instancesOf(placed_deps_.front());
    colocated_.assign(b, e);
    std::sort(colocated_.begin(), colocated_.end());
    colocated_.erase(std::unique(colocated_.begin(), colocated_.end()), colocated_.end());
    for (size_t k = 1; k < placed_deps_.size(); ++k) {
      std::erase_if(colocated_, [&](uint32_t i) { return !hasInstance(placed_deps_[k], i); });
    }
    std::erase_if(colocated_, [&](uint32_t i) { return !sig.ok[i]; });
  }
  const std::vector<uint32_t>& candidates = colocate ? colocated_ : sig.nodes;
  for (uint32_t i : colocated_) colocated_mark_[i] = mark;
  auto colocatedOk = [&](uint32_t i) { return !colocate || colocated_mark_[i] == mark; };

  // Pinned nodes first: kept when feasible apart from resources.
  chosen_.clear();
  if (!d.pinned.empty() && wanted > 0) {
    for (const auto& id : d.pinned) {
      auto found = nodeIndex(id);
      if (!found) continue;
      const uint32_t i = *found;
      if (stamp_[i] == mark || !sig.ok[i] || !colocatedOk(i)) continue;
      stamp_[i] = mark;
      chosen_.push_back({scores[i], tieOf(i), i, levels[i]});
    }
    std::sort(chosen_.begin(), chosen_.end(), better);
    if (chosen_.size() > wanted) {
      for (size_t k = wanted; k < chosen_.size(); ++k) stamp_[chosen_[k].node] = 0;  // not kept: rankable
      chosen_.resize(wanted);
    }
  }

  // The best `wanted - pinned` of the other feasible nodes (distinct nodes).
  const size_t k = wanted - chosen_.size();
  const bool reserves = cpu > 0 || memory > 0;
  const ScanInput in{&candidates,
                     stamp_.data(),
                     mark,
                     cpu_left_.data(),
                     memory_left_.data(),
                     cpu > 0 ? cpu : std::numeric_limits<int64_t>::min(),
                     memory > 0 ? memory : std::numeric_limits<int64_t>::min(),
                     scores,
                     levels,
                     node_hash_.data(),
                     dh};
  if (colocate) {  // few candidates: scan them all
    if (k == 1) {
      reserves ? scanBest<true>(in, top_) : scanBest<false>(in, top_);
    } else {
      reserves ? scanTop<true>(in, k, top_) : scanTop<false>(in, k, top_);
    }
  } else {
    const OrderedInput o{&ranked.order, sig.ok.data()};
    const bool filter = sig.nodes.size() != usable_;  // the signature excludes a usable node
    const bool pins = !d.pinned.empty();
    const int variant = (filter ? 4 : 0) | (pins ? 2 : 0) | (reserves ? 1 : 0);
    switch (variant) {
      case 0: scanOrdered<false, false, false>(in, o, k, top_); break;
      case 1: scanOrdered<false, false, true>(in, o, k, top_); break;
      case 2: scanOrdered<false, true, false>(in, o, k, top_); break;
      case 3: scanOrdered<false, true, true>(in, o, k, top_); break;
      case 4: scanOrdered<true, false, false>(in, o, k, top_); break;
      case 5: scanOrdered<true, false, true>(in, o, k, top_); break;
      case 6: scanOrdered<true, true, false>(in, o, k, top_); break;
      default: scanOrdered<true, true, true>(in, o, k, top_); break;
    }
  }
  chosen_.insert(chosen_.end(), top_.begin(), top_.end());

  // Instances: one per chosen node; more on the best nodes when max_per_node allows and
  // there are fewer feasible nodes than replicas.
  instances_begin_[di] = static_cast<uint32_t>(instances_.size());
  for (const auto& c : chosen_) instances_.push_back(c.node);
  if (chosen_.size() < wanted && per_node > 1 && !chosen_.empty()) {
    cpu_rem_.resize(chosen_.size());
    memory_rem_.resize(chosen_.size());
    for (size_t j = 0; j < chosen_.size(); ++j) {
      cpu_rem_[j] = cpu_left_[chosen_[j].node] - cpu;
      memory_rem_[j] = memory_left_[chosen_[j].node] - memory;
    }
    size_t placed = chosen_.size();
    for (uint32_t round = 2; round <= per_node && placed < wanted; ++round) {
      bool any = false;
      for (size_t j = 0; j < chosen_.size() && placed < wanted; ++j) {
        if (cpu > 0 && cpu_rem_[j] < cpu) continue;
        if (memory > 0 && memory_rem_[j] < memory) continue;
        cpu_rem_[j] -= cpu;
        memory_rem_[j] -= memory;
        instances_.push_back(chosen_[j].node);
        ++placed;
        any = true;
      }
      if (!any) break;
    }
  }
  instances_end_[di] = static_cast<uint32_t>(instances_.size());
  auto [inst_b, inst_e] = instancesOf(di);
  const size_t placed = static_cast<size_t>(inst_e - inst_b);

  DaemonAssignment& out = (out_.daemons.begin() + static_cast<std::ptrdiff_t>(di))->second;
  out.wanted = wanted;
  out.infeasible = placed < wanted;
  out.nodes.reserve(placed);
  for (auto p = inst_b; p != inst_e; ++p) out.nodes.push_back(nodes_[*p].view->id);

  if (detail || out.infeasible) {
    // Every node: feasible (ranked) or excluded with the first reason, against the
    // reservations as they stood when this daemon was placed.
    out.detailed = true;
    const size_t cap = detail ? std::numeric_limits<size_t>::max() : kExcludedSample;
    std::string why;
    const auto n = static_cast<uint32_t>(nodes_.size());
    uint32_t i = 0;
    for (; i < n && out.excluded.size() < cap; ++i) {
      const bool kept = stamp_[i] == mark;  // pinned and kept
      why.clear();
      if (!staticOk(nodes_[i], d, &why)) {
      } else if (!colocatedOk(i)) {
        for (size_t dep : placed_deps_) {
          if (!hasInstance(dep, i)) {
            why = fmt::format("co-location: dependency {} has no instance here", daemons_[dep]->name);
            break;
          }
        }
      } else if (!kept && cpu > 0 && cpu_left_[i] < cpu) {
        why = fmt::format("cpu: {}m left, {}m asked", std::max<int64_t>(0, cpu_left_[i]), cpu);
      } else if (!kept && memory > 0 && memory_left_[i] < memory) {
        why = fmt::format("memory: {} left, {} asked", humanBytes(memory_left_[i]), humanBytes(memory));
      }
      if (why.empty()) {
        out.feasible.push_back({nodes_[i].view->id, scores[i], tieOf(i)});
      } else {
        out.excluded.emplace_hint(out.excluded.end(), nodes_[i].view->id, why);
        ++out.excluded_count;
      }
    }
    if (i < n) {
      // Past the sample, count only: the same checks without the words. A feasible node
      // passes the static checks and co-location, so it is one of `candidates` (ascending):
      // only those are checked, every other node is excluded.
      const size_t feasible_before = out.feasible.size();
      for (auto c = std::lower_bound(candidates.begin(), candidates.end(), i); c != candidates.end(); ++c) {
        const uint32_t j = *c;
        const bool kept = stamp_[j] == mark;
        if (kept || ((cpu == 0 || cpu_left_[j] >= cpu) && (memory == 0 || memory_left_[j] >= memory))) {
          out.feasible.push_back({nodes_[j].view->id, scores[j], tieOf(j)});
        }
      }
      out.excluded_count += static_cast<uint32_t>((n - i) - (out.feasible.size() - feasible_before));
    }
    std::sort(out.feasible.begin(), out.feasible.end(), [](const ScoredNode& a, const ScoredNode& b) {
      const uint32_t la = scoreLevel(a.score), lb = scoreLevel(b.score);
      if (la != lb) return la > lb;
      if (a.tie != b.tie) return a.tie > b.tie;
      return a.node < b.node;  // sorted ids: the lower index
    });
  }

  // Reserve.
  for (auto p = inst_b; p != inst_e; ++p) {
    const uint32_t i = *p;
    load_[i].cpu_reserved += cpu;
    load_[i].memory_reserved += memory;
    ++load_[i].instances;
    cpu_left_[i] -= cpu;
    memory_left_[i] -= memory;
  }
  if (cpu != 0 || memory != 0) {
    for (const auto& c : chosen_) {
      for (LevelOrder* order : orders_) order->setLeft(c.node, cpu_left_[c.node], memory_left_[c.node]);
    }
  }
  for (const auto& c : chosen_) refreshScores(c.node);
  done_[di] = 1;
}

Assignment Pass::run(bool detail_all, size_t explain_only) {
  instances_.reserve(daemons_.size() * 2);
  // The requests are the caller's, one after another in memory but visited in name order:
  // fetch the next ones' lines ahead of place() (it reads name, resources, placement, pins).
  constexpr size_t kAhead = 4;
  auto prefetch = [&](size_t k) {
    if (k >= order_.size()) return;
    const DaemonRequest* d = daemons_[order_[k]];
    prefetchLine(&d->name);
    prefetchLine(&d->resources);
    prefetchLine(&d->placement);
    prefetchLine(&d->placement.max_per_node);
    prefetchLine(&d->depends_on);
    prefetchLine(&d->pinned);
  };
  for (size_t k = 0; k < kAhead; ++k) prefetch(k);
  for (size_t k = 0; k < order_.size(); ++k) {
    prefetch(k + kAhead);
    const size_t di = order_[k];
    place(di, detail_all || di == explain_only);
  }
  return std::move(out_);
}

}  // namespace

DaemonTable::iterator DaemonTable::find(std::string_view name) {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const value_type& e, std::string_view n) { return e.first < n; });
  return it != items_.end() && it->first == name ? it : items_.end();
}

DaemonTable::const_iterator DaemonTable::find(std::string_view name) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const value_type& e, std::string_view n) { return e.first < n; });
  return it != items_.end() && it->first == name ? it : items_.end();
}

DaemonAssignment& DaemonTable::at(std::string_view name) {
  auto it = find(name);
  if (it == items_.end()) throw std::out_of_range(fmt::format("no assignment for daemon '{}'", name));
  return it->second;
}

const DaemonAssignment& DaemonTable::at(std::string_view name) const {
  auto it = find(name);
  if (it == items_.end()) throw std::out_of_range(fmt::format("no assignment for daemon '{}'", name));
  return it->second;
}

std::pair<DaemonTable::iterator, bool> DaemonTable::emplace(std::string name, DaemonAssignment a) {
  if (items_.empty() || items_.back().first < name) {
    items_.emplace_back(std::move(name), std::move(a));
    return {items_.end() - 1, true};
  }
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const value_type& e, const std::string& n) { return e.first < n; });
  if (it != items_.end() && it->first == name) return {it, false};
  return {items_.emplace(it, std::move(name), std::move(a)), true};
}

std::map<std::string, std::map<std::string, uint32_t>> Assignment::byNode() const {
  std::map<std::string, std::map<std::string, uint32_t>> out;
  for (const auto& [name, d] : daemons) {
    for (const auto& node : d.nodes) ++out[node][name];
  }
  return out;
}

Assignment assign(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons,
                  const AssignOptions& options) {
  Pass pass(nodes, daemons);
  bool all = options.detail == Detail::kAll;
  if (options.detail == Detail::kAuto) all = nodes.size() * daemons.size() <= kAutoDetailPairs;
  return pass.run(all, std::numeric_limits<size_t>::max());
}

Assignment assign(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons) {
  return assign(nodes, daemons, AssignOptions{});
}

Result<DaemonAssignment> explain(const std::vector<NodeView>& nodes,
                                 const std::vector<DaemonRequest>& daemons, const std::string& daemon) {
  Pass pass(nodes, daemons);
  auto idx = pass.daemonIndex(daemon);
  if (!idx) return Status::notFound(fmt::format("no desired daemon named '{}'", daemon));
  Assignment a = pass.run(false, *idx);
  return std::move(a.daemons.at(daemon));
}

const Assignment& Assigner::assign(const std::vector<NodeView>& nodes,
                                   const std::vector<DaemonRequest>& daemons) {
  const uint64_t fp = fingerprint(nodes, daemons);
  if (fingerprint_ && *fingerprint_ == fp) return last_;
  last_ = placement::assign(nodes, daemons);
  fingerprint_ = fp;
  ++recomputes_;
  return last_;
}

}  // namespace meshos::placement
