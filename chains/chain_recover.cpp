#include "chains/chain_recover.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent/core/bytes.h"
#include "agent/core/timers.h"
#include "chains/chain_store.h"
#include "chains/chain_verify.h"
#include "chains/chain_writer.h"

namespace meshos::chains {

namespace fs = std::filesystem;

bool looksDamaged(const Status& status) {
  if (status.code() == Code::kCorruption) return true;
  const std::string& m = status.message();
  if (m.find("Corruption:") != std::string::npos) return true;  // RocksDB's, inside a wider error
  return m.find("No such file or directory") != std::string::npos && m.find("LOCK") == std::string::npos;
}

std::string recoveryHint(const fs::path& data_dir) {
  return "to keep the damaged store aside and start new chains, stop the agent and run: meshos-inspect recover "
         "--data-dir " + data_dir.string() + " --reason '<why>' (docs/CHAINS.md, \"A damaged database\")";
}

namespace {

// The agent holds a POSIX lock on db/LOCK while it runs.
Status checkNotRunning(const fs::path& db) {
  const std::string lock = (db / "LOCK").string();
  int fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::ok();  // no lock file: nobody holds it
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  const bool held = ::fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
  ::close(fd);
  if (held) return Status::unavailable(lock + " is held by pid " + std::to_string(fl.l_pid) + ": stop the agent first");
  return Status::ok();
}

// The last record of the chain that verifies from its start.
RecoveredHead lastVerified(const ChainStore& store, ChainName chain, const PublicKey& key) {
  RecoveredHead h;
  h.chain = chain;
  VerifyReport rep = verifyChain(store, chain, {}, key);
  h.whole = rep.ok;
  h.detail = rep.ok ? "verified to its head" : rep.detail;
  uint64_t last = rep.ok ? rep.last_seq : (rep.bad_seq > 0 ? rep.bad_seq - 1 : 0);
  if (last == 0) return h;
  if (auto rec = store.get(chain, last); rec) {
    h.seq = last;
    h.hash = rec->hash;
  } else if (auto g = store.genesis(chain); g && g->has_value() && (*g)->seq == last) {
    h.seq = last;  // the first stored record was bad: the head the pruning left
    h.hash = (*g)->head_hash;
  }
  return h;
}

// Repairs a copy of the damaged store and reads what it can from it.
void salvage(const fs::path& damaged, const fs::path& copy_root, const PublicKey& key, ChainStore& fresh,
             Recovery& out) {
  std::error_code ec;
  fs::create_directories(copy_root, ec);
  if (!ec) fs::copy(damaged, copy_root / "db", fs::copy_options::recursive, ec);
  if (ec) {
    out.salvage_error = "copying the damaged store: " + ec.message();
    return;
  }
  if (Status s = ChainStore::repair(copy_root); !s) {
    out.salvage_error = s.toString();
    return;
  }
  // Opened for writing (it is a copy): a column family whose every file was lost comes
  // back empty instead of failing the open.
  auto store = ChainStore::open(copy_root);
  if (!store) {
    out.salvage_error = store.status().toString();
    return;
  }
  for (ChainName c : kAllChains) out.heads[chainIndex(c)] = lastVerified(**store, c, key);
  Status copied = (*store)->scanState("", [&](std::string_view k, std::string_view v) {
    if (!fresh.putState(k, v)) return false;
    ++out.state_keys;
    return true;
  });
  if (!copied) out.salvage_error = "copying the state area: " + copied.toString();
}

}  // namespace

Result<Recovery> recoverStore(const fs::path& data_dir, const SigningKey& key, const Clock& clock,
                              const std::string& reason) {
  if (reason.empty()) return Status::invalid("a recovery needs a reason (--reason)");
  const fs::path db = data_dir / "db";
  std::error_code ec;
  if (!fs::exists(db, ec)) return Status::notFound("no chain database at " + db.string());
  MESHOS_RETURN_IF_ERROR(checkNotRunning(db));
  const std::string stamp = std::to_string(clock.wallMs());
  Recovery out;
  out.damaged = data_dir / ("db.damaged-" + stamp);
  fs::rename(db, out.damaged, ec);
  if (ec) return Status::io("moving " + db.string() + " aside: " + ec.message());
  for (ChainName c : kAllChains) out.heads[chainIndex(c)].chain = c;

  auto fresh = ChainStore::open(data_dir);
  if (!fresh) return fresh.status().withContext("creating the new chain database");
  const fs::path copy_root = data_dir / ("salvage-" + stamp);
  salvage(out.damaged, copy_root, key.public_key, **fresh, out);
  fs::remove_all(copy_root, ec);

  ManualPoster poster;  // the acks are not needed: close() returns once all is durable
  auto writer = ChainWriter::create(**fresh, key, clock, poster, ChainWriterOptions{});
  if (!writer) return writer.status().withContext("starting the chain writer");
  for (const RecoveredHead& h : out.heads) {
    nlohmann::json payload = {{"previous_seq", h.seq},        {"previous_hash", toHex(h.hash)},
                              {"previous_whole", h.whole},    {"detail", h.detail},
                              {"damaged_store", out.damaged.string()}, {"reason", reason}};
    if (!out.salvage_error.empty()) payload["salvage_error"] = out.salvage_error;
    auto t = (*writer)->append(h.chain, "chain.recovered", payload.dump());
    if (!t) return t.status().withContext("recording the recovery");
  }
  MESHOS_RETURN_IF_ERROR((*writer)->close(10'000));
  return out;
}

}  // namespace meshos::chains
