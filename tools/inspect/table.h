// Plain-text tables for the human output of meshos-inspect and meshos-admin.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace meshos::tools {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// "3d 4h", "12m 5s", "850ms".
std::string humanDuration(int64_t ms);

}  // namespace meshos::tools
