"""Membership at run time through meshos-admin: join, leave and force-leave on real agents,
each refused without a reason and recorded in the audit chain with it."""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import Workspace, admin, run_tests, wait_for  # noqa: E402

FAST = """cluster = "e2e-admin-members"
probe_interval_ms = 200
probe_timeout_ms = 100
gossip_interval_ms = 50
push_pull_interval_ms = 2000"""


def states(agent):
    r = agent.inspect("members", "--json", check=False)
    if r.returncode != 0:
        return {}
    return {m["name"]: m["state"] for m in json.loads(r.stdout)["members"]}


def audit_commands(agent):
    recs = agent.inspect_json("chain", "tail", "audit", "--count", "1000")["records"]
    return [json.loads(r["payload_text"]) for r in recs if r["kind"] == "control"]


def test_join_leave_and_force_leave():
    with Workspace() as ws:
        agents = [ws.agent(f"n{i}").set_keys("gossip", FAST).start() for i in range(1, 5)]
        n1, n2, n3, n4 = agents
        seed = f"127.0.0.1:{n1.port}"
        r = admin("join", seed, "--socket", n2.socket, check=False)
        assert r.returncode == 2 and "--reason is required" in r.stderr, (r.returncode, r.stderr)
        for a in (n2, n3, n4):
            admin("join", seed, "--socket", a.socket, "--reason", "e2e: form the cluster")
        wait_for(lambda: all(set(states(a).values()) == {"alive"} and len(states(a)) == 4 for a in agents),
                 10, "4 agents to see each other alive")
        # A running member cannot be forced out.
        r = admin("force-leave", "n2", "--socket", n1.socket, "--reason", "e2e", check=False)
        assert r.returncode == 2 and "not dead" in r.stderr, (r.returncode, r.stderr)
        # leave: n4 goes; the others see it left, and its agent exits 0.
        admin("leave", "--socket", n4.socket, "--reason", "e2e: decommission n4")
        assert n4.proc.wait(20) == 0, "the leaving agent did not exit 0"
        wait_for(lambda: states(n1).get("n4") == "left" and states(n2).get("n4") == "left", 10, "n4 to be seen left")
        # force-leave: n3 is killed, seen dead, then forced out through n1; n2 sees it too.
        n3.proc.send_signal(signal.SIGKILL)
        n3.proc.wait()
        wait_for(lambda: states(n1).get("n3") == "dead" and states(n2).get("n3") == "dead", 20, "n3 to be seen dead")
        admin("force-leave", "n3", "--socket", n1.socket, "--reason", "e2e: n3 is gone for good")
        assert states(n1).get("n3") == "left", states(n1)  # at once, where it was asked
        wait_for(lambda: states(n2).get("n3") == "left", 5, "n2 to see n3 left")
        r = admin("force-leave", "nobody", "--socket", n1.socket, "--reason", "e2e", check=False)
        assert r.returncode == 1 and "no member named" in r.stderr, (r.returncode, r.stderr)
        commands = audit_commands(n1)
        assert any(c["command"] == "force-leave" and c["reason"] == "e2e: n3 is gone for good" for c in commands), commands
        assert any(c["command"] == "join" for c in audit_commands(n2))


if __name__ == "__main__":
    run_tests([test_join_leave_and_force_leave])
