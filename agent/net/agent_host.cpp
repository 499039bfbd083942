#include "agent/net/agent_host.h"

#include <spdlog/spdlog.h>
#include <string.h>
#include <uv.h>

#include "agent/net/control_access_names.h"
#include "agent/net/control_server.h"
#include "agent/net/gossip_transport.h"
#include "agent/net/dns_server.h"
#include "agent/net/http_server.h"
#include "agent/net/systemd_notify.h"
#include "agent/net/uv_loop.h"
#include "agent/node/node.h"
#include "agent/runtime/oci_runtime.h"
#include "agent/runtime/process_runtime.h"
#include "agent/runtime/runtime_switch.h"
#include "probes/inventory.h"

namespace meshos::net {

namespace {

// SIGINT and SIGTERM: the first begins the shutdown, the second forces exit.
class Signals {
 public:
  Signals(uv_loop_t* loop, std::function<void(const char*)> on_signal) : on_signal_(std::move(on_signal)) {
    for (int i = 0; i < 2; ++i) {
      handles_[i] = new uv_signal_t();
      uv_signal_init(loop, handles_[i]);
      handles_[i]->data = this;
      uv_signal_start(
          handles_[i],
          [](uv_signal_t* h, int sig) {
            auto* self = static_cast<Signals*>(h->data);
            if (++self->seen_ > 1) {
              spdlog::error("second signal ({}): forcing exit", strsignal(sig));
              spdlog::default_logger()->flush();
              ::_exit(130);
            }
            self->on_signal_(strsignal(sig));
          },
          i == 0 ? SIGINT : SIGTERM);
    }
  }
  ~Signals() { close(); }
  void close() {
    for (auto*& h : handles_) {
      if (h == nullptr) continue;
      uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_signal_t*>(x); });
      h = nullptr;
    }
  }

 private:
  std::function<void(const char*)> on_signal_;
  uv_signal_t* handles_[2] = {nullptr, nullptr};
  int seen_ = 0;
};

// SIGHUP: reload (read the config again; see Node::reload).
class Hangup {
 public:
  Hangup(uv_loop_t* loop, std::function<void()> on_hangup) : on_hangup_(std::move(on_hangup)) {
    handle_ = new uv_signal_t();
    uv_signal_init(loop, handle_);
    handle_->data = this;
    uv_signal_start(handle_, [](uv_signal_t* h, int) { static_cast<Hangup*>(h->data)->on_hangup_(); }, SIGHUP);
  }
  ~Hangup() { close(); }
  void close() {
    if (handle_ == nullptr) return;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* x) { delete reinterpret_cast<uv_signal_t*>(x); });
    handle_ = nullptr;
  }

 private:
  std::function<void()> on_hangup_;
  uv_signal_t* handle_ = nullptr;
};

int statusFor(const Status& s) { return s.code() == Code::kInvalidArgument ? 2 : 1; }

// Everything the agent runs on, over one loop; torn down in reverse order.
struct Services {
  explicit Services(uv_loop_t* loop)
      : timers(loop), poster(loop), workers(loop), rng(osSeed()),
        env{clock, timers, poster, rng, workers, fs}, transport(loop, timers, clock) {
    poster.unref();
  }
  SystemClock clock;
  UvTimers timers;
  UvPoster poster;
  UvWorkers workers;
  Rng rng;
  PosixFileSystem fs;
  Env env;
  GossipTransport transport;
  gossip::MemberIdentityPool identities;
};

// The HTTP and DNS servers the config asks for, answered by the node once it exists.
Status listenNetwork(uv_loop_t* loop, const config::NodeConfig& cfg, std::unique_ptr<node::Node>& node,
                     std::unique_ptr<HttpServer>& http, std::unique_ptr<DnsServer>& dns) {
  if (cfg.control.http) {
    HttpRoutes routes;
    routes.read = [&node](const std::string& path, const std::map<std::string, std::string>& query,
                          HttpRoutes::Done done) {
      if (!node) return done(Status::unavailable("the agent is starting"));
      node->httpRead(path, query, std::move(done));
    };
    http = std::make_unique<HttpServer>(loop, std::move(routes));
    MESHOS_RETURN_IF_ERROR(http->listen(*cfg.control.http));
    spdlog::info("http: serving http://{}/ (/metrics, /v1/, /v1/events)", http->address());
  }
  if (cfg.dns.bind) {
    dns = std::make_unique<DnsServer>(loop, [&node](ByteView query) {
      return node ? node->dnsAnswer(query) : discovery::DnsResult{};
    });
    MESHOS_RETURN_IF_ERROR(dns->listen(*cfg.dns.bind));
    spdlog::info("dns: answering *.service.{}. on {} (UDP)", cfg.gossip.cluster, dns->address());
  }
  return Status::ok();
}

int runNode(uv_loop_t* loop, Services& sv, config::NodeConfig config, NodeIdentity identity,
            std::function<Result<config::NodeConfig>()> read_config) {
  const config::NodeConfig& cfg = config;
  std::unique_ptr<node::Node> node;
  ControlServer control(loop, [&node](proto::Request::Reader r, const PeerCred& p, ControlResponder reply) {
    if (node) node->control(r, p, std::move(reply));
  });
  auto access = resolveControlAccess(cfg.control, ::geteuid());
  if (!access) {
    spdlog::critical("{}", access.status().toString());
    return 1;
  }
  // Signal handlers before the socket: a SIGTERM sent as soon as the socket appears is a
  // graceful stop, delivered once the loop runs (the node exists by then), not death by
  // the default action.
  SystemdNotifier systemd(loop);
  Signals signals(loop, [&node](const char* why) {
    if (node) node->shutdown(why);
  });
  Hangup hangup(loop, [&node] {
    if (!node) return;
    if (auto r = node->reload("SIGHUP"); !r) spdlog::error("{}", r.status().toString());
  });
  // The socket first: a second agent on the same data dir stops here, before it opens
  // anything of the first one's.
  if (Status s = control.listen(cfg.control.socket, cfg.control.mode); !s) {
    spdlog::critical("{}", s.withContext("control socket").toString());
    return 1;
  }
  // HTTP and DNS next, for the same reason: a taken port stops the agent before it opens
  // anything.
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<DnsServer> dns;
  if (Status s = listenNetwork(loop, cfg, node, http, dns); !s) {
    spdlog::critical("{}", s.toString());
    control.close();
    if (http) http->close();
    if (dns) dns->close();
    return 1;
  }
  auto instances = runtime::FileInstanceStore::open(sv.fs, (cfg.node.data_dir / "runtime" / "instances").string());
  if (!instances) {
    spdlog::critical("{}", instances.status().withContext("runtime instance records").toString());
    return 1;
  }
  runtime::RuntimeOptions ro;
  ro.data_dir = cfg.node.data_dir.string();
  ro.cgroup_parent = cfg.runtime.cgroup_parent;
  ro.secrets_dir = cfg.secrets.files_dir ? cfg.secrets.files_dir->string() : "/dev/shm/meshos-" + identity.id;
  runtime::ProcessRuntime processes(loop, sv.clock, **instances, ro);
  if (Status s = processes.init(); !s) {
    spdlog::critical("{}", s.withContext("process runtime").toString());
    return 1;
  }
  spdlog::info("runtime: {}", processes.cgroupStatus());
  runtime::OciRuntimeOptions oo;
  oo.data_dir = ro.data_dir;
  oo.oci = cfg.runtime.oci;
  oo.cgroup_parent = ro.cgroup_parent;
  oo.secrets_dir = ro.secrets_dir;
  runtime::OciRuntime containers(loop, sv.clock, **instances, oo);
  // Without an OCI runtime the agent runs on: container daemons fail to create, saying why.
  if (Status s = containers.init(); !s) spdlog::info("runtime: {}", s.message());
  runtime::RuntimeSwitch runtimes(processes, containers);
  node::NodeServices services{sv.env, sv.transport, sv.identities, runtimes, **instances};
  services.sample_inventory = [dir = cfg.node.data_dir] { return probes::sampleInventory(dir, "/proc"); };
  if (containers.available()) services.runtime_capabilities = {"runtime:oci"};
  // The first stage of every shutdown (a signal, `meshos-admin leave`): systemd hears it too.
  services.close_control = [&control, &http, &dns, &systemd] {
    systemd.stopping("the staged shutdown began");
    control.close();
    if (http) http->close();
    if (dns) dns->close();
  };
  services.access = std::move(*access);
  services.read_config = std::move(read_config);
  node = std::make_unique<node::Node>(std::move(services), std::move(config), std::move(identity));
  node->addSnapshotSection("control", [&control, n = node.get()] {
    const auto& c = control.counters();
    return nlohmann::json{{"connections", c.connections}, {"open_connections", control.openConnections()},
                          {"requests", c.requests}, {"malformed", c.malformed}, {"oversized", c.oversized},
                          {"refused_connections", c.refused_connections}, {"refused_requests", n->accessRefusals()}};
  });
  node->addSnapshotSection("runtime", [&processes, &containers] {
    return nlohmann::json{{"cgroups", processes.cgroupStatus()}, {"containers", containers.statusText()}};
  });
  if (http) {
    http->setEvents(&node->events());
    node->addSnapshotSection("http", [&http] { return http->toJson(); });
  }
  if (dns) node->addSnapshotSection("dns", [&dns] { return dns->toJson(); });
  node->onShutdownComplete([&] {
    systemd.close();
    signals.close();
    hangup.close();
    processes.close();  // daemons keep running for the next agent
    containers.close();
  });
  if (Status s = node->start(); !s) {
    spdlog::critical("{}", s.toString());
    control.close();
    if (http) http->close();
    if (dns) dns->close();
    signals.close();
    hangup.close();
    processes.close();
    containers.close();
    uv_run(loop, UV_RUN_DEFAULT);
    node.reset();  // before the runtime it uses
    return statusFor(s);
  }
  // `config` moved into the node: read it there.
  const config::NodeConfig& running = node->config();
  spdlog::info("serving {}", running.control.socket.string());
  systemd.ready("node " + running.node.name + " serving " + running.control.socket.string());
  uv_run(loop, UV_RUN_DEFAULT);
  int status = node->exitStatus();
  node.reset();
  return status;
}

}  // namespace

int AgentHost::run() {
  uv_loop_t loop;
  uv_loop_init(&loop);
  int status = 0;
  {
    Services sv(&loop);
    status = runNode(&loop, sv, std::move(config_), std::move(identity_), std::move(read_config_));
    sv.timers.close();
    sv.poster.close();
    sv.transport.close();
    uv_run(&loop, UV_RUN_DEFAULT);  // close callbacks free the handles
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) spdlog::warn("handles were still open at exit");
  return status;
}

}  // namespace meshos::net
