#!/usr/bin/env python3
"""DNS over UDP, the path users run: dnsperf (Debian's dnsperf) against one agent of a
3-node loopback cluster (tools/cluster, --fast) running examples/web.toml (3 ready
replicas). Reports answers per second, latency, the response codes, and the agent's CPU
time over the run (its loop is one thread, so answers per CPU-second is the one-core rate).

  tools/bench/discovery/dns_load.py [--build build] [--seconds 10] [--clients 4]

Query mix: A web.service, SRV _http._tcp.web.service, A n1.node, A nope.service (NXDOMAIN).
Beside it, in the same run, dnsmasq (Debian's dnsmasq-base; Consul is not packaged) serves
the same four answers from static records (--host-record, --srv-host, --local), measured
the same way: a reference for what a small single-threaded DNS server does on this host.
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


def dnsperf(host, port, queries, seconds, clients):
    r = subprocess.run(["dnsperf", "-s", host, "-p", str(port), "-d", queries, "-l", str(seconds),
                        "-c", str(clients), "-T", str(clients), "-q", "500"],
                       capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout
    lat = re.search(r"Average Latency \(s\):\s+([\d.]+).*?max ([\d.]+)", out)
    return {"qps": float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1)),
            "completed": int(re.search(r"Queries completed:\s+(\d+)", out).group(1)),
            "lost": int(re.search(r"Queries lost:\s+(\d+)", out).group(1)),
            "avg_ms": float(lat.group(1)) * 1e3, "max_ms": float(lat.group(2)) * 1e3,
            "codes": re.search(r"Response codes:\s+(.*)", out).group(1)}


def report(what, f, cpu):
    print(f"{what}: {f['qps']:.0f} answers/s, {f['completed']} completed, {f['lost']} lost; "
          f"latency avg {f['avg_ms']:.3f} ms, max {f['max_ms']:.3f} ms")
    print(f"  response codes: {f['codes']}")
    print(f"  server CPU over the run: {cpu:.2f} s -> {f['completed'] / max(cpu, 1e-9):.0f} answers per CPU-second")


def dnsmasq_peer(root, name, nodes, queries, args):
    """dnsmasq with the same records on 127.0.33.1:8653, measured the same way."""
    hosts = [n["host"] for n in nodes[:3]]
    cmd = ["dnsmasq", "--no-daemon", "--port", "8653", "--listen-address", "127.0.33.1", "--bind-interfaces",
           "--no-resolv", "--no-hosts", "--conf-file=/dev/null", f"--local=/{name}/", "--log-facility=-",
           f"--host-record=n1.node.{name},{hosts[0]}"]
    cmd += [f"--host-record=web.service.{name},{h}" for h in hosts]
    cmd += [f"--srv-host=_http._tcp.web.service.{name},n{i + 1}.node.{name},8080,1,1" for i in range(3)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        cpu0 = cpu_seconds(p.pid)
        f = dnsperf("127.0.33.1", 8653, queries, args.seconds, args.clients)
        report("dnsmasq (same queries, static records)", f, cpu_seconds(p.pid) - cpu0)
    finally:
        p.terminate()
        p.wait(10)


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
        f = dnsperf(n1["host"], 8600, queries, args.seconds, args.clients)
        print(f"dns_load: {args.seconds} s, {args.clients} dnsperf clients; 3 nodes, web 3 ready")
        report(f"meshos-agent {n1['host']}:8600", f, cpu_seconds(pid) - cpu0)
        if subprocess.run(["which", "dnsmasq"], capture_output=True).returncode == 0:
            with open(os.path.join(d, "cluster.json")) as fh:
                dnsmasq_peer(root, name, json.load(fh)["nodes"], queries, args)
        else:
            print("dnsmasq: not installed (apt-get install dnsmasq-base), no reference run")
    finally:
        cl("down", check=False)


if __name__ == "__main__":
    main()
