#include "agent/runtime/runtime.h"

#include "agent/core/bytes.h"
#include "agent/core/crypto.h"

namespace meshos::runtime {

std::string_view processStateName(ProcessState s) {
  switch (s) {
    case ProcessState::kCreated: return "created";
    case ProcessState::kRunning: return "running";
    case ProcessState::kStopping: return "stopping";
    case ProcessState::kExited: return "exited";
  }
  return "?";
}

std::string specHash(const spec::DaemonSpec& spec) {
  (void)initCrypto();
  Bytes b = spec::canonicalBytes(spec);
  Hash256 h = blake2b256(b);
  return toHex(ByteView(h.data(), h.size()));
}

}  // namespace meshos::runtime
