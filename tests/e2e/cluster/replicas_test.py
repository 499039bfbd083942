"""Placement on a real 5-agent cluster (issue 8, tests b, c, f, g), on loopback:

(b) apply examples/web.toml (3 replicas, at most one per node) -> exactly 3 running, all
    ready, on 3 distinct nodes, each answering HTTP on its node's address, and no other
    node serving;
(c) SIGKILL a node running a replica (agent and daemons: a machine crash) -> 3 ready
    replicas on the surviving nodes within failure detection + a few ticks; after it
    restarts, still exactly 3 (no double running);
(f) drain the node running a 1-replica service -> the replica moves, and an HTTP sampler
    (every ~10 ms) never finds it answering nowhere;
(g) every chain of every node verifies, and every audit chain holds the same accepted
    commits.

Discovery (issue 18) on the same cluster: `dig` at any node returns the addresses of the
ready replicas (A) and their port (SRV); a replica that stops being ready leaves the answers
within a gossip round of its node reporting it; a killed node's address leaves once it is
declared dead and the replacement's arrives once it is ready.
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import EXAMPLES, Cluster, daemon_pids, http_get, run_tests, wait_for  # noqa: E402

SOLO = """[[daemon]]
name = "solo"
command = ["python3", "-m", "http.server", "8081", "--bind", "${node.host}"]
restart = "always"
stop_grace_ms = 2000
[daemon.health.readiness]
type = "http"
host = "${node.host}"
port = 8081
path = "/"
interval_ms = 300
timeout_ms = 1000
"""


def serving(cl, port):
    """Nodes whose address answers HTTP GET / on port."""
    return sorted(n["name"] for n in cl.state["nodes"] if http_get(f"http://{n['host']}:{port}/", 1)[0] == 200)


def dig(host, name, rtype="A"):
    """The answers of the node at host (tools/cluster: DNS on port 8600), sorted; + short."""
    r = subprocess.run(["dig", f"@{host}", "-p", "8600", "+short", "+tries=1", "+time=1", name, rtype],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, f"dig {name} {rtype} @{host} failed ({r.returncode}): {r.stdout}{r.stderr}"
    return sorted(line for line in r.stdout.split("\n") if line)


def hosts(cl, names):
    return sorted(cl.node(n)["host"] for n in names)


def check_dns(cl, on, down=()):
    """Every node (but those `down`) answers web's A and SRV records with the ready replicas `on`."""
    name = f"web.service.{cl.name}."
    for n in (n for n in cl.names() if n not in down):
        h = cl.node(n)["host"]
        wait_for(lambda: dig(h, name) == hosts(cl, on), 5, f"{n}'s DNS to give {on}")
    srv = dig(cl.node(on[0])["host"], f"_http._tcp.{name}", "SRV")
    assert srv == sorted(f"1 1 8080 {n}.node.{cl.name}." for n in on), srv
    out = subprocess.run(["dig", f"@{cl.node(on[0])['host']}", "-p", "8600", f"nope.service.{cl.name}."],
                         capture_output=True, text=True, timeout=10).stdout
    assert "status: NXDOMAIN" in out, out


def not_ready_leaves_dns(cl, on):
    """Pauses web on one node: the time from its node reporting the replica not ready to
    another node's DNS answering without it, then resumes it."""
    node, other = on[0], next(n for n in cl.names() if n != on[0])
    name = f"web.service.{cl.name}."
    cl.inspect(node, "--reason", "e2e: not ready", "daemon", "pause", "web")
    t_reported = t_gone = None
    deadline = time.monotonic() + 10
    while (t_reported is None or t_gone is None) and time.monotonic() < deadline:
        if t_reported is None:
            e = json.loads(cl.inspect(node, "endpoints", "web", "--json").stdout)["endpoints"]
            if node not in [x["node"] for x in e]:
                t_reported = time.monotonic()
        if t_gone is None and cl.node(node)["host"] not in dig(cl.node(other)["host"], name):
            t_gone = time.monotonic()
    assert t_reported is not None and t_gone is not None, (t_reported, t_gone)
    lag = max(0.0, t_gone - t_reported)
    print(f"figures: web paused on {node}: gone from {other}'s DNS {lag * 1000:.0f} ms after {node} reported it")
    assert lag < 1.0, f"{lag:.2f}s: more than a gossip round (50 ms with --fast) and a poll"
    cl.inspect(node, "--reason", "e2e: ready again", "daemon", "resume", "web")
    check_dns(cl, on)


def assert_exactly(cl, daemon, want):
    d = cl.daemon(cl.status(), daemon)
    assert len(d["running_on"]) == want and len(set(d["running_on"])) == want, d
    return d


def test_replicas():
    with Cluster(5, "e2erep", net=14) as cl:
        cl.up()
        t0 = time.monotonic()
        cl.apply(os.path.join(EXAMPLES, "web.toml"))
        took, d = cl.wait_replicas("web", 3, 60)
        apply_s = time.monotonic() - t0
        on = sorted(d["ready_on"])
        # (b) exactly 3 processes, answering on their own nodes only.
        wait_for(lambda: serving(cl, 8080) == on, 10, f"HTTP answers from exactly {on}")
        procs = daemon_pids("web#", cl.dir)
        assert len(procs) == 3, f"expected 3 web processes, found {procs}"
        print(f"figures: apply -> 3 ready replicas on 5 loopback agents: {apply_s:.2f}s (on {on})")
        check_dns(cl, on)
        not_ready_leaves_dns(cl, on)
        # Every node explains the same decision: 5 feasible nodes ranked, 3 assigned; members
        # carry health and node state; an unknown daemon is an error that names it.
        for n in cl.names():
            j = json.loads(cl.inspect(n, "placement", "web", "--json").stdout)
            assert sorted(j["decisions"][0]["assigned"]) == on, (n, j["decisions"])
            assert len(j["explain"]["feasible"]) == 5, (n, j["explain"])
            assert all(m["health"] == "healthy" and m["maintenance"] == "active"
                       for m in json.loads(cl.inspect(n, "members", "--json").stdout)["members"]), n
        human = cl.inspect(on[0], "placement", "web").stdout
        assert "feasible nodes, best first" in human and "assigned" in human, human
        r = cl.inspect(on[0], "placement", "nope", check=False)
        assert r.returncode == 1 and "no daemon \"nope\"" in r.stderr, (r.returncode, r.stderr)

        # (c) a machine crash of a node that runs a replica.
        victim = on[0]
        t_kill = time.monotonic()
        cl.run("kill", victim, "--with-daemons")
        witness = next(n for n in cl.names() if n not in on)
        wait_for(lambda: cl.node(victim)["host"] not in dig(cl.node(witness)["host"], f"web.service.{cl.name}."),
                 15, f"{victim}'s address to leave {witness}'s DNS answer")
        print(f"figures: SIGKILL of {victim} -> its address gone from DNS in {time.monotonic() - t_kill:.2f}s")
        # Failure detection with --fast timings (probe 200 ms, suspicion at most a few
        # seconds at 5 nodes) plus a few 100 ms ticks and the readiness check: 15 s is ample.
        took, d = cl.wait_replicas("web", 3, 15, exclude=[victim])
        moved_s = time.monotonic() - t_kill
        wait_for(lambda: serving(cl, 8080) == sorted(d["ready_on"]), 10, "HTTP from the new set")
        check_dns(cl, sorted(d["ready_on"]), down=[victim])
        print(f"figures: SIGKILL of {victim} -> 3 ready replicas elsewhere: {moved_s:.2f}s")
        cl.run("restart", victim)
        wait_for(lambda: all(cl.members(n) and all(s == "alive" for s in cl.members(n).values())
                             for n in cl.names()), 30, f"{victim} alive again everywhere")
        # Settled: exactly 3 for 3 s in a row, 3 processes.
        cl.wait_replicas("web", 3, 30)
        end = time.monotonic() + 3
        while time.monotonic() < end:
            assert_exactly(cl, "web", 3)
            assert len(daemon_pids("web#", cl.dir)) == 3, daemon_pids("web#", cl.dir)
            time.sleep(0.3)

        # (f) drain the node of a 1-replica service: never zero ready.
        solo = os.path.join(cl.root, "solo.toml")
        with open(solo, "w") as f:
            f.write(SOLO)
        cl.apply(solo, "--keep-missing")
        _, s = cl.wait_replicas("solo", 1, 60)
        node = s["ready_on"][0]
        # An HTTP sampler in the background: at every moment some node must answer on 8081.
        stop, samples, empty = threading.Event(), [0], []

        def sample():
            while not stop.is_set():
                t = time.monotonic()
                if not any(http_get(f"http://{n['host']}:8081/", 1)[0] == 200 for n in cl.state["nodes"]):
                    empty.append(t)
                samples[0] += 1
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.monotonic()
        try:
            cl.apply("--op", f"drain {node} +300")
            zero_reads = 0
            while True:
                st = cl.status()
                s, w = cl.daemon(st, "solo"), cl.daemon(st, "web")
                # status reads the agents one after another, so one read can take the new node
                # before it is ready and the drained node after it stopped (the handoff took
                # place between the two). A real gap shows in consecutive reads too, and the
                # HTTP sampler above checks the service itself every 10 ms.
                zero_reads = zero_reads + 1 if s["ready"] == 0 else 0
                assert zero_reads < 2, f"solo at zero ready during the drain, two reads running: {s}"
                if (s["ready_on"] and node not in s["running_on"] and len(w["ready_on"]) == 3
                        and node not in w["running_on"]):
                    break
                assert time.monotonic() - start < 60, f"drain of {node} did not finish in 60s: solo {s}, web {w}"
            moved_s = time.monotonic() - start
            time.sleep(1)  # and a second after
        finally:
            stop.set()
            sampler.join()
        # Reported after (g), so that one run says as much as it can.
        failures = []
        if empty:
            failures.append(f"solo answered HTTP nowhere in {len(empty)} of {samples[0]} samples, from "
                            f"{empty[0] - start:.2f}s to {empty[-1] - start:.2f}s after the drain commit "
                            f"(drained {node}, solo now on {s['ready_on']}, done at {moved_s:.2f}s)")
        print(f"figures: drain of {node}: solo moved to {s['ready_on']} in {moved_s:.2f}s; "
              f"{samples[0]} HTTP samples, {len(empty)} without an answer")
        assert serving(cl, 8081) == s["ready_on"], (serving(cl, 8081), s)

        # (g)
        commits = cl.check_chains()
        assert len(commits) >= 3, commits
        cl.down()
        cl.assert_nothing_left()
        assert not daemon_pids("web#", cl.dir) and not daemon_pids("solo#", cl.dir)
        assert not failures, "; ".join(failures)


if __name__ == "__main__":
    run_tests([test_replicas])
