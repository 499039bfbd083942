// TomlTable: reads one TOML table strictly, for node.toml and daemon files alike. Each
// accessor marks its key as known and reads it if present (an absent key leaves the output
// as it was: the default); finish() then refuses any key nobody asked for. The first error
// wins and is kept in the Status the caller passed; later calls do nothing. Every message
// names the file, the line and the key: "<source>:<line>: <path><key>: <what>", where path
// is the table's place ("gossip.", "daemon 'web': health.liveness.").
// A value-less helper over a toml++ table the caller owns; one thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "agent/core/status.h"

namespace meshos::config {

struct Bounds {
  int64_t lo;
  int64_t hi;
};

// Enum names, both ways: {value, "name"} pairs.
template <class E, size_t N>
using NameTable = std::array<std::pair<E, std::string_view>, N>;

template <class E, size_t N>
std::string_view nameOf(const NameTable<E, N>& t, E e) {
  for (const auto& [v, n] : t)
    if (v == e) return n;
  return "?";
}

template <class E, size_t N>
std::optional<E> parseName(const NameTable<E, N>& t, std::string_view s) {
  for (const auto& [v, n] : t)
    if (n == s) return v;
  return std::nullopt;
}

template <class E, size_t N>
std::string choices(const NameTable<E, N>& t) {
  std::string out;
  for (const auto& [v, n] : t) out += (out.empty() ? "" : " | ") + std::string(n);
  return out;
}

// "must be between lo and hi, got v"
std::string boundsText(Bounds b, int64_t v);

class TomlTable {
 public:
  TomlTable(const toml::table& t, std::string_view source, std::string path, Status* err)
      : t_(t), source_(source), path_(std::move(path)), err_(err) {}

  bool failed() const { return !err_->isOk(); }
  const toml::table& raw() const { return t_; }
  // The first error only. `n` null: the table's own line.
  void fail(const toml::node* n, std::string_view key, const std::string& what);
  void failAt(const toml::source_region& where, std::string_view key, const std::string& what);
  // At the key's line (the table's when the key is absent).
  void failHere(std::string_view key, const std::string& what) { fail(t_.get(key), key, what); }

  // Marks the key known; the node or null.
  const toml::node* get(std::string_view key);

  void str(std::string_view key, std::string& out);
  void boolean(std::string_view key, bool& out);
  void integer(std::string_view key, int64_t& out, Bounds b);
  void optInteger(std::string_view key, std::optional<int64_t>& out, Bounds b);
  void real(std::string_view key, double& out, double lo, double hi);
  void strings(std::string_view key, std::vector<std::string>& out);
  // Each string with its node, for errors about one element ("seeds[2]").
  void stringNodes(std::string_view key, std::vector<std::pair<std::string, const toml::node*>>& out);
  void integers(std::string_view key, std::vector<int64_t>& out, Bounds b);
  template <class E, size_t N>
  void enumeration(std::string_view key, E& out, const NameTable<E, N>& names) {
    const toml::node* n = get(key);
    if (n == nullptr || failed()) return;
    if (!n->is_string()) return fail(n, key, "expected one of " + choices(names));
    auto v = parseName(names, n->as_string()->get());
    if (!v) return fail(n, key, "'" + std::string(n->as_string()->get()) + "' is not one of " + choices(names));
    out = *v;
  }
  // A sub-table; null if absent (or of another type, which fails).
  const toml::table* table(std::string_view key);
  std::string childPath(std::string_view key) const { return path_ + std::string(key) + "."; }
  std::string_view source() const { return source_; }

  // Refuses the first key nobody asked for, naming the known ones.
  void finish();

 private:
  const toml::table& t_;
  std::string_view source_;
  std::string path_;
  Status* err_;
  std::set<std::string> known_;
  std::vector<std::string> known_order_;
};

}  // namespace meshos::config
