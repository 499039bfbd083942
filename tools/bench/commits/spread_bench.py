#!/usr/bin/env python3
"""Commit spreading figure: time from `meshos-admin submit` to every agent of an N-agent
loopback cluster at the new head (target: <= 1 s for 20 agents).

Starts N real meshos-agents (encrypted gossip, one admin key), waits until every agent sees
all N alive, then for each run signs a commit against one agent, submits it to that agent
and measures two times for every agent:
  accept   the commit.accepted record's time in the agent's audit chain (wall clock, the
           moment the agent's log took the new head) minus the wall time just before submit;
  report   the first time a poller (--pollers threads, `meshos-admin head --json` round robin
           over their agents) saw the new head from the agent's control socket, minus the same
           start time; an upper bound that includes the polling (each call is a process).
Prints per run the max over agents of both, then median and max over runs.

usage: spread_bench.py --build BUILD_DIR [--agents 20] [--runs 5] [--pollers 4] [--keep]
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout_s}s waiting for {what}")


class Cluster:
    def __init__(self, build, n, pollers):
        self.pollers = max(1, min(pollers, n))
        self.agent_bin = os.path.join(build, "agent/net/meshos-agent")
        self.inspect_bin = os.path.join(build, "tools/inspect/meshos-inspect")
        self.admin_bin = os.path.join(build, "tools/admin/meshos-admin")
        self.root = tempfile.mkdtemp(prefix="meshos-spread-bench-")
        self.n = n
        self.procs = []
        self.sockets = []

    def admin(self, *args):
        r = subprocess.run([self.admin_bin, *args], capture_output=True, text=True, timeout=30)
        if r.returncode not in (0,):
            raise SystemExit(f"meshos-admin {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout

    def inspect_json(self, i, *args):
        r = subprocess.run([self.inspect_bin, "--socket", self.sockets[i], *args, "--json"],
                           capture_output=True, text=True, timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def start(self):
        self.key = os.path.join(self.root, "alice")
        pub = self.admin("keygen", self.key).strip()
        keyring = os.path.join(self.root, "cluster.keyring")
        self.admin("keygen", "--cluster", keyring)
        ports = [free_port() for _ in range(self.n)]
        for i in range(self.n):
            d = os.path.join(self.root, f"n{i}")
            os.makedirs(d)
            seeds = f'seeds = ["127.0.0.1:{ports[0]}"]' if i else ""
            with open(os.path.join(d, "node.toml"), "w") as f:
                f.write(f"""[node]
name = "n{i}"
data_dir = "data"
tick_interval_ms = 100
[gossip]
cluster = "bench"
bind = "127.0.0.1:{ports[i]}"
keyring = "{keyring}"
probe_interval_ms = 500
probe_timeout_ms = 200
gossip_interval_ms = 100
{seeds}
[control]
socket = "agent.sock"
mode = "0600"
[trust]
admins = ["{pub}"]
threshold = 1
[log]
level = "warn"
""")
            self.sockets.append(os.path.join(d, "agent.sock"))
            self.procs.append(subprocess.Popen([self.agent_bin, "--config", os.path.join(d, "node.toml")],
                                               stdout=open(os.path.join(d, "agent.log"), "ab"),
                                               stderr=subprocess.STDOUT))
        names = {f"n{i}" for i in range(self.n)}

        def all_alive():
            for i in range(self.n):
                if self.procs[i].poll() is not None:
                    raise SystemExit(f"agent n{i} exited; see {self.root}/n{i}/agent.log")
                m = self.inspect_json(i, "members")
                if not m or {x["name"] for x in m["members"] if x["state"] == "alive"} != names:
                    return False
            return True

        t = time.monotonic()
        wait_for(all_alive, 60, f"all {self.n} agents to see each other alive")
        print(f"cluster of {self.n} agents converged in {time.monotonic() - t:.1f} s", flush=True)

    def stop(self, keep):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def accept_time_ms(self, i, commit_hash):
        j = self.inspect_json(i, "chain", "tail", "audit", "--count", "200")
        for r in (j or {}).get("records", []):
            if r["kind"] == "commit.accepted":
                try:
                    p = json.loads(r.get("payload_text", ""))
                except ValueError:
                    continue
                if p.get("hash") == commit_hash:
                    return r["time_ms"]
        return None

    def run_once(self, run, target):
        desired = os.path.join(self.root, f"desired{run}.toml")
        with open(desired, "w") as f:
            for k in range(run + 1):
                f.write(f'[[daemon]]\nname = "bench{k}"\nkind = "job"\ncommand = ["/bin/true"]\n\n')
        commit = os.path.join(self.root, f"c{run}")
        self.admin("sign-commit", "--key", self.key + ".key", "--file", desired, "--agent", self.sockets[target],
                   "-o", commit)
        want_seq = run + 1
        seen = [None] * self.n
        stop = threading.Event()

        def poll(mine):
            # A few pollers, round robin over their agents: one meshos-inspect process per
            # agent at once would load the machine and slow the agents being measured.
            while not stop.is_set() and any(seen[i] is None for i in mine):
                for i in mine:
                    if seen[i] is not None or stop.is_set():
                        continue
                    r = subprocess.run([self.admin_bin, "head", "--socket", self.sockets[i], "--json"],
                                       capture_output=True, text=True, timeout=30)
                    if r.returncode == 0 and json.loads(r.stdout)["head"]["seq"] == want_seq:
                        seen[i] = time.time()

        threads = [threading.Thread(target=poll, args=(list(range(k, self.n, self.pollers)),))
                   for k in range(self.pollers)]
        start_wall = time.time()
        for t in threads:
            t.start()
        r = subprocess.run([self.admin_bin, "submit", commit, "--socket", self.sockets[target], "--json"],
                           capture_output=True, text=True, timeout=30)
        reply = json.loads(r.stdout)
        if reply.get("outcome") != "accepted":
            stop.set()
            raise SystemExit(f"submit: {reply}")
        deadline = time.monotonic() + 30
        while any(x is None for x in seen) and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join()
        if any(x is None for x in seen):
            missing = [f"n{i}" for i, x in enumerate(seen) if x is None]
            raise SystemExit(f"run {run}: {missing} never reported seq {want_seq}")
        report_ms = max(x - start_wall for x in seen) * 1000
        accepts = [self.accept_time_ms(i, reply["hash"]) for i in range(self.n)]
        if any(a is None for a in accepts):
            raise SystemExit(f"run {run}: an agent has no commit.accepted record")
        accept_ms = max(accepts) - start_wall * 1000
        sync = [self.inspect_json(i, "snapshot")["commits"]["sync"] for i in range(self.n)]
        fetched = sum(s["fetched_commits_accepted"] for s in sync)
        print(f"run {run + 1}: seq {want_seq} submitted to n{target}: all {self.n} accepted within "
              f"{accept_ms:.0f} ms, all reported within {report_ms:.0f} ms (fetched so far: {fetched})", flush=True)
        return accept_ms, report_ms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="meson build directory with the binaries")
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pollers", type=int, default=4, help="threads polling the heads")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    c = Cluster(os.path.abspath(args.build), args.agents, args.pollers)
    try:
        c.start()
        accepts, reports = [], []
        for run in range(args.runs):
            a, r = c.run_once(run, (run * 7) % args.agents)
            accepts.append(a)
            reports.append(r)
        print(f"agents={args.agents} runs={args.runs}: submit -> every agent accepted: median "
              f"{statistics.median(accepts):.0f} ms, max {max(accepts):.0f} ms; every agent reporting "
              f"the head (meshos-admin head): median {statistics.median(reports):.0f} ms, max {max(reports):.0f} ms")
    finally:
        c.stop(args.keep)


if __name__ == "__main__":
    sys.exit(main())
