#include "agent/runtime/oci_images.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/runtime/instance_store.h"
#include "agent/runtime/oci_commands.h"

namespace meshos::runtime {

Result<std::string> manifestDigestForTag(const std::string& index_json, const std::string& tag) {
  auto j = nlohmann::json::parse(index_json, nullptr, false);
  if (!j.is_object() || !j.contains("manifests") || !j["manifests"].is_array()) {
    return Status::invalid("index.json is not an OCI image index");
  }
  for (const auto& m : j["manifests"]) {
    if (!m.is_object() || !m.contains("annotations") || !m["annotations"].is_object()) continue;
    const auto& a = m["annotations"];
    auto ref = a.find("org.opencontainers.image.ref.name");
    if (ref == a.end() || !ref->is_string() || ref->get<std::string>() != tag) continue;
    const std::string digest = m.value("digest", std::string());
    const std::string hex = digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : "";
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return Status::invalid("tag '" + tag + "': not a sha256 digest: '" + digest + "'");
    }
    return digest;
  }
  return Status::invalid("no tag '" + tag + "' in the layout");
}

Status OciImages::init() {
  MESHOS_RETURN_IF_ERROR(makeDirs(dir_));
  umoci_ = findExecutable("umoci");
  if (umoci_.empty()) umoci_missing_ = "umoci not found (apt-get install umoci): images cannot be unpacked";
  return Status::ok();
}

Result<OciImages::Ref> OciImages::resolve(const std::string& image) const {
  const size_t colon = image.rfind(':');
  if (colon == std::string::npos) return Status::invalid("image '" + image + "': expected <layout>:<tag>");
  Ref ref{image.substr(0, colon), image.substr(colon + 1), ""};
  std::ifstream in(ref.layout + "/index.json");
  if (!in) return Status::invalid("image '" + image + "': no OCI layout at " + ref.layout + " (no index.json)");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto digest = manifestDigestForTag(text, ref.tag);
  if (!digest) return Status::invalid("image '" + image + "': " + digest.status().message());
  ref.hex = digest->substr(7);
  return ref;
}

Result<std::string> OciImages::unpacked(const std::string& image) const {
  auto ref = resolve(image);
  if (!ref) return ref.status();
  const std::string rootfs = dir_ + "/" + ref->hex + "/rootfs";
  struct stat st{};
  return ::stat(rootfs.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? rootfs : std::string();
}

void OciImages::unpack(const std::string& image, Done done) {
  auto ref = resolve(image);
  auto fail = [&](Status why) { (void)timers_.after(0, [done = std::move(done), why] { done(why); }); };
  if (!ref) return fail(ref.status());
  if (umoci_.empty()) return fail(Status::invalid(umoci_missing_));
  auto& queue = waiting_[ref->hex];
  queue.push_back(std::move(done));
  if (queue.size() > 1) return;  // its unpack is under way
  ++unpacks_;
  const std::string entry = dir_ + "/" + ref->hex;
  const std::string tmp = dir_ + "/.unpack-" + ref->hex;
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);  // a half unpack an earlier agent left
  const std::vector<std::string> argv{umoci_, "raw", "unpack", "--image", ref->layout + ":" + ref->tag, tmp};
  Status s = runProgram(loop_, argv, -1, dir_ + "/.unpack-" + ref->hex + ".log",
                        [this, alive = std::weak_ptr<bool>(alive_), hex = ref->hex, entry, tmp, image](const OciCommandResult& r) {
    if (alive.expired()) return;
    if (!r.ok()) return finish(hex, Status::invalid("image '" + image + "': umoci could not unpack it: " + r.error));
    std::error_code e;
    std::filesystem::create_directories(entry, e);
    if (::rename(tmp.c_str(), (entry + "/rootfs").c_str()) != 0 && errno != EEXIST && errno != ENOTEMPTY) {
      return finish(hex, Status::io("rename " + tmp + ": " + std::strerror(errno)));
    }
    std::filesystem::remove_all(tmp, e);
    (void)::unlink((dir_ + "/.unpack-" + hex + ".log").c_str());
    finish(hex, entry + "/rootfs");
  });
  if (!s) finish(ref->hex, s);
}

void OciImages::finish(const std::string& hex, Result<std::string> result) {
  auto it = waiting_.find(hex);
  if (it == waiting_.end()) return;
  std::vector<Done> done = std::move(it->second);
  waiting_.erase(it);
  for (auto& d : done) d(result);
}

}  // namespace meshos::runtime
