// OciImages: OCI image layouts unpacked once into a content-addressed store, for
// `image = "<layout>:<tag>"` containers (docs/RUNTIME.md "Containers").
//
// The tag is looked up in the layout's index.json; the manifest's digest names the store
// entry, <dir>/<sha256 hex>/rootfs, so the same image under two tags or two paths is
// unpacked once, and a tag moved to a new image gets a new entry. Unpacking runs
// `umoci raw unpack` (which checks every blob against its digest) into a temporary
// directory renamed into place when complete: an entry that exists is whole. Several
// starts of one image while it unpacks wait for the same unpack. No registry: an image
// comes as a layout on disk (`skopeo copy` makes one from a registry or an archive).
// Loop thread only.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/core/status.h"
#include "agent/core/timers.h"

namespace meshos::runtime {

// "sha256:<hex>" of the manifest tagged `tag` in an index.json's text; an error names
// what is wrong (not JSON, no such tag).
Result<std::string> manifestDigestForTag(const std::string& index_json, const std::string& tag);

class OciImages {
 public:
  using Done = std::function<void(Result<std::string> rootfs)>;
  OciImages(uv_loop_t* loop, Timers& timers, std::string dir) : loop_(loop), timers_(timers), dir_(std::move(dir)) {}
  // Finds umoci; without it, images cannot be unpacked (rootfs containers still run).
  Status init();
  // The unpacked root filesystem of `image` when it is in the store already (""
  // otherwise); an error when the reference or its layout is bad.
  Result<std::string> unpacked(const std::string& image) const;
  // Unpacks `image` (or waits for its unpack under way); done runs on the loop, later.
  void unpack(const std::string& image, Done done);
  size_t unpacks() const { return unpacks_; }

 private:
  struct Ref {
    std::string layout, tag, hex;
  };
  Result<Ref> resolve(const std::string& image) const;
  void finish(const std::string& hex, Result<std::string> result);

  uv_loop_t* loop_;
  Timers& timers_;
  std::string dir_;
  std::string umoci_;
  std::string umoci_missing_;
  std::map<std::string, std::vector<Done>> waiting_;  // digest hex -> starts waiting for its unpack
  size_t unpacks_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // see OciRuntime
};

}  // namespace meshos::runtime
