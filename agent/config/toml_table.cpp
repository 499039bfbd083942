#include "agent/config/toml_table.h"

namespace meshos::config {

std::string boundsText(Bounds b, int64_t v) {
  return "must be between " + std::to_string(b.lo) + " and " + std::to_string(b.hi) + ", got " + std::to_string(v);
}

void TomlTable::failAt(const toml::source_region& where, std::string_view key, const std::string& what) {
  if (failed()) return;
  std::string m(source_);
  if (where.begin.line > 0) m += ":" + std::to_string(where.begin.line);
  *err_ = Status::invalid(m + ": " + path_ + std::string(key) + ": " + what);
}

void TomlTable::fail(const toml::node* n, std::string_view key, const std::string& what) {
  failAt(n != nullptr ? n->source() : t_.source(), key, what);
}

const toml::node* TomlTable::get(std::string_view key) {
  if (known_.insert(std::string(key)).second) known_order_.emplace_back(key);
  return t_.get(key);
}

void TomlTable::str(std::string_view key, std::string& out) {
  const toml::node* n = get(key);
  if (n == nullptr || failed()) return;
  if (!n->is_string()) return fail(n, key, "expected a string");
  out = n->as_string()->get();
}

void TomlTable::boolean(std::string_view key, bool& out) {
  const toml::node* n = get(key);
  if (n == nullptr || failed()) return;
  if (!n->is_boolean()) return fail(n, key, "expected true or false");
  out = n->as_boolean()->get();
}

void TomlTable::integer(std::string_view key, int64_t& out, Bounds b) {
  const toml::node* n = get(key);
  if (n == nullptr || failed()) return;
  if (!n->is_integer()) return fail(n, key, "expected an integer");
  const int64_t v = n->as_integer()->get();
  if (v < b.lo || v > b.hi) return fail(n, key, boundsText(b, v));
  out = v;
}

void TomlTable::optInteger(std::string_view key, std::optional<int64_t>& out, Bounds b) {
  if (t_.get(key) == nullptr) {
    get(key);
    return;
  }
  int64_t v = 0;
  integer(key, v, b);
  if (!failed()) out = v;
}

void TomlTable::real(std::string_view key, double& out, double lo, double hi) {
  const toml::node* n = get(key);
  if (n == nullptr || failed()) return;
  double v = 0;
  if (n->is_floating_point()) {
    v = n->as_floating_point()->get();
  } else if (n->is_integer()) {
    v = static_cast<double>(n->as_integer()->get());
  } else {
    return fail(n, key, "expected a number");
  }
  if (!(v >= lo && v <= hi)) {
    return fail(n, key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + std::to_string(v));
  }
  out = v;
}

void TomlTable::stringNodes(std::string_view key, std::vector<std::pair<std::string, const toml::node*>>& out) {
  const toml::node* n = get(key);
  if (n == nullptr || failed()) return;
  if (!n->is_array()) return fail(n, key, "expected an array of strings");
  std::vector<std::pair<std::string, const toml::node*>> v;
  size_t i = 0;
  for (const toml::node& e : *n->as_array()) {
    if (!e.is_string()) return fail(&e, std::string(key) + "[" + std::to_string(i) + "]", "expected a string");
    v.emplace_back(e.as_string()->get(), &e);
    ++i;
  }
  out = std::move(v);
}

void TomlTable::strings(std::string_view key, std::vector<std::string>& out) {
  std::vector<std::pair<std::string, const toml::node*>> nodes;
  stringNodes(key, nodes);
  if (failed() || t_.get(key) == nullptr) return;
  out.clear();
  for (auto& [s, n] : nodes) out.push_back(std::move(s));
}

void TomlTable::integers(std::string_view key, std::vector<int64_t>& out, Bounds b) {
  const toml::node* n = get(key);
  if (n == nullptr || failed()) return;
  if (!n->is_array()) return fail(n, key, "expected an array of integers");
  std::vector<int64_t> v;
  for (const toml::node& e : *n->as_array()) {
    if (!e.is_integer()) return fail(&e, key, "expected an array of integers");
    const int64_t x = e.as_integer()->get();
    if (x < b.lo || x > b.hi) return fail(&e, key, boundsText(b, x));
    v.push_back(x);
  }
  out = std::move(v);
}

const toml::table* TomlTable::table(std::string_view key) {
  const toml::node* n = get(key);
  if (n == nullptr || failed()) return nullptr;
  if (!n->is_table()) {
    fail(n, key, "expected a table");
    return nullptr;
  }
  return n->as_table();
}

void TomlTable::finish() {
  if (failed()) return;
  for (const auto& [k, v] : t_) {
    if (known_.count(std::string(k.str())) != 0) continue;
    std::string list;
    for (const auto& a : known_order_) list += (list.empty() ? "" : ", ") + a;
    failAt(k.source(), k.str(), "unknown key (known keys here: " + list + ")");
    return;
  }
}

}  // namespace meshos::config
