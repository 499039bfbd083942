#include "agent/state/metrics.h"

#include <charconv>
#include <cmath>
#include <map>
#include <sstream>

namespace meshos::state {

namespace {

using T = MetricType;
constexpr T C = T::kCounter;
constexpr T G = T::kGauge;

// Counters count since the agent started; gauges are the value now.
const std::vector<MetricFamily> kCatalogue = {
    // chains (one sample per chain: audit, log, failure)
    {"meshos_chain_records_appended_total", C, "Records handed to the chain writer.", "chains.*.appended", "chain"},
    {"meshos_chain_records_acked_total", C, "Records made durable (synced) on disk.", "chains.*.acked", "chain"},
    {"meshos_chain_records_dropped_total", C, "Records refused by the writer (queue full or closed).", "chains.*.dropped", "chain"},
    {"meshos_chain_records_pending", G, "Records appended but not yet durable.", "chains.*.pending", "chain"},
    {"meshos_chain_records_pruned_total", C, "Records removed by retention.", "chains.*.pruned", "chain"},
    {"meshos_chain_records", G, "Records the chain holds now.", "chains.*.length", "chain"},
    {"meshos_chain_stored_bytes", G, "Bytes of the records the chain holds.", "chains.*.bytes", "chain"},
    {"meshos_chain_head_sequence", G, "Sequence number of the last durable record.", "chains.*.head.seq", "chain"},
    {"meshos_chain_appended_head_sequence", G, "Sequence number of the last appended record.", "chains.*.appended_head.seq", "chain"},
    {"meshos_chain_first_sequence", G, "Sequence number of the oldest record kept.", "chains.*.first_seq", "chain"},
    {"meshos_chain_checkpoints_total", C, "Signed checkpoints written.", "chains.*.checkpoints", "chain"},
    {"meshos_chain_last_checkpoint_sequence", G, "Sequence number the last checkpoint covers.", "chains.*.last_checkpoint_seq", "chain"},
    {"meshos_chain_failed_writes_total", C, "Batch writes of this chain that failed.", "chains.*.failed_writes", "chain"},
    {"meshos_chain_write_retries_total", C, "Batch writes retried after a failure.", "chains.*.retries", "chain"},
    {"meshos_chain_write_failures_total", C, "Failed chain database writes, all chains.", "chains.write_failures"},
    // storage
    {"meshos_storage_failing", G, "1 while the database refuses writes (disk full, I/O error): the node runs degraded.", "storage.failing"},
    {"meshos_storage_write_failures_total", C, "Database writes that failed.", "storage.write_failures"},
    {"meshos_storage_audit_refusals_total", C, "Requests refused because the audit chain could not record them.", "storage.audit_refusals"},
    {"meshos_storage_unstored_commits", G, "Accepted commits waiting for the database to take them.", "storage.unstored_commits"},
    // commits
    {"meshos_commit_head_sequence", G, "Sequence number of the commit log's head.", "commits.head.seq"},
    {"meshos_commit_trust_threshold", G, "Admin signatures a commit needs (M of M-of-N).", "commits.trust.threshold"},
    {"meshos_commits_accepted_total", C, "Commits accepted into the log.", "commits.counters.accepted"},
    {"meshos_commits_duplicate_total", C, "Commits received again.", "commits.counters.duplicates"},
    {"meshos_commits_rejected_total", C, "Commits refused (signature, trust, format).", "commits.counters.rejected"},
    {"meshos_commits_superseded_total", C, "Commits that lost to another at the same sequence.", "commits.counters.superseded"},
    {"meshos_commits_pending_evicted_total", C, "Out-of-order commits evicted while waiting for their parent.", "commits.counters.pending_evicted"},
    {"meshos_commit_forks_won_total", C, "Forks resolved in favour of a received branch.", "commits.counters.forks_won"},
    {"meshos_commit_refolds_total", C, "Times the desired state was folded again from the log.", "commits.counters.refolds"},
    {"meshos_commit_sync_peers", G, "Peers commit sync talks to.", "commits.sync.peers"},
    {"meshos_commit_sync_pushes_sent_total", C, "Commit pushes sent.", "commits.sync.pushes_sent"},
    {"meshos_commit_sync_pushes_ok_total", C, "Commit pushes answered.", "commits.sync.pushes_ok"},
    {"meshos_commit_sync_push_failures_total", C, "Commit pushes that failed.", "commits.sync.push_failures"},
    {"meshos_commit_sync_push_errors_total", C, "Commit pushes answered with an error.", "commits.sync.push_errors"},
    {"meshos_commit_sync_pushes_dropped_total", C, "Commit pushes dropped (queue full).", "commits.sync.pushes_dropped"},
    {"meshos_commit_sync_pushes_in_flight", G, "Commit pushes awaiting an answer.", "commits.sync.pushes_in_flight"},
    {"meshos_commit_sync_push_queue", G, "Commit pushes waiting to be sent.", "commits.sync.push_queue"},
    {"meshos_commit_sync_pushes_received_total", C, "Commit pushes received.", "commits.sync.pushes_received"},
    {"meshos_commit_sync_pushed_commits_accepted_total", C, "Pushed commits accepted.", "commits.sync.pushed_commits_accepted"},
    {"meshos_commit_sync_fetches_sent_total", C, "Commit fetches sent.", "commits.sync.fetches_sent"},
    {"meshos_commit_sync_fetches_ok_total", C, "Commit fetches answered.", "commits.sync.fetches_ok"},
    {"meshos_commit_sync_fetch_failures_total", C, "Commit fetches that failed.", "commits.sync.fetch_failures"},
    {"meshos_commit_sync_fetches_useless_total", C, "Commit fetches that brought nothing new.", "commits.sync.fetches_useless"},
    {"meshos_commit_sync_fetches_in_flight", G, "Commit fetches awaiting an answer.", "commits.sync.fetches_in_flight"},
    {"meshos_commit_sync_refetches_total", C, "Commit fetches repeated.", "commits.sync.refetches"},
    {"meshos_commit_sync_fetched_commits_total", C, "Commits received by fetches.", "commits.sync.fetched_commits"},
    {"meshos_commit_sync_fetched_commits_accepted_total", C, "Fetched commits accepted.", "commits.sync.fetched_commits_accepted"},
    {"meshos_commit_sync_gets_served_total", C, "Commit fetches from peers served.", "commits.sync.gets_served"},
    {"meshos_commit_sync_get_errors_total", C, "Commit fetches from peers refused.", "commits.sync.get_errors"},
    {"meshos_commit_sync_commits_served_total", C, "Commits sent to peers.", "commits.sync.commits_served"},
    {"meshos_stream_requests_sent_total", C, "Request-reply exchanges opened on gossip streams.", "commits.sync.channels.requests_out"},
    {"meshos_stream_requests_received_total", C, "Request-reply exchanges received on gossip streams.", "commits.sync.channels.requests_in"},
    {"meshos_stream_replies_ok_total", C, "Stream exchanges answered.", "commits.sync.channels.replies_ok"},
    {"meshos_stream_failures_total", C, "Stream exchanges that failed.", "commits.sync.channels.failures"},
    {"meshos_stream_rejected_total", C, "Stream exchanges refused.", "commits.sync.channels.rejected"},
    {"meshos_stream_oversized_total", C, "Stream messages over the size limit.", "commits.sync.channels.oversized"},
    {"meshos_stream_unknown_channel_total", C, "Stream messages for a channel nobody serves.", "commits.sync.channels.unknown_channel"},
    {"meshos_stream_handler_errors_total", C, "Stream requests whose handler failed.", "commits.sync.channels.handler_errors"},
    {"meshos_stream_requests_in_flight", G, "Stream exchanges awaiting an answer.", "commits.sync.channels.in_flight"},
    // gossip
    {"meshos_gossip_probes_total", C, "Failure-detector probes sent.", "gossip.probes"},
    {"meshos_gossip_probe_failures_total", C, "Probes that got no ack, direct or indirect.", "gossip.probe_failures"},
    {"meshos_gossip_suspicions_total", C, "Members this node suspected.", "gossip.suspicions"},
    {"meshos_gossip_refutations_total", C, "Suspicions of this node it refuted.", "gossip.refutations"},
    {"meshos_gossip_false_suspicions_refuted_total", C, "Suspicions of others that their refutation ended.", "gossip.false_suspicions_refuted"},
    {"meshos_gossip_members_declared_dead_total", C, "Members this node declared dead.", "gossip.dead_declared"},
    {"meshos_gossip_push_pulls_total", C, "Full state exchanges (push-pull) run.", "gossip.push_pulls"},
    {"meshos_gossip_name_conflicts_total", C, "Members claiming a name another holds.", "gossip.name_conflicts"},
    {"meshos_gossip_incarnation", G, "This node's incarnation number.", "gossip.incarnation"},
    {"meshos_gossip_local_health_score", G, "Lifeguard local health: 0 is healthy; higher slows probes.", "gossip.local_health"},
    {"meshos_gossip_packets_received_total", C, "Gossip datagrams received.", "gossip.packets_in"},
    {"meshos_gossip_packets_sent_total", C, "Gossip datagrams sent.", "gossip.packets_out"},
    {"meshos_gossip_received_bytes_total", C, "Gossip bytes received.", "gossip.bytes_in"},
    {"meshos_gossip_sent_bytes_total", C, "Gossip bytes sent.", "gossip.bytes_out"},
    {"meshos_gossip_packets_dropped_total", C, "Gossip datagrams dropped, by reason.", "gossip.dropped.*", "reason"},
    {"meshos_gossip_send_errors_total", C, "Gossip datagrams the socket refused.", "gossip.udp_send_errors"},
    {"meshos_gossip_stream_connections_rejected_total", C, "Gossip stream connections refused.", "gossip.tcp_rejected"},
    {"meshos_gossip_keyring_changes_total", C, "Keyring changes made.", "gossip.keyring_changes"},
    {"meshos_gossip_keyring_requests_rejected_total", C, "Keyring requests refused.", "gossip.keyring_rejected"},
    // placement and rebalancing
    {"meshos_placement_agreed", G, "1 when every alive member's view matches this node's.", "placement.agreed"},
    {"meshos_placement_agreeing_members", G, "Members whose placement view matches this node's.", "placement.agreeing"},
    {"meshos_placement_alive_members", G, "Members placement counts as alive.", "placement.alive"},
    {"meshos_placement_frozen", G, "1 while the cluster is frozen.", "placement.frozen"},
    {"meshos_placement_isolated", G, "1 while this node sees too few members to place.", "placement.isolated"},
    {"meshos_placement_maintenance_sequence", G, "Commit sequence of the maintenance state in force.", "placement.maintenance_seq"},
    {"meshos_placement_node_states_refused_total", C, "Peer node states refused as malformed.", "placement.refused_node_states"},
    {"meshos_rebalance_enabled", G, "1 when live-load rebalancing is on.", "placement.rebalance.enabled"},
    {"meshos_rebalance_moves_proposed_total", C, "Daemon moves proposed by the rebalancer.", "placement.rebalance.proposed"},
    {"meshos_rebalance_moves_abandoned_total", C, "Proposed moves abandoned.", "placement.rebalance.abandoned"},
    {"meshos_rebalance_moves_dropped_total", C, "Proposed moves dropped.", "placement.rebalance.dropped"},
    // executor
    {"meshos_executor_actions_offered_total", C, "Actions offered to the executor.", "executor.offered"},
    {"meshos_executor_actions_admitted_total", C, "Actions admitted to the queue.", "executor.admitted"},
    {"meshos_executor_actions_duplicate_total", C, "Actions already queued or running.", "executor.duplicates"},
    {"meshos_executor_actions_deferred_total", C, "Actions deferred for later.", "executor.deferred"},
    {"meshos_executor_actions_gated_total", C, "Actions held by a closed gate (frozen cluster).", "executor.gated"},
    {"meshos_executor_actions_dropped_total", C, "Actions dropped: the queue was full.", "executor.dropped"},
    {"meshos_executor_actions_dispatched_total", C, "Actions started.", "executor.dispatched"},
    {"meshos_executor_actions_succeeded_total", C, "Actions that succeeded.", "executor.succeeded"},
    {"meshos_executor_actions_failed_total", C, "Action attempts that failed.", "executor.failed"},
    {"meshos_executor_actions_expired_total", C, "Actions whose deadline passed.", "executor.expired"},
    {"meshos_executor_actions_abandoned_total", C, "Actions given up after their retries.", "executor.abandoned"},
    {"meshos_executor_actions_queued", G, "Actions waiting in the queue.", "executor.queued"},
    {"meshos_executor_actions_retrying", G, "Actions waiting to retry.", "executor.retrying"},
    {"meshos_executor_actions_in_flight", G, "Actions running.", "executor.in_flight"},
    {"meshos_executor_queue_capacity", G, "Actions the queue holds at most.", "executor.capacity"},
    // runtime
    {"meshos_runtime_instances", G, "Daemon instances the supervisor holds.", "runtime.instances"},
    {"meshos_runtime_desired_generation", G, "Generation of the run set asked for.", "runtime.desired_generation"},
    {"meshos_runtime_applied_generation", G, "Generation of the run set applied.", "runtime.applied_generation"},
    // control socket and HTTP
    {"meshos_control_connections_total", C, "Control socket connections accepted.", "control.connections"},
    {"meshos_control_open_connections", G, "Control socket connections open.", "control.open_connections"},
    {"meshos_control_connections_refused_total", C, "Control socket connections refused (too many).", "control.refused_connections"},
    {"meshos_control_requests_total", C, "Control requests received.", "control.requests"},
    {"meshos_control_requests_malformed_total", C, "Control requests that did not decode.", "control.malformed"},
    {"meshos_control_requests_oversized_total", C, "Control requests over the size limit.", "control.oversized"},
    {"meshos_control_requests_refused_total", C, "Control requests refused by role, reason or permission.", "control.refused_requests"},
    {"meshos_http_connections_total", C, "HTTP connections accepted.", "http.connections"},
    {"meshos_http_open_connections", G, "HTTP connections open.", "http.open_connections"},
    {"meshos_http_connections_refused_total", C, "HTTP connections refused (too many).", "http.refused_connections"},
    {"meshos_http_requests_total", C, "HTTP requests answered, by status code.", "http.responses.*", "code"},
    {"meshos_http_event_streams", G, "Event streams (/v1/events) open.", "http.event_streams"},
    {"meshos_dns_queries_total", C, "DNS datagrams received.", "dns.queries"},
    {"meshos_dns_responses_total", C, "DNS responses sent, by response code.", "dns.responses.*", "rcode"},
    {"meshos_dns_unanswered_total", C, "DNS datagrams not answered (not a query, or no header).", "dns.unanswered"},
    {"meshos_dns_send_failed_total", C, "DNS responses dropped because the socket would block.", "dns.send_failed"},
    {"meshos_dns_records_left_out_total", C, "Records left out of DNS answers to fit the client's UDP size.", "dns.left_out"},
    {"meshos_events_published_total", C, "Events published to watchers.", "events.published"},
    {"meshos_events_missed_total", C, "Events watchers missed because their buffer was full.", "events.missed"},
    {"meshos_event_subscribers", G, "Watchers subscribed to events.", "events.subscribers"},
};

void escapeLabel(std::ostringstream& o, std::string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '"') {
      o << '\\' << c;
    } else if (c == '\n') {
      o << "\\n";
    } else {
      o << c;
    }
  }
}

void value(std::ostringstream& o, double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9.0e15) {
    o << static_cast<int64_t>(v);
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  o << std::string_view(buf, static_cast<size_t>(r.ptr - buf));
}

std::optional<double> number(const nlohmann::json& j) {
  if (j.is_boolean()) return j.get<bool>() ? 1.0 : 0.0;
  if (j.is_number()) return j.get<double>();
  return std::nullopt;
}

// Walks path from j; at "*" it fans out over the object's keys, collecting label values.
void collect(const nlohmann::json& j, std::string_view path, const std::string& label_value,
             std::vector<std::pair<std::string, double>>& out) {
  if (path.empty()) {
    if (auto v = number(j)) out.emplace_back(label_value, *v);
    return;
  }
  if (!j.is_object()) return;
  size_t dot = path.find('.');
  std::string_view seg = path.substr(0, dot);
  std::string_view rest = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
  if (seg == "*") {
    for (auto& [k, v] : j.items()) collect(v, rest, k, out);
    return;
  }
  auto it = j.find(std::string(seg));
  if (it != j.end()) collect(*it, rest, label_value, out);
}

void family(std::ostringstream& o, std::string_view name, MetricType type, std::string_view help) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' '
    << (type == MetricType::kCounter ? "counter" : "gauge") << '\n';
}

void sample(std::ostringstream& o, std::string_view name, double v) {
  o << name << ' ';
  value(o, v);
  o << '\n';
}

void coreFamilies(std::ostringstream& o, const Snapshot& s) {
  family(o, "meshos_info", G, "The agent: its node name, id, cluster and version (always 1).");
  o << "meshos_info{node=\"";
  escapeLabel(o, s.node_name);
  o << "\",id=\"";
  escapeLabel(o, s.node_id);
  o << "\",cluster=\"";
  escapeLabel(o, s.cluster);
  o << "\",version=\"";
  escapeLabel(o, s.version);
  o << "\"} 1\n";
  family(o, "meshos_uptime_seconds", G, "Seconds since the agent started.");
  sample(o, "meshos_uptime_seconds", static_cast<double>(s.uptime_ms) / 1e3);
  family(o, "meshos_loop_ticks_total", C, "Ticks of the agent's loop.");
  sample(o, "meshos_loop_ticks_total", static_cast<double>(s.ticks));
  family(o, "meshos_loop_events_folded_total", C, "Events folded into the node's state.");
  sample(o, "meshos_loop_events_folded_total", static_cast<double>(s.events_folded));
  family(o, "meshos_loop_lag_max_seconds", G, "Largest lateness of a tick since start.");
  sample(o, "meshos_loop_lag_max_seconds", static_cast<double>(s.loop_lag.max_us) / 1e6);
  family(o, "meshos_loop_lag_p99_seconds", G, "99th percentile tick lateness over the last 1024 ticks.");
  sample(o, "meshos_loop_lag_p99_seconds", static_cast<double>(s.loop_lag.p99_us) / 1e6);
  family(o, "meshos_snapshot_generation", G, "Structural generation of the node's state.");
  sample(o, "meshos_snapshot_generation", static_cast<double>(s.generation));
  std::map<std::string, int> members;
  for (auto st : {"alive", "suspect", "dead", "left"}) members[st] = 0;
  if (s.members) {
    for (const auto& m : *s.members) ++members[std::string(memberStateName(m.state))];
  }
  family(o, "meshos_members", G, "Members of the cluster this node knows, by state.");
  for (const auto& [st, n] : members) o << "meshos_members{state=\"" << st << "\"} " << n << '\n';
  std::map<std::string, int> instances;
  if (s.instances) {
    for (const auto& i : *s.instances) ++instances[std::string(instanceStateName(i.state))];
  }
  family(o, "meshos_daemon_instances", G, "Daemon instances on this node, by state.");
  for (const auto& [st, n] : instances) o << "meshos_daemon_instances{state=\"" << st << "\"} " << n << '\n';
}

}  // namespace

const std::vector<MetricFamily>& metricCatalogue() { return kCatalogue; }

std::string snapshotToPrometheus(const Snapshot& s) {
  std::ostringstream o;
  coreFamilies(o, s);
  std::vector<std::pair<std::string, double>> samples;
  for (const MetricFamily& f : kCatalogue) {
    samples.clear();
    collect(s.sections, f.path, {}, samples);
    if (samples.empty()) continue;
    family(o, f.name, f.type, f.help);
    for (const auto& [label_value, v] : samples) {
      o << f.name;
      if (!f.label.empty()) {
        o << '{' << f.label << "=\"";
        escapeLabel(o, label_value);
        o << "\"}";
      }
      o << ' ';
      value(o, v * f.scale);
      o << '\n';
    }
  }
  return o.str();
}

}  // namespace meshos::state
