#!/usr/bin/env python3
"""leaks.py ROOT RUN_ID: fails if a process started by a test run is still alive.

`tools/dev test` runs the suite with TMPDIR=ROOT and MESHOS_TEST_RUN=RUN_ID. A process
belongs to the run when its environment holds that marker (what the tests started: agents,
helpers), or its working directory or command line is under ROOT (what those started with
an environment of their own: an agent's daemons work in its data directory). Every such
process still alive is printed with its command line, killed, and the check fails: a CI
machine runs many suites, and a test must end what it started."""
import os
import signal
import sys
import time


def read(path, mode="rb"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def belongs(pid, root, marker):
    env = read(f"/proc/{pid}/environ") or b""
    if marker in env.split(b"\0"):
        return True
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = ""
    cmdline = read(f"/proc/{pid}/cmdline") or b""
    return cwd.startswith(root) or root.encode() in cmdline


def zombie(pid):
    stat = read(f"/proc/{pid}/stat", "r")
    return stat is None or stat.rsplit(")", 1)[1].split()[0] == "Z"


def leaked(root, run_id):
    marker = f"MESHOS_TEST_RUN={run_id}".encode()
    mine = {os.getpid(), os.getppid()}
    return [int(d) for d in os.listdir("/proc")
            if d.isdigit() and int(d) not in mine and not zombie(int(d)) and belongs(int(d), root, marker)]


def main():
    root, run_id = os.path.realpath(sys.argv[1]), sys.argv[2]
    # A test's last processes may still be on their way out: give them a moment.
    deadline = time.monotonic() + 3
    pids = leaked(root, run_id)
    while pids and time.monotonic() < deadline:
        time.sleep(0.2)
        pids = leaked(root, run_id)
    if not pids:
        print("leak check: no process of the test run is left")
        return 0
    print(f"leak check: FAILED: {len(pids)} process(es) started by the test run are still alive:")
    for pid in pids:
        cmd = (read(f"/proc/{pid}/cmdline") or b"").replace(b"\0", b" ").decode(errors="replace").strip()
        print(f"  pid {pid}: {cmd}")
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return 1


if __name__ == "__main__":
    sys.exit(main())
