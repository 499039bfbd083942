// The libFuzzer main of one target, chosen at compile time (meson builds one executable per
// target from this file with -DMESHOS_FUZZ_TARGET="name"; -Dfuzz=true, clang). Run as
//   build-fuzz/tests/fuzz/fuzz_<name> -max_total_time=600 CORPUS_DIR tests/fuzz/corpus/<name>
// (the first directory collects what the run finds; see docs/TESTING.md).
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/fuzz_target.h"

namespace {

meshos::fuzz::FuzzEntry entry() {
  static const meshos::fuzz::FuzzTarget* target = [] {
    const auto* t = meshos::fuzz::findTarget(MESHOS_FUZZ_TARGET);
    if (t == nullptr) {
      std::fprintf(stderr, "no fuzz target named %s\n", MESHOS_FUZZ_TARGET);
      std::abort();
    }
    return t;
  }();
  return target->entry;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return entry()(data, size); }
