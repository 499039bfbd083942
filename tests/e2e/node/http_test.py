"""The agent's HTTP endpoint and event streams, against real agents on loopback:
/metrics checked by promtool, /v1/ JSON, /v1/events and `meshos-inspect watch` following a
cluster as members join and die, the request bounds, and a reader that reads nothing.
"""
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import INSPECT, Workspace, free_port, run_tests, wait_for  # noqa: E402

FAST = """cluster = "e2e-http"
probe_interval_ms = 200
probe_timeout_ms = 100
gossip_interval_ms = 50
push_pull_interval_ms = 2000"""

DAEMONS = """[[daemon]]
name = "svc"
command = ["/bin/sleep", "3600"]
replicas = 2
stop_grace_ms = 200
"""


def http_agent(ws, name, seeds=()):
    port = free_port_tcp()
    a = ws.agent(name, f'http = "127.0.0.1:{port}"')
    a.http_port = port
    gossip = FAST + ("\nseeds = [" + ", ".join(f'"127.0.0.1:{s.port}"' for s in seeds) + "]" if seeds else "")
    a.set_keys("gossip", gossip)
    return a


def free_port_tcp():
    return free_port()  # free for TCP too, and outside the ephemeral range


class Lines:
    """Lines of a pipe, each with a deadline (select() on a buffered file would miss lines
    already in its buffer)."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def next(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buf:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def get(agent, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", agent.http_port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def get_json(agent, path):
    status, _, body = get(agent, path)
    assert status == 200, f"GET {path}: {status} {body[:300]!r}"
    return json.loads(body)


class EventStream:
    """GET /v1/events, read as server-sent events with a deadline per read."""

    def __init__(self, agent, kinds="", rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connect: a small window, and no autotuning to hide a slow reader
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", agent.http_port))
        q = f"?kinds={kinds}" if kinds else ""
        self.sock.sendall(f"GET /v1/events{q} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n", 10)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"text/event-stream" in head, head

    def _until(self, sep, timeout_s):
        deadline = time.monotonic() + timeout_s
        while sep not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {sep!r} from /v1/events within {timeout_s}s")
            ready, _, _ = select.select([self.sock], [], [], left)
            if ready:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise AssertionError("/v1/events closed")
                self.buf += chunk
        head, self.buf = self.buf.split(sep, 1)
        return head

    def next_event(self, timeout_s):
        """(event name, data as JSON) of the next event; comments are skipped."""
        while True:
            block = self._until(b"\n\n", timeout_s).decode()
            fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line and not line.startswith(":"))
            if "event" in fields:
                return fields["event"], json.loads(fields["data"])

    def close(self):
        self.sock.close()


def test_metrics_pass_promtool_over_http_and_the_socket():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (tools/dev test installs it)"
    with Workspace() as ws:
        a = http_agent(ws, "m1").start()
        status, headers, body = get(a, "/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4"), (status, headers)
        for text in (body, a.inspect("metrics").stdout.encode()):
            r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
            assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
                f"promtool check metrics: exit {r.returncode}: {r.stdout.decode()}{r.stderr.decode()}"
        text = body.decode()
        assert 'meshos_chain_records_acked_total{chain="audit"}' in text, text[:2000]
        assert "meshos_chains_" not in text and "meshos_commits_counters" not in text
        assert 'meshos_http_requests_total{code="200"}' in text or "meshos_http_connections_total" in text
        families = sum(1 for line in text.splitlines() if line.startswith("# HELP "))
        print(f"{families} families, promtool clean over HTTP and the socket", flush=True)


def test_v1_routes_and_events_follow_the_cluster():
    with Workspace() as ws:
        a = http_agent(ws, "n1").start()
        b = http_agent(ws, "n2", seeds=[a]).start()
        events = EventStream(a, "members")
        watch = subprocess.Popen([INSPECT, "--socket", a.socket, "watch", "--json", "--kinds", "members"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        lines = Lines(watch.stdout)
        try:
            assert json.loads(lines.next(10))["kind"] == "watching"
            c = http_agent(ws, "n3", seeds=[a])
            started = time.monotonic()
            c.start(wait=False)
            while True:  # the watch prints n3 joining
                line = lines.next(5)
                assert line is not None, "watch printed nothing within 5 s of n3 starting"
                e = json.loads(line)
                if e["kind"] == "members" and e["data"]["name"] == "n3" and e["data"]["state"] == "alive":
                    break
            seen_s = time.monotonic() - started
            print(f"watch printed n3 joining {seen_s * 1000:.0f} ms after its agent started", flush=True)
            assert seen_s < 1.0, f"the join took {seen_s:.2f} s to reach watch"
            wait_for(lambda: len(get_json(a, "/v1/members")["members"]) == 3, 10, "/v1/members to list 3")
            snap = get_json(a, "/v1/snapshot")
            assert snap["node"]["name"] == "n1" and len(snap["members"]) == 3
            assert get_json(a, "/v1/chains/log")["chain"]["head"]["seq"] >= 1
            recs = get_json(a, "/v1/chains/log/records?from=1&count=2")["records"]
            assert [r["seq"] for r in recs] == [1, 2], recs
            assert get_json(a, "/v1/chains/audit/verify")["verify"]["ok"] is True
            assert "routes" in get_json(a, "/v1/")
            assert get(a, "/v1/chains/nope")[0] == 404
            assert get(a, "/v1/chains/log/records?count=x")[0] == 400
            assert get(a, "/v1/placement?daemon=missing")[0] == 404
            # SIGKILL n2: the event stream says so without anyone asking.
            b.proc.kill()
            b.proc.wait()
            deadline = time.monotonic() + 15
            states = []
            while time.monotonic() < deadline:
                kind, e = events.next_event(15)
                if kind == "members" and e["data"]["name"] == "n2":
                    states.append(e["data"]["state"])
                    if e["data"]["state"] == "dead":
                        break
            assert "dead" in states, f"/v1/events showed n2 as {states}"
        finally:
            events.close()
            watch.kill()
            watch.wait()


def raw_request(agent, data, timeout_s=15):
    with socket.create_connection(("127.0.0.1", agent.http_port), timeout=timeout_s) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_requests_are_bounded():
    with Workspace() as ws:
        a = http_agent(ws, "b1").start()
        assert get(a, "/metrics", method="POST")[0] == 405
        assert get(a, "/v1/members", method="HEAD")[0] == 200
        big = b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"y" * 100) for i in range(200)) + b"\r\n"
        assert raw_request(a, big).startswith(b"HTTP/1.1 431"), "a 20 KiB header block was not refused"
        assert raw_request(a, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert raw_request(a, b"GET /v1/%zz HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert raw_request(a, b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").startswith(b"HTTP/1.1 413")
        # Clients that connect and say nothing: the 65th is refused, the others time out,
        # and the agent serves everybody else meanwhile.
        idle = [socket.create_connection(("127.0.0.1", a.http_port), timeout=15) for _ in range(70)]
        try:
            time.sleep(0.3)
            assert a.answers(), "the control socket stopped answering"
            closed = 0
            for s in idle[64:]:
                s.settimeout(2)
                try:
                    closed += s.recv(1) == b""
                except OSError:
                    closed += 1
            assert closed == 6, f"{closed} of the 6 connections past the limit were closed"
            idle[0].settimeout(15)
            started = time.monotonic()
            reply = idle[0].recv(4096)
            assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
            print(f"idle connection answered 408 after {time.monotonic() - started:.1f} s more", flush=True)
        finally:
            for s in idle:
                s.close()
        # Until the agent has seen the idle clients go, a new connection may still be past
        # the limit (closed at once): poll.
        def serves():
            try:
                return get(a, "/v1/members")[0] == 200
            except OSError:
                return False
        wait_for(serves, 10, "HTTP to serve again")


def test_a_reader_that_reads_nothing_misses_events_and_slows_nothing():
    with Workspace() as ws:
        a = http_agent(ws, "s1")
        path = os.path.join(ws.root, "daemons.toml")
        with open(path, "w") as f:
            f.write(DAEMONS)
        a.set_keys("runtime", f'local = "{path}"')
        a.start()
        wait_for(lambda: sum(1 for d in a.inspect_json("daemons")["daemons"] if d["state"] == "ready") == 2,
                 10, "svc ready")
        stuck = EventStream(a, rcvbuf=4096)  # reads its headers, then nothing
        published0 = get_json(a, "/v1/snapshot")["events"]["published"]
        worst = 0.0
        for i in range(150):
            a.inspect("--reason", "flood", "daemon", "restart", "svc")
            if i % 10 == 0:
                t = time.monotonic()
                get(a, "/v1/members")
                worst = max(worst, time.monotonic() - t)
        snap = get_json(a, "/v1/snapshot")
        published = snap["events"]["published"] - published0
        print(f"{published} events published past a reader that reads nothing; "
              f"slowest /v1/members meanwhile {worst * 1000:.1f} ms; loop lag p99 {snap['loop']['lag_p99_us']} us",
              flush=True)
        assert published > 1100, f"only {published} events: the flood did not overflow the buffer"
        assert worst < 1.0
        # Now it reads: first what is left of the socket, then the count of what it missed.
        missed = 0
        deadline = time.monotonic() + 20
        read = 0
        while time.monotonic() < deadline and missed == 0:
            try:
                kind, e = stuck.next_event(10)
            except AssertionError as err:
                raise AssertionError(f"after {read} events: {err}") from None
            read += 1
            if kind == "missed":
                missed = e["missed"]
        stuck.close()
        assert missed > 0, "the slow reader was never told it missed events"
        print(f"the slow reader read {read - 1} events, then was told it missed {missed}", flush=True)


if __name__ == "__main__":
    run_tests([test_metrics_pass_promtool_over_http_and_the_socket, test_v1_routes_and_events_follow_the_cluster,
               test_requests_are_bounded, test_a_reader_that_reads_nothing_misses_events_and_slows_nothing])
