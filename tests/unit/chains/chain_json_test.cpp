#include "chains/chain_json.h"

#include <doctest/doctest.h>

#include "chain_test_util.h"
#include "chains/chain_writer.h"

using namespace meshos;
using namespace meshos::chains;
using namespace meshos::chains::testing;

TEST_CASE("tail, show and verify render as JSON and text") {
  REQUIRE(initCrypto().isOk());
  TempDir dir;
  SigningKey key = SigningKey::generate();
  auto store = ChainStore::open(dir.path);
  REQUIRE(store.isOk());
  ManualClock clock;
  ManualPoster poster;
  ChainWriterOptions o;
  o.checkpoint_every = 4;
  auto w = ChainWriter::create(**store, key, clock, poster, o);
  REQUIRE(w.isOk());
  for (int i = 1; i <= 10; ++i) {
    REQUIRE((*w)->append(ChainName::kFailure, "probe.failed", "disk probe " + std::to_string(i))
                .isOk());
  }
  Bytes binary{0, 1, 2, 0xff};
  REQUIRE((*w)->append(ChainName::kFailure, "blob", ByteView(binary)).isOk());
  REQUIRE(pollUntil(poster, [&] { return (*w)->durableHead(ChainName::kFailure).seq == 11; }));

  auto summary = summaryToJson((*w)->summary(ChainName::kFailure));
  CHECK(summary["chain"] == "failure");
  CHECK(summary["length"] == 11);
  CHECK(summary["head"]["seq"] == 11);
  CHECK(summary["last_checkpoint_seq"] == 8);
  CHECK(summary["pending"] == 0);
  CHECK(summariesToJson(**w)["chains"].size() == 3);
  CHECK(summaryToText((*w)->summary(ChainName::kFailure)).find("length 11") != std::string::npos);

  auto tail = chainTailJson(**store, ChainName::kFailure, 0, 3);
  REQUIRE(tail.isOk());
  REQUIRE((*tail)["records"].size() == 3);
  CHECK((*tail)["records"][0]["seq"] == 9);
  CHECK((*tail)["records"][0]["payload_text"] == "disk probe 9");
  CHECK((*tail)["records"][2]["kind"] == "blob");
  CHECK_FALSE((*tail)["records"][2].contains("payload_text"));
  CHECK((*tail)["records"][2]["payload_b64"] == toBase64(binary));
  CHECK((*tail)["records"][2]["prev_hash"] == (*tail)["records"][1]["hash"]);
  auto from = chainTailJson(**store, ChainName::kFailure, 2, 2);
  REQUIRE(from.isOk());
  CHECK((*from)["records"][0]["seq"] == 2);
  auto text = chainTailText(**store, ChainName::kFailure, 1, 100);
  REQUIRE(text.isOk());
  CHECK(text->find("failure #10") != std::string::npos);

  auto show = chainShowJson(**store, ChainName::kFailure, std::nullopt);
  REQUIRE(show.isOk());
  CHECK((*show)["chain"]["length"] == 11);
  CHECK((*show)["chain"]["last_checkpoint"]["seq"] == 8);
  CHECK((*show)["chain"]["genesis"].is_null());
  auto one = chainShowJson(**store, ChainName::kFailure, 5);
  REQUIRE(one.isOk());
  CHECK((*one)["record"]["payload_text"] == "disk probe 5");
  CHECK(chainShowJson(**store, ChainName::kFailure, 99).status().code() == Code::kNotFound);
  CHECK(chainShowText(**store, ChainName::kFailure, std::nullopt)->find("11 records") !=
        std::string::npos);

  int progress_calls = 0;
  auto v = chainVerifyJson(**store, ChainName::kFailure, {}, key.public_key,
                           [&](const VerifyProgress&) { ++progress_calls; });
  CHECK(v["verify"]["ok"] == true);
  CHECK(v["verify"]["records"] == 11);
  CHECK(progress_calls >= 1);
  CHECK_FALSE(v["verify"].contains("problem"));
  rawDelete(**store, ChainName::kFailure, recordKey(3));
  auto bad = verifyChain(**store, ChainName::kFailure, {}, key.public_key);
  auto bj = verifyReportToJson(bad);
  CHECK(bj["ok"] == false);
  CHECK(bj["problem"] == "gap");
  CHECK(bj["bad_seq"] == 3);
  CHECK(verifyReportToText(bad).find("FAILED at seq 3: gap") != std::string::npos);
  CHECK(verifyProgressText(ChainName::kLog, VerifyProgress{5, 5, 10}).find("50.0%") !=
        std::string::npos);
}
