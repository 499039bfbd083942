"""N Serf agents on loopback for side_by_side.py, driven through Serf's own RPC protocol.

Serf is Debian's `serf` package (memberlist's LAN defaults: probe 1 s, gossip 200 ms,
push-pull 30 s), with an encryption key like the meshos agents. Each agent gets its own
127.0.0.1 port for gossip and one for RPC. The RPC protocol (cmd/serf/command/agent/ipc.go):
msgpack, a {Command, Seq} header then a body per request; a {Seq, Error} header then a body
per reply. `members` reads memberlist's table at once (the agent coalesces only the events it
hands to scripts), so polling it sees a change as soon as Serf does.
"""
import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import msgpack

import bench_common as bc

STATES = {"alive": "alive", "failed": "dead", "leaving": "left", "left": "left"}


class Rpc:
    """One RPC connection: request/reply, or (stream) a reader of user events."""

    def __init__(self, host, port, timeout_s=10):
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.unpacker = msgpack.Unpacker(raw=False)
        self.seq = 0
        self.call("handshake", {"Version": 1})

    def _send(self, command, body):
        self.seq += 1
        data = msgpack.packb({"Command": command, "Seq": self.seq})
        if body is not None:
            data += msgpack.packb(body)
        self.sock.sendall(data)
        return self.seq

    def _next(self):
        while True:
            for obj in self.unpacker:
                return obj
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("serf closed the RPC connection")
            self.unpacker.feed(chunk)

    def call(self, command, body=None, reply_body=False):
        self._send(command, body)
        header = self._next()
        if header.get("Error"):
            raise RuntimeError(f"serf {command}: {header['Error']}")
        return self._next() if reply_body else None

    def members(self):
        reply = self.call("members", None, reply_body=True)
        return {m["Name"]: STATES.get(m["Status"], m["Status"]) for m in reply["Members"]}

    def close(self):
        self.sock.close()


class SerfCluster:
    name = "serf"
    has_suspect = False  # Serf shows alive/failed/left; memberlist's suspicion stays inside

    def __init__(self, root, n, base_port):
        self.root, self.n = root, n
        self.gossip_ports = [base_port + i for i in range(n)]
        self.rpc_ports = [base_port + 1000 + i for i in range(n)]
        self.key = base64.b64encode(os.urandom(32)).decode()
        self.procs = [None] * n
        self.pollers = [None] * n
        self.watch = bc.Watch(n)
        self.events = [None] * n  # first user event receipt per agent (monotonic)

    def address(self, i):
        return f"127.0.0.1:{self.gossip_ports[i]}"

    def start(self, i):
        d = os.path.join(self.root, f"serf{i}")
        os.makedirs(d, exist_ok=True)
        cmd = ["serf", "agent", f"-node=s{i}", f"-bind={self.address(i)}",
               f"-rpc-addr=127.0.0.1:{self.rpc_ports[i]}", f"-encrypt={self.key}", "-log-level=warn"]
        with open(os.path.join(d, "agent.log"), "ab") as log:
            self.procs[i] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             cwd=d, start_new_session=True)

    def connect(self, i, timeout_s=30):
        deadline = time.monotonic() + timeout_s
        while True:
            if self.procs[i].poll() is not None:
                raise SystemExit(f"serf agent s{i} exited with {self.procs[i].returncode}; see {self.root}/serf{i}")
            try:
                self.pollers[i] = Rpc("127.0.0.1", self.rpc_ports[i])
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"serf agent s{i}: no RPC within {timeout_s}s")
                time.sleep(0.02)

    def start_all(self):
        for i in range(self.n):
            self.start(i)
        for i in range(self.n):
            self.connect(i)

    def pid(self, i):
        return self.procs[i].pid

    def view(self, i):
        if self.pollers[i] is None:
            return None
        try:
            return self.pollers[i].members()
        except (OSError, ConnectionError, RuntimeError, ValueError, KeyError, TypeError):
            self.pollers[i] = None
            return None

    def start_watch(self, interval_s=0.1):
        self.watch.run_polling(self.view, interval_s)

    def stop_watch(self):
        self.watch.stop()

    def join_all(self, seed):
        """Every agent but the seed joins it, all at once (an RPC join returns after its
        push-pull, so each has its own thread)."""
        errors = []

        def join(i):
            try:
                Rpc("127.0.0.1", self.rpc_ports[i]).call("join", {"Existing": [self.address(seed)], "Replay": False},
                                                        reply_body=True)
            except (OSError, ConnectionError, RuntimeError) as e:
                errors.append(f"s{i}: {e}")
        threads = [threading.Thread(target=join, args=(i,)) for i in range(self.n) if i != seed]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            print(f"serf join errors: {errors}", file=sys.stderr, flush=True)

    def leave(self, i):
        """Graceful leave: Serf leaves on SIGINT (it does not on SIGTERM by default)."""
        self.procs[i].send_signal(signal.SIGINT)
        self.procs[i].wait(30)
        self.pollers[i] = None

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait(30)
        self.pollers[i] = None

    def restart(self, i, seed):
        self.start(i)
        self.connect(i)
        rpc = Rpc("127.0.0.1", self.rpc_ports[i])
        rpc.call("join", {"Existing": [self.address(seed)], "Replay": False}, reply_body=True)
        rpc.close()

    def listen_events(self):
        """A stream of user events from every agent; records when each first gets one."""
        self.events = [None] * self.n

        def reader(i):
            rpc = Rpc("127.0.0.1", self.rpc_ports[i])
            rpc.call("stream", {"Type": "user"})
            rpc.sock.settimeout(None)
            try:
                while True:
                    obj = rpc._next()
                    if isinstance(obj, dict) and obj.get("Event") == "user" and self.events[i] is None:
                        self.events[i] = time.monotonic()
            except (OSError, ConnectionError):
                pass

        for i in range(self.n):
            threading.Thread(target=reader, args=(i,), daemon=True).start()
        time.sleep(0.5)  # every stream registered

    def broadcast(self, origin, run):
        """A user event from one agent; returns the time it was sent (monotonic)."""
        rpc = Rpc("127.0.0.1", self.rpc_ports[origin])  # its own: the watch thread uses the pollers
        t0 = time.monotonic()
        rpc.call("event", {"Name": f"bench{run}", "Payload": b"x" * 64, "Coalesce": False})
        rpc.close()
        return t0

    def received(self):
        return self.events

    def stop_all(self):
        self.stop_watch()
        bc.kill_all(self.procs)
