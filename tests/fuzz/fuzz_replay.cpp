// The replay driver shared by every fuzz target, so that every build exercises them without
// libFuzzer (suite unit; and under ASan+UBSan in tools/dev test): the target's built-in
// seeds, the corpus files and directories given as arguments (tests/fuzz/corpus/<name>/, a
// libFuzzer corpus, crash inputs), then seeded mutations of all of those (bit flips,
// truncations, splices, inserted and repeated bytes, overwritten words). Mutation case k uses
// seed first+k alone, so one case replays with MESHOS_SEED=<seed>; a crash names its seed.
// Bounded: at most --mutations cases and --max-seconds of wall time, whichever ends first.
//
//   fuzz_replay --target NAME [--mutations N] [--first-seed S] [--max-seconds T] [FILE|DIR...]
//   fuzz_replay --target NAME --write-corpus DIR     (writes the seeds as DIR/seed-<i>)
//   MESHOS_SEED=S fuzz_replay --target NAME --save FILE CORPUS...  (keeps case S's input, e.g.
//                                                  as a regression input in the corpus)
//   fuzz_replay --list
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "agent/core/rng.h"
#include "tests/fuzz/fuzz_target.h"

using namespace meshos;

extern "C" void __sanitizer_set_death_callback(void (*callback)()) __attribute__((weak));

namespace {

// What runs now, for the crash message: set before each input.
char g_current[128] = "(starting)";

void sayWhatCrashed() {
  const char* prefix = "fuzz replay: crashed on ";
  (void)!::write(2, prefix, std::strlen(prefix));
  (void)!::write(2, g_current, std::strlen(g_current));
  (void)!::write(2, "\n", 1);
}

void onFatalSignal(int sig) {
  sayWhatCrashed();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void setCurrent(const std::string& what) {
  std::snprintf(g_current, sizeof g_current, "%s", what.c_str());
}

std::vector<std::pair<std::string, Bytes>> readInputs(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, Bytes>> out;
  for (const auto& a : args) {
    std::vector<std::filesystem::path> paths;
    if (std::filesystem::is_directory(a)) {
      for (const auto& e : std::filesystem::directory_iterator(a)) paths.push_back(e.path());
      std::sort(paths.begin(), paths.end());
    } else {
      paths.emplace_back(a);
    }
    for (const auto& p : paths) {
      std::ifstream in(p, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "cannot read %s\n", p.c_str());
        std::exit(2);
      }
      std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      out.emplace_back(p.string(), Bytes(s.begin(), s.end()));
    }
  }
  return out;
}

Bytes mutate(const std::vector<Bytes>& corpus, Rng& rng) {
  Bytes b = corpus[rng.uniform(corpus.size())];
  const int steps = static_cast<int>(rng.between(1, 3));
  for (int step = 0; step < steps; ++step) {
    switch (rng.uniform(6)) {
      case 0:  // flip a few bits
        for (int k = 0, m = static_cast<int>(rng.between(1, 8)); k < m && !b.empty(); ++k)
          b[rng.uniform(b.size())] ^= static_cast<uint8_t>(1u << rng.uniform(8));
        break;
      case 1:  // truncate
        b.resize(rng.uniform(b.size() + 1));
        break;
      case 2: {  // splice two inputs
        const Bytes& o = corpus[rng.uniform(corpus.size())];
        b.resize(rng.uniform(b.size() + 1));
        b.insert(b.end(), o.begin() + static_cast<ptrdiff_t>(rng.uniform(o.size() + 1)), o.end());
        break;
      }
      case 3: {  // insert a few random or boundary bytes (text formats: quotes, brackets)
        static const uint8_t kInteresting[] = {0, 0xff, 0x7f, 0x80, '"', '[', ']', '=', '\n', '\t', '\\', '{'};
        const size_t at = rng.uniform(b.size() + 1);
        const size_t n = static_cast<size_t>(rng.between(1, 4));
        for (size_t k = 0; k < n; ++k) {
          const uint8_t v = rng.chance(0.5) ? kInteresting[rng.uniform(sizeof kInteresting)]
                                            : static_cast<uint8_t>(rng.next());
          b.insert(b.begin() + static_cast<ptrdiff_t>(at), v);
        }
        break;
      }
      case 4:  // repeat a chunk (lists, repeated tables, length fields that no longer fit)
        if (!b.empty()) {
          const size_t from = rng.uniform(b.size());
          const size_t len = std::min<size_t>(b.size() - from, static_cast<size_t>(rng.between(1, 64)));
          Bytes chunk(b.begin() + static_cast<ptrdiff_t>(from), b.begin() + static_cast<ptrdiff_t>(from + len));
          b.insert(b.begin() + static_cast<ptrdiff_t>(rng.uniform(b.size() + 1)), chunk.begin(), chunk.end());
        }
        break;
      default:  // overwrite a word with a random value (Cap'n Proto pointers live in words)
        if (b.size() >= 8) {
          const size_t at = rng.uniform(b.size() / 8) * 8;
          const uint64_t v = rng.next();
          for (size_t k = 0; k < 8; ++k) b[at + k] = static_cast<uint8_t>(v >> (8 * k));
        }
    }
  }
  return b;
}

int writeCorpus(const fuzz::FuzzTarget& target, const std::string& dir) {
  std::filesystem::create_directories(dir);
  const auto seeds = target.seeds();
  for (size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream out(dir + "/seed-" + std::to_string(i), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(seeds[i].data()), static_cast<std::streamsize>(seeds[i].size()));
  }
  std::printf("wrote %zu seeds of %s to %s\n", seeds.size(), target.name, dir.c_str());
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: fuzz_replay --target NAME [--mutations N] [--first-seed S] [--max-seconds T] "
               "[FILE|DIR...]\n       fuzz_replay --target NAME --write-corpus DIR\n       fuzz_replay --list\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mutations = 2000, first_seed = 1;
  double max_seconds = 60;
  std::string target_name, write_dir, save_path;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--list") {
      for (const auto& t : fuzz::allTargets()) std::printf("%s\n", t.name);
      return 0;
    } else if (a == "--target" && has_value) {
      target_name = argv[++i];
    } else if (a == "--mutations" && has_value) {
      mutations = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--first-seed" && has_value) {
      first_seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--max-seconds" && has_value) {
      max_seconds = std::strtod(argv[++i], nullptr);
    } else if (a == "--save" && has_value) {
      save_path = argv[++i];
    } else if (a == "--write-corpus" && has_value) {
      write_dir = argv[++i];
    } else if (!a.empty() && a[0] == '-') {
      return usage();
    } else {
      args.push_back(a);
    }
  }
  const fuzz::FuzzTarget* target = fuzz::findTarget(target_name);
  if (target == nullptr) return usage();
  if (!write_dir.empty()) return writeCorpus(*target, write_dir);
  if (const char* s = std::getenv("MESHOS_SEED")) {
    first_seed = std::strtoull(s, nullptr, 0);
    mutations = 1;
  }

  ::signal(SIGABRT, onFatalSignal);
  ::signal(SIGSEGV, onFatalSignal);
  ::signal(SIGBUS, onFatalSignal);
  ::signal(SIGFPE, onFatalSignal);
  if (__sanitizer_set_death_callback != nullptr) __sanitizer_set_death_callback(sayWhatCrashed);

  std::vector<Bytes> corpus;
  const auto seeds = target->seeds();
  for (size_t i = 0; i < seeds.size(); ++i) {
    setCurrent(std::string(target->name) + " built-in seed " + std::to_string(i));
    target->entry(seeds[i].data(), seeds[i].size());
    corpus.push_back(seeds[i]);
  }
  for (auto& [path, bytes] : readInputs(args)) {
    setCurrent(path);
    target->entry(bytes.data(), bytes.size());
    corpus.push_back(std::move(bytes));
  }
  const auto start = std::chrono::steady_clock::now();
  uint64_t ran = 0;
  for (; ran < mutations; ++ran) {
    if (ran % 64 == 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > max_seconds)
      break;
    const uint64_t seed = first_seed + ran;
    setCurrent(std::string(target->name) + " mutation seed " + std::to_string(seed) +
               " (replay: MESHOS_SEED=" + std::to_string(seed) + ")");
    Rng rng(seed);
    const Bytes input = mutate(corpus, rng);
    if (!save_path.empty()) {
      std::ofstream(save_path, std::ios::binary | std::ios::trunc)
          .write(reinterpret_cast<const char*>(input.data()), static_cast<std::streamsize>(input.size()));
    }
    target->entry(input.data(), input.size());
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fuzz replay %s: %zu corpus inputs, %llu mutations (seeds %llu..%llu) in %.2f s: ok\n",
              target->name, corpus.size(), static_cast<unsigned long long>(ran),
              static_cast<unsigned long long>(first_seed), static_cast<unsigned long long>(first_seed + ran - (ran > 0)),
              took);
  return 0;
}
