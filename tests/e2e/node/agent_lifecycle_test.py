"""meshos-agent end to end: start, serve, inspect, bad input, shutdown."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import AGENT, Workspace, raw_exchange, run_tests, wait_for  # noqa: E402


def test_serves_snapshot_and_stops_cleanly():
    with Workspace() as ws:
        a = ws.agent("n1").start()
        snap = a.inspect_json("snapshot")
        assert snap["node"]["name"] == "n1"
        assert len(snap["node"]["id"]) == 16
        for key in ("loop", "executor", "members", "daemons", "generation", "commit_head"):
            assert key in snap, key
        for key in ("ticks", "lag_max_us", "lag_p99_us"):
            assert key in snap["loop"], key
        for key in ("dispatched", "failed", "deferred", "gated", "dropped"):
            assert key in snap["executor"], key
        wait_for(lambda: a.inspect_json("snapshot")["loop"]["ticks"] >= 3, 5, "ticks to advance")
        metrics = a.inspect("metrics").stdout
        assert "meshos_loop_ticks_total" in metrics and "meshos_executor_actions_dropped_total" in metrics
        members = a.inspect_json("members")["members"]
        assert [(m["name"], m["state"]) for m in members] == [("n1", "alive")], members
        assert a.inspect_json("daemons")["daemons"] == []
        human = a.inspect("snapshot").stdout
        assert "node n1" in human
        key_mode = os.stat(os.path.join(a.dir, "data", "node.key")).st_mode & 0o777
        assert key_mode == 0o600, oct(key_mode)
        node_id = snap["node"]["id"]
        # The audit chain holds the start and the control requests, and verifies live.
        tail = a.inspect_json("chain", "tail", "audit")["records"]
        assert tail[0]["kind"] == "agent.start", tail
        assert any(r["kind"] == "control" for r in tail)
        assert a.inspect_json("chain", "verify", "audit")["verify"]["ok"] is True
        assert a.inspect("chain", "tail", "nope", check=False).returncode == 2
        assert a.stop(signal.SIGTERM) == 0
        # Stopped: verify the data directory directly; the stop and its checkpoint are there.
        data = os.path.join(a.dir, "data")
        r = a.inspect("chain", "verify", "audit", "--data-dir", data, "--json")
        report = json.loads(r.stdout)["verify"]
        assert report["ok"] is True and report["checkpoints"] >= 1, report
        shown = json.loads(a.inspect("chain", "tail", "audit", "--data-dir", data, "--json").stdout)
        assert shown["records"][-1]["kind"] == "agent.stop"
        assert not os.path.exists(a.socket), "socket left behind"
        assert "shutdown complete" in a.read_log()
        # Restarted, it keeps its identity.
        a.start()
        assert a.inspect_json("snapshot")["node"]["id"] == node_id
        assert a.stop(signal.SIGINT) == 0


def test_bad_configs_exit_2_naming_the_key():
    with Workspace() as ws:
        cases = {
            "missing": (None, "cannot read the config file"),
            "unknown": ("[node]\ncolour = \"red\"\n", "node.colour"),
            "type": ("[node]\ntick_interval_ms = \"fast\"\n", "node.tick_interval_ms"),
            "port": ("[gossip]\nbind = \"127.0.0.1:70000\"\n", "gossip.bind"),
            "syntax": ("[node\n", ":1:"),
        }
        for name, (text, expect) in cases.items():
            path = os.path.join(ws.root, name + ".toml")
            if text is not None:
                with open(path, "w") as f:
                    f.write(text)
            r = subprocess.run([AGENT, "--config", path], capture_output=True, text=True, timeout=10)
            assert r.returncode == 2, (name, r.returncode, r.stderr)
            assert expect in r.stderr, (name, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1, (name, r.stderr)
        r = subprocess.run([AGENT, "--no-such-flag"], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2


def test_garbage_on_the_socket_gets_errors_and_the_agent_keeps_serving():
    with Workspace() as ws:
        a = ws.agent("n1").start()
        for payload in (b"\x00\x00\x00\x05hello", b"\x00\x00\x00\x08\xff\xff\xff\x7f\x00\x00\x00\x00",
                        b"\x7f\xff\xff\xff" + b"x" * 100):
            reply = raw_exchange(a.socket, payload)
            assert b"invalid argument" in reply, (payload, reply)
        # A truncated frame, then the connection closes: nothing to answer, nothing breaks.
        import socket as so
        with so.socket(so.AF_UNIX) as s:
            s.connect(a.socket)
            s.sendall(b"\x00\x00\x01\x00abc")
        assert a.inspect_json("ping")["pong"] is True
        wait_for(lambda: a.inspect_json("snapshot")["control"]["malformed"] >= 2, 5,
                 "malformed requests to be counted")
        assert a.stop() == 0


def test_a_live_socket_is_not_taken_over_and_a_stale_one_is():
    with Workspace() as ws:
        a = ws.agent("n1").start()
        b = ws.agent("n2")
        # Point b at a's socket: it must refuse, exit 1, and leave a serving.
        with open(b.config) as f:
            text = f.read().replace('socket = "agent.sock"', f'socket = "{a.socket}"')
        with open(b.config, "w") as f:
            f.write(text)
        b.start(wait=False)
        assert b.proc.wait(10) == 1
        assert "another agent" in b.read_log()
        assert a.answers()
        # SIGKILL leaves a stale socket; the next start removes it and serves.
        a.proc.kill()
        a.proc.wait()
        assert os.path.exists(a.socket)
        a.start()
        assert a.stop() == 0


def test_a_stop_as_soon_as_the_socket_appears_is_graceful():
    # The signal handlers are installed before the socket listens: a SIGTERM sent the moment
    # the socket exists is a graceful stop (exit 0), never death by the default action.
    with Workspace() as ws:
        a = ws.agent("n1")
        for _ in range(5):
            a.start(wait=False)
            deadline = time.monotonic() + 10
            while not os.path.exists(a.socket):
                assert a.proc.poll() is None, f"exited with {a.proc.returncode}:\n{a.read_log()}"
                assert time.monotonic() < deadline, "the socket did not appear"
                time.sleep(0.0005)
            assert a.stop(signal.SIGTERM) == 0, a.read_log()


if __name__ == "__main__":
    run_tests([
        test_serves_snapshot_and_stops_cleanly,
        test_bad_configs_exit_2_naming_the_key,
        test_garbage_on_the_socket_gets_errors_and_the_agent_keeps_serving,
        test_a_live_socket_is_not_taken_over_and_a_stale_one_is,
        test_a_stop_as_soon_as_the_socket_appears_is_graceful,
    ])
