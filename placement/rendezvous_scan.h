#pragma once
// The hot loop of assign(): find the next node, in a run of equal-score nodes, whose
// rendezvous hash with a daemon reaches a threshold. One scalar version and, on x86-64 CPUs
// that have it, an AVX-512F one that tests eight nodes per step; both give the same answer
// (tests/unit/placement/rendezvous_scan_test.cpp checks them against each other).
#include <cstdint>

namespace meshos::placement {

// The first position p' in [p, end) with rendezvousMixed(daemon_mixed, hash[p']) >=
// threshold, or end. `hash` holds node hashes already xored with kRendezvousNodeMix.
uint32_t nextAtLeast(const uint64_t* hash, uint32_t p, uint32_t end, uint64_t daemon_mixed,
                     uint64_t threshold);

// The two implementations behind nextAtLeast(), for tests and benches.
uint32_t nextAtLeastScalar(const uint64_t* hash, uint32_t p, uint32_t end, uint64_t daemon_mixed,
                           uint64_t threshold);
// True when this CPU (and OS) can run nextAtLeastWide(); nextAtLeast() then uses it.
bool hasWideScan();
// The AVX-512F version; call only when hasWideScan().
uint32_t nextAtLeastWide(const uint64_t* hash, uint32_t p, uint32_t end, uint64_t daemon_mixed,
                         uint64_t threshold);

}  // namespace meshos::placement
