#include "placement/rendezvous_scan.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "placement/hashing.h"

namespace meshos::placement {

// The first position in [p, end) whose rendezvous hash is at least `threshold`, or end.
// Four hashes per step and one branch: the step that holds a hit is scanned again one by one.
uint32_t nextAtLeastScalar(const uint64_t* hash, uint32_t p, uint32_t end, uint64_t daemon_mixed,
                           uint64_t threshold) {
  for (; p + 4 <= end; p += 4) {
    const uint64_t t0 = rendezvousMixed(daemon_mixed, hash[p]);
    const uint64_t t1 = rendezvousMixed(daemon_mixed, hash[p + 1]);
    const uint64_t t2 = rendezvousMixed(daemon_mixed, hash[p + 2]);
    const uint64_t t3 = rendezvousMixed(daemon_mixed, hash[p + 3]);
    if ((t0 >= threshold) | (t1 >= threshold) | (t2 >= threshold) | (t3 >= threshold)) [[unlikely]] break;
  }
  for (; p < end; ++p) {
    if (rendezvousMixed(daemon_mixed, hash[p]) >= threshold) return p;
  }
  return end;
}

#if defined(__x86_64__) && defined(__GNUC__)
// The same with AVX-512F, eight hashes per step (the first hit's lane is the answer): the
// 64x64->128-bit product from four 32x32->64-bit ones (the same bits as the scalar multiply;
// rendezvous_scan_test compares the two on random input). GCC 12 warns about its
// own intrinsics' undefined pass-through operand (_mm512_undefined_epi32) here: a false
// positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) uint32_t nextAtLeastWide(const uint64_t* hash, uint32_t p, uint32_t end,
                                                           uint64_t daemon_mixed, uint64_t threshold) {
  const __m512i d = _mm512_set1_epi64(static_cast<long long>(daemon_mixed));
  const __m512i d_hi = _mm512_srli_epi64(d, 32);
  const __m512i th = _mm512_set1_epi64(static_cast<long long>(threshold));
  const __m512i low32 = _mm512_set1_epi64(0xffffffffLL);
  for (; p + 8 <= end; p += 8) {
    const __m512i h = _mm512_loadu_si512(hash + p);
    const __m512i h_hi = _mm512_srli_epi64(h, 32);
    const __m512i ll = _mm512_mul_epu32(d, h);
    const __m512i lh = _mm512_mul_epu32(d, h_hi);
    const __m512i hl = _mm512_mul_epu32(d_hi, h);
    const __m512i hh = _mm512_mul_epu32(d_hi, h_hi);
    __m512i mid = _mm512_add_epi64(_mm512_srli_epi64(ll, 32), _mm512_and_si512(lh, low32));
    mid = _mm512_add_epi64(mid, _mm512_and_si512(hl, low32));
    __m512i hi = _mm512_add_epi64(hh, _mm512_srli_epi64(lh, 32));
    hi = _mm512_add_epi64(hi, _mm512_srli_epi64(hl, 32));
    hi = _mm512_add_epi64(hi, _mm512_srli_epi64(mid, 32));
    const __m512i lo = _mm512_or_si512(_mm512_slli_epi64(mid, 32), _mm512_and_si512(ll, low32));
    const __m512i t = _mm512_xor_si512(hi, lo);
    const __mmask8 hits = _mm512_cmpge_epu64_mask(t, th);
    if (hits != 0) [[unlikely]] return p + static_cast<uint32_t>(__builtin_ctz(hits));
  }
  for (; p < end; ++p) {
    if (rendezvousMixed(daemon_mixed, hash[p]) >= threshold) return p;
  }
  return end;
}
#pragma GCC diagnostic pop

bool hasWideScan() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");  // the CPU has it and the OS saves its state
}
#else
bool hasWideScan() { return false; }
uint32_t nextAtLeastWide(const uint64_t* hash, uint32_t p, uint32_t end, uint64_t daemon_mixed,
                         uint64_t threshold) {
  return nextAtLeastScalar(hash, p, end, daemon_mixed, threshold);
}
#endif

namespace {
const bool kWide = hasWideScan();
}  // namespace

uint32_t nextAtLeast(const uint64_t* hash, uint32_t p, uint32_t end, uint64_t daemon_mixed,
                     uint64_t threshold) {
  return kWide ? nextAtLeastWide(hash, p, end, daemon_mixed, threshold)
               : nextAtLeastScalar(hash, p, end, daemon_mixed, threshold);
}

}  // namespace meshos::placement
