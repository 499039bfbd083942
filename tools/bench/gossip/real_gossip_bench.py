#!/usr/bin/env python3
"""real_gossip_bench: membership figures from N real agents on loopback, default timings.

  python3 tools/bench/gossip/real_gossip_bench.py --build build [--nodes 20] [--runs 3]
                                                  [--idle-s 30] [--net 60]

Makes a cluster with tools/cluster (each agent on its own 127.0.X.i address, encrypted
gossip) with the agent's own default timings (probe 1 s, gossip 200 ms, push-pull 30 s,
tick 500 ms; `up` would otherwise shorten tick and push-pull). Then, --runs times:
  - join: every agent stopped (SIGTERM, graceful leave), all N started at once; time from
    the first start until every agent sees N alive;
  - failure detection: SIGKILL of one agent; time until every other agent holds it dead
    (and until all hold it suspect or dead); the agent is started again before the next run;
and once, with the cluster idle for --idle-s: CPU per agent, and memory per agent as VmRSS,
as PSS (shared library pages divided among the processes that map them) and as private
pages. Each time is the wall clock of a polling loop (every agent asked in turn, about
0.3 s a round at N = 20), so it overstates by up to one round.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "cluster"))
import cluster as cl  # noqa: E402  (tools/cluster/cluster.py: the cluster helpers)

AGENT_DEFAULTS = ["node.tick_interval_ms=500", "gossip.push_pull_interval_ms=30000"]


def states(c, viewer):
    v = cl.members_view(c, viewer)
    return {name: m["state"] for name, m in v.items()} if v else None


def wait_all(c, viewers, pred, timeout_s):
    """Polls each viewer's member table until pred(table) holds for all; seconds taken."""
    start = time.monotonic()
    pending = list(viewers)
    while pending:
        if time.monotonic() - start > timeout_s:
            raise SystemExit(f"not reached within {timeout_s}s for {[n['name'] for n in pending]}")
        pending = [n for n in pending if not pred(states(c, n) or {})]
    return time.monotonic() - start


def memory(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("Pss", "Private_Clean", "Private_Dirty"):
                out[k] = int(rest.split()[0])
    out["private"] = out.pop("Private_Clean", 0) + out.pop("Private_Dirty", 0)
    return out


def stats(xs):
    xs = sorted(xs)
    return f"min {xs[0]:.2f} median {xs[len(xs) // 2]:.2f} max {xs[-1]:.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", required=True)
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--idle-s", type=float, default=30)
    p.add_argument("--net", type=int, default=60)
    a = p.parse_args()
    if not 3 <= a.nodes <= 200 or not 1 <= a.runs <= 20 or not 1 <= a.idle_s <= 600:
        raise SystemExit("--nodes 3..200, --runs 1..20, --idle-s 1..600")
    root = tempfile.mkdtemp(prefix="meshos-gossip-bench-")
    d = os.path.join(root, "c")
    up = [sys.executable, os.path.join(os.path.dirname(HERE), "..", "cluster", "cluster.py"), "up", str(a.nodes),
          "--dir", d, "--build", a.build, "--net", str(a.net), "--name", "gbench", "--timeout", "180"]
    for s in AGENT_DEFAULTS:
        up += ["--set", s]
    try:
        subprocess.run(up, check=True, capture_output=True, text=True, timeout=600)
        c = cl.load(SimpleNamespace(dir=d, build=a.build))
        nodes = c["nodes"]
        names = {n["name"] for n in nodes}
        joins, detect_dead, detect_suspect = [], [], []
        for run in range(a.runs):
            for n in nodes:
                cl.stop_agent(n, 10)
            t0 = time.monotonic()
            procs = {n["name"]: cl.start_agent(c, n) for n in nodes}
            cl.wait_serving(c, nodes, procs, 120)
            wait_all(c, nodes, lambda v: all(v.get(m) == "alive" for m in names), 300)
            joins.append(time.monotonic() - t0)

            victim = nodes[(run * 7 + 3) % len(nodes)]
            others = [n for n in nodes if n is not victim]
            time.sleep(2)  # a settled cluster, not one still finishing its join
            cl.signal_pid(cl.agent_pid(victim), 9)
            suspect = wait_all(c, others, lambda v: v.get(victim["name"]) in ("suspect", "dead"), 120)
            detect_suspect.append(suspect)
            detect_dead.append(suspect + wait_all(c, others, lambda v: v.get(victim["name"]) == "dead", 120))
            print(f"run {run + 1}: join {joins[-1]:.2f}s; SIGKILL {victim['name']} -> all suspect "
                  f"{detect_suspect[-1]:.2f}s, all dead {detect_dead[-1]:.2f}s", flush=True)
            p = cl.start_agent(c, victim)
            cl.wait_serving(c, [victim], {victim["name"]: p}, 60)
            wait_all(c, nodes, lambda v: all(v.get(m) == "alive" for m in names), 300)

        pids = [cl.agent_pid(n) for n in nodes]
        hz = os.sysconf("SC_CLK_TCK")
        first = [cl.proc_usage(p)[0] for p in pids]
        t0 = time.monotonic()
        time.sleep(a.idle_s)
        dt = time.monotonic() - t0
        cpu = [100.0 * (cl.proc_usage(p)[0] - f) / hz / dt for p, f in zip(pids, first)]
        mem = [memory(p) for p in pids]
        print(f"figures: {a.nodes} agents, default timings, {a.runs} runs: join {stats(joins)} s; "
              f"SIGKILL -> all suspect {stats(detect_suspect)} s; -> all dead {stats(detect_dead)} s", flush=True)
        print(f"figures: idle over {a.idle_s:g}s: CPU % of a core per agent {stats(cpu)}; "
              f"VmRSS MiB {stats([m['rss'] / 1024 for m in mem])}; PSS MiB {stats([m['Pss'] / 1024 for m in mem])}; "
              f"private MiB {stats([m['private'] / 1024 for m in mem])}", flush=True)
    finally:
        subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "..", "cluster", "cluster.py"), "down",
                        "--dir", d], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
