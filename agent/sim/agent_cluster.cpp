#include "agent/sim/agent_cluster.h"

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>

#include "agent/commits/commit_format.h"

namespace meshos::sim {

namespace {

// Keys derived from the seed, so ids, commit hashes and every ordering repeat run to run.
SigningKey keyFromRng(Rng& rng) {
  unsigned char seed[crypto_sign_SEEDBYTES];
  for (size_t i = 0; i < sizeof(seed); i += 8) {
    const uint64_t v = rng.next();
    for (size_t j = 0; j < 8 && i + j < sizeof(seed); ++j) seed[i + j] = static_cast<unsigned char>(v >> (8 * j));
  }
  SigningKey k;
  crypto_sign_seed_keypair(k.public_key.data(), k.secret_key.data(), seed);
  return k;
}

// How long after a failed start the host tries again (systemd's RestartSec).
constexpr int64_t kRestartAfterMs = 1000;

}  // namespace

AgentCluster::AgentCluster(uint64_t seed, AgentClusterOptions options)
    : options_(std::move(options)),
      world_(seed),
      admin_(keyFromRng(world_.rng)),
      log_config_([&] {
        commits::CommitLogConfig c;
        c.cluster_id = options_.cluster_id;
        c.genesis_trust.admins.insert(admin_.public_key);
        c.genesis_trust.threshold = 1;
        return c;
      }()),
      reference_(log_config_) {
  world_.network.setDefaultLink(options_.link);
}

AgentCluster::~AgentCluster() {
  // Agents first (their databases and timers), while the world they use still exists.
  for (auto& h : hosts_) h->crashAgent();
}

SimHost& AgentCluster::addHost(HostSetup setup) {
  const size_t index = hosts_.size();
  const uint32_t n = static_cast<uint32_t>(index + 1);
  const std::string address = "10.0." + std::to_string((n >> 8) & 0xff) + "." + std::to_string(n & 0xff) + ":" +
                              std::to_string(options_.port);
  std::sort(setup.capabilities.begin(), setup.capabilities.end());
  setup.capabilities.erase(std::unique(setup.capabilities.begin(), setup.capabilities.end()), setup.capabilities.end());
  config::NodeConfig c;
  c.node.name = "n" + std::to_string(index);
  c.node.data_dir = "/sim/" + c.node.name;
  c.node.labels = setup.labels;
  c.node.capabilities = setup.capabilities;
  c.node.cpu_millicores = setup.cpu_millicores;
  c.node.memory_bytes = setup.memory_bytes;
  c.gossip.cluster = options_.cluster_id;
  auto hp = config::parseHostPort(address, false);
  c.gossip.bind = *hp;
  c.trust.admins = {publicKeyToBase64(admin_.public_key)};
  c.log.level = "off";
  if (seed_addresses_.size() < options_.seeds) seed_addresses_.push_back(address);
  for (const auto& s : seed_addresses_)
    if (s != address) c.gossip.seeds.push_back(*config::parseHostPort(s, false));
  if (options_.configure) options_.configure(index, c);
  SigningKey key = keyFromRng(world_.rng);
  const std::string name = c.node.name;
  hosts_.push_back(std::make_unique<SimHost>(world_, index, name, address, key, std::move(setup), std::move(c),
                                             options_.runtime));
  acked_.emplace_back();
  agent_started_ms_.push_back(-1);
  check_acked_.push_back(false);
  last_stranded_ms_.push_back(-1'000'000);
  start_pending_.push_back(false);
  HostObserver o;
  o.on_chain_acked = [this](size_t host, chains::ChainName chain, uint64_t seq, const Hash256& hash) {
    acked_[host][chain] = {seq, hash};
    ++figures_.chain_records_acked;
  };
  o.on_action_outcome = [this](size_t host, const executor::Outcome& out) {
    ++figures_.actions_ended;
    // A freeze holds changes: one carried out on a node that knows the cluster is frozen is
    // an invariant failure at the next check (reported through the same slot).
    const node::Node* n = hosts_[host]->node();
    if (out.disposition == executor::Disposition::kSucceeded && out.action.cause == state::ActionCause::kChange &&
        n != nullptr && n->plan().frozen && violation_.empty()) {
      violation_ = hosts_[host]->name() + " carried out a change while frozen: " +
                   std::string(state::actionKindName(out.action.kind)) + " " + out.action.instance;
    }
  };
  hosts_.back()->setObserver(std::move(o));
  return *hosts_.back();
}

std::optional<size_t> AgentCluster::indexOf(const std::string& name) const {
  for (size_t i = 0; i < hosts_.size(); ++i)
    if (hosts_[i]->name() == name) return i;
  return std::nullopt;
}

void AgentCluster::startAll() {
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const int64_t at = options_.start_spread_ms > 0
                           ? static_cast<int64_t>(world_.rng.uniform(static_cast<uint64_t>(options_.start_spread_ms)))
                           : 0;
    scheduleStart(i, at);
  }
}

void AgentCluster::start(size_t i) { scheduleStart(i, 0); }

void AgentCluster::scheduleStart(size_t i, int64_t delay_ms) {
  if (start_pending_[i]) return;
  start_pending_[i] = true;
  world_.timers.after(delay_ms, [this, i] {
    start_pending_[i] = false;
    SimHost& h = *hosts_[i];
    if (h.running()) return;
    Status s = h.start();
    if (!s) {
      ++figures_.failed_starts;
      scheduleStart(i, kRestartAfterMs);
      return;
    }
    onAgentStarted(i);
  });
}

void AgentCluster::onAgentStarted(size_t i) {
  ++figures_.agent_starts;
  agent_started_ms_[i] = nowMs();
  check_acked_[i] = true;
  quiet_since_ms_ = nowMs();
}

Bytes AgentCluster::buildCommit(std::vector<commits::Operation> ops, std::string note) const {
  commits::Commit c;
  c.cluster_id = options_.cluster_id;
  const commits::Head head = reference_.head();
  c.seq = head.seq + 1;
  c.parent = head.hash;
  c.issued_at_ms = world_.clock.wallMs();
  c.issuer = admin_.public_key;
  c.operations = std::move(ops);
  c.note = std::move(note);
  commits::signCommit(c, admin_);
  return commits::encodeCommit(c);
}

commits::SubmitResult AgentCluster::adopt(const Bytes& commit) {
  commits::LogOutput out;
  commits::SubmitResult r = reference_.submit(commit, out);
  if (r.outcome == commits::Outcome::kAccepted) {
    ++figures_.commits;
    world_.trace.mix(std::string_view("commit"));
    world_.trace.mix(r.seq);
  }
  return r;
}

Result<std::string> AgentCluster::submitTo(size_t host, const Bytes& bytes) {
  auto reply = hosts_[host]->call([&](proto::Request::Builder b) {
    b.setSubmitCommit(capnp::Data::Reader(bytes.data(), bytes.size()));
  }, "simulation: submit commit");
  if (!reply->answered()) return Status::internal("submit-commit was not answered at once");
  if (!reply->get()) return reply->get().status();
  return nlohmann::json::parse(reply->get()->body).value("outcome", "");
}

Result<std::string> AgentCluster::commit(std::vector<commits::Operation> ops, std::string note,
                                         std::optional<size_t> via) {
  Bytes bytes = buildCommit(std::move(ops), std::move(note));
  last_commit_ms_ = nowMs();
  commits::SubmitResult r = adopt(bytes);
  if (r.outcome != commits::Outcome::kAccepted)
    return Status::invalid("commit " + std::to_string(r.seq) + " refused: " + std::string(commits::reasonName(r.reason)) +
                           ": " + r.message);
  undelivered_.push_back(std::move(bytes));
  return deliverCommits(via);
}

Result<std::string> AgentCluster::deliverCommits(std::optional<size_t> via) {
  std::string outcome;
  while (!undelivered_.empty()) {
    std::vector<size_t> order;
    if (via) {
      order.push_back(*via);
    } else {
      for (size_t i = 0; i < hosts_.size(); ++i)
        if (hosts_[i]->up()) order.push_back(i);
      if (!order.empty()) std::rotate(order.begin(), order.begin() + world_.rng.uniform(order.size()), order.end());
    }
    Status refused = Status::unavailable("no host is up to take the commit");
    bool taken = false;
    for (size_t host : order) {
      auto r = submitTo(host, undelivered_.front());
      // "pending": that node is behind and holds it in memory only until its parent arrives
      // (a crash meanwhile loses it), so a careful admin tries a node that is current.
      if (r && *r != "pending") {
        outcome = *r;
        taken = true;
        break;
      }
      refused = r ? Status::unavailable("every up host is behind (pending)") : r.status();
    }
    if (!taken) return refused;  // kept: submitted again at the next check
    undelivered_.pop_front();
  }
  return outcome;
}

// ---------------------------------------------------------------- faults

void AgentCluster::noteFault(const std::string& kind, const std::string& detail) {
  ++figures_.faults[kind];
  figures_.last_fault = kind + " " + detail;
  figures_.last_fault_ms = nowMs();
  quiet_since_ms_ = nowMs();
  world_.trace.mix(kind);
  world_.trace.mix(detail);
}

void AgentCluster::setFaultActive(const std::string& key, bool active) {
  if (active) {
    active_faults_.insert(key);
  } else {
    active_faults_.erase(key);
  }
  quiet_since_ms_ = nowMs();
}

bool AgentCluster::anyFaultActive() const { return !active_faults_.empty(); }

void AgentCluster::crashAgent(size_t i) {
  noteFault("crash-agent", hosts_[i]->name());
  hosts_[i]->crashAgent();
}

void AgentCluster::crashMachine(size_t i) {
  noteFault("crash-machine", hosts_[i]->name());
  hosts_[i]->crashMachine();
}

void AgentCluster::stopAgent(size_t i) {
  noteFault("stop", hosts_[i]->name());
  hosts_[i]->stop();
}

void AgentCluster::partition(const std::vector<std::vector<size_t>>& groups, bool one_way) {
  heal();
  std::vector<int> group_of(hosts_.size(), static_cast<int>(groups.size()));
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i : groups[g]) group_of[i] = static_cast<int>(g);
  groups_.assign(groups.size() + 1, {});
  for (size_t i = 0; i < hosts_.size(); ++i) groups_[static_cast<size_t>(group_of[i])].push_back(i);
  groups_.erase(std::remove_if(groups_.begin(), groups_.end(), [](const auto& g) { return g.empty(); }), groups_.end());
  std::string detail;
  for (const auto& g : groups_) {
    detail += detail.empty() ? "" : "|";
    for (size_t k = 0; k < g.size(); ++k) detail += (k ? "," : "") + hosts_[g[k]]->name();
  }
  noteFault(one_way ? "partition-one-way" : "partition", detail);
  for (size_t a = 0; a < hosts_.size(); ++a) {
    for (size_t b = 0; b < hosts_.size(); ++b) {
      if (group_of[a] == group_of[b]) continue;
      if (one_way && group_of[a] != 0) continue;
      world_.network.block(Network::hostOf(hosts_[a]->address()), Network::hostOf(hosts_[b]->address()));
    }
  }
}

void AgentCluster::partitionAt(size_t split) {
  std::vector<size_t> left;
  for (size_t i = 0; i < std::min(split, hosts_.size()); ++i) left.push_back(i);
  partition({left});
}

void AgentCluster::heal() {
  if (!groups_.empty()) noteFault("heal", "");
  groups_.clear();
  world_.network.healAll();
}

void AgentCluster::setLink(const LinkProfile& link) {
  noteFault("link", "loss " + std::to_string(link.loss) + " dup " + std::to_string(link.duplicate) + " reorder " +
                        std::to_string(link.reorder));
  world_.network.setDefaultLink(link);
}

void AgentCluster::setDiskFull(size_t i, bool full) {
  noteFault(full ? "disk-full" : "disk-free", hosts_[i]->name());
  hosts_[i]->disk().setFull(full);
}

void AgentCluster::stepWallClock(size_t i, int64_t delta_ms) {
  noteFault("clock-step", hosts_[i]->name() + " " + std::to_string(delta_ms));
  hosts_[i]->clock().stepWallMs(delta_ms);
}

void AgentCluster::hostileCall(size_t i, uint64_t pick) {
  if (!hosts_[i]->up()) return;
  const auto& daemons = reference_.desired().daemons;
  const std::string daemon = daemons.empty() ? "absent" : std::next(daemons.begin(), static_cast<std::ptrdiff_t>(pick % daemons.size()))->first;
  const char* what[] = {"daemon stop", "daemon exec", "join", "keyring install"};
  const uint64_t kind = (pick / 7) % 4;
  const bool root_without_reason = (pick / 29) % 2 == 1;
  noteFault("hostile", hosts_[i]->name() + " " + what[kind] + (root_without_reason ? " (root, no reason)" : " (uid 1000)"));
  control::PeerCred stranger;  // a local user the default [control] lets read, no more
  stranger.pid = 4242;
  stranger.uid = 1000;
  stranger.gid = 1000;
  stranger.known = true;
  const Bytes key(32, 0x5a);
  auto reply = hosts_[i]->call(
      [&](proto::Request::Builder b) {
        if (kind == 2) {
          b.initJoin(1).set(0, "10.9.9.9:7946");
        } else if (kind == 3) {
          b.initKeyring().setInstall(capnp::Data::Reader(key.data(), key.size()));
        } else {
          auto c = b.initDaemonControl();
          c.setName(daemon);
          c.setOp(kind == 0 ? proto::DaemonControl::Op::STOP : proto::DaemonControl::Op::EXEC);
          c.initArgv(1).set(0, "/bin/true");
        }
      },
      root_without_reason ? "" : "simulation: a stranger asks", root_without_reason ? nullptr : &stranger);
  if (reply->answered() && !reply->get().isOk() && reply->get().status().code() == Code::kPermissionDenied) return;
  if (violation_.empty()) {
    violation_ = hosts_[i]->name() + " served " + what[kind] +
                 (root_without_reason ? " without a reason" : " to uid 1000") + ": " +
                 (reply->answered() ? reply->get().status().toString() : "not refused at once");
  }
}

void AgentCluster::setSlow(size_t i, int64_t slow_ms) {
  noteFault("slow", hosts_[i]->name() + " " + std::to_string(slow_ms));
  hosts_[i]->setSlowMs(slow_ms);
}

void AgentCluster::killProcess(size_t i, int pid) {
  noteFault("kill-process", hosts_[i]->name() + " " + std::to_string(pid));
  hosts_[i]->runtime().killProcess(pid);
}

// ---------------------------------------------------------------- time

Status AgentCluster::runFor(int64_t duration_ms, const std::function<Status()>& extra, int64_t check_every_ms) {
  const int64_t end = nowMs() + duration_ms;
  while (nowMs() < end) {
    world_.timers.advanceMs(std::min(check_every_ms, end - nowMs()));
    if (!undelivered_.empty()) (void)deliverCommits(std::nullopt);
    Status s = checkInvariants();
    if (s && extra) s = extra();
    if (!s) return Status(s.code(), failure(s.message()));
  }
  return Status::ok();
}

Status AgentCluster::runUntil(const std::function<bool()>& pred, int64_t max_ms, int64_t check_every_ms) {
  const int64_t end = nowMs() + max_ms;
  while (!pred()) {
    if (nowMs() >= end) return Status::deadline("not reached within " + std::to_string(max_ms) + " ms");
    world_.timers.advanceMs(std::min(check_every_ms, end - nowMs()));
    if (!undelivered_.empty()) (void)deliverCommits(std::nullopt);
    if (Status s = checkInvariants(); !s) return Status(s.code(), failure(s.message()));
  }
  return Status::ok();
}

std::string AgentCluster::failure(const std::string& what) const {
  return "seed " + std::to_string(seed()) + " (replay: MESHOS_SEED=" + std::to_string(seed()) + ") at t=" +
         std::to_string(nowMs()) + " ms: " + what + "\nlast fault: " + figures_.last_fault + " at t=" +
         std::to_string(figures_.last_fault_ms) + " ms\nwhere daemons run (host(running/ready)):\n" + describe();
}

}  // namespace meshos::sim
