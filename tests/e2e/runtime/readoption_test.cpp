// The agent is SIGKILLed and started again: its daemons keep running with the same pids
// and are re-adopted, not restarted. Runs tests/e2e/runtime/runtime_agent as the agent.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#ifndef RUNTIME_AGENT_PATH
#error RUNTIME_AGENT_PATH must be defined by the build
#endif

namespace {

bool pollUntil(const std::function<bool()>& pred, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

pid_t startAgent(const std::string& file, const std::string& dir) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(RUNTIME_AGENT_PATH, RUNTIME_AGENT_PATH, file.c_str(), dir.c_str(), nullptr);
    ::_exit(127);
  }
  return pid;
}

nlohmann::json snapshot(const std::string& dir) {
  std::ifstream in(dir + "/snapshot.json");
  auto j = nlohmann::json::parse(in, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

// pid of the instance when it is ready, else 0.
int readyPid(const std::string& dir, const std::string& instance, bool* adopted = nullptr) {
  auto j = snapshot(dir);
  if (!j.contains("daemons")) return 0;
  for (const auto& d : j["daemons"]) {
    if (d["instance"] == instance && d["state"] == "ready") {
      if (adopted != nullptr) *adopted = d["adopted"].get<bool>();
      return d["pid"].get<int>();
    }
  }
  return 0;
}

bool alive(int pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(st)), {});
  auto p = s.rfind(')');
  return p != std::string::npos && s.size() > p + 2 && s[p + 2] != 'Z';
}

}  // namespace

TEST_CASE("agent SIGKILLed and restarted: daemons keep their pids and are re-adopted") {
  char tmpl[] = "/tmp/meshos-readopt-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string file = dir + "/local.toml";
  std::ofstream(file) << "[[daemon]]\nname = \"web\"\ncommand = [\"sleep\", \"300\"]\n"
                         "restart = \"always\"\nreplicas = 2\n"
                         "[[daemon]]\nname = \"worker\"\ncommand = [\"/bin/sh\", \"-c\", \"exec sleep 300\"]\n"
                         "depends_on = [{ name = \"web\", condition = \"ready\" }]\n";
  pid_t agent = startAgent(file, dir);
  int web0 = 0, web1 = 0, worker = 0;
  REQUIRE(pollUntil([&] {
    web0 = readyPid(dir, "web#0");
    web1 = readyPid(dir, "web#1");
    worker = readyPid(dir, "worker#0");
    return web0 > 0 && web1 > 0 && worker > 0;
  }, 10'000));
  ::kill(agent, SIGKILL);
  int status = 0;
  ::waitpid(agent, &status, 0);
  CHECK(alive(web0));
  CHECK(alive(worker));
  std::filesystem::remove(dir + "/snapshot.json");

  agent = startAgent(file, dir);
  bool adopted = false;
  REQUIRE(pollUntil([&] { return readyPid(dir, "worker#0", &adopted) > 0; }, 10'000));
  CHECK(adopted);
  CHECK(readyPid(dir, "web#0") == web0);
  CHECK(readyPid(dir, "web#1") == web1);
  CHECK(readyPid(dir, "worker#0") == worker);

  // A clean stop of the agent stops its daemons.
  ::kill(agent, SIGTERM);
  REQUIRE(pollUntil([&] { return ::waitpid(agent, &status, WNOHANG) == agent; }, 10'000));
  CHECK(WIFEXITED(status));
  CHECK(pollUntil([&] { return !alive(web0) && !alive(web1) && !alive(worker); }, 5'000));
  std::filesystem::remove_all(dir);
}
