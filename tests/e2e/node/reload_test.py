"""Reload on SIGHUP and `meshos-admin reload`: the [runtime] local file and the log level
change at run time, a bad file is refused with its file:line and changes nothing, and keys
that need a restart are named. And a freeze holds a reloaded change at the executor's gate
(the start waits for the thaw), while a crashed daemon still restarts and an operator's
restart still runs."""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import time  # noqa: E402

from lib import Workspace, admin, run_tests, submit, wait_for  # noqa: E402

ONE = '[[daemon]]\nname = "one"\ncommand = ["/bin/sleep", "3600"]\nstop_grace_ms = 200\n'
TWO = ONE + '\n[[daemon]]\nname = "two"\ncommand = ["/bin/sleep", "3600"]\nstop_grace_ms = 200\n'


def running(agent):
    return {d["instance"]: d["pid"] for d in agent.inspect_json("daemons")["daemons"]
            if d["state"] in ("running", "ready")}


def test_sighup_and_admin_reload():
    with Workspace() as ws:
        a = ws.agent("r1", '[runtime]\nlocal = "local.toml"\n')
        local = os.path.join(a.dir, "local.toml")
        with open(local, "w") as f:
            f.write(ONE)
        a.start()
        wait_for(lambda: set(running(a)) == {"one#0"}, 10, "one#0 to run")
        # SIGHUP: a second daemon in the local file starts; the first is left alone.
        before = running(a)["one#0"]
        with open(local, "w") as f:
            f.write(TWO)
        a.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: set(running(a)) == {"one#0", "two#0"}, 10, "two#0 to start after SIGHUP")
        assert running(a)["one#0"] == before
        # A bad file: refused with file:line, nothing changes.
        with open(local, "w") as f:
            f.write(ONE + '\n[[daemon]]\nname = "three"\ncomand = ["/bin/true"]\n')
        r = admin("reload", "--socket", a.socket, "--reason", "e2e: a typo", check=False)
        assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
        assert "local.toml:8: daemon 'three': comand: unknown key" in r.stderr and "nothing changed" in r.stderr, r.stderr
        assert set(running(a)) == {"one#0", "two#0"}
        r = admin("reload", "--socket", a.socket, check=False)
        assert r.returncode == 2 and "--reason is required" in r.stderr, r.stderr
        # The log level applies; a new gossip bind waits for a restart and is named.
        with open(local, "w") as f:
            f.write(TWO)
        a.set_keys("log", 'level = "debug"')
        with open(a.config) as f:
            text = f.read()
        with open(a.config, "w") as f:
            f.write(text.replace(f'bind = "127.0.0.1:{a.port}"', 'bind = "127.0.0.1:1"'))
        out = json.loads(admin("reload", "--socket", a.socket, "--reason", "e2e: debug", "--json").stdout)
        assert out["applied"] == ["log.level"], out
        assert out["needs_restart"] == ["gossip"], out
        assert a.inspect_json("members")["members"][0]["address"] == f"127.0.0.1:{a.port}"
        recs = a.inspect_json("chain", "tail", "audit", "--count", "1000")["records"]
        reloads = [json.loads(r["payload_text"]) for r in recs if r["kind"] == "reload"]
        assert [x["why"] for x in reloads][:1] == ["SIGHUP"], reloads
        assert any(x["applied"] == ["log.level"] for x in reloads), reloads
        assert a.stop() == 0


def commit_op(ws, agent, key, op, n):
    path = os.path.join(ws.root, f"op{n}.commit")
    admin("sign-commit", "--key", key, "--agent", agent.socket, "--op", op, "-o", path)
    assert submit(agent, path)["outcome"] == "accepted"


def test_freeze_holds_changes_not_restarts():
    with Workspace() as ws:
        key = os.path.join(ws.root, "admin")
        pub = admin("keygen", key).stdout.strip()
        a = ws.agent("f1", '[runtime]\nlocal = "local.toml"\n')
        a.set_keys("gossip", 'cluster = "e2e-freeze"')
        a.set_keys("trust", f'admins = ["{pub}"]\nthreshold = 1')
        local = os.path.join(a.dir, "local.toml")
        with open(local, "w") as f:
            f.write(ONE.replace('stop_grace_ms', 'restart = "always"\nstop_grace_ms'))
        a.start()
        wait_for(lambda: set(running(a)) == {"one#0"}, 10, "one#0 to run")
        commit_op(ws, a, key + ".key", "freeze +600 e2e: change freeze", 1)
        wait_for(lambda: a.inspect_json("snapshot")["executor"]["holding_changes"], 10, "the executor to hold changes")
        gated = a.inspect_json("snapshot")["executor"]["gated"]

        # A change (a second local daemon) is accepted by reload and held at the gate.
        with open(local, "w") as f:
            f.write(TWO.replace('stop_grace_ms', 'restart = "always"\nstop_grace_ms', 1))
        admin("reload", "--socket", a.socket, "--reason", "e2e: a change while frozen")
        wait_for(lambda: a.inspect_json("snapshot")["executor"]["gated"] > gated, 10, "the change to be gated")
        time.sleep(1.0)
        assert set(running(a)) == {"one#0"}, running(a)

        # What keeps the running set passes: a crash restarts, and so does an operator's restart.
        pid = running(a)["one#0"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: running(a).get("one#0", pid) != pid, 10, "one#0 to restart after a crash while frozen")
        pid = running(a)["one#0"]
        a.inspect("--reason", "e2e: operator restart while frozen", "daemon", "restart", "one")
        wait_for(lambda: running(a).get("one#0", pid) != pid, 10, "an operator's restart while frozen")
        assert "two#0" not in running(a)

        # The thaw lets the held change through.
        commit_op(ws, a, key + ".key", "thaw", 2)
        wait_for(lambda: set(running(a)) == {"one#0", "two#0"}, 10, "two#0 to start after the thaw")
        recs = a.inspect_json("chain", "tail", "log", "--count", "1000")["records"]
        actions = [json.loads(r["payload_text"]) for r in recs if r["kind"] == "action"]
        causes = {(x["action"], x["instance"], x["cause"]) for x in actions}
        assert ("start", "one#0", "policy") in causes, causes
        assert ("start", "one#0", "operator") in causes, causes
        assert ("start", "two#0", "change") in causes, causes
        assert a.stop() == 0


if __name__ == "__main__":
    run_tests([test_sighup_and_admin_reload, test_freeze_holds_changes_not_restarts])
