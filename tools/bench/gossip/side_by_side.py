#!/usr/bin/env python3
"""side_by_side: N meshos agents and N Serf agents on loopback, in one run, default timings.

  python3 tools/bench/gossip/side_by_side.py --build build [--nodes 20,50] [--runs 3]
                                             [--idle-s S] [--settle-s 30] [--setup]

--setup installs Serf and python3-msgpack from Debian first (apt-get; root). For each N and
each run, meshos and Serf take turns (the order alternates per run), each on a fresh cluster:
  join      every agent serving, none joined; each told to join the first at once (meshos:
            the control socket's join; Serf: its RPC join). Until every agent sees N alive.
  event     a signed commit submitted to one meshos agent (until every agent's audit chain
            has accepted it) / a user event sent from one Serf agent (until every agent's
            event stream has delivered it).
  leave     SIGTERM (meshos) / SIGINT (Serf: its graceful leave): until all others see it left.
  suspect   SIGKILL of one agent: until all others hold it suspect or dead (meshos only:
            Serf does not show memberlist's suspicion).
  dead      the same SIGKILL: until all others hold it dead (Serf: failed).
  idle      after --settle-s with nothing happening, the agents idle and unpolled for
            --idle-s (default max(60, 3 × N) s: a meshos agent republishes measurements
            alone at most every max(10, 3 × N) s, so a shorter window could miss the
            cluster's steady share of them): CPU per agent (all threads, from schedstat),
            then private memory (RssAnon) and PSS per agent.
Member tables are polled every 100 ms for both (members_poll for meshos, Serf's RPC members),
so each time is late by up to one poll. Prints each run, then a Markdown table of medians
with the ratio meshos / Serf.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def ensure_packages(setup):
    missing = [p for p in ("serf", "python3-msgpack")
               if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                                 text=True).stdout.find("install ok installed") < 0]
    if missing and setup:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)
    elif missing:
        raise SystemExit(f"missing Debian packages {missing}: run with --setup (or apt-get install them)")
    try:
        import msgpack  # noqa: F401
    except ImportError:
        # Debian's python3-msgpack is for Debian's python3; another python3 on PATH lacks it.
        if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
            os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
        raise SystemExit("python3-msgpack is installed but not importable by this python3")


def sees_all_alive(c):
    return lambda v: sum(1 for s in v.values() if s == "alive") >= c.n


def settle_alive(c, timeout_s=120):
    c.watch.wait_all(range(c.n), time.monotonic(), sees_all_alive(c), timeout_s, f"{c.name}: all alive")


def measure(c, idle_s, settle_s):
    f = {}
    c.start_all()
    c.start_watch()
    since = time.monotonic()
    c.join_all(0)
    f["join"] = c.watch.wait_all(range(c.n), since, sees_all_alive(c), 120, f"{c.name} join")
    time.sleep(2)

    c.listen_events()
    t0 = c.broadcast(c.n // 2, 0)
    deadline = time.monotonic() + 20
    while True:
        got = c.received()
        if all(t is not None for t in got) or time.monotonic() > deadline:
            # Serf's user events are best effort: an agent the broadcast missed gets it only
            # from a push-pull (30 s or more); such a miss is counted, not waited for.
            f["event"] = max(t for t in got if t is not None) - t0
            f["event_missed"] = sum(t is None for t in got)
            break
        time.sleep(0.2)

    for figure, victim, act in (("leave", 1, c.leave), ("kill", 2, c.kill)):
        name = f"{c.name[0]}{victim}"
        others = [i for i in range(c.n) if i != victim]
        since = time.monotonic()
        act(victim)
        if figure == "leave":
            f["leave"] = c.watch.wait_all(others, since, lambda v: v.get(name) == "left", 120, f"{c.name} leave")
        else:
            if c.has_suspect:
                f["suspect"] = c.watch.wait_all(others, since, lambda v: v.get(name) in ("suspect", "dead"), 120,
                                                f"{c.name} suspect")
            f["dead"] = c.watch.wait_all(others, since, lambda v: v.get(name) == "dead", 120, f"{c.name} dead")
        c.restart(victim, 0)
        settle_alive(c)
    c.stop_watch()
    time.sleep(settle_s)  # the restarts' own traffic (node states, refutations) dies down
    f.update(idle_figures(c, idle_s))
    return f


def idle_figures(c, idle_s):
    import bench_common as bc
    fig = bc.idle_figures([c.pid(i) for i in range(c.n)], idle_s)
    return {"cpu": bc.median(fig["cpu"]), "private": bc.median(fig["private"]), "pss": bc.median(fig["pss"])}


ROWS = [("join", "join: all serving → every agent sees all alive", "s"),
        ("event", "commit (meshos) / user event (Serf) from one agent → all", "s"),
        ("event_missed", "agents the commit / user event had not reached after 20 s", ""),
        ("leave", "graceful leave → all others see it left", "s"),
        ("suspect", "SIGKILL → all others hold it suspect", "s"),
        ("dead", "SIGKILL → all others hold it dead", "s"),
        ("cpu", "idle CPU per agent (median, % of a core)", "%"),
        ("private", "private memory (RssAnon) per agent, median", "MiB"),
        ("pss", "PSS per agent, median", "MiB")]


def table(n, results):
    import bench_common as bc
    lines = [f"N = {n}, {max(len(r) for r in results.values())} runs each:", "",
             "| figure | Serf | meshos | meshos / Serf |", "|---|---|---|---|"]
    for key, label, unit in ROWS:
        cols = []
        for system in ("serf", "meshos"):
            xs = [r[key] for r in results[system] if key in r]
            cols.append((bc.median(xs), ", ".join(f"{x:.2f}" for x in xs)) if xs else None)
        cell = lambda c: f"{c[0]:.2f} {unit} ({c[1]})" if c else "not shown"  # noqa: E731
        ratio = f"{cols[1][0] / cols[0][0]:.2f}" if cols[0] and cols[1] and cols[0][0] > 0 else "—"
        lines.append(f"| {label} | {cell(cols[0])} | {cell(cols[1])} | {ratio} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", required=True)
    p.add_argument("--nodes", default="20,50")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--idle-s", type=float, help="default: max(60, 3 × N) s")
    p.add_argument("--settle-s", type=float, default=30, help="quiet time before the idle figures")
    p.add_argument("--setup", action="store_true", help="install serf and python3-msgpack from Debian first")
    p.add_argument("--only", choices=("meshos", "serf"), help="measure one system")
    a = p.parse_args()
    ensure_packages(a.setup)
    sys.path.insert(0, HERE)
    from meshos_cluster import MeshosCluster
    from serf_cluster import SerfCluster
    import bench_common as bc
    sizes = [int(x) for x in a.nodes.split(",")]
    if (not all(3 <= n <= 200 for n in sizes) or not 1 <= a.runs <= 20
            or not (a.idle_s is None or 1 <= a.idle_s <= 600)
            or not 0 <= a.settle_s <= 600):
        raise SystemExit("--nodes 3..200 each, --runs 1..20, --idle-s 1..600, --settle-s 0..600")
    build = os.path.abspath(a.build)
    print(f"start {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {bc.load_average()}", flush=True)
    tables = []
    for n in sizes:
        results = {"meshos": [], "serf": []}
        for run in range(a.runs):
            order = ["meshos", "serf"] if run % 2 == 0 else ["serf", "meshos"]
            for system in order:
                if a.only and system != a.only:
                    continue
                root = tempfile.mkdtemp(prefix=f"sbs-{system}-")
                c = (MeshosCluster(root, n, 23000, build) if system == "meshos" else SerfCluster(root, n, 25000))
                try:
                    f = measure(c, a.idle_s or max(60.0, 3.0 * n), a.settle_s)
                finally:
                    c.stop_all()
                    shutil.rmtree(root, ignore_errors=True)
                results[system].append(f)
                print(f"N={n} run {run + 1} {system}: " + ", ".join(f"{k} {v:.2f}" for k, v in f.items()) +
                      f" (load {bc.load_average()})", flush=True)
        tables.append(table(n, results))
    print(f"end {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {bc.load_average()}")
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
