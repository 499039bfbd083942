// Images (agent/runtime/oci_images.h): the tag found in a layout's index.json, bad
// layouts and tags named; and the real thing: a layout made with umoci from busybox is
// unpacked once into the content-addressed store, however many instances start from it.
#include <doctest/doctest.h>
#include <uv.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "agent/core/clock.h"
#include "agent/core/file_system.h"
#include "agent/net/uv_loop.h"
#include "agent/runtime/oci_images.h"
#include "agent/runtime/oci_runtime.h"
#include "tests/temp_dir.h"
#include "tests/unit/runtime/busybox_rootfs.h"

using namespace meshos;
using namespace meshos::runtime;

namespace {

const std::string kDigest = "sha256:646a95272510beb940efc763c3537ff4863c004abb4d2799079dda3cc2651780";

std::string index(const std::string& tag, const std::string& digest) {
  return R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
         digest + R"(","size":192,"annotations":{"org.opencontainers.image.ref.name":")" + tag + R"("}}]})";
}

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

}  // namespace

TEST_CASE("oci images: a tag is found in index.json; what is wrong is named") {
  CHECK(*manifestDigestForTag(index("v1", kDigest), "v1") == kDigest);
  CHECK(manifestDigestForTag(index("v1", kDigest), "v2").status().message() == "no tag 'v2' in the layout");
  CHECK(manifestDigestForTag("not json", "v1").status().message() == "index.json is not an OCI image index");
  CHECK(manifestDigestForTag(index("v1", "sha256:../../etc"), "v1").status().message().find("not a sha256 digest") !=
        std::string::npos);
  CHECK(!manifestDigestForTag(index("v1", "md5:abc"), "v1"));
}

TEST_CASE("oci images: a busybox layout is unpacked once, and its containers run") {
  if (std::string why = meshos::testing::containerSkipReason(); !why.empty() || !sh("command -v umoci")) {
    MESSAGE("skipped: " << (why.empty() ? "no umoci (tools/dev installs it)" : why));
    return;
  }
  meshos::testing::TempDir tmp("meshos-images");
  const std::string layout = (tmp.path / "layout").string();
  const std::string work = (tmp.path / "work").string();
  // The image: umoci's empty one, with busybox's root filesystem added as a layer.
  REQUIRE(sh("umoci init --layout " + layout + " && umoci new --image " + layout + ":v1 && umoci unpack --image " +
             layout + ":v1 " + work));
  const auto rootfs = meshos::testing::makeBusyboxRootfs(tmp.path / "src");
  REQUIRE(sh("cp -a " + rootfs.string() + "/. " + work + "/rootfs/ && umoci repack --image " + layout + ":v1 " + work));

  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    SystemClock clock;
    PosixFileSystem fs;
    UvTimers timers(&loop);
    auto store = FileInstanceStore::open(fs, (tmp.path / "data/runtime/instances").string());
    REQUIRE(store);
    OciRuntimeOptions o;
    o.data_dir = (tmp.path / "data").string();
    o.cgroup_parent = "meshos-images-test";
    OciRuntime rt(&loop, clock, **store, o);
    REQUIRE(rt.init());
    std::map<std::string, ExitInfo> exits;
    rt.setExitCallback([&](const std::string& i, const ExitInfo& e) { exits[i] = e; });
    auto turnUntil = [&](const std::function<bool()>& pred) {
      const int64_t deadline = clock.monotonicMs() + 20'000;
      bool tick = false;
      while (!pred() && clock.monotonicMs() < deadline) {
        timers.after(5, [&] { tick = true; });
        while (!tick) uv_run(&loop, UV_RUN_ONCE);
        tick = false;
      }
      return pred();
    };
    spec::DaemonSpec s;
    s.name = "imaged";
    s.command = {"/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"};
    s.runtime = spec::RuntimeKind::kOci;
    s.container.image = layout + ":v1";
    s.user = "nobody";
    for (const char* i : {"imaged#0", "imaged#1"}) {
      REQUIRE(rt.create(i, s));
      REQUIRE(rt.start(i));
    }
    auto running = [&](const char* i) { return rt.status(i)->pid > 0; };
    CHECK(turnUntil([&] { return running("imaged#0") && running("imaged#1"); }));
    INFO("exits: " << (exits.empty() ? "" : exits.begin()->second.detail));
    CHECK(rt.imageUnpacks() == 1);
    const auto entries = std::distance(std::filesystem::directory_iterator(tmp.path / "data/runtime/oci/images"),
                                       std::filesystem::directory_iterator());
    CHECK(entries == 1);  // the entry alone: no temporary left
    std::optional<ExecResult> out;
    REQUIRE(rt.exec("imaged#1", {"/bin/id", "-u"}, 5'000, 4096, [&](Result<ExecResult> r) { out = *r; }));
    CHECK(turnUntil([&] { return out.has_value(); }));
    CHECK(out->output == "65534\n");

    // A tag the layout does not have: refused at create, named.
    spec::DaemonSpec bad = s;
    bad.name = "nosuch";
    bad.container.image = layout + ":v2";
    CHECK(rt.create("nosuch#0", bad).message().find("no tag 'v2' in the layout") != std::string::npos);

    for (const char* i : {"imaged#0", "imaged#1"}) REQUIRE(rt.stop(i, 2'000));
    CHECK(turnUntil([&] { return exits.size() == 2; }));
    bool slept = false;
    timers.after(300, [&] { slept = true; });  // their `delete`
    while (!slept) uv_run(&loop, UV_RUN_ONCE);
    rt.close();
    timers.close();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  meshos::testing::removeCgroupParent("meshos-images-test");
}
