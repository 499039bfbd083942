// Node state and commit-sync targets: the two bodies peers send each other over gossip.
// decodeNodeReport() reads a peer's node state; the four commit-sync codecs read fetch
// requests and replies and pushes, and CommitSync serves a get and a push from the bytes
// against a log. A decoded value re-encodes to bytes that decode to the same encoding.
#include <string>

#include "agent/commits/commit_sync.h"
#include "agent/state/node_report.h"
#include "tests/fuzz/commit_world.h"
#include "tests/fuzz/fuzz_target.h"

namespace meshos::fuzz {

using namespace meshos::commits;

namespace {

constexpr size_t kMaxCommits = 64;

template <class T>
void checkStable(const Result<T>& decoded, Bytes (*encode)(const T&), Result<T> (*decode)(ByteView)) {
  if (!decoded) return;
  const Bytes once = encode(*decoded);
  auto again = decode(once);
  check(again.isOk() && encode(*again) == once);
}

Result<RangeReply> decodeReplyBounded(ByteView b) { return decodeRangeReply(b, kMaxCommits); }
Result<std::vector<Bytes>> decodePushBounded(ByteView b) { return decodePush(b, kMaxCommits); }

Head someHead(uint8_t fill) {
  Head h;
  h.seq = fill;
  h.hash.fill(fill);
  return h;
}

}  // namespace

int fuzzNodeReport(const uint8_t* data, size_t size) {
  auto report = state::decodeNodeReport(ByteView(data, size));
  checkStable(report, &state::encodeNodeReport, &state::decodeNodeReport);
  if (report) (void)state::nodeReportToJson(*report).dump();
  return 0;
}

int fuzzCommitSync(const uint8_t* data, size_t size) {
  const ByteView in(data, size);
  checkStable(decodeRangeRequest(in), &encodeRangeRequest, &decodeRangeRequest);
  auto reply = decodeRangeReply(in, kMaxCommits);
  if (reply) check(reply->commits.size() <= kMaxCommits);
  checkStable(reply, &encodeRangeReply, &decodeReplyBounded);
  auto push = decodePush(in, kMaxCommits);
  if (push) check(push->size() <= kMaxCommits);
  checkStable(push, &encodePush, &decodePushBounded);
  checkStable(decodePushReply(in), &encodePushReply, &decodePushReply);

  // Served as a peer's request: a bad one is an error, and a push never loses the log.
  CommitLog log = seededCommitLog();
  CommitSync sync(SyncOptions{}, Rng(1));
  if (auto served = sync.serveGet(in, log)) check(decodeRangeReply(*served, SyncOptions{}.max_range).isOk());
  LogOutput out;
  const Head before = log.head();
  if (auto pushed = sync.servePush("127.0.0.1:7946", in, log, out)) {
    check(decodePushReply(pushed->reply).isOk());
    check(log.head().seq >= before.seq);
  } else {
    check(log.head() == before);
  }
  return 0;
}

std::vector<Bytes> nodeReportSeeds() {
  state::NodeReport r;
  r.version = "0.1.0";
  r.labels = {{"zone", "a"}, {"rack", "r1"}};
  r.capabilities = {"arch:x86_64", "gpu"};
  r.cpu_millicores = 2000;
  r.memory_bytes = 1 << 30;
  r.maintenance = state::Maintenance::kDraining;
  r.maintenance_seq = 4;
  r.coordinate = state::Coordinate{{1.5, -2.0, 0.25}, 0.1, 0.0, 0.5};
  r.commit_seq = 9;
  r.commit_hash = Bytes(32, 0xab);
  r.daemons["web"] = state::DaemonReport{2, 1, 9};
  r.inventory.cpu_count = 2;
  r.inventory.arch = "x86_64";
  r.inventory.os = "linux";
  r.instances = 3;
  r.ready = 2;
  r.moves["web"] = "00000000000000b2";
  r.view_digest = 0x1234;
  r.storage_failing = true;
  std::vector<Bytes> out = {state::encodeNodeReport(r), state::encodeNodeReport(state::NodeReport{})};
  r.capabilities = {"z", "a"};  // unsorted: refused
  out.push_back(state::encodeNodeReport(r));
  r.capabilities = {};
  r.coordinate->height = -1;  // negative height: refused
  out.push_back(state::encodeNodeReport(r));
  out.push_back(Bytes{0, 0, 0, 0});
  return out;
}

std::vector<Bytes> commitSyncSeeds() {
  const Bytes commit = commitSeedCorpus().front();
  std::vector<Bytes> out = {
      encodeRangeRequest(CommitRange{1, 1}),
      encodeRangeRequest(CommitRange{5, 2}),
      encodeRangeReply(RangeReply{{commit}, someHead(1)}),
      encodeRangeReply(RangeReply{{}, Head{}}),
      encodePush({commit}),
      encodePush({commit, Bytes{1, 2, 3}}),
      encodePushReply(PushReply{1, someHead(2)}),
  };
  out.push_back(Bytes(out[2].begin(), out[2].begin() + static_cast<ptrdiff_t>(out[2].size() / 2)));
  return out;
}

}  // namespace meshos::fuzz
