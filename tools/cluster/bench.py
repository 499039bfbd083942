#!/usr/bin/env python3
"""tools/cluster/bench.py: figures from a real cluster on this machine, for docs/BENCHMARKS.md.

For each cluster size N (--nodes 3,20): `up N` in a temporary directory, then
  - apply -> ready: time from `apply examples/web.toml` (its replicas set by --replicas) to
    that many ready instances on distinct nodes;
  - kill -> elsewhere: time from SIGKILL of a node running a replica (agent and daemons, a
    machine crash) to the same number of ready instances on the other nodes;
  - agent RSS and CPU per node over --stats-seconds (idle cluster with the service running);
then `down`. Each timing is the wall clock of the polling loop (status every ~0.2 s), so it
overstates by up to one poll. Prints one line per figure, `figures:` first.

  tools/cluster/bench.py --build build --nodes 3,20 [--fast] [--netns]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "cluster.py")
WEB = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples", "web.toml")


def tool(d, *args, timeout=300):
    r = subprocess.run([sys.executable, CLUSTER, *args, "--dir", d], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise SystemExit(f"tools/cluster {' '.join(args)} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r.stdout


def web(d):
    st = json.loads(tool(d, "status", "--json", "--no-verify"))
    return next((x for x in st["daemons"] if x["name"] == "web"), None), st


def wait_ready(d, want, timeout_s, exclude=()):
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        w, _ = web(d)
        if (w and len(set(w["ready_on"])) == want and len(w["running_on"]) == want
                and not set(w["running_on"]) & set(exclude)):
            return time.monotonic() - start, w
        time.sleep(0.2)
    raise SystemExit(f"web did not reach {want} ready within {timeout_s}s: {web(d)[0]}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", default="3,20")
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--netns", action="store_true")
    p.add_argument("--fast", action="store_true", help="probe 200 ms timings (default: up's defaults)")
    p.add_argument("--build")
    p.add_argument("--stats-seconds", type=float, default=10)
    p.add_argument("--net", type=int, default=50)
    a = p.parse_args()
    try:
        sizes = [int(x) for x in a.nodes.split(",")]
    except ValueError:
        raise SystemExit("--nodes: a comma list of cluster sizes, e.g. 3,20") from None
    if a.build:
        os.environ["MESHOS_BUILD"] = os.path.abspath(a.build)
    with open(WEB) as f:
        spec = f.read()
    for k, n in enumerate(sizes):
        if a.replicas > n:
            raise SystemExit(f"--replicas {a.replicas} > {n} nodes (web allows one per node)")
        root = tempfile.mkdtemp(prefix="meshos-bench-")
        d = os.path.join(root, "c")
        try:
            up = ["up", str(n), "--net", str(a.net + k), "--name", f"bench{n}", "--timeout", "120"]
            up += (["--netns"] if a.netns else []) + (["--fast"] if a.fast else [])
            t = time.monotonic()
            tool(d, *up)
            up_s = time.monotonic() - t
            file = os.path.join(root, "web.toml")
            with open(file, "w") as f:
                f.write(spec.replace("replicas = 3", f"replicas = {a.replicas}"))
            t = time.monotonic()
            tool(d, "apply", file, "--wait", "0")
            ready_s, w = wait_ready(d, a.replicas, 120)
            ready_s = time.monotonic() - t
            victim = w["ready_on"][0]
            moved = "n/a (no spare node: one replica per node)"
            if n > a.replicas:
                t = time.monotonic()
                tool(d, "kill", victim, "--with-daemons")
                wait_ready(d, a.replicas, 120, exclude=[victim])
                moved = f"{time.monotonic() - t:.2f}s"
            stats = json.loads(tool(d, "stats", "--seconds", str(a.stats_seconds), "--json"))["agents"]
            rss = sorted(x["rss_kib"] for x in stats)
            cpu = sorted(x["cpu_percent"] for x in stats)
            mode = ("netns" if a.netns else "loopback") + (", --fast" if a.fast else "")
            print(f"figures: {n} agents ({mode}), web {a.replicas} replicas: up+converged {up_s:.2f}s; "
                  f"apply -> {a.replicas} ready {ready_s:.2f}s; SIGKILL {victim} -> {a.replicas} ready elsewhere "
                  f"{moved}", flush=True)
            print(f"figures: {n} agents: RSS KiB min {rss[0]} median {rss[len(rss) // 2]} max {rss[-1]}; "
                  f"CPU % of a core over {a.stats_seconds:g}s min {cpu[0]} median {cpu[len(cpu) // 2]} "
                  f"max {cpu[-1]}", flush=True)
        finally:
            subprocess.run([sys.executable, CLUSTER, "down", "--dir", d], capture_output=True, timeout=120)
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
