// TempDir: a fresh directory under /tmp for one test, removed with everything in it when
// the test ends; writeFile for the files a test puts there. Shared by every test binary.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace meshos::testing {

struct TempDir {
  std::filesystem::path path;

  explicit TempDir(const std::string& prefix = "meshos-test") {
    const char* tmpdir = std::getenv("TMPDIR");  // tools/dev test marks the run's directory
    std::string tmpl = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/" + prefix + "-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// Writes a file whole (a fixture's input).
inline void writeFile(const std::filesystem::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

}  // namespace meshos::testing
