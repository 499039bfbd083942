#include "agent/sim/sim_runtime.h"

#include <algorithm>

namespace meshos::sim {

namespace {

bool stopping(const SimInstance& i) { return i.stopped_ms >= 0; }

}  // namespace

void SimRuntime::apply(int64_t now_ms, const std::vector<spec::DaemonSpec>& run,
                       const std::map<std::string, uint64_t>& generations) {
  std::map<std::string, const spec::DaemonSpec*> wanted;
  for (const auto& s : run) wanted[s.name] = &s;

  // Stop what is no longer wanted here at all.
  for (auto& [name, list] : instances_) {
    if (wanted.count(name) != 0) continue;
    for (auto& inst : list) {
      if (stopping(inst)) continue;
      inst.stopped_ms = now_ms;
      ++counters_.stops;
    }
  }
  for (const auto& [name, spec] : wanted) {
    auto& list = instances_[name];
    const uint32_t want = spec->replicas > 0 ? static_cast<uint32_t>(spec->replicas) : 0;
    uint32_t active = 0;
    for (const auto& inst : list)
      if (!stopping(inst)) ++active;
    const auto gen_it = generations.find(name);
    const uint64_t gen = gen_it != generations.end() ? gen_it->second : 0;
    for (; active < want; ++active) {
      SimInstance inst;
      inst.id = next_id_++;
      inst.started_ms = now_ms;
      const int64_t jitter = options_.ready_jitter_ms > 0
                                 ? rng_.between(-options_.ready_jitter_ms, options_.ready_jitter_ms)
                                 : 0;
      inst.ready_at_ms = now_ms + std::max<int64_t>(0, options_.ready_delay_ms + jitter);
      inst.generation = gen;
      inst.resources = spec->resources;
      list.push_back(inst);
      ++counters_.starts;
    }
    // Too many: stop the ones not ready yet first, then the newest (a real scale-down
    // keeps the instances that have served longest).
    while (active > want) {
      SimInstance* victim = nullptr;
      for (auto& inst : list) {
        if (stopping(inst)) continue;
        const bool ready = now_ms >= inst.ready_at_ms;
        if (victim == nullptr) {
          victim = &inst;
          continue;
        }
        const bool victim_ready = now_ms >= victim->ready_at_ms;
        if ((victim_ready && !ready) || (victim_ready == ready && inst.id > victim->id)) victim = &inst;
      }
      if (victim == nullptr) break;
      victim->stopped_ms = now_ms;
      ++counters_.stops;
      --active;
    }
  }
  prune(now_ms);
}

void SimRuntime::crash() {
  for (const auto& [name, list] : instances_)
    for (const auto& inst : list)
      if (!stopping(inst)) ++counters_.lost;
  instances_.clear();
}

void SimRuntime::prune(int64_t now_ms) {
  for (auto it = instances_.begin(); it != instances_.end();) {
    auto& list = it->second;
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](const SimInstance& i) {
                                return stopping(i) && now_ms >= i.stopped_ms + options_.stop_grace_ms;
                              }),
               list.end());
    it = list.empty() ? instances_.erase(it) : std::next(it);
  }
}

std::map<std::string, SimDaemonCounts> SimRuntime::counts(int64_t now_ms) const {
  std::map<std::string, SimDaemonCounts> out;
  for (const auto& [name, list] : instances_) {
    SimDaemonCounts c;
    for (const auto& inst : list) {
      if (stopping(inst)) {
        ++c.stopping;
        continue;
      }
      ++c.running;
      if (now_ms >= inst.ready_at_ms) ++c.ready;
      c.generation = std::max(c.generation, inst.generation);
    }
    out[name] = c;
  }
  return out;
}

}  // namespace meshos::sim
