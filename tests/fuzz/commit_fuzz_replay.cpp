// Runs the commit fuzz entry point without libFuzzer, so every build (suite unit) exercises
// it: the built-in seed corpus, files given as arguments (a libFuzzer corpus or crash
// inputs), and a fixed number of seeded mutations of the seeds (bit flips, truncations,
// splices). Prints the seed and case number before aborting on a broken invariant.
//   fuzz_commit_replay [--mutations N] [--seed S] [--write-corpus DIR] [FILE...]
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "agent/core/rng.h"
#include "tests/fuzz/commit_fuzz.h"

using namespace meshos;

int main(int argc, char** argv) {
  uint64_t mutations = 3000, seed = 1;
  std::vector<std::string> files;
  std::string write_dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mutations" && i + 1 < argc)
      mutations = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--seed" && i + 1 < argc)
      seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--write-corpus" && i + 1 < argc)
      write_dir = argv[++i];
    else
      files.push_back(a);
  }
  std::vector<Bytes> corpus = fuzz::commitSeedCorpus();
  if (!write_dir.empty()) {
    std::filesystem::create_directories(write_dir);
    for (size_t i = 0; i < corpus.size(); ++i) {
      std::ofstream out(write_dir + "/seed-" + std::to_string(i), std::ios::binary);
      out.write(reinterpret_cast<const char*>(corpus[i].data()),
                static_cast<std::streamsize>(corpus[i].size()));
    }
    std::printf("wrote %zu seeds to %s\n", corpus.size(), write_dir.c_str());
    return 0;
  }
  for (const auto& f : files) {
    for (const auto& path :
         std::filesystem::is_directory(f)
             ? std::vector<std::filesystem::path>(std::filesystem::directory_iterator(f), {})
             : std::vector<std::filesystem::path>{f}) {
      std::ifstream in(path, std::ios::binary);
      std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      corpus.emplace_back(s.begin(), s.end());
    }
  }
  for (const auto& c : corpus) fuzz::fuzzCommitOne(c.data(), c.size());
  Rng rng(seed);
  for (uint64_t n = 0; n < mutations; ++n) {
    Bytes b = corpus[rng.uniform(corpus.size())];
    switch (rng.uniform(4)) {
      case 0:  // flip a few bits
        for (int k = 0, m = static_cast<int>(rng.between(1, 8)); k < m && !b.empty(); ++k) {
          b[rng.uniform(b.size())] ^= static_cast<uint8_t>(1u << rng.uniform(8));
        }
        break;
      case 1:  // truncate
        b.resize(rng.uniform(b.size() + 1));
        break;
      case 2: {  // splice two inputs
        const Bytes& o = corpus[rng.uniform(corpus.size())];
        size_t cut = rng.uniform(b.size() + 1);
        b.resize(cut);
        b.insert(b.end(), o.begin() + static_cast<ptrdiff_t>(rng.uniform(o.size() + 1)), o.end());
        break;
      }
      default:  // overwrite a word with a random value (pointer fields live in words)
        if (b.size() >= 8) {
          size_t at = rng.uniform(b.size() / 8) * 8;
          uint64_t v = rng.next();
          for (int k = 0; k < 8; ++k)
            b[at + static_cast<size_t>(k)] = static_cast<uint8_t>(v >> (8 * k));
        }
    }
    if (std::getenv("FUZZ_VERBOSE"))
      std::fprintf(stderr, "case %llu\n", static_cast<unsigned long long>(n));
    fuzz::fuzzCommitOne(b.data(), b.size());
  }
  std::printf("commit fuzz replay: %zu corpus inputs and %llu mutations (seed %llu) ok\n",
              corpus.size(), static_cast<unsigned long long>(mutations),
              static_cast<unsigned long long>(seed));
  return 0;
}
