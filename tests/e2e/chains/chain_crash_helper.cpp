// chain_crash_helper: a small real program for the chains crash test.
//
//   chain_crash_helper append <data_dir> [<ledger>]
//                                          appends to the audit and log chains as fast as the
//                                          queue allows on a libuv loop; prints
//                                          "ack <chain> <seq>" for each acknowledged range
//                                          (flushed), until killed; with a ledger, notes
//                                          each WAL sync in it (sync_ledger_fs.h)
//   chain_crash_helper check <data_dir>    opens the store read-only and prints one JSON
//                                          object {"<chain>": {"head": N, "verify": {...}}};
//                                          exit status 0 when every chain verifies
//
// The node key is <data_dir>/node.key (created on first use).
#include <uv.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "agent/core/clock.h"
#include "agent/core/crypto.h"
#include "agent/net/uv_loop.h"
#include "chains/chain_json.h"
#include "chains/chain_store.h"
#include "chains/chain_writer.h"
#include "sync_ledger_fs.h"

using namespace meshos;
using namespace meshos::chains;

namespace {

Result<SigningKey> loadKey(const std::filesystem::path& dir) {
  auto path = dir / "node.key";
  if (std::filesystem::exists(path)) return readKeyFile(path);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  SigningKey key = SigningKey::generate();
  MESHOS_RETURN_IF_ERROR(writeKeyFile(path, key));
  return key;
}

int runAppend(const std::filesystem::path& dir, const std::string& ledger) {
  auto key = loadKey(dir);
  if (!key) {
    std::cerr << key.status().toString() << "\n";
    return 1;
  }
  ChainStoreOptions so;
  std::unique_ptr<rocksdb::Env> env;
  if (!ledger.empty()) {
    auto fs = std::make_shared<testing::SyncLedgerFs>(ledger);
    if (!fs->ok()) {
      std::cerr << "cannot open the ledger " << ledger << "\n";
      return 1;
    }
    env = rocksdb::NewCompositeEnv(fs);
    so.env = env.get();
  }
  auto store = ChainStore::open(dir, so);
  if (!store) {
    std::cerr << store.status().toString() << "\n";
    return 1;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  SystemClock clock;
  UvPoster poster(&loop);
  ChainWriterOptions opts;
  opts.queue_capacity = 20000;
  opts.checkpoint_every = 1000;
  std::unique_ptr<ChainWriter> writer;
  std::string payload(200, 'x');
  uint64_t n = 0;
  auto pump = [&] {
    while (writer->pendingTotal() < opts.queue_capacity) {
      ChainName chain = (n % 3 == 0) ? ChainName::kLog : ChainName::kAudit;
      std::string body = "record " + std::to_string(n++) + " " + payload;
      auto t = writer->append(chain, "crash.test", body.substr(0, 200));
      if (!t) break;
    }
  };
  ChainWriter::Callbacks cbs;
  cbs.on_acked = [&](const AckEvent& e) {
    std::printf("ack %s %llu\n", std::string(chainNameString(e.chain)).c_str(),
                static_cast<unsigned long long>(e.last_seq));
    std::fflush(stdout);
    pump();
  };
  cbs.on_write_failed = [](const WriteFailure& f) {
    std::fprintf(stderr, "write failed: %s\n", f.status.toString().c_str());
  };
  auto w = ChainWriter::create(**store, *key, clock, poster, opts, cbs);
  if (!w) {
    std::cerr << w.status().toString() << "\n";
    return 1;
  }
  writer = std::move(*w);
  std::printf("ready\n");
  std::fflush(stdout);
  pump();
  uv_run(&loop, UV_RUN_DEFAULT);  // runs until killed
  return 0;
}

int runCheck(const std::filesystem::path& dir) {
  auto key = loadKey(dir);
  if (!key) {
    std::cerr << key.status().toString() << "\n";
    return 1;
  }
  auto store = ChainStore::openReadOnly(dir);
  if (!store) {
    std::cerr << store.status().toString() << "\n";
    return 1;
  }
  nlohmann::json out;
  bool ok = true;
  for (ChainName c : kAllChains) {
    auto head = (*store)->head(c);
    if (!head) {
      std::cerr << head.status().toString() << "\n";
      return 1;
    }
    auto rep = verifyChain(**store, c, {}, key->public_key);
    ok = ok && rep.ok;
    out[std::string(chainNameString(c))] = {{"head", head->seq},
                                            {"verify", verifyReportToJson(rep)}};
  }
  std::cout << out.dump() << "\n";
  return ok ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4 || !initCrypto().isOk()) {
    std::cerr << "usage: chain_crash_helper append <data_dir> [<ledger>] | check <data_dir>\n";
    return 2;
  }
  std::string mode = argv[1];
  if (mode == "append") return runAppend(argv[2], argc == 4 ? argv[3] : "");
  if (mode == "check") return runCheck(argv[2]);
  std::cerr << "unknown mode " << mode << "\n";
  return 2;
}
