// SystemdNotifier: tells systemd (Type=notify, packaging/meshos-agent.service) how the
// agent is doing, through libsystemd's sd_notify. READY=1 once the control socket serves
// and the node started; WATCHDOG=1 from a timer on the loop, at half the WatchdogSec
// systemd asked for, so a stuck loop stops the pings and systemd restarts the agent;
// STOPPING=1 when the staged shutdown begins. Without NOTIFY_SOCKET every call does
// nothing. Loop thread only.
#pragma once

#include <uv.h>

#include <string>

namespace meshos::net {

class SystemdNotifier {
 public:
  explicit SystemdNotifier(uv_loop_t* loop) : loop_(loop) {}
  ~SystemdNotifier() { close(); }
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // READY=1 with a status line; starts the watchdog pings if systemd asked for them.
  void ready(const std::string& status);
  void stopping(const std::string& why);
  void close();  // stops the watchdog timer

 private:
  uv_loop_t* loop_;
  uv_timer_t* watchdog_ = nullptr;
};

}  // namespace meshos::net
