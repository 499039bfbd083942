#!/usr/bin/env python3
"""DNS over UDP, the path users run: dnsperf (Debian's dnsperf) against one agent of a
3-node loopback cluster (tools/cluster, --fast) running examples/web.toml (3 ready
replicas). Reports answers per second, latency, the response codes, and the agent's CPU
time over the run (its loop is one thread, so answers per CPU-second is the one-core rate).

  tools/bench/discovery/dns_load.py [--build build] [--seconds 10] [--clients 4]

Query mix: A web.service, SRV _http._tcp.web.service, A n1.node, A nope.service (NXDOMAIN).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CLUSTER = os.path.join(ROOT, "tools", "cluster", "cluster.py")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    if subprocess.run(["which", "dnsperf"], capture_output=True).returncode != 0:
        sys.exit("dns_load: needs dnsperf (apt-get install dnsperf)")
    root = tempfile.mkdtemp(prefix="meshos-dns-bench-")
    d = os.path.join(root, "c")
    name = "dnsbench"

    def cl(*a, check=True):
        r = subprocess.run([sys.executable, CLUSTER, *a, "--dir", d, "--build", args.build], capture_output=True,
                           text=True, timeout=180)
        if check and r.returncode != 0:
            sys.exit(f"tools/cluster {' '.join(a)}: {r.stdout}{r.stderr}")
        return r

    cl("up", "3", "--name", name, "--net", "31", "--fast")
    try:
        cl("apply", os.path.join(ROOT, "examples", "web.toml"))
        cl("wait", "web", "--timeout", "60")
        with open(os.path.join(d, "cluster.json")) as f:
            n1 = json.load(f)["nodes"][0]
        with open(n1["pidfile"]) as f:
            pid = int(f.read())
        queries = os.path.join(root, "queries.txt")
        with open(queries, "w") as f:
            f.write(f"web.service.{name}. A\n_http._tcp.web.service.{name}. SRV\n"
                    f"n1.node.{name}. A\nnope.service.{name}. A\n")
        cpu0 = cpu_seconds(pid)
        r = subprocess.run(["dnsperf", "-s", n1["host"], "-p", "8600", "-d", queries, "-l", str(args.seconds),
                            "-c", str(args.clients), "-T", str(args.clients), "-q", "500"],
                           capture_output=True, text=True, timeout=args.seconds + 60)
        cpu = cpu_seconds(pid) - cpu0
        out = r.stdout
        qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
        completed = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
        lost = re.search(r"Queries lost:\s+(\d+)", out).group(1)
        lat = re.search(r"Average Latency \(s\):\s+([\d.]+).*?max ([\d.]+)", out)
        codes = re.search(r"Response codes:\s+(.*)", out).group(1)
        print(f"dns_load: {args.seconds} s, {args.clients} dnsperf clients against {n1['host']}:8600 (3 nodes, web 3 ready)")
        print(f"  {qps:.0f} answers/s, {completed} completed, {lost} lost; latency avg {float(lat.group(1)) * 1e3:.3f} ms, "
              f"max {float(lat.group(2)) * 1e3:.3f} ms")
        print(f"  response codes: {codes}")
        print(f"  agent CPU over the run: {cpu:.2f} s -> {completed / max(cpu, 1e-9):.0f} answers per CPU-second")
    finally:
        cl("down", check=False)


if __name__ == "__main__":
    main()
