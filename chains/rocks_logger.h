// RocksDB's informational log, sent to the agent's log (spdlog) instead of a LOG file in
// the database directory. Two reasons: a full disk made RocksDB 7.8's LOG file writer fail,
// and its next message then aborted the process inside RocksDB (an assertion on a writer
// that had failed before); and the agent's log is where an operator looks anyway.
// RocksDB's levels map to spdlog's: fatal to critical, error to warn, the rest to debug.
// One level down because the chain store and writer report every failure themselves, with
// context, and a write retried through a long outage would repeat RocksDB's own lines.
#pragma once

#include <memory>

namespace rocksdb {
class Logger;
}

namespace meshos::chains {

std::shared_ptr<rocksdb::Logger> makeRocksLogger();

}  // namespace meshos::chains
