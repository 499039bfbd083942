"""meshos-agent end to end with local daemons: run, log, survive the agent, crash loops,
operator commands, bad daemons files.

Every daemon's argv carries the workspace path, so whatever a test leaves running is found
in /proc and killed at the end (and a leftover fails the test that left it).
"""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import AGENT, FAST_BACKOFF, INSPECT, Workspace, run_tests, wait_for  # noqa: E402

PY = os.path.realpath(sys.executable)
LOCAL = '[runtime]\nlocal = "local.toml"\n'
EXIT_WAIT_S = 5  # a failed start exits at once; this only bounds a hang


# --- helpers ------------------------------------------------------------------------------

def write_local(agent, text):
    with open(os.path.join(agent.dir, "local.toml"), "w") as f:
        f.write(text)


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def marked_pids(marker):
    """Live processes whose command line contains marker (our daemons)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd and alive(int(d)):
            out.append(int(d))
    return out


def kill_marked(marker):
    for pid in marked_pids(marker):
        for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                kill()
            except OSError:
                pass
    wait_for(lambda: not marked_pids(marker), 5, "marked daemons to die")


class Daemons(Workspace):
    """A workspace that also kills every daemon it started (by the marker in their argv)."""

    def __init__(self):
        super().__init__()
        self.marker = os.path.join(self.root, "daemon-marker")  # not in the agents' argv

    def __exit__(self, *exc):
        try:
            kill_marked(self.marker)
        except AssertionError as e:
            print(f"cleanup: {e}")
        return super().__exit__(*exc)


def instances(agent):
    return {d["instance"]: d for d in agent.inspect_json("daemons")["daemons"]}


def wait_instances(agent, want, timeout_s=10, what=None):
    """Polls `daemons --json` until want(instances) is true; returns the instances."""
    seen = {}

    def check():
        seen["last"] = instances(agent)
        return want(seen["last"])

    try:
        wait_for(check, timeout_s, what or "daemon instances")
    except AssertionError as e:
        raise AssertionError(f"{e}; last daemons: {json.dumps(seen.get('last'), indent=1)}") from None
    return seen["last"]


def records(agent, chain, count=1000):
    """The last `count` records of a chain, payloads decoded."""
    out = []
    for r in agent.inspect_json("chain", "tail", chain, "--count", str(count))["records"]:
        text = r.get("payload_text", "")
        try:
            r["payload"] = json.loads(text)
        except ValueError:
            r["payload"] = text
        out.append(r)
    return out


def wait_records(agent, chain, want, timeout_s=10, what=None):
    """Polls a chain until want(records) is true (records are flushed asynchronously)."""
    seen = {}

    def check():
        seen["last"] = records(agent, chain)
        return want(seen["last"])

    try:
        wait_for(check, timeout_s, what or f"{chain} chain records")
    except AssertionError as e:
        tail = [(r["kind"], r["payload"]) for r in seen.get("last", [])[-15:]]
        raise AssertionError(f"{e}; last {chain} records: {tail}") from None
    return seen["last"]


def inspect_with_pid(agent, *args):
    """Runs meshos-inspect; returns (completed-like result, the inspect process's pid)."""
    p = subprocess.Popen([INSPECT, "--socket", agent.socket, "--reason", "e2e: operator commands", *args],
                         stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=30)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err), p.pid


def two_services(marker):
    """`ticker` (python, 2 replicas) and `shell` (/bin/sh), both printing then idling."""
    return f"""
[[daemon]]
name = "ticker"
command = ["{PY}", "-c", "import os, sys, time\\nprint('hello from', os.environ['MESHOS_INSTANCE'], flush=True)\\ntime.sleep(3600)", "{marker}"]
replicas = 2
restart = "always"

[[daemon]]
name = "shell"
command = ["/bin/sh", "-c", "echo shell says $MESHOS_INSTANCE; exec sleep 3600", "{marker}"]
restart = "always"
depends_on = ["ticker"]
"""


def all_ready(n):
    return lambda insts: len(insts) == n and all(
        d["state"] == "ready" and d["pid"] > 0 and alive(d["pid"]) for d in insts.values())


# --- tests ---------------------------------------------------------------------------------

def test_local_daemons_run_log_and_record_transitions():
    with Daemons() as ws:
        a = ws.agent("n1", LOCAL)
        write_local(a, two_services(ws.marker))
        a.start()
        insts = wait_instances(a, all_ready(3), what="3 ready instances")
        assert set(insts) == {"ticker#0", "ticker#1", "shell#0"}, insts
        pids = {d["pid"] for d in insts.values()}
        assert len(pids) == 3, insts
        for d in insts.values():
            assert d["adopted"] is False and d["restarts"] == 0, d
        # Their output is captured and served by `logs`.
        for inst, line in (("ticker#0", "hello from ticker#0"), ("ticker#1", "hello from ticker#1"),
                           ("shell", "shell says shell#0")):
            wait_for(lambda: line in a.inspect("logs", inst).stdout, 5, f"{line!r} in logs {inst}")
        assert "hello from ticker#1" in a.inspect("logs", "ticker#1", "--tail", "1").stdout
        # The log chain holds each instance's way to ready.
        def transitions_to_ready(recs):
            return {r["payload"]["instance"] for r in recs
                    if r["kind"] == "daemon.transition" and r["payload"].get("to") == "ready"}
        wait_records(a, "log", lambda recs: transitions_to_ready(recs) >= set(insts),
                     what="a transition to ready for each instance")
        assert a.inspect_json("chain", "verify", "log")["verify"]["ok"] is True
        assert a.stop() == 0


def test_daemons_outlive_the_agent_and_are_readopted():
    with Daemons() as ws:
        a = ws.agent("n1", LOCAL)
        write_local(a, two_services(ws.marker))
        a.start()
        before = wait_instances(a, all_ready(3), what="3 ready instances")
        pids = {k: d["pid"] for k, d in before.items()}
        # SIGKILL: nothing is stopped.
        a.proc.kill()
        a.proc.wait()
        for inst, pid in pids.items():
            assert alive(pid), f"{inst} (pid {pid}) died with the SIGKILLed agent"
        # Restart: the same pids, adopted, no restart counted.
        a.start()
        after = wait_instances(a, all_ready(3), what="3 ready instances after restart")
        for inst, pid in pids.items():
            d = after[inst]
            assert d["pid"] == pid, f"{inst}: pid {d['pid']} after restart, was {pid}"
            assert d["adopted"] is True, f"{inst} not adopted: {d}"
            assert d["restarts"] == 0, f"{inst}: restart counted on re-adoption: {d}"
        # SIGTERM: exit 0, daemons left for the next agent.
        assert a.stop(signal.SIGTERM) == 0
        for inst, pid in pids.items():
            assert alive(pid), f"{inst} (pid {pid}) stopped by a SIGTERMed agent"
        assert "left running for re-adoption" in a.read_log()
        # Clean up ourselves, by the pids the agent reported.
        for pid in pids.values():
            os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: not any(alive(p) for p in pids.values()), 5, "the daemons to die")
        assert not marked_pids(ws.marker), f"left behind: {marked_pids(ws.marker)}"


def test_a_crash_loop_is_counted_and_quarantined():
    with Daemons() as ws:
        a = ws.agent("n1", LOCAL)
        write_local(a, f"""
[[daemon]]
name = "crasher"
command = ["/bin/sh", "-c", "echo crashing; exit 3", "{ws.marker}"]
restart = "always"
{FAST_BACKOFF}[daemon.crash_loop]
max_crashes = 4
window_ms = 30000
cooldown_ms = 600000
""")
        a.start()
        insts = wait_instances(a, lambda i: i.get("crasher#0", {}).get("state") == "quarantined",
                               what="crasher#0 to be quarantined")
        d = insts["crasher#0"]
        assert d["restarts"] >= 3, f"restarts not counted: {d}"
        assert d.get("last_exit_code") == 3 and d.get("exit_code_known") is True, d
        # It stays quarantined (cooldown 10 min): the restart count does not move.
        again = instances(a)["crasher#0"]
        assert again["state"] == "quarantined" and again["restarts"] == d["restarts"], again
        recs = wait_records(a, "failure", lambda rs: any(r["kind"] == "daemon.quarantine" for r in rs),
                            what="daemon.quarantine in the failure chain")
        crashes = [r for r in recs if r["kind"] == "daemon.crash" and r["payload"]["instance"] == "crasher#0"]
        assert len(crashes) >= 3, [r["kind"] for r in recs]
        q = [r for r in recs if r["kind"] == "daemon.quarantine"][0]
        assert q["payload"]["daemon"] == "crasher", q
        wait_records(a, "log", lambda rs: any(r["kind"] == "daemon.transition" and
                                              r["payload"].get("to") == "quarantined" for r in rs),
                     what="a transition to quarantined in the log chain")
        assert "crashing" in a.inspect("logs", "crasher#0").stdout
        assert a.stop() == 0


def test_operator_commands_act_and_are_audited():
    with Daemons() as ws:
        a = ws.agent("n1", LOCAL)
        write_local(a, two_services(ws.marker))
        a.start()
        insts = wait_instances(a, all_ready(3), what="3 ready instances")
        old = insts["ticker#0"]["pid"]
        calls = []  # (command, target, inspect pid)

        r, pid = inspect_with_pid(a, "daemon", "restart", "ticker#0")
        assert r.returncode == 0, r.stderr
        calls.append(("daemon-restart", "ticker#0", pid))
        insts = wait_instances(a, lambda i: i["ticker#0"]["pid"] not in (0, old) and
                               i["ticker#0"]["state"] == "ready" and alive(i["ticker#0"]["pid"]),
                               what="ticker#0 ready with a new pid")
        wait_for(lambda: not alive(old), 5, "the old ticker#0 to end")
        assert insts["ticker#1"]["pid"] != 0 and alive(insts["ticker#1"]["pid"])

        r, pid = inspect_with_pid(a, "daemon", "pause", "shell")
        assert r.returncode == 0, r.stderr
        calls.append(("daemon-pause", "shell", pid))
        wait_instances(a, lambda i: i["shell#0"]["state"] == "paused", what="shell#0 paused")
        r, pid = inspect_with_pid(a, "daemon", "resume", "shell")
        assert r.returncode == 0, r.stderr
        calls.append(("daemon-resume", "shell", pid))
        wait_instances(a, lambda i: i["shell#0"]["state"] in ("ready", "running"), what="shell#0 resumed")

        r, pid = inspect_with_pid(a, "daemon", "exec", "ticker", "--", "echo", "hi")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == "hi", r.stdout
        calls.append(("daemon-exec", "ticker", pid))

        r, pid = inspect_with_pid(a, "daemon", "restart", "nosuch")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "nosuch" in r.stderr and "no daemon" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        calls.append(("daemon-restart", "nosuch", pid))

        def audited(recs):
            got = {(r["payload"].get("command"), r["payload"].get("target"), r["payload"].get("pid"))
                   for r in recs if r["kind"] == "control" and isinstance(r["payload"], dict)}
            return all(c in got for c in calls)
        recs = wait_records(a, "audit", audited, what=f"audit records for {calls}")
        bad = [r["payload"] for r in recs if r["kind"] == "control" and
               r["payload"].get("target") == "nosuch"][0]
        assert "no daemon" in bad.get("result", ""), bad
        assert a.inspect_json("chain", "verify", "audit")["verify"]["ok"] is True
        assert a.stop() == 0


def test_a_bad_daemons_file_stops_the_agent_and_starts_nothing():
    good = """
[[daemon]]
name = "fine"
command = ["/bin/sh", "-c", "exec sleep 3600", "{marker}"]
"""
    cases = {
        "empty-command": ('[[daemon]]\nname = "empty"\ncommand = []\n', ["command"]),
        "cycle": ('[[daemon]]\nname = "a"\ncommand = ["/bin/true"]\ndepends_on = ["b"]\n'
                  '[[daemon]]\nname = "b"\ncommand = ["/bin/true"]\ndepends_on = ["a"]\n',
                  ["dependency cycle", "a -> b"]),
        "unknown-key": ('[[daemon]]\nname = "odd"\ncommand = ["/bin/true"]\ncolour = "red"\n', ["colour"]),
    }
    hung = []  # cases where the agent logged the error but did not exit
    with Daemons() as ws:
        for name, (text, expect) in cases.items():
            a = ws.agent(name, LOCAL)
            write_local(a, good.format(marker=ws.marker) + text)
            a.start(wait=False)
            try:
                status = a.proc.wait(EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                a.proc.kill()
                a.proc.wait()
                status = None
            log = a.read_log()
            errors = [line for line in log.splitlines() if "local.toml" in line]
            assert len(errors) == 1, (name, log)
            for e in expect:
                assert e in errors[0], (name, e, errors[0])
            if status is None:
                hung.append(name)
            else:
                assert status != 0, (name, status, log)
            assert not marked_pids(ws.marker), (name, "a daemon was started", marked_pids(ws.marker))
            inst_dir = os.path.join(a.dir, "data", "runtime", "instances")
            assert not os.path.isdir(inst_dir) or not os.listdir(inst_dir), (name, os.listdir(inst_dir))
            assert not os.path.exists(a.socket), (name, "socket left behind")
        # The good part alone starts: the failures above were the bad parts'.
        a = ws.agent("fixed", LOCAL)
        write_local(a, good.format(marker=ws.marker))
        a.start()
        wait_instances(a, all_ready(1), what="fine#0 ready")
        assert a.stop() == 0
    assert not hung, (f"AGENT BUG: after a failed start (error logged) the agent did not exit "
                      f"within {EXIT_WAIT_S}s and had to be killed, for: {hung}")


def memory_controller():
    """True when this host has a memory controller the agent can use (v1 or v2), as root."""
    if os.geteuid() != 0:
        return False
    with open("/proc/cgroups") as f:
        return any(line.split()[0] == "memory" and line.split()[3] == "1" for line in f if not line.startswith("#"))


def rmdir_quietly(path):
    """True once path is gone (a cgroup is busy until its last member has exited)."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def test_a_memory_hog_is_killed_at_its_limit_and_recorded():
    if not memory_controller():
        print("no memory controller or not root: skipped")
        return
    with Daemons() as ws:
        a = ws.agent("n1", LOCAL)
        a.set_keys("runtime", f'cgroup_parent = "meshos-e2e-{os.getpid()}"')
        write_local(a, f"""
[[daemon]]
name = "hog"
command = ["{PY}", "-c", "import time\\nb=[]\\nfor i in range(64):\\n b.append(b'x'*(8<<20))\\ntime.sleep(60)", "{ws.marker}"]
restart = "never"
[daemon.limits]
memory_max = 67108864
""")
        a.start()
        recs = wait_records(a, "failure", lambda rs: any("killed at memory limit" in str(r["payload"]) for r in rs),
                            timeout_s=20, what="the kill at memory_max in the failure chain")
        hit = [r["payload"] for r in recs if "killed at memory limit" in str(r["payload"])][0]
        assert "memory_max 67108864 bytes" in str(hit), hit
        print(f"failure record: {hit}")
        assert a.stop() == 0
        for hierarchy in ("memory", "unified", ""):  # the per-test parent, empty once the hog is gone
            parent = os.path.join("/sys/fs/cgroup", hierarchy, f"meshos-e2e-{os.getpid()}")
            for leftover in (os.listdir(parent) if os.path.isdir(parent) else []):
                child = os.path.join(parent, leftover)
                if os.path.isdir(child):  # an instance group; the rest are the kernel's files
                    wait_for(lambda: rmdir_quietly(child), 5, f"{child} removed")
            if os.path.isdir(parent):
                os.rmdir(parent)

def test_a_cron_schedule_is_disabled_and_enabled_from_inspect():
    with Daemons() as ws:
        a = ws.agent("n1", LOCAL)
        write_local(a, '[[daemon]]\nname = "report"\nkind = "cron"\nschedule = "* * * * *"\n'
                       'command = ["/bin/true"]\n\n[[daemon]]\nname = "svc"\ncommand = ["/bin/sleep", "3600"]\n')
        a.start()

        def enabled():
            crons = a.inspect_json("daemons")["cron"]
            return {c["name"]: c["enabled"] for c in crons}.get("report")
        wait_for(lambda: enabled() is True, 10, "the cron daemon to be scheduled")
        r, pid = inspect_with_pid(a, "daemon", "disable", "report")
        assert r.returncode == 0, r.stderr
        assert enabled() is False
        r, _ = inspect_with_pid(a, "daemon", "enable", "report")
        assert r.returncode == 0, r.stderr
        assert enabled() is True
        r, _ = inspect_with_pid(a, "daemon", "disable", "svc")
        assert r.returncode == 1 and "not a cron daemon" in r.stderr, (r.returncode, r.stderr)
        recs = wait_records(a, "audit", lambda recs: any(
            r["payload"].get("command") == "daemon-disable" and r["payload"].get("pid") == pid for r in recs
            if isinstance(r["payload"], dict)), what="the disable in the audit chain")
        assert recs
        assert a.stop() == 0


def test_a_group_restarts_by_its_strategy_and_is_quarantined_past_its_intensity():
    """One-for-all: kill one member and every member restarts, the restarted ones in
    dependency order; past restart_intensity the whole group is quarantined. Shown by
    `meshos-inspect daemons` (groups, why each instance last restarted) and recorded."""
    def member(name, extra=""):
        return f"""
[[daemon]]
name = "{name}"
command = ["/bin/sh", "-c", "exec sleep 3600", "{{marker}}"]
restart = "always"
backoff = {{ initial_ms = 50, max_ms = 100 }}
stop_grace_ms = 500
{extra}
[daemon.supervision]
group = "store"
strategy = "one-for-all"
restart_intensity = 2
restart_window_ms = 60000
"""
    with Daemons() as ws:
        a = ws.agent("n1", LOCAL)
        text = member("db") + member("api", 'depends_on = ["db"]') + member("cache")
        write_local(a, text.replace("{marker}", ws.marker))
        a.start()
        before = wait_instances(a, all_ready(3), what="3 ready members")
        os.kill(before["api#0"]["pid"], signal.SIGKILL)
        after = wait_instances(a, lambda i: all_ready(3)(i) and all(
            i[k]["pid"] != before[k]["pid"] for k in before), what="every member restarted (one-for-all)")
        assert after["db#0"]["last_restart"].startswith("group store (one-for-all): api#0 crashed"), after
        assert after["cache#0"]["last_restart"].startswith("group store (one-for-all): api#0 crashed"), after
        assert after["api#0"]["last_restart"].startswith("crashed"), after
        out = a.inspect("daemons").stdout
        assert "store (one-for-all)" in out and "last restart: db#0: group store (one-for-all)" in out, out
        assert "db,api,cache" in out or "db,cache,api" in out, out
        # Two more restarts in the window: the third in all quarantines the group.
        os.kill(after["cache#0"]["pid"], signal.SIGKILL)
        again = wait_instances(a, lambda i: all_ready(3)(i) and i["cache#0"]["pid"] != after["cache#0"]["pid"],
                               what="the second restart")
        os.kill(again["db#0"]["pid"], signal.SIGKILL)
        wait_instances(a, lambda i: all(d["state"] == "quarantined" and d["pid"] == 0 for d in i.values()),
                       what="the whole group quarantined")
        groups = a.inspect_json("daemons")["groups"]
        assert groups[0]["quarantined"] and "restart_intensity 2" in groups[0]["reason"], groups
        wait_records(a, "failure", lambda recs: any(r["kind"] == "daemon.group" for r in recs),
                     what="the group's quarantine in the failure chain")
        assert a.stop() == 0


if __name__ == "__main__":
    run_tests([
        test_local_daemons_run_log_and_record_transitions,
        test_daemons_outlive_the_agent_and_are_readopted,
        test_a_crash_loop_is_counted_and_quarantined,
        test_operator_commands_act_and_are_audited,
        test_a_cron_schedule_is_disabled_and_enabled_from_inspect,
        test_a_bad_daemons_file_stops_the_agent_and_starts_nothing,
        test_a_memory_hog_is_killed_at_its_limit_and_recorded,
        test_a_group_restarts_by_its_strategy_and_is_quarantined_past_its_intensity,
    ])
