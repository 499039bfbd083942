// libFuzzer target: build with CXX=clang++ and -Dfuzz=true, run as
//   build/tests/fuzz/fuzz_commit -max_total_time=60 CORPUS_DIR
// (seed a corpus with: build/tests/fuzz/fuzz_commit_replay --write-corpus CORPUS_DIR).
#include "tests/fuzz/commit_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return meshos::fuzz::fuzzCommitOne(data, size);
}
