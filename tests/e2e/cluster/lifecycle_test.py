"""tools/cluster end to end (issue 8, test a): `up 5` starts five real agents that all see
each other, `down` leaves no process, socket, directory, namespace, bridge or iptables rule
behind, on loopback and (as root) in network namespaces. Daemons the agents leave running
for re-adoption are killed by `down` too. Every wrong argument gets a clear error and a
non-zero exit.
"""
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clusterlib import Cluster, daemon_pids, run_tests, wait_for  # noqa: E402

LOCAL = """[[daemon]]
name = "e2e-lc-sleeper"
command = ["/bin/sh", "-c", "exec sleep 600"]
restart = "always"
"""


def all_alive(cl):
    names = set(cl.names())
    for n in names:
        v = cl.members(n)
        if v is None or set(v) != names or any(s != "alive" for s in v.values()):
            return False
    return True


def test_up_down_loopback():
    with Cluster(5, "e2elc", net=11) as cl:
        # A local daemon on every node: the agents leave it running when they stop (for
        # re-adoption), so only `down` can end it.
        local = os.path.join(cl.root, "local.toml")
        with open(local, "w") as f:
            f.write(LOCAL)
        cl.extra = ["--set", f'runtime.local="{local}"']
        cl.up()
        assert all_alive(cl), "up returned before every agent saw 5 alive"
        pids = []
        for n in cl.state["nodes"]:
            with open(n["pidfile"]) as f:
                pids.append(int(f.read()))
            assert os.path.exists(n["socket"])
            assert n["host"] == f"127.0.12.{n['index']}", n
        sleepers = wait_for(lambda: len(daemon_pids("e2e-lc-sleeper#")) == 5 and daemon_pids("e2e-lc-sleeper#"),
                            15, "the local daemon running on every node")
        st = cl.status(verify=True)
        assert [r["agent"] for r in st["nodes"]] == ["running"] * 5, st["nodes"]
        for r in st["nodes"]:
            assert all(v["ok"] for v in r["chains"].values()), r

        # Wrong arguments while a cluster runs.
        bad = [
            (["up", "3"], 1, "already exists"),
            (["partition", "n1", "n2,n3"], 2, "--netns"),
            (["heal"], 2, "--netns"),
            (["loss", "n1", "20"], 2, "--netns"),
            (["kill", "n9"], 2, "no node named 'n9'"),
            (["restart", "nope"], 2, "no node named"),
            (["logs", "n7"], 2, "no node named"),
            (["apply"], 2, "needs a desired-state FILE"),
            (["apply", os.path.join(cl.root, "missing.toml")], 2, "no such file"),
            (["apply", local, "--op", "thaw"], 2, "not both"),
            (["apply", "--op", "scale nothing 3"], 1, "scale"),
            (["wait", "nothing", "--timeout", "0.5"], 1, "no running agent has a daemon named"),
        ]
        for args, code, text in bad:
            r = cl.run(*args, check=False)
            assert r.returncode == code and text in r.stderr + r.stdout, (args, r.returncode, r.stdout, r.stderr)

        # kill and restart: the agent only; its daemon keeps its pid (re-adopted).
        n2 = cl.node("n2")
        r = cl.run("kill", "n2")
        assert "killed agent n2" in r.stdout, r.stdout
        assert cl.run("kill", "n2", check=False).returncode == 1
        assert set(daemon_pids("e2e-lc-sleeper#")) == set(sleepers), "kill must leave the daemons alone"
        cl.run("restart", "n2")
        assert os.path.exists(n2["socket"])
        wait_for(lambda: all_alive(cl), 20, "n2 alive again everywhere")
        assert set(daemon_pids("e2e-lc-sleeper#")) == set(sleepers), "restart must re-adopt the daemon"
        r = cl.run("logs", "n2", "--tail", "5")
        assert "meshos-agent" in r.stdout, r.stdout

        r = cl.down()
        assert "5 agent(s) stopped" in r.stdout and "5 daemon process(es) killed" in r.stdout, r.stdout
        cl.assert_nothing_left()
        for p in pids:
            assert not os.path.exists(f"/proc/{p}") or open(f"/proc/{p}/stat").read().split(") ")[1][0] in "ZX"
        assert not daemon_pids("e2e-lc-sleeper#"), daemon_pids("e2e-lc-sleeper#")
        r = cl.run("down")
        assert "nothing to stop" in r.stdout, r.stdout
        r = cl.run("status", check=False)
        assert r.returncode == 1 and "no cluster in" in r.stderr, r.stderr


def test_up_down_netns():
    with Cluster(5, "e2elcns", net=12, netns=True) as cl:
        cl.up()
        assert all_alive(cl)
        ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for i in range(1, 6):
            assert f"meshos-e2elcns-n{i}" in ns, ns
        assert os.path.exists("/sys/class/net/meshos-br12")
        assert cl.node("n3")["addr"] == "10.77.12.13:7946"
        # The fault commands work and say what they did.
        assert "partitioned: n1,n2 | n3,n4,n5" in cl.run("partition", "n1,n2", "n3,n4,n5").stdout
        assert cl.run("partition", "n1,n2", "n2,n3", check=False).returncode == 2
        assert cl.run("partition", "n1,n2", check=False).returncode == 2
        assert cl.run("loss", "n1", "120", check=False).returncode == 2
        assert "dropping 10%" in cl.run("loss", "n1", "10").stdout
        assert "rule(s) removed" in cl.run("heal").stdout
        wait_for(lambda: all_alive(cl), 30, "one membership again after heal")
        r = cl.down()
        assert "namespace(s) and bridge meshos-br12 removed" in r.stdout, r.stdout
        cl.assert_nothing_left()


def test_bad_usage():
    with Cluster(1, "e2ebad", net=13) as cl:
        for args, text in [(["up", "0"], "between 1 and 200"), (["up", "x"], "invalid int"),
                           (["up", "2", "--threshold", "0"], "--threshold"), (["up", "2", "--net", "999"], "--net"),
                           (["up", "2", "--name", "a b"], "--name"), (["up", "2", "--set", "nonsense"], "TABLE.KEY"),
                           (["frobnicate"], "invalid choice")]:
            r = cl.run(*args, check=False)
            assert r.returncode == 2 and text in r.stderr, (args, r.returncode, r.stderr)
        r = cl.run("up", "2", "--build", "/nonexistent", check=False)
        assert r.returncode == 1 and "not found" in r.stderr and "--build" in r.stderr, r.stderr
        r = cl.run("up", "2", "--net", "13", "--set", "gossip.probe_interval_ms=1", check=False)
        assert r.returncode == 2 and "refused" in r.stderr, r.stderr
        assert not os.path.exists(os.path.join(cl.dir, "cluster.json")), "a failed up must clean up"
        assert not processes_left(cl)


def processes_left(cl):
    from clusterlib import processes_mentioning
    return processes_mentioning(cl.dir)


if __name__ == "__main__":
    run_tests([test_bad_usage, test_up_down_loopback, test_up_down_netns])
