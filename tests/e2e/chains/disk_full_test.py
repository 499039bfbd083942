#!/usr/bin/env python3
"""A full disk under a running agent, and an agent started on a full disk (issue 15).

The data directory is a 4 MB tmpfs mounted by the test (root only; skipped otherwise).
The agent must stay up, keep supervising, refuse what it must audit with a clear error,
report itself degraded (snapshot, members, metrics), resume within 1 s of space
returning, lose no acknowledged record, and leave chains that verify."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import INSPECT, Workspace, run_tests, wait_for  # noqa: E402

REFUSAL = "disk full: the audit chain cannot record this; refused"
RESUME_BOUND_S = 1.0
TMPFS_BYTES = 4 << 20


def skip_unless_root():
    if os.geteuid() != 0:
        print("SKIP: needs root to mount a size-limited tmpfs")
        sys.exit(77)


class Tmpfs:
    """A size-limited tmpfs at path, unmounted (lazily, so a test failure cannot wedge it)
    on exit."""

    def __init__(self, path, size):
        self.path = path
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "meshos-e2e", path],
                       check=True)

    def fill(self):
        """Writes a file until the disk is full; returns its path."""
        filler = os.path.join(self.path, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for _ in range(TMPFS_BYTES // 4096 + 16):  # bounded: more than the disk holds
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        return filler

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", self.path], check=False)
        return False


def local_talker(agent, marker):
    """A local daemon that writes a log line every 200 ms: its log writes hit the full disk."""
    with open(os.path.join(agent.dir, "local.toml"), "w") as f:
        f.write(f'[[daemon]]\nname = "talker"\n'
                f'command = ["/bin/sh", "-c", "while true; do echo talking; sleep 0.2; done", "{marker}"]\n'
                f'restart = "always"\n')
    agent.set_keys("runtime", 'local = "local.toml"')


def daemon_pids(agent):
    return sorted(d["pid"] for d in agent.inspect_json("daemons")["daemons"] if d.get("pid"))


def kill_marked(marker):
    """Kills every process whose command line holds marker (the talker: daemons outlive
    their agent by design, so the test ends them itself), and waits until they are gone."""
    def marked():
        found = []
        for d in os.listdir("/proc"):
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if d.isdigit() and marker.encode() in f.read():
                        found.append(int(d))
            except OSError:
                pass
        return found
    for pid in marked():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    wait_for(lambda: not [p for p in marked() if p != os.getpid()], 5, "the talker to die")


def storage(agent):
    return agent.inspect_json("snapshot")["storage"]


CHAINS = ("audit", "log", "failure")


def durable_heads(agent):
    chains = agent.inspect_json("snapshot")["chains"]
    return {c: chains[c]["head"]["seq"] for c in CHAINS}


def settled_heads(agent):
    """Waits until everything appended so far is durable (each request appends its own
    audit record, so `pending` is never 0 when read); returns the durable heads."""
    chains = agent.inspect_json("snapshot")["chains"]
    target = {c: chains[c]["appended_head"]["seq"] for c in CHAINS}

    def reached():
        heads = durable_heads(agent)
        return heads if all(heads[c] >= target[c] for c in CHAINS) else None
    return wait_for(reached, 10, "appended chain records to be durable")


def restart_request(agent, n, daemon="absent"):
    """A request the node must audit. For a daemon that does not exist, so the requests
    accepted before the node learns the disk is full change nothing."""
    return subprocess.run([INSPECT, "--socket", agent.socket, "--reason", f"disk full test {n}",
                           "daemon", "restart", daemon], capture_output=True, text=True, timeout=30)


def until_refused(agent):
    """Sends mutating requests until one is refused for the full disk (the first may still
    be accepted: the node learns the disk is full from its first failed write)."""
    for n in range(200):
        r = restart_request(agent, n)
        assert agent.proc.poll() is None, f"agent died:\n{agent.read_log()[-3000:]}"
        if REFUSAL in r.stderr:
            assert r.returncode != 0, r
            return n + 1
        time.sleep(0.05)
    raise AssertionError("no request was refused on a full disk")


def resume_seconds(agent, filler):
    """Frees the space and measures until the node is no longer degraded."""
    os.unlink(filler)
    freed = time.monotonic()
    wait_for(lambda: storage(agent)["failing"] == 0, 10, "chain writes to resume")
    return time.monotonic() - freed


def verify_offline(agent):
    for chain in CHAINS:
        r = subprocess.run([INSPECT, "chain", "verify", chain, "--data-dir", os.path.join(agent.dir, "data"),
                            "--json"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and json.loads(r.stdout)["verify"]["ok"] is True, r.stdout + r.stderr


def test_full_disk_under_a_running_agent():
    with Workspace() as ws:
        a = ws.agent("n1")
        with Tmpfs(os.path.join(a.dir, "data"), TMPFS_BYTES) as disk:
            local_talker(a, ws.root)
            a.start()
            wait_for(lambda: daemon_pids(a), 10, "the talker to run")
            pids = daemon_pids(a)
            try:
                assert restart_request(a, 0, "talker").returncode == 0
                pids = wait_for(lambda: daemon_pids(a) if daemon_pids(a) != pids else None, 10,
                                "the talker to run again")
                acked = settled_heads(a)
                filler = disk.fill()
                tried = until_refused(a)
                print(f"refused after {tried} requests on a full disk", flush=True)
                s = storage(a)
                assert s["failing"] == 1 and "disk full" in s["error"], s
                assert s["audit_refusals"] >= 1, s
                members = a.inspect_json("members")["members"]
                assert members[0]["health"] == "degraded" and "storage failing" in str(members[0]), members
                assert "meshos_storage_failing 1" in a.inspect("metrics").stdout
                # Reads work and the daemons are still supervised, by the same processes.
                assert a.inspect_json("chain", "tail", "audit")["records"]
                assert daemon_pids(a) == pids, (daemon_pids(a), pids)
                took = resume_seconds(a, filler)
                print(f"writes resumed {took * 1000:.0f} ms after space returned", flush=True)
                assert took <= RESUME_BOUND_S, took
                after = settled_heads(a)
                assert all(after[c] >= acked[c] for c in acked), (acked, after)
                kinds = [r["kind"] for r in a.inspect_json("chain", "tail", "failure")["records"]]
                assert "storage.failed" in kinds and "storage.resumed" in kinds, kinds
                r = restart_request(a, 999, "talker")
                assert r.returncode == 0, r.stderr
                assert a.stop() == 0
            finally:
                kill_marked(ws.root)
            verify_offline(a)


def test_start_on_a_full_disk():
    with Workspace() as ws:
        a = ws.agent("n1")
        with Tmpfs(os.path.join(a.dir, "data"), TMPFS_BYTES) as disk:
            a.start()
            acked = settled_heads(a)
            assert a.stop() == 0
            filler = disk.fill()
            a.start()  # raises if the agent does not serve
            wait_for(lambda: storage(a)["failing"] == 1, 10, "the node to report the full disk")
            r = restart_request(a, 1)
            assert r.returncode != 0 and REFUSAL in r.stderr, r.stderr
            assert all(durable_heads(a)[c] >= acked[c] for c in CHAINS)
            took = resume_seconds(a, filler)
            print(f"started on a full disk; writes resumed {took * 1000:.0f} ms after space returned", flush=True)
            assert took <= RESUME_BOUND_S, took
            kinds = [r["kind"] for r in a.inspect_json("chain", "tail", "audit", "--from", "1", "--count", "10000")["records"]]
            assert kinds.count("agent.start") == 2, kinds
            assert a.stop() == 0
            verify_offline(a)


if __name__ == "__main__":
    skip_unless_root()
    run_tests([test_full_disk_under_a_running_agent, test_start_on_a_full_disk])
