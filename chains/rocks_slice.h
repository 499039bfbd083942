// Between our string views and RocksDB's Slice, both ways: the chain files share these.
#pragma once

#include <rocksdb/slice.h>

#include <string_view>

namespace meshos::chains {

inline rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

}  // namespace meshos::chains
