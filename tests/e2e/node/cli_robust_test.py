"""No CLI ever aborts (issue 15): every meshos-inspect and meshos-admin command is called over
and over while an agent starts and while it stops, when its snapshot is partial or gone. Any
exit by a signal, `terminate called`, or the tools' internal-error status (70) fails."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import ADMIN, AGENT, INSPECT, Workspace, run_tests, wait_for  # noqa: E402

ROUNDS = 3
WINDOW_S = 1.5  # how long each phase is probed


def commands(agent):
    sock = ["--socket", agent.socket]
    inspect = [[INSPECT, *sock, *c] for c in (
        ["snapshot"], ["snapshot", "--json"], ["members"], ["daemons"], ["metrics"], ["ping"],
        ["placement"], ["logs", "absent"], ["chain", "verify", "audit"], ["chain", "tail", "log"],
        ["chain", "show", "failure"], ["--reason", "cli robustness", "daemon", "restart", "absent"])]
    admin = [[ADMIN, "head", "--socket", agent.socket], [ADMIN, "keyring", "list", "--socket", agent.socket]]
    return inspect + admin


def probe_all(agent, until):
    """Runs every command until the deadline; returns how many calls were made."""
    calls = 0
    while time.monotonic() < until:
        for cmd in commands(agent):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            calls += 1
            name = " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))
            assert r.returncode >= 0 and r.returncode < 128, f"{name}: killed by a signal ({r.returncode}): {r.stderr}"
            assert r.returncode != 70, f"{name}: internal error: {r.stderr}"
            assert "terminate called" not in r.stderr, f"{name}: {r.stderr}"
    return calls


def test_every_command_while_the_agent_starts_and_stops():
    with Workspace() as ws:
        a = ws.agent("n1")
        calls = 0
        for _ in range(ROUNDS):
            a.start(wait=False)
            calls += probe_all(a, time.monotonic() + WINDOW_S)
            wait_for(a.answers, 10, "the agent to serve")
            a.proc.send_signal(signal.SIGTERM)
            calls += probe_all(a, time.monotonic() + WINDOW_S / 3)
            a.proc.wait(timeout=10)
        print(f"{calls} calls, none aborted", flush=True)


def test_every_tool_prints_its_version():
    for tool in (ADMIN, INSPECT, AGENT):
        r = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30)
        name = os.path.basename(tool)
        assert r.returncode == 0, f"{name} --version: exit {r.returncode}: {r.stderr}"
        assert r.stdout.startswith(f"{name} "), f"{name} --version printed {r.stdout!r}"


if __name__ == "__main__":
    run_tests([test_every_command_while_the_agent_starts_and_stops, test_every_tool_prints_its_version])
