"""Helpers for the cluster end-to-end tests: a temporary cluster made and removed with the
real tools/cluster scripts (real agents, real sockets, real namespaces), polled with
deadlines. Each test file uses its own --net number and cluster name, so the files can run
in parallel.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
CLUSTER = os.path.join(REPO, "tools", "cluster", "cluster.py")
EXAMPLES = os.path.join(REPO, "examples")
INSPECT = os.environ.get("MESHOS_INSPECT", "meshos-inspect")
SKIP = 77


class Skip(Exception):
    """The test cannot run here (e.g. no network namespaces); meson reports it skipped."""


def wait_for(predicate, timeout_s, what, interval_s=0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def http_get(url, timeout_s=2):
    """(status, body) or (None, why)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def processes_mentioning(text):
    """pids whose command line contains `text` (a cluster directory)."""
    out = []
    needle = text.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if needle in f.read():
                    with open(f"/proc/{d}/stat") as s:
                        data = s.read()
                    if data[data.rfind(")") + 2] not in "ZX":
                        out.append(int(d))
        except OSError:
            pass
    return out


def daemon_pids(instance_prefix, under=None):
    """pids of live processes whose environment says MESHOS_INSTANCE=<prefix>... (and, with
    `under`, whose working directory is inside that directory: one cluster's daemons)."""
    out = {}
    want = b"MESHOS_INSTANCE=" + instance_prefix.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if under and not (os.readlink(f"/proc/{d}/cwd") + "/").startswith(under.rstrip("/") + "/"):
                continue
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{d}/stat") as s:
                data = s.read()
        except OSError:
            continue
        if data[data.rfind(")") + 2] in "ZX":
            continue
        for v in env:
            if v.startswith(want):
                out[int(d)] = v.split(b"=", 1)[1].decode()
    return out


class Cluster:
    """A cluster made by tools/cluster/up in a temporary directory; `down` on exit (and a
    check that it left nothing behind), the agents' logs printed when the test failed."""

    def __init__(self, nodes, name, net, netns=False, fast=True, extra=()):
        self.root = tempfile.mkdtemp(prefix="meshos-e2e-cl-")
        self.dir = os.path.join(self.root, "c")
        self.n = nodes
        self.name = name
        self.net = net
        self.netns = netns
        self.fast = fast
        self.extra = list(extra)
        self.state = None
        self.is_up = False

    def run(self, *args, check=True, timeout=120):
        env = dict(os.environ)
        # The binaries come from the meson test environment (MESHOS_AGENT, ...).
        env.pop("MESHOS_BUILD", None)
        env.pop("MESHOS_CLUSTER_DIR", None)
        r = subprocess.run([sys.executable, CLUSTER, *args, "--dir", self.dir], capture_output=True, text=True,
                           timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"tools/cluster {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def up(self):
        args = ["up", str(self.n), "--name", self.name, "--net", str(self.net), *self.extra]
        if self.netns:
            args.append("--netns")
        if self.fast:
            args.append("--fast")
        r = self.run(*args, check=False)
        if r.returncode == SKIP:
            raise Skip(r.stderr.strip())
        if r.returncode != 0:
            raise AssertionError(f"tools/cluster up failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        self.is_up = True
        with open(os.path.join(self.dir, "cluster.json")) as f:
            self.state = json.load(f)
        return self

    def node(self, name):
        return next(n for n in self.state["nodes"] if n["name"] == name)

    def names(self):
        return [n["name"] for n in self.state["nodes"]]

    def status(self, verify=False):
        args = ["status", "--json"] + ([] if verify else ["--no-verify"])
        r = self.run(*args, check=False)
        if r.returncode not in (0, 1):
            raise AssertionError(f"status failed ({r.returncode}): {r.stderr}")
        return json.loads(r.stdout)

    def daemon(self, st, name):
        return next((d for d in st["daemons"] if d["name"] == name), None)

    def inspect(self, node, *args, check=True):
        r = subprocess.run([INSPECT, "--socket", self.node(node)["socket"], *args], capture_output=True,
                           text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"meshos-inspect {' '.join(args)} on {node} failed ({r.returncode}): {r.stderr}")
        return r

    def members(self, node):
        """name -> state as `node` sees it; None when it does not answer."""
        r = self.inspect(node, "members", "--json", check=False)
        if r.returncode != 0:
            return None
        return {m["name"]: m["state"] for m in json.loads(r.stdout)["members"]}

    def apply(self, *args):
        return self.run("apply", *args)

    def wait_replicas(self, daemon, want, timeout_s, exclude=()):
        """Until exactly `want` instances of `daemon` run, all ready, on `want` distinct nodes,
        none on `exclude`. Returns (seconds, the daemon's status row)."""
        start = time.monotonic()
        last = {}

        def check():
            st = self.status()
            d = self.daemon(st, daemon)
            last["d"] = d
            if not st["placement_reported"] and time.monotonic() - start > 15:
                raise AssertionError(f"no agent reports placement (its snapshot has no 'placement' section) "
                                     f"15s after {daemon} was applied: this agent build does not place "
                                     f"committed daemons, so {daemon} cannot run")
            return (d is not None and len(d["running_on"]) == want and len(set(d["ready_on"])) == want
                    and sorted(d["ready_on"]) == sorted(d["running_on"])
                    and not set(d["running_on"]) & set(exclude))

        try:
            wait_for(check, timeout_s, f"{want} ready replicas of {daemon} on distinct nodes"
                     + (f" (not on {', '.join(exclude)})" if exclude else ""), 0.2)
        except AssertionError as e:
            raise AssertionError(f"{e}; last status of {daemon}: {last.get('d')}") from None
        return time.monotonic() - start, last["d"]

    def accepted_commits(self, node):
        r = self.inspect(node, "chain", "tail", "audit", "--count", "100000", "--json")
        out = set()
        for rec in json.loads(r.stdout)["records"]:
            if rec.get("kind") == "commit.accepted":
                try:
                    out.add(json.loads(rec.get("payload_text", ""))["hash"])
                except (ValueError, KeyError):
                    pass
        return out

    def check_chains(self, require_commits=True):
        """(g): every chain of every node verifies, and every node's audit chain holds the
        same accepted commits."""
        st = self.status(verify=True)
        for row in st["nodes"]:
            assert "chains" in row, row
            for chain, v in row["chains"].items():
                assert v["ok"], f"{row['name']} chain {chain} does not verify: {v}"
        live = [r["name"] for r in st["nodes"] if r["agent"] == "running"]
        sets = {}

        def same():
            for n in live:
                sets[n] = self.accepted_commits(n)
            return len({frozenset(s) for s in sets.values()}) == 1 and (all(sets.values()) or not require_commits)

        try:
            wait_for(same, 15, "the same accepted commits in every node's audit chain", 0.5)
        except AssertionError as e:
            raise AssertionError(f"{e}: {({n: sorted(h[:8] for h in s) for n, s in sets.items()})}") from None
        return sets[live[0]]

    def down(self):
        r = self.run("down")
        self.is_up = False
        return r

    def assert_nothing_left(self):
        assert not os.path.exists(self.dir), f"{self.dir} still exists"
        left = processes_mentioning(self.dir)
        assert not left, f"processes left behind: {left}"
        if self.netns:
            ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
            assert f"meshos-{self.name}-" not in ns, ns
            assert not os.path.exists(f"/sys/class/net/meshos-br{self.net}"), "bridge left behind"
            fwd = subprocess.run(["iptables", "-w", "5", "-S", "FORWARD"], capture_output=True, text=True).stdout
            assert f"meshos-br{self.net}" not in fwd, fwd

    def logs(self):
        out = []
        for n in (self.state or {}).get("nodes", []):
            try:
                with open(n["log"], errors="replace") as f:
                    out.append(f"--- {n['name']} agent log (last lines) ---\n" + "".join(f.readlines()[-25:]))
            except OSError:
                pass
        return "\n".join(out)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None and exc[0] is not Skip:
            print(self.logs())
        if os.path.exists(os.path.join(self.dir, "cluster.json")):
            r = self.run("down", check=False)
            if r.returncode != 0:
                print(f"down failed: {r.stdout}{r.stderr}")
        shutil.rmtree(self.root, ignore_errors=True)
        return False


def run_tests(tests):
    """Runs test functions; a Skip is reported as such. Exit 77 when every test skipped
    (meson: SKIP), 1 when any failed."""
    failed = skipped = 0
    for t in tests:
        start = time.monotonic()
        try:
            t()
            print(f"ok   {t.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
        except Skip as e:
            skipped += 1
            print(f"SKIP {t.__name__}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - report and go on
            failed += 1
            print(f"FAIL {t.__name__} ({time.monotonic() - start:.1f}s): {e}", flush=True)
    print(f"{len(tests) - failed - skipped} passed, {failed} failed, {skipped} skipped")
    if failed:
        raise SystemExit(1)
    raise SystemExit(SKIP if skipped == len(tests) else 0)
