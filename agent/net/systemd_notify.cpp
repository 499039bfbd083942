#include "agent/net/systemd_notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstring>

namespace meshos::net {

void SystemdNotifier::ready(const std::string& status) {
  const int rc = sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
  if (rc < 0) spdlog::warn("systemd: READY=1 not sent: {}", std::strerror(-rc));
  if (rc <= 0) return;  // no NOTIFY_SOCKET: not run by systemd
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0 || watchdog_ != nullptr) return;
  const uint64_t every_ms = std::max<uint64_t>(usec / 2000, 1);
  watchdog_ = new uv_timer_t();
  uv_timer_init(loop_, watchdog_);
  // The ping must not keep a finished loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(watchdog_));
  uv_timer_start(watchdog_, [](uv_timer_t*) { sd_notify(0, "WATCHDOG=1"); }, every_ms, every_ms);
  spdlog::info("systemd: watchdog pings every {} ms", every_ms);
}

void SystemdNotifier::stopping(const std::string& why) {
  sd_notify(0, ("STOPPING=1\nSTATUS=stopping: " + why).c_str());
}

void SystemdNotifier::close() {
  if (watchdog_ == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(watchdog_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  watchdog_ = nullptr;
}

}  // namespace meshos::net
