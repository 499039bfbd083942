"""Reload on SIGHUP and `meshos-admin reload`: the [runtime] local file and the log level
change at run time, a bad file is refused with its file:line and changes nothing, and keys
that need a restart are named."""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import Workspace, admin, run_tests, wait_for  # noqa: E402

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


if __name__ == "__main__":
    run_tests([test_sighup_and_admin_reload])
