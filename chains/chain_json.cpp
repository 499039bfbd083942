#include "chains/chain_json.h"

#include <fmt/format.h>

namespace meshos::chains {

namespace {

using nlohmann::json;

std::string hex(const Hash256& h) { return toHex(ByteView(h)); }

bool printableText(ByteView b) {
  // Printable ASCII plus valid UTF-8 multibyte sequences, tabs and newlines.
  size_t i = 0;
  while (i < b.size()) {
    uint8_t c = b[i];
    if (c < 0x80) {
      if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') return false;
      if (c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t n = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 0;
    if (n == 0 || i + n >= b.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((b[i + k] & 0xc0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

std::string timeText(int64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms % 1000));
}

}  // namespace

json recordToJson(ChainName chain, const ChainRecord& r) {
  json j = {{"chain", chainNameString(chain)},
            {"seq", r.seq},
            {"time_ms", r.time_ms},
            {"kind", r.kind},
            {"payload_b64", toBase64(r.payload)},
            {"payload_bytes", r.payload.size()},
            {"prev_hash", hex(r.prev_hash)},
            {"hash", hex(r.hash)}};
  if (printableText(r.payload)) j["payload_text"] = std::string(asChars(r.payload));
  return j;
}

json headToJson(const ChainHead& h) { return {{"seq", h.seq}, {"hash", hex(h.hash)}}; }

json checkpointToJson(const Checkpoint& cp) {
  return {{"chain", chainNameString(cp.chain)},     {"seq", cp.seq},
          {"head_hash", hex(cp.head_hash)},         {"time_ms", cp.time_ms},
          {"signer", publicKeyToBase64(cp.signer)}, {"signature", toBase64(cp.signature)}};
}

json verifyReportToJson(const VerifyReport& r) {
  json j = {{"chain", chainNameString(r.chain)},
            {"ok", r.ok},
            {"records", r.records},
            {"checkpoints", r.checkpoints},
            {"first_seq", r.first_seq},
            {"last_seq", r.last_seq},
            {"head_seq", r.head_seq},
            {"genesis_seq", r.genesis_seq},
            {"last_good_checkpoint_seq", r.last_good_checkpoint_seq},
            {"partial", r.partial},
            {"signer_authenticated", r.signer_authenticated}};
  if (!r.ok) {
    j["problem"] = verifyProblemName(r.problem);
    j["bad_seq"] = r.bad_seq;
    j["detail"] = r.detail;
  }
  return j;
}

json summaryToJson(const ChainSummary& s) {
  return {{"chain", chainNameString(s.chain)},
          {"first_seq", s.first_seq},
          {"length", s.length},
          {"head", headToJson(s.head)},
          {"appended_head", headToJson(s.appended_head)},
          {"last_checkpoint_seq", s.last_checkpoint_seq},
          {"appended", s.appended},
          {"acked", s.acked},
          {"pending", s.pending},
          {"dropped", s.dropped},
          {"failed_writes", s.failed_writes},
          {"retries", s.retries},
          {"bytes", s.bytes},
          {"checkpoints", s.checkpoints},
          {"pruned", s.pruned}};
}

json summariesToJson(const ChainWriter& writer) {
  json arr = json::array();
  for (ChainName c : kAllChains) arr.push_back(summaryToJson(writer.summary(c)));
  return {{"chains", arr}};
}

std::string recordToText(ChainName chain, const ChainRecord& r) {
  std::string body =
      printableText(r.payload) ? std::string(asChars(r.payload)) : "base64:" + toBase64(r.payload);
  return fmt::format("{} #{} {} {} {} [{}…]", chainNameString(chain), r.seq, timeText(r.time_ms),
                     r.kind, body, toHex(ByteView(r.hash.data(), 8)));
}

std::string verifyReportToText(const VerifyReport& r) {
  std::string scope = r.partial ? " (range)" : "";
  std::string key =
      r.signer_authenticated
          ? ""
          : " (signatures checked against the stored signer key, not a given node key)";
  if (r.ok) {
    std::string span = r.records == 0 ? std::string("no records")
                                      : fmt::format("seq {}..{}", r.first_seq, r.last_seq);
    std::string pruned =
        r.genesis_seq != 0
            ? fmt::format(", pruned up to {} (genesis checkpoint holds)", r.genesis_seq)
            : "";
    return fmt::format("chain {}: OK{}: {} records ({}), {} checkpoints{}{}",
                       chainNameString(r.chain), scope, r.records, span, r.checkpoints, pruned,
                       key);
  }
  return fmt::format(
      "chain {}: FAILED{} at seq {}: {}: {} ({} records and {} checkpoints held before it){}",
      chainNameString(r.chain), scope, r.bad_seq, verifyProblemName(r.problem), r.detail, r.records,
      r.checkpoints, key);
}

std::string summaryToText(const ChainSummary& s) {
  return fmt::format(
      "{:<8} length {} (seq {}..{}) head {}… checkpoint {} pending {} dropped {} failed writes {} "
      "retries {}",
      chainNameString(s.chain), s.length, s.first_seq, s.head.seq,
      toHex(ByteView(s.head.hash.data(), 8)), s.last_checkpoint_seq, s.pending, s.dropped,
      s.failed_writes, s.retries);
}

std::string verifyProgressText(ChainName chain, const VerifyProgress& p) {
  double pct = p.last_seq == 0
                   ? 100.0
                   : 100.0 * static_cast<double>(p.current_seq) / static_cast<double>(p.last_seq);
  return fmt::format("verifying {}: {} records checked, at seq {} of {} ({:.1f}%)",
                     chainNameString(chain), p.records_checked, p.current_seq, p.last_seq, pct);
}

Result<json> chainTailJson(const ChainStore& store, ChainName chain, uint64_t from, size_t count) {
  auto records = from == 0 ? store.last(chain, count) : store.tail(chain, from, count);
  if (!records) return records.status();
  json arr = json::array();
  for (const auto& r : *records) arr.push_back(recordToJson(chain, r));
  return json{{"chain", chainNameString(chain)}, {"records", arr}};
}

Result<std::string> chainTailText(const ChainStore& store, ChainName chain, uint64_t from,
                                  size_t count) {
  auto records = from == 0 ? store.last(chain, count) : store.tail(chain, from, count);
  if (!records) return records.status();
  std::string out;
  for (const auto& r : *records) out += recordToText(chain, r) + "\n";
  if (records->empty()) out = fmt::format("chain {}: no records\n", chainNameString(chain));
  return out;
}

Result<json> chainShowJson(const ChainStore& store, ChainName chain, std::optional<uint64_t> seq) {
  if (seq) {
    auto r = store.get(chain, *seq);
    if (!r) return r.status();
    return json{{"record", recordToJson(chain, *r)}};
  }
  auto head = store.head(chain);
  if (!head) return head.status();
  auto first = store.firstSeq(chain);
  if (!first) return first.status();
  auto cp = store.lastCheckpoint(chain);
  if (!cp) return cp.status();
  auto genesis = store.genesis(chain);
  if (!genesis) return genesis.status();
  json j = {{"name", chainNameString(chain)},
            {"first_seq", *first},
            {"length", *first == 0 ? 0 : head->seq - *first + 1},
            {"head", headToJson(*head)},
            {"last_checkpoint", cp->has_value() ? checkpointToJson(**cp) : json(nullptr)},
            {"genesis", genesis->has_value() ? checkpointToJson(**genesis) : json(nullptr)}};
  return json{{"chain", j}};
}

Result<std::string> chainShowText(const ChainStore& store, ChainName chain,
                                  std::optional<uint64_t> seq) {
  if (seq) {
    auto r = store.get(chain, *seq);
    if (!r) return r.status();
    return fmt::format(
        "{}\n  time       {}\n  kind       {}\n  payload    {} bytes\n"
        "  prev_hash  {}\n  hash       {}\n",
        recordToText(chain, *r), timeText(r->time_ms), r->kind, r->payload.size(),
        hex(r->prev_hash), hex(r->hash));
  }
  auto j = chainShowJson(store, chain, std::nullopt);
  if (!j) return j.status();
  const json& c = (*j)["chain"];
  std::string out = fmt::format("chain {}: {} records (seq {}..{})\n  head             {}\n",
                                chainNameString(chain), c["length"].get<uint64_t>(),
                                c["first_seq"].get<uint64_t>(), c["head"]["seq"].get<uint64_t>(),
                                c["head"]["hash"].get<std::string>());
  if (!c["last_checkpoint"].is_null()) {
    out += fmt::format("  last checkpoint  seq {} signed by {}\n",
                       c["last_checkpoint"]["seq"].get<uint64_t>(),
                       c["last_checkpoint"]["signer"].get<std::string>());
  }
  if (!c["genesis"].is_null()) {
    out += fmt::format("  genesis          seq {} (older records pruned)\n",
                       c["genesis"]["seq"].get<uint64_t>());
  }
  return out;
}

json chainVerifyJson(const ChainStore& store, ChainName chain, VerifyRange range,
                     std::optional<PublicKey> public_key, const VerifyProgressFn& progress) {
  return {{"verify", verifyReportToJson(verifyChain(store, chain, range, public_key, progress))}};
}

}  // namespace meshos::chains
