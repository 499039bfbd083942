// Helpers the spec tests share: the error a daemons file is refused with.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "agent/spec/daemon_spec.h"

namespace meshos::spec::testing {

inline std::string errorOf(const std::string& text) {
  auto r = parseDaemonsToml(text, "local.toml");
  REQUIRE(!r);
  return r.status().message();
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace meshos::spec::testing
