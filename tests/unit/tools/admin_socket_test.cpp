// meshos-admin against a real control socket: a ControlServer on its own libuv loop thread
// answers the commit requests from a CommitLog (as the agent will, via
// handleCommitRequest), and the meshos-admin binary submits, reads the head and builds a
// commit from the agent's state.
#include "tests/temp_dir.h"
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <uv.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "agent/commits/commit_control.h"
#include "agent/control/control_client.h"
#include "agent/net/control_server.h"
#include "tools/admin/admin.h"

using namespace meshos;
using namespace meshos::commits;
namespace fs = std::filesystem;

namespace {

using TempDir = meshos::testing::TempDir;

// A loop thread that owns a CommitLog and a ControlServer.
class FakeAgent {
 public:
  FakeAgent(const fs::path& socket, CommitLogConfig cfg) : log_(std::move(cfg)) {
    std::promise<Status> ready;
    auto started = ready.get_future();
    thread_ = std::thread([this, socket, &ready] {
      uv_loop_init(&loop_);
      uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
        auto* self = static_cast<FakeAgent*>(a->data);
        self->server_->close();
        uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_), nullptr);
      });
      stop_.data = this;
      server_ = std::make_unique<net::ControlServer>(
          &loop_,
          [this](proto::Request::Reader req, const control::PeerCred&, control::ControlResponder reply) {
            LogOutput out;
            auto j = handleCommitRequest(log_, req, out);
            audited_ += out.audit.size();
            if (j)
              reply.json(j->dump());
            else
              reply.error(j.status());
          });
      ready.set_value(server_->listen(socket, 0600));
      uv_run(&loop_, UV_RUN_DEFAULT);
      server_.reset();
      uv_loop_close(&loop_);
    });
    REQUIRE(started.get().isOk());
  }
  ~FakeAgent() {
    uv_async_send(&stop_);
    thread_.join();
  }
  // Only after the loop stopped, or for values read under no contention in the test.
  std::atomic<size_t> audited_{0};

 private:
  CommitLog log_;
  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::unique_ptr<net::ControlServer> server_;
  std::thread thread_;
};

int run(const std::string& cmd) {
  int rc = std::system((cmd + " > /dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

TEST_CASE("meshos-admin keygen, sign-commit --agent, cosign, submit and head over a socket") {
  REQUIRE(initCrypto().isOk());
  const char* admin_bin = std::getenv("MESHOS_ADMIN");
  REQUIRE_MESSAGE(admin_bin != nullptr, "MESHOS_ADMIN must name the meshos-admin binary");
  const std::string A = admin_bin;
  TempDir dir;
  const std::string d = dir.path.string();
  REQUIRE(run(A + " keygen " + d + "/alice") == 0);
  REQUIRE(run(A + " keygen " + d + "/bob") == 0);
  auto alice = readKeyFile(d + "/alice.key");
  auto bob = readKeyFile(d + "/bob.key");
  REQUIRE(alice.isOk());
  REQUIRE(bob.isOk());
  CommitLogConfig cfg;
  cfg.cluster_id = "prod";
  cfg.genesis_trust.admins = {alice->public_key, bob->public_key};
  cfg.genesis_trust.threshold = 2;
  const std::string sock = d + "/agent.sock";
  FakeAgent agent(sock, cfg);

  std::ofstream(d + "/desired.toml")
      << "[[daemon]]\nname = \"web\"\ncommand = [\"/bin/sleep\", \"1000\"]\nreplicas = 2\n";
  REQUIRE(run(A + " sign-commit --key " + d + "/alice.key --file " + d + "/desired.toml --agent " +
              sock + " -o " + d + "/c1") == 0);
  // One signature of two: rejected with its reason, the head does not move.
  CHECK(run(A + " submit " + d + "/c1 --socket " + sock) == 1);
  auto head = admin::baseFromAgent(sock);
  REQUIRE(head.isOk());
  CHECK(head->head.seq == 0);
  auto reply = control::callAgent(sock, [&](proto::Request::Builder r) {
    auto bytes = admin::readCommitFile(d + "/c1");
    r.setSubmitCommit(capnp::Data::Reader(bytes->encoded.data(), bytes->encoded.size()));
  });
  REQUIRE(reply.isOk());
  CHECK(reply->body.find("insufficient-signatures") != std::string::npos);

  REQUIRE(run(A + " cosign " + d + "/c1 --key " + d + "/bob.key") == 0);
  CHECK(run(A + " submit " + d + "/c1 --socket " + sock) == 0);
  CHECK(run(A + " head --socket " + sock) == 0);
  auto base = admin::baseFromAgent(sock);
  REQUIRE(base.isOk());
  CHECK(base->head.seq == 1);
  CHECK(base->cluster_id == "prod");
  CHECK(base->state.daemons.at("web").spec.replicas == 2);

  // The same file again changes nothing: nothing to commit.
  CHECK(run(A + " sign-commit --key " + d + "/alice.key --file " + d + "/desired.toml --agent " +
            sock + " -o " + d + "/c2") == 1);
  // An empty desired file removes web.
  std::ofstream(d + "/empty.toml") << "";
  REQUIRE(run(A + " sign-commit --key " + d + "/alice.key --file " + d + "/empty.toml --agent " +
              sock + " -o " + d + "/c2") == 0);
  auto c2 = admin::readCommitFile(d + "/c2");
  REQUIRE(c2.isOk());
  REQUIRE(c2->commit.operations.size() == 1);
  CHECK(std::holds_alternative<OpRemoveDaemon>(c2->commit.operations[0]));
  CHECK(c2->commit.seq == 2);
  // A tampered commit: bad signature, rejected.
  Bytes tampered = c2->encoded;
  REQUIRE(run(A + " cosign " + d + "/c2 --key " + d + "/bob.key") == 0);
  auto c2s = admin::readCommitFile(d + "/c2");
  tampered = c2s->encoded;
  tampered[tampered.size() - 5] ^= 0x40;  // inside the last signature
  REQUIRE(admin::writeCommitBytes(d + "/bad", tampered).isOk());
  CHECK(run(A + " submit " + d + "/bad --socket " + sock) == 1);
  CHECK(run(A + " submit " + d + "/c2 --socket " + sock) == 0);
  CHECK(admin::baseFromAgent(sock)->head.seq == 2);
  CHECK(run(A + " head --socket " + d + "/nobody.sock") == 1);
}
