#include <cstring>

#include "tests/fuzz/fuzz_target.h"

namespace meshos::fuzz {

const std::vector<FuzzTarget>& allTargets() {
  static const std::vector<FuzzTarget> targets = {
      {"commit", &fuzzCommitOne, &commitSeedCorpus},
      {"gossip_packet", &fuzzGossipPacket, &gossipPacketSeeds},
      {"gossip_stream", &fuzzGossipStream, &gossipStreamSeeds},
      {"keyring", &fuzzKeyring, &keyringSeeds},
      {"control_frame", &fuzzControlFrame, &controlFrameSeeds},
      {"node_config", &fuzzNodeConfig, &nodeConfigSeeds},
      {"daemon_spec", &fuzzDaemonSpec, &daemonSpecSeeds},
      {"node_report", &fuzzNodeReport, &nodeReportSeeds},
      {"commit_sync", &fuzzCommitSync, &commitSyncSeeds},
      {"chain_record", &fuzzChainRecord, &chainRecordSeeds},
      {"instance_journal", &fuzzInstanceJournal, &instanceJournalSeeds},
      {"http_request", &fuzzHttpRequest, &httpRequestSeeds},
      {"dns_query", &fuzzDnsQuery, &dnsQuerySeeds},
      {"rollout_record", &fuzzRolloutRecord, &rolloutRecordSeeds},
  };
  return targets;
}

const FuzzTarget* findTarget(std::string_view name) {
  for (const auto& t : allTargets()) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

}  // namespace meshos::fuzz
