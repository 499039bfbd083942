// The assignment pass behind assign() (placement.cpp) and its scans (pass.cpp): prepared
// nodes and daemons, signatures of what a daemon asks, the per-level node orders, the
// rendezvous scans and the Pass itself. Private to placement/: everything here is in
// namespace detail and may change with the algorithm; placement.h is the interface.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <queue>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "placement/hashing.h"
#include "placement/placement.h"
#include "placement/rendezvous_scan.h"

namespace meshos::placement::detail {

// Defined in placement.cpp, shared with the fingerprint.
bool asksResources(const DaemonRequest& d);
uint64_t hashNode(const NodeView& n, bool with_coordinate = true);
uint64_t hashDaemon(const DaemonRequest& d);


inline std::string joinValues(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += values[i];
  }
  out += "]";
  return out;
}

inline std::string humanBytes(int64_t bytes) {
  if (bytes < 0) bytes = 0;
  constexpr double kKiB = 1024.0, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
  const double b = static_cast<double>(bytes);
  if (b >= kGiB) return fmt::format("{:.1f}GiB", b / kGiB);
  if (b >= kMiB) return fmt::format("{:.1f}MiB", b / kMiB);
  if (b >= kKiB) return fmt::format("{:.1f}KiB", b / kKiB);
  return fmt::format("{}B", bytes);
}

// True when the node's labels meet the constraint; otherwise false, and *why says how.
inline bool constraintOk(const NodeView& node, const spec::Constraint& c, std::string* why) {
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

// The part of feasibility that does not depend on the pass: alive, active, healthy, capabilities,
// labels. True when the node passes; otherwise *why (when given) says the first failure.
inline bool staticOk(const PreparedNode& n, const DaemonRequest& d, std::string* why) {
  const NodeView& v = *n.view;
  if (!v.alive) {
    if (why) *why = "not alive";
    return false;
  }
  if (!v.active) {
    if (why) *why = "not active (draining or in maintenance)";
    return false;
  }
  if (!v.unhealthy.empty()) {
    if (why) *why = "unhealthy: " + v.unhealthy;
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

inline std::string constraintKey(const spec::Constraint& c) {
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

inline ScanLocals scanLocals(const ScanInput& in, const OrderedInput& o) {
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
  // One daemon, in steps: its constants and co-location candidates, the pinned nodes, the
  // ranked scan, its instances, (for the snapshot) every node's verdict, the reservations.
  struct Placing {
    size_t di = 0;
    const DaemonRequest* d = nullptr;
    const Signature* sig = nullptr;
    uint64_t dh = 0;
    const Scores* ranked = nullptr;
    int64_t cpu = 0, memory = 0;
    uint32_t wanted = 0, per_node = 1, mark = 0;
    bool colocate = false;
    const std::vector<uint32_t>* candidates = nullptr;
  };
  void place(size_t di, bool detail);
  Placing begin(size_t di);
  void choosePinned(const Placing& p);
  void chooseRanked(const Placing& p);
  void recordInstances(const Placing& p);
  void explainPlacement(const Placing& p, DaemonAssignment& out, bool detail);
  void exclusionReason(const Placing& p, uint32_t i, std::string& why);
  void reserve(const Placing& p);
  bool colocatedOk(const Placing& p, uint32_t i) const { return !p.colocate || colocated_mark_[i] == p.mark; }
  uint64_t tieOf(const Placing& p, uint32_t i) const { return rendezvous(p.dh, node_hash_[i]); }
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

}  // namespace meshos::placement::detail
