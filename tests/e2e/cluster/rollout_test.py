"""Rolling updates on a real 5-agent cluster (issue 18), on loopback.

web (3 replicas, max_unavailable 1) goes v1 -> v2 while an HTTP sampler asks every node
every ~10 ms: at no moment do fewer than replicas - max_unavailable = 2 nodes answer, and
every node ends on v2, one node at a time in the log chains. A v3 that never gets ready
(it does not listen) is tried on one node, misses its progress deadline, and the rollout
stops everywhere with 2 answering (pause); back to v2; then a v3 with on_failure =
"rollback" fails on its first node, which returns to v2 by itself: 3 answering again.
"""
import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import Cluster, http_get, run_tests, wait_for  # noqa: E402

SERVE = '["python3", "-m", "http.server", "${port.http}", "--bind", "${node.host}"]'
SILENT = '["python3", "-c", "import time; time.sleep(3600)"]'


def web(version, command=SERVE, on_failure="pause"):
    return f"""[[daemon]]
name = "web"
command = {command}
env = {{ WEB_VERSION = "{version}" }}
replicas = 3
ports = [{{ name = "http", port = 8080 }}]
restart = "always"
stop_grace_ms = 1000
[daemon.update]
max_unavailable = 1
min_ready_ms = 300
progress_deadline_ms = 3000
on_failure = "{on_failure}"
[daemon.health.readiness]
type = "http"
host = "${{node.host}}"
port = 8080
path = "/"
interval_ms = 200
timeout_ms = 500
"""


class Sampler:
    """Counts the nodes answering HTTP on 8080, every ~10 ms, in the background."""

    def __init__(self, cl):
        self.cl, self.stop, self.samples, self.low = cl, threading.Event(), 0, []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def answering(self):
        def ok(n):
            try:  # a server stopping mid-response is not answering
                return http_get(f"http://{n['host']}:8080/", 1)[0] == 200
            except Exception:  # noqa: BLE001
                return False
        return sum(1 for n in self.cl.state["nodes"] if ok(n))

    def run(self):
        while not self.stop.is_set():
            a = self.answering()
            self.samples += 1
            if a < 2:
                self.low.append(a)
            time.sleep(0.01)

    def __enter__(self):
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        seconds = time.monotonic() - self.started
        assert exc[0] is not None or self.samples >= 20 * seconds, \
            f"the sampler took only {self.samples} samples in {seconds:.1f}s"


def rollout(cl, node="n1"):
    return json.loads(cl.inspect(node, "rollout", "web", "--json").stdout)


def apply(cl, text, name):
    path = os.path.join(cl.root, name + ".toml")
    with open(path, "w") as f:
        f.write(text)
    cl.apply(path)


def versions(cl):
    """version -> nodes that report running it, as n1 sees them."""
    out = {}
    for n in rollout(cl)["nodes"]:
        if n["ready"] or n["version"]:
            out.setdefault(n["version"], []).append(n["node"])
    return out


def updates_in_log(cl):
    """(wall ms, node) of every rollout.update record in the log chains."""
    steps = []
    for n in cl.names():
        r = cl.inspect(n, "chain", "tail", "log", "--count", "100000", "--json")
        for rec in json.loads(r.stdout)["records"]:
            if rec.get("kind") == "rollout.update":
                steps.append((rec.get("time_ms", 0), n, json.loads(rec["payload_text"])["to"]))
    return sorted(steps)


def test_rolling_update_pause_and_rollback():
    with Cluster(5, "e2eroll", net=17) as cl:
        cl.up()
        apply(cl, web("v1"), "v1")
        cl.wait_replicas("web", 3, 60)
        with Sampler(cl) as s:
            t0 = time.monotonic()
            apply(cl, web("v2"), "v2")
            target = rollout(cl)["target"]
            wait_for(lambda: all(rollout(cl, n)["state"] == "complete" for n in cl.names()), 60, "v2 everywhere")
            took = time.monotonic() - t0
            cl.wait_replicas("web", 3, 30)
        assert not s.low, f"{len(s.low)} of {s.samples} samples had fewer than 2 nodes answering: {s.low[:10]}"
        steps = [x for x in updates_in_log(cl) if x[2] == target]
        assert len(steps) == 3 and len({n for _, n, _ in steps}) == 3, steps
        print(f"figures: v1 -> v2 on 3 replicas, max_unavailable 1, min_ready 300 ms: {took:.2f}s; "
              f"{s.samples} HTTP samples, none below 2 answering")

        # v3 never gets ready: the first node tries it, misses 3 s, the rollout stops.
        with Sampler(cl) as s:
            apply(cl, web("v3", SILENT), "v3")
            wait_for(lambda: all(rollout(cl, n)["state"] == "halted" for n in cl.names()), 30, "the rollout halted")
            time.sleep(1)
            r = rollout(cl)
            on_v3 = [n["node"] for n in r["nodes"] if n["version"] == r["target"]]
            assert len(on_v3) == 1, r
            assert "paused" in r["why"], r
            assert s.answering() == 2
            row = cl.daemon(cl.status(), "web")
            assert "rollout halted" in row.get("rollout", ""), row
        assert not s.low, f"v3: {len(s.low)} of {s.samples} samples below 2 answering"
        print(f"figures: v3 (never ready) halted after one node: {r['why']}; {s.samples} samples, none below 2")

        # Back to v2, then a v3 that rolls back by itself.
        apply(cl, web("v2"), "v2-again")
        cl.wait_replicas("web", 3, 60)
        with Sampler(cl) as s:
            apply(cl, web("v3b", SILENT, on_failure="rollback"), "v3b")
            wait_for(lambda: rollout(cl)["state"] == "halted", 30, "v3b halted")
            wait_for(lambda: s.answering() == 3, 30, "the node that tried v3b back on v2")
            r = rollout(cl)
            assert "rolled back" in r["why"], r
            assert not [n for n in r["nodes"] if n["version"] == r["target"]], r
        assert not s.low, f"v3b: {len(s.low)} of {s.samples} samples below 2 answering"
        cl.check_chains()


if __name__ == "__main__":
    run_tests([test_rolling_update_pause_and_rollback])
