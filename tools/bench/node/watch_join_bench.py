#!/usr/bin/env python3
"""How soon `meshos-inspect watch` prints a member joining, and what HTTP /metrics costs.

Starts agent a (HTTP on), follows it with `meshos-inspect watch --json --kinds members`,
then, RUNS times: starts a fresh agent b without seeds, waits until it serves, runs
`meshos-admin join <a> --socket <b>` and takes the time from that command's start to the
watch printing b alive; stops b (graceful leave) before the next run. Also times GET /metrics
and GET /v1/members on a (cold: first request; warm: median of 200).

  python3 tools/bench/node/watch_join_bench.py build [--runs 20]
"""
import argparse
import http.client
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_agent(build, root, name, http_port=None):
    d = os.path.join(root, name)
    os.makedirs(d)
    port = free_port(socket.SOCK_DGRAM)
    with open(os.path.join(d, "node.toml"), "w") as f:
        f.write(f'[node]\nname = "{name}"\ndata_dir = "data"\n[gossip]\ncluster = "bench-watch"\n'
                f'bind = "127.0.0.1:{port}"\nprobe_interval_ms = 200\nprobe_timeout_ms = 100\n'
                f'gossip_interval_ms = 50\n[control]\nsocket = "agent.sock"\n'
                + (f'http = "127.0.0.1:{http_port}"\n' if http_port else ""))
    p = subprocess.Popen([os.path.join(build, "agent/net/meshos-agent"), "--config", os.path.join(d, "node.toml")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = os.path.join(d, "agent.sock")
    deadline = time.monotonic() + 10
    inspect = os.path.join(build, "tools/inspect/meshos-inspect")
    while subprocess.run([inspect, "--socket", sock, "ping"], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline and p.poll() is None, f"{name} did not serve"
        time.sleep(0.01)
    return p, sock, port


class Lines:
    """Lines of a pipe, each with a deadline (select() on a buffered file would miss lines
    already in its buffer)."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def next(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, left))
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def timed_get(port, path):
    t = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    body = c.getresponse().read()
    c.close()
    return (time.monotonic() - t) * 1000, len(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    root = tempfile.mkdtemp(prefix="meshos-bench-watch-")
    procs = []
    try:
        http_port = free_port(socket.SOCK_STREAM)
        a, a_sock, a_port = start_agent(build, root, "a", http_port)
        procs.append(a)
        watch = subprocess.Popen([os.path.join(build, "tools/inspect/meshos-inspect"), "--socket", a_sock, "watch",
                                  "--json", "--kinds", "members"], stdout=subprocess.PIPE)
        procs.append(watch)
        lines = Lines(watch.stdout)
        assert json.loads(lines.next(10))["kind"] == "watching"
        join_ms = []
        for i in range(args.runs):
            name = f"b{i}"
            b, b_sock, _ = start_agent(build, root, name)
            procs.append(b)
            t0 = time.monotonic()
            subprocess.run([os.path.join(build, "tools/admin/meshos-admin"), "join", f"127.0.0.1:{a_port}",
                            "--socket", b_sock, "--reason", "bench"], check=True, capture_output=True)
            while True:
                line = lines.next(5)
                if line is None:
                    members = subprocess.run([os.path.join(build, "tools/inspect/meshos-inspect"), "--socket", a_sock,
                                              "members"], capture_output=True, text=True).stdout
                    raise AssertionError(f"watch printed nothing for {name}; a sees:\n{members}")
                e = json.loads(line)
                if e["kind"] == "members" and e["data"]["name"] == name and e["data"]["state"] == "alive":
                    join_ms.append((time.monotonic() - t0) * 1000)
                    break
            b.send_signal(signal.SIGTERM)
            b.wait(15)
        cold_metrics = timed_get(http_port, "/metrics")
        warm = {path: statistics.median(timed_get(http_port, path)[0] for _ in range(200))
                for path in ("/metrics", "/v1/members")}
        join_ms.sort()
        print(f"watch saw the join: median {statistics.median(join_ms):.1f} ms, p90 "
              f"{join_ms[int(0.9 * (len(join_ms) - 1))]:.1f} ms, max {join_ms[-1]:.1f} ms over {len(join_ms)} joins "
              f"(from the start of meshos-admin join)")
        print(f"GET /metrics: first {cold_metrics[0]:.2f} ms ({cold_metrics[1]} bytes), then median "
              f"{warm['/metrics']:.2f} ms; GET /v1/members median {warm['/v1/members']:.2f} ms")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
