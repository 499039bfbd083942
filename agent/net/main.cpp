// meshos-agent: parse flags, load the config and the node key, and run the Node in the
// libuv shell (net::AgentHost). Everything else lives in the libraries.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "agent/config/node_config.h"
#include "agent/core/logging.h"
#include "agent/core/node_identity.h"
#include "agent/net/agent_host.h"

using namespace meshos;

int main(int argc, char** argv) {
  CLI::App app{"meshos-agent: the meshos node agent"};
  std::string config_path;
  std::string log_level;
  std::string log_format;
  bool print_default = false;
  bool check_only = false;
  bool version = false;
  app.add_option("-c,--config", config_path, "node.toml to run with");
  app.add_option("--log-level", log_level, "override [log] level: trace debug info warn error off");
  app.add_option("--log-format", log_format, "override [log] format: text json");
  app.add_flag("--print-default-config", print_default, "print a node.toml with every default and exit");
  app.add_flag("--check", check_only, "validate the config and exit (0 when valid)");
  app.add_flag("--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (version) {
    std::cout << "meshos-agent " << MESHOS_VERSION << "\n";
    return 0;
  }
  if (print_default) {
    // The name defaults to the host name: print this host's.
    char host[256] = {0};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "node-1");
    std::cout << config::defaultConfigText(host, "/var/lib/meshos", "/run/meshos/agent.sock");
    return 0;
  }
  if (config_path.empty()) {
    std::cerr << "meshos-agent: --config is required (see --help)\n";
    return 2;
  }
  auto cfg = config::loadNodeConfig(config_path);
  if (!cfg) {
    std::cerr << "meshos-agent: " << cfg.status().message() << "\n";
    return 2;
  }
  if (!log_level.empty()) cfg->log.level = log_level;
  if (!log_format.empty()) cfg->log.format = log_format;
  if (Status s = setupLogging(cfg->log.level, cfg->log.format); !s) {
    std::cerr << "meshos-agent: " << s.message() << "\n";
    return 2;
  }
  if (check_only) {
    std::cout << config_path << ": ok\n";
    return 0;
  }
  if (Status s = initCrypto(); !s) {
    spdlog::critical("{}", s.toString());
    return 1;
  }
  ::signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(cfg->node.data_dir, ec);
  if (ec) {
    spdlog::critical("cannot create data_dir {}: {}", cfg->node.data_dir.string(), ec.message());
    return 1;
  }
  ::chmod(cfg->node.data_dir.c_str(), 0700);
  PosixFileSystem fs;
  auto identity = loadOrCreateNodeIdentity(fs, cfg->node.data_dir);
  if (!identity) {
    spdlog::critical("{}", identity.status().toString());
    return 1;
  }
  if (identity->created) spdlog::info("created node key {}/node.key", cfg->node.data_dir.string());
  // A reload reads the same file; the command line's overrides still win.
  auto read_config = [config_path, log_level, log_format]() -> Result<config::NodeConfig> {
    auto c = config::loadNodeConfig(config_path);
    if (!c) return c.status();
    if (!log_level.empty()) c->log.level = log_level;
    if (!log_format.empty()) c->log.format = log_format;
    return c;
  };
  return net::AgentHost(std::move(*cfg), std::move(*identity), read_config).run();
}
