#!/usr/bin/env python3
"""agent_footprint_bench: meshos-agent start-up time, idle RSS and idle CPU.

  python3 tools/bench/node/agent_footprint_bench.py build [--runs 20] [--idle-s 30]

Start-up: from exec to a control socket that answers a ping (median and max of --runs).
Idle: one agent left alone for --idle-s seconds; RSS from /proc/PID/status, CPU from
utime+stime in /proc/PID/stat over that window.
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

def serving(path):
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--idle-s", type=float, default=30)
    a = ap.parse_args()
    agent = os.path.join(a.build, "agent/net/meshos-agent")
    tick = os.sysconf("SC_CLK_TCK")
    with tempfile.TemporaryDirectory(prefix="meshos-bench-") as d:
        cfg = os.path.join(d, "node.toml")
        with open(cfg, "w") as f:
            f.write('[node]\nname = "bench"\ndata_dir = "data"\n[gossip]\nbind = "127.0.0.1:0"\n'
                    '[control]\nsocket = "agent.sock"\n[log]\nlevel = "warn"\n')
        sock = os.path.join(d, "agent.sock")
        times = []
        for _ in range(a.runs):
            shutil.rmtree(os.path.join(d, "data"), ignore_errors=True)  # a new data directory each run
            t0 = time.monotonic()
            p = subprocess.Popen([agent, "--config", cfg])
            while not serving(sock):
                if time.monotonic() - t0 > 10 or p.poll() is not None:
                    sys.exit("agent did not start")
                time.sleep(0.0005)
            times.append((time.monotonic() - t0) * 1000)
            p.terminate()  # at once: a stop as soon as the socket serves is a graceful one
            assert p.wait(10) == 0
        times.sort()
        print(f"start-up to serving socket: median {times[len(times)//2]:.1f} ms, "
              f"max {times[-1]:.1f} ms over {a.runs} runs")
        p = subprocess.Popen([agent, "--config", cfg])
        while not serving(sock):
            time.sleep(0.001)
        time.sleep(1)

        def cpu_ticks():
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])

        c0, t0 = cpu_ticks(), time.monotonic()
        time.sleep(a.idle_s)
        c1, t1 = cpu_ticks(), time.monotonic()
        rss = 0
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        p.terminate()
        p.wait(10)
        cpu = (c1 - c0) / tick / (t1 - t0) * 100
        print(f"idle over {t1 - t0:.0f} s: RSS {rss / 1024:.1f} MiB, CPU {cpu:.3f} %")


if __name__ == "__main__":
    main()
