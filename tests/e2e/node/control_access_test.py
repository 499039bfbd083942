"""Authorisation on the control socket, with real second users (setpriv as uids that are not
root): readers read and are refused changes, naming the missing role, and the refusal is in
the audit chain; operators operate but do not exec; a supplementary group grants admin;
every change needs a reason; a daemon's [daemon.permissions] bind even root; the socket's
mode is what [control] mode says.

Needs root (to run meshos-inspect as other users) and setpriv (util-linux); skipped (77)
otherwise.
"""
import json
import os
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import INSPECT, Workspace, run_tests, wait_for  # noqa: E402

READER_UID = 64011     # in no list: a reader through "*"
OPERATOR_UID = 64012   # listed by id in operators
ADMIN_GROUP = 64013    # a supplementary group listed in admins
ADMIN_UID = 64014      # an admin only through that group

SETPRIV = shutil.which("setpriv")


def as_user(agent, uid, *args, groups=()):
    """meshos-inspect run as uid (its own group, plus groups), not as root."""
    cmd = [SETPRIV, f"--reuid={uid}", f"--regid={uid}"]
    cmd += [f"--groups={','.join(str(g) for g in groups)}"] if groups else ["--clear-groups"]
    r = subprocess.run(cmd + [INSPECT, "--socket", agent.socket, *args], capture_output=True, text=True, timeout=30)
    return r


def open_path_for_others(path):
    """The socket's directories must be searchable by the other users (mkdtemp makes 0700)."""
    while path not in ("/", ""):
        st = os.stat(path)
        os.chmod(path, stat.S_IMODE(st.st_mode) | 0o711)
        path = os.path.dirname(path)


def control_config(agent, mode, lists):
    with open(agent.config) as f:
        text = f.read()
    text = text.replace('mode = "0600"', f'mode = "{mode}"\n{lists}')
    with open(agent.config, "w") as f:
        f.write(text)


def audit_records(agent):
    """Every audit record, its JSON payload decoded."""
    records = agent.inspect_json("chain", "tail", "audit", "--from", "1", "--count", "10000")["records"]
    for r in records:
        try:
            r["payload"] = json.loads(r.get("payload_text", ""))
        except ValueError:
            r["payload"] = {}
    return records


SIGNAL_DAEMON = """
[[daemon]]
name = "guarded"
command = ["/bin/sh", "-c", "trap 'echo hup >> {out}' HUP; while :; do sleep 0.2; done", "{marker}"]
[daemon.permissions]
allow_stop = false
allow_restart = true
allowed_signals = ["HUP"]
"""


def test_roles_reasons_and_permissions():
    with Workspace() as ws:
        a = ws.agent("n1", '[runtime]\nlocal = "local.toml"\n')
        out = os.path.join(a.dir, "hups")
        with open(os.path.join(a.dir, "local.toml"), "w") as f:
            f.write(SIGNAL_DAEMON.format(out=out, marker=ws.root))
        control_config(a, "0666", f'readers = ["*"]\noperators = ["{OPERATOR_UID}"]\n'
                                  f'admins = ["%{ADMIN_GROUP}"]')
        open_path_for_others(a.dir)
        a.start()
        wait_for(lambda: any(d["instance"] == "guarded#0" and d["state"] == "ready"
                             for d in a.inspect_json("daemons")["daemons"]), 10, "guarded#0 ready")
        assert oct(stat.S_IMODE(os.stat(a.socket).st_mode)) == "0o666"

        # A reader reads, and is refused a change by role.
        r = as_user(a, READER_UID, "daemons")
        assert r.returncode == 0 and "guarded#0" in r.stdout, r.stderr
        r = as_user(a, READER_UID, "--reason", "try", "daemon", "restart", "guarded")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "daemon restart needs the operator role; uid 64011 has reader" in r.stderr, r.stderr

        # An operator restarts, but may not exec.
        r = as_user(a, OPERATOR_UID, "--reason", "e2e: operator restart", "daemon", "restart", "guarded")
        assert r.returncode == 0, r.stderr
        r = as_user(a, OPERATOR_UID, "--reason", "e2e: look inside", "daemon", "exec", "guarded", "--", "id")
        assert r.returncode == 1 and "daemon exec needs the admin role; uid 64012 has operator" in r.stderr, r.stderr

        # Admin through a supplementary group (the kernel's SO_PEERGROUPS).
        wait_for(lambda: any(d["instance"] == "guarded#0" and d["state"] == "ready"
                             for d in a.inspect_json("daemons")["daemons"]), 10, "guarded#0 ready again")
        r = as_user(a, ADMIN_UID, "--reason", "e2e: look inside", "daemon", "exec", "guarded", "--", "echo", "in",
                    groups=(ADMIN_GROUP,))
        assert r.returncode == 0 and r.stdout.startswith("in"), (r.stdout, r.stderr)

        # Every change needs a reason: the CLI says so before asking.
        r = a.inspect("daemon", "restart", "guarded", check=False)
        assert r.returncode == 2 and "--reason is required" in r.stderr, r.stderr

        # The daemon's own permissions bind root too.
        r = a.inspect("--reason", "e2e: stop it", "daemon", "stop", "guarded", check=False)
        assert r.returncode == 1 and "does not allow stop ([daemon.permissions] allow_stop = false)" in r.stderr, r.stderr
        r = a.inspect("--reason", "e2e: usr1", "daemon", "signal", "guarded", "USR1", check=False)
        assert r.returncode == 1 and "does not allow signal 10" in r.stderr, r.stderr
        r = a.inspect("--reason", "e2e: reload", "daemon", "signal", "guarded", "HUP", check=False)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: os.path.exists(out) and "hup" in open(out).read(), 5, "the daemon to see SIGHUP")

        # Refusals are on record: who, what, which role was missing.
        def refused(recs):
            return [r["payload"] for r in recs if r["kind"] == "control.refused"]
        recs = wait_for(lambda: refused(audit_records(a)), 10, "refusals in the audit chain")
        byrole = [p for p in refused(audit_records(a)) if p["uid"] == READER_UID]
        assert byrole and byrole[0]["command"] == "daemon restart" and byrole[0]["needs"] == "operator" and \
            byrole[0]["has"] == "reader" and byrole[0]["reason"] == "try", byrole
        assert any(p["uid"] == OPERATOR_UID and p["command"] == "daemon exec" for p in refused(audit_records(a)))
        stops = [r["payload"] for r in audit_records(a)
                 if r["kind"] == "control" and r["payload"].get("command") == "daemon-stop"]
        assert stops and "allow_stop = false" in stops[-1]["result"], stops
        assert recs
        snap = a.inspect_json("snapshot")
        assert snap["control"]["refused_requests"] >= 4, snap["control"]


def test_socket_mode_keeps_others_out():
    with Workspace() as ws:
        a = ws.agent("n1")
        control_config(a, "0640", "")
        open_path_for_others(a.dir)
        a.start()
        assert oct(stat.S_IMODE(os.stat(a.socket).st_mode)) == "0o640"
        r = as_user(a, READER_UID, "ping")
        assert r.returncode != 0 and "ermission denied" in r.stderr, (r.returncode, r.stderr)
        a.stop()


def test_unknown_user_in_a_role_list_is_a_startup_error():
    with Workspace() as ws:
        a = ws.agent("n1")
        control_config(a, "0600", 'operators = ["no-such-user-meshos"]')
        a.start(wait=False)
        assert a.proc.wait(10) != 0
        assert '[control] operators: no user "no-such-user-meshos" on this host' in a.read_log(), a.read_log()


if __name__ == "__main__":
    if os.geteuid() != 0 or SETPRIV is None:
        print("needs root and setpriv: skipped")
        sys.exit(77)
    run_tests([test_roles_reasons_and_permissions, test_socket_mode_keeps_others_out,
               test_unknown_user_in_a_role_list_is_a_startup_error])
