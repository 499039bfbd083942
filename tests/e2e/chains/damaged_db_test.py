#!/usr/bin/env python3
"""A damaged chain database at start (issue 15): a table file missing, or corrupted.

The agent refuses to start with one line naming the database and the command to run;
`chain verify --data-dir` names the damage; `meshos-inspect recover` keeps the damaged store
aside and starts new chains whose first record names the last verified head; the agent
then starts and its chains verify."""
import glob
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import INSPECT, Workspace, run_tests, wait_for  # noqa: E402

CHAINS = ("audit", "log", "failure")
EXIT_WAIT_S = 10


def inspect_offline(*args):
    return subprocess.run([INSPECT, *args], capture_output=True, text=True, timeout=60)


def with_history(ws):
    """An agent started and stopped three times, with requests in between: its records
    are in table files (each start flushes what the last one left in the WAL)."""
    a = ws.agent("n1")
    for _ in range(3):
        a.start()
        for _ in range(10):
            a.inspect("members")
        assert a.stop() == 0, a.read_log()[-2000:]
    return a


def largest_table(agent):
    tables = glob.glob(os.path.join(agent.dir, "data", "db", "*.sst"))
    assert tables, os.listdir(os.path.join(agent.dir, "data", "db"))
    return max(tables, key=os.path.getsize)


def corrupt_middle(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 3)
        f.write(b"\xa5" * 64)


def start_refused(agent):
    """Starts the agent, expects it to exit; returns its last log lines."""
    agent.start(wait=False)
    wait_for(lambda: agent.proc.poll() is not None, EXIT_WAIT_S, "the agent to refuse to start")
    assert agent.proc.returncode != 0
    return agent.read_log()


def check_refusal_line(agent, log):
    db = os.path.join("data", "db")
    lines = [l for l in log.splitlines() if "is damaged" in l]
    assert lines, log[-3000:]
    assert db in lines[-1] and "meshos-inspect recover --data-dir" in lines[-1], lines[-1]


def check_verify_names_damage(agent):
    r = inspect_offline("chain", "verify", "audit", "--data-dir", os.path.join(agent.dir, "data"))
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    said = r.stdout + r.stderr
    assert "DAMAGED" in said and "meshos-inspect recover" in said, said
    j = json.loads(inspect_offline("chain", "verify", "audit", "--data-dir", os.path.join(agent.dir, "data"),
                                   "--json").stdout)
    # "damaged": the store does not open; "read_error": it opens, a table fails its checksum.
    assert j["verify"]["ok"] is False and j["verify"]["problem"] in ("damaged", "read_error"), j


def recover_and_restart(agent):
    data = os.path.join(agent.dir, "data")
    r = inspect_offline("recover", "--data-dir", data, "--reason", "e2e: damaged table file", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert os.path.isdir(report["damaged_store"]), report
    assert not glob.glob(os.path.join(data, "salvage-*")), os.listdir(data)
    agent.start()
    for chain in CHAINS:
        first = agent.inspect_json("chain", "tail", chain, "--from", "1", "--count", "1")["records"][0]
        assert first["seq"] == 1 and first["kind"] == "chain.recovered", first
        payload = json.loads(first["payload_text"])
        head = next(h for h in report["heads"] if h["chain"] == chain)
        assert payload["previous_seq"] == head["seq"] and payload["previous_hash"] == head["hash"], (payload, head)
        assert payload["reason"] == "e2e: damaged table file" and payload["damaged_store"] == report["damaged_store"]
        assert agent.inspect_json("chain", "verify", chain)["verify"]["ok"] is True
    assert agent.stop() == 0
    for chain in CHAINS:
        r = inspect_offline("chain", "verify", chain, "--data-dir", data)
        assert r.returncode == 0, r.stdout + r.stderr
    return report


def test_missing_table_file():
    with Workspace() as ws:
        a = with_history(ws)
        os.unlink(largest_table(a))
        check_refusal_line(a, start_refused(a))
        check_verify_names_damage(a)
        report = recover_and_restart(a)
        print("missing table: heads kept", [(h["chain"], h["seq"]) for h in report["heads"]], flush=True)


def test_corrupted_table_file():
    with Workspace() as ws:
        a = with_history(ws)
        corrupt_middle(largest_table(a))
        check_refusal_line(a, start_refused(a))
        check_verify_names_damage(a)
        report = recover_and_restart(a)
        assert report["state_keys"] >= 1, report  # the node's state area came across
        print("corrupted table: heads kept", [(h["chain"], h["seq"]) for h in report["heads"]], flush=True)


def test_recover_refuses_a_running_agent():
    with Workspace() as ws:
        a = ws.agent("n1").start()
        r = inspect_offline("recover", "--data-dir", os.path.join(a.dir, "data"), "--reason", "x")
        assert r.returncode == 1 and "stop the agent first" in r.stderr, r.stderr
        assert os.path.isdir(os.path.join(a.dir, "data", "db"))
        assert a.stop() == 0


if __name__ == "__main__":
    run_tests([test_missing_table_file, test_corrupted_table_file, test_recover_refuses_a_running_agent])
