"""`critical = true` ([daemon.supervision], docs/RUNTIME.md): while a critical daemon is
quarantined, its node reports itself unhealthy (members show why), and placement puts no
commit daemon there (the decision names the reason); once the daemon runs again the node
is healthy and the daemon is placed again."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import FAST_BACKOFF, Workspace, admin, run_tests, submit, wait_for  # noqa: E402


def test_a_quarantined_critical_daemon_makes_the_node_unhealthy():
    with Workspace() as ws:
        key = os.path.join(ws.root, "admin")
        pub = admin("keygen", key).stdout.strip()
        flag = os.path.join(ws.root, "fail")
        a = ws.agent("n1", '[runtime]\nlocal = "local.toml"\n')
        a.set_keys("trust", f'admins = ["{pub}"]\nthreshold = 1')
        with open(os.path.join(a.dir, "local.toml"), "w") as f:
            f.write(f"""[[daemon]]
name = "guard"
command = ["/bin/sh", "-c", "if [ -e {flag} ]; then exit 3; fi; exec sleep 3600"]
restart = "always"
stop_grace_ms = 200
{FAST_BACKOFF}[daemon.crash_loop]
max_crashes = 3
window_ms = 30000
cooldown_ms = 4000
[daemon.supervision]
critical = true
""")
        a.start()
        desired = os.path.join(ws.root, "web.toml")
        with open(desired, "w") as f:
            f.write(f'[[daemon]]\nname = "web"\ncommand = ["/bin/sleep", "3600", "{ws.root}"]\nstop_grace_ms = 200\n')
        commit = os.path.join(ws.root, "web.commit")
        admin("sign-commit", "--key", key + ".key", "--agent", a.socket, "--file", desired, "-o", commit)
        assert submit(a, commit)["outcome"] == "accepted"

        def decision():
            found = [d for d in a.inspect_json("placement")["decisions"] if d["daemon"] == "web"]
            return found[0] if found else {"assigned": None}
        wait_for(lambda: decision()["assigned"] == ["n1"], 15, "web to be placed on n1")
        assert a.inspect_json("members")["members"][0]["unhealthy"] == ""

        # guard crash-loops into quarantine: the node is unhealthy, web is placed nowhere.
        open(flag, "w").close()
        a.inspect("--reason", "e2e: make guard fail", "daemon", "restart", "guard")
        wait_for(lambda: a.inspect_json("members")["members"][0].get("unhealthy") ==
                 "critical daemon guard is quarantined", 15, "n1 to report itself unhealthy")
        wait_for(lambda: decision()["assigned"] == [], 10, "web to be placed nowhere")
        d = decision()
        assert "unhealthy: critical daemon guard is quarantined" in json.dumps(d), d

        # The cooldown ends, guard runs again: healthy, web placed again.
        os.unlink(flag)
        wait_for(lambda: a.inspect_json("members")["members"][0].get("unhealthy") == "", 20, "n1 to be healthy again")
        wait_for(lambda: decision()["assigned"] == ["n1"], 10, "web to be placed on n1 again")
        assert a.stop() == 0


if __name__ == "__main__":
    run_tests([test_a_quarantined_critical_daemon_makes_the_node_unhealthy])
