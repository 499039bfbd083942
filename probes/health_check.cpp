#include "probes/health_check.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>

namespace meshos::probes {

// ---------------------------------------------------------------------------------------
// runCommand

namespace {

struct CommandRun {
  uv_process_t proc;
  uv_pipe_t out;
  uv_timer_t timer;
  int open_handles = 0;
  bool exited = false;
  bool eof = false;
  bool finished = false;
  size_t max_output = 0;
  CommandResult result;
  std::function<void(const CommandResult&)> done;
  char buf[16384];

  void maybeFinish(bool force) {
    if (finished || !((exited && eof) || force)) return;
    finished = true;
    auto cb = std::move(done);
    CommandResult r = std::move(result);
    uv_timer_stop(&timer);
    closeAll();
    if (cb) cb(r);
  }
  void closeAll() {
    auto onClose = [](uv_handle_t* h) {
      auto* self = static_cast<CommandRun*>(h->data);
      if (--self->open_handles == 0) delete self;
    };
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&out))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&out), onClose);
    }
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&timer), onClose);
    }
    // The process handle closes only once it has exited, so it is always reaped.
    if (exited && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&proc))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&proc), onClose);
    }
  }
};

}  // namespace

Status runCommand(uv_loop_t* loop, const std::vector<std::string>& argv, const CommandContext& ctx,
                  int64_t timeout_ms, size_t max_output,
                  std::function<void(const CommandResult&)> done) {
  if (argv.empty() || argv[0].empty()) return Status::invalid("exec: empty command");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::io(std::string("pipe: ") + std::strerror(errno));

  auto* run = new CommandRun();
  run->max_output = max_output;
  run->done = std::move(done);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : ctx.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = fds[1];
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = fds[1];
  uv_process_options_t opts{};
  opts.file = args[0];
  opts.args = args.data();
  opts.env = ctx.env.empty() ? nullptr : envp.data();
  opts.cwd = ctx.cwd.empty() ? nullptr : ctx.cwd.c_str();
  opts.stdio = stdio;
  opts.stdio_count = 3;
  opts.flags = UV_PROCESS_DETACHED;  // own session and process group: kill(-pid) reaches all
  if (ctx.uid) {
    opts.flags |= UV_PROCESS_SETUID;
    opts.uid = *ctx.uid;
  }
  if (ctx.gid) {
    opts.flags |= UV_PROCESS_SETGID;
    opts.gid = *ctx.gid;
  }
  opts.exit_cb = [](uv_process_t* p, int64_t status, int sig) {
    auto* self = static_cast<CommandRun*>(p->data);
    self->exited = true;
    self->result.exit_code = sig != 0 ? -1 : static_cast<int>(status);
    self->result.term_signal = sig;
    ::kill(-p->pid, SIGKILL);  // leftovers of the group would hold the pipe open
    if (self->finished) {
      uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) {
        auto* s = static_cast<CommandRun*>(h->data);
        if (--s->open_handles == 0) delete s;
      });
      return;
    }
    self->maybeFinish(false);
  };
  run->proc.data = run;
  int rc = uv_spawn(loop, &run->proc, &opts);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    // A failed uv_spawn still initialised the handle; it must be closed.
    run->open_handles = 1;
    uv_close(reinterpret_cast<uv_handle_t*>(&run->proc),
             [](uv_handle_t* h) { delete static_cast<CommandRun*>(h->data); });
    return Status::unavailable("exec " + argv[0] + ": " + uv_strerror(rc));
  }
  run->open_handles = 3;
  uv_pipe_init(loop, &run->out, 0);
  run->out.data = run;
  uv_pipe_open(&run->out, fds[0]);
  uv_timer_init(loop, &run->timer);
  run->timer.data = run;
  uv_timer_start(
      &run->timer,
      [](uv_timer_t* t) {
        auto* self = static_cast<CommandRun*>(t->data);
        if (!self->exited) {
          self->result.timed_out = true;
          ::kill(-self->proc.pid, SIGKILL);
          // Give the exit a moment to arrive; finish at the latest after this.
          uv_timer_start(t, [](uv_timer_t* t2) {
            static_cast<CommandRun*>(t2->data)->maybeFinish(true);
          }, 1000, 0);
          return;
        }
        self->maybeFinish(true);
      },
      static_cast<uint64_t>(timeout_ms), 0);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&run->out),
      [](uv_handle_t* h, size_t, uv_buf_t* b) {
        auto* self = static_cast<CommandRun*>(h->data);
        *b = uv_buf_init(self->buf, sizeof(self->buf));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
        auto* self = static_cast<CommandRun*>(s->data);
        if (n < 0) {
          uv_read_stop(s);
          self->eof = true;
          self->maybeFinish(false);
          return;
        }
        size_t room = self->max_output > self->result.output.size()
                          ? self->max_output - self->result.output.size()
                          : 0;
        size_t take = std::min(room, static_cast<size_t>(n));
        self->result.output.append(b->base, take);
        if (take < static_cast<size_t>(n)) self->result.truncated = true;
      });
  return Status::ok();
}

// ---------------------------------------------------------------------------------------
// checkOnce

namespace {

struct NetAttempt {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t connect_req;
  uv_write_t write_req;
  bool http = false;
  std::string request;
  std::string response;
  bool finished = false;
  int open_handles = 2;
  std::function<void(bool, const std::string&)> done;
  char buf[4096];

  void finish(bool ok, const std::string& detail) {
    if (finished) return;
    finished = true;
    auto cb = std::move(done);
    uv_timer_stop(&timer);
    auto onClose = [](uv_handle_t* h) {
      auto* self = static_cast<NetAttempt*>(h->data);
      if (--self->open_handles == 0) delete self;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), onClose);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), onClose);
    if (cb) cb(ok, detail);
  }

  // "HTTP/1.1 204 No Content" → 204, or -1 while incomplete / malformed.
  static int statusCode(const std::string& r) {
    auto eol = r.find("\r\n");
    if (eol == std::string::npos) eol = r.find('\n');
    if (eol == std::string::npos) return -1;
    if (r.compare(0, 5, "HTTP/") != 0) return 0;
    auto sp = r.find(' ');
    if (sp == std::string::npos || sp + 4 > eol) return 0;
    int code = 0;
    for (size_t i = sp + 1; i < sp + 4; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(r[i]))) return 0;
      code = code * 10 + (r[i] - '0');
    }
    return code;
  }
};

void deferFailure(uv_loop_t* loop, std::function<void(bool, const std::string&)> done,
                  std::string detail) {
  struct Deferred {
    uv_timer_t t;
    std::function<void(bool, const std::string&)> done;
    std::string detail;
  };
  auto* d = new Deferred{{}, std::move(done), std::move(detail)};
  uv_timer_init(loop, &d->t);
  d->t.data = d;
  uv_timer_start(&d->t, [](uv_timer_t* t) {
    auto* self = static_cast<Deferred*>(t->data);
    auto cb = std::move(self->done);
    std::string detail = self->detail;
    uv_close(reinterpret_cast<uv_handle_t*>(t),
             [](uv_handle_t* h) { delete static_cast<Deferred*>(h->data); });
    if (cb) cb(false, detail);
  }, 0, 0);
}

void netCheck(uv_loop_t* loop, const spec::HealthCheck& check,
              std::function<void(bool, const std::string&)> done) {
  sockaddr_storage addr{};
  std::string host = check.host == "localhost" ? "127.0.0.1" : check.host;
  const int port = static_cast<int>(check.port);
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return deferFailure(loop, std::move(done), "host '" + check.host + "' is not an IP address");
  }
  auto* a = new NetAttempt();
  a->http = check.type == spec::CheckType::kHttp;
  a->done = std::move(done);
  if (a->http) {
    a->request = "GET " + check.path + " HTTP/1.0\r\nHost: " + check.host +
                 "\r\nUser-Agent: meshos-health\r\nConnection: close\r\n\r\n";
  }
  uv_tcp_init(loop, &a->tcp);
  uv_timer_init(loop, &a->timer);
  a->tcp.data = a;
  a->timer.data = a;
  a->connect_req.data = a;
  a->write_req.data = a;
  uv_timer_start(&a->timer, [](uv_timer_t* t) {
    static_cast<NetAttempt*>(t->data)->finish(false, "timed out");
  }, static_cast<uint64_t>(check.timeout_ms), 0);
  int rc = uv_tcp_connect(&a->connect_req, &a->tcp, reinterpret_cast<sockaddr*>(&addr),
                          [](uv_connect_t* req, int status) {
    auto* self = static_cast<NetAttempt*>(req->data);
    if (self->finished) return;
    if (status < 0) return self->finish(false, std::string("connect: ") + uv_strerror(status));
    if (!self->http) return self->finish(true, "connected");
    uv_buf_t b = uv_buf_init(self->request.data(), static_cast<unsigned>(self->request.size()));
    uv_write(&self->write_req, reinterpret_cast<uv_stream_t*>(&self->tcp), &b, 1,
             [](uv_write_t* w, int st) {
               auto* s = static_cast<NetAttempt*>(w->data);
               if (st < 0 && !s->finished) s->finish(false, std::string("write: ") + uv_strerror(st));
             });
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&self->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* b2) {
          auto* s = static_cast<NetAttempt*>(h->data);
          *b2 = uv_buf_init(s->buf, sizeof(s->buf));
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* b2) {
          auto* s = static_cast<NetAttempt*>(st->data);
          if (s->finished) return;
          if (n > 0 && s->response.size() < 8192) s->response.append(b2->base, static_cast<size_t>(n));
          int code = NetAttempt::statusCode(s->response);
          if (code == -1 && n < 0) code = 0;
          if (code == -1 && s->response.size() >= 8192) code = 0;
          if (code == -1) return;
          if (code == 0) return s->finish(false, "malformed HTTP response");
          s->finish(code >= 200 && code < 400, "HTTP " + std::to_string(code));
        });
  });
  if (rc != 0) {
    // The connect callback will not run: fail on the next loop turn through the timer.
    uv_timer_start(&a->timer, [](uv_timer_t* t) {
      static_cast<NetAttempt*>(t->data)->finish(false, "connect failed");
    }, 0, 0);
  }
}

}  // namespace

void checkOnce(uv_loop_t* loop, const spec::HealthCheck& check, const CommandContext& ctx,
               std::function<void(bool ok, const std::string& detail)> done) {
  if (check.type == spec::CheckType::kExec) {
    auto shared = std::make_shared<std::function<void(bool, const std::string&)>>(std::move(done));
    Status s = runCommand(loop, check.command, ctx, check.timeout_ms, 4096,
                          [shared](const CommandResult& r) {
                            if (r.timed_out) return (*shared)(false, "timed out");
                            if (r.term_signal != 0) {
                              return (*shared)(false, "killed by signal " +
                                                          std::to_string(r.term_signal));
                            }
                            (*shared)(r.exit_code == 0, "exit " + std::to_string(r.exit_code));
                          });
    if (!s) deferFailure(loop, std::move(*shared), s.message());
    return;
  }
  netCheck(loop, check, std::move(done));
}

}  // namespace meshos::probes
