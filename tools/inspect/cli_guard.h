// What the meshos command-line tools do with an answer they did not expect: never abort.
// A snapshot read during an agent's first ticks or its shutdown may lack sections or hold
// nulls, so renderers read fields through these accessors (a missing or mistyped field is
// a default, never an exception); and main() runs inside runGuarded(), so anything left
// over is one clear line and exit status 70 (EX_SOFTWARE), not `terminate called`.
#pragma once

#include <cstdint>
#include <exception>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

namespace meshos::tools {

inline bool flagAt(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

inline int64_t intAt(const nlohmann::json& j, const char* key, int64_t fallback = 0) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : fallback;
}

inline std::string textAt(const nlohmann::json& j, const char* key, const std::string& fallback = "-") {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

template <class Main>
int runGuarded(const char* program, Main&& main_body) {
  try {
    return main_body();
  } catch (const std::exception& e) {
    std::cerr << program << ": internal error: " << e.what() << " (a bug: please report it)\n";
  } catch (...) {
    std::cerr << program << ": internal error: unknown exception (a bug: please report it)\n";
  }
  return 70;
}

}  // namespace meshos::tools
