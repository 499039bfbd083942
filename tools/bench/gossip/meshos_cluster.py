"""N meshos agents on loopback for side_by_side.py, with the agent's default timings.

Each agent gets its own 127.0.0.1 port, encrypted gossip (one cluster keyring) and one admin
key (for the commit figure). Agents start with no seeds and are told to join through their
control sockets, as `serf join` does for Serf. One `members_poll watch` process polls every
agent's member table (tools/bench/gossip/members_poll.cpp).
"""
import json
import os
import signal
import subprocess
import threading
import time

import bench_common as bc


class MeshosCluster:
    name = "meshos"
    has_suspect = True

    def __init__(self, root, n, base_port, build):
        self.root, self.n = root, n
        self.ports = [base_port + i for i in range(n)]
        self.bin = {k: os.path.join(build, p) for k, p in {
            "agent": "agent/net/meshos-agent", "admin": "tools/admin/meshos-admin",
            "inspect": "tools/inspect/meshos-inspect", "poll": "tools/bench/gossip/members_poll"}.items()}
        for k, p in self.bin.items():
            if not os.access(p, os.X_OK):
                raise SystemExit(f"{p}: not built (ninja -C {build})")
        self.procs = [None] * n
        self.sockets = [os.path.join(root, f"m{i}", "agent.sock") for i in range(n)]
        self.watch = bc.Watch(n)
        self.poller = None
        self.commit = None

    def address(self, i):
        return f"127.0.0.1:{self.ports[i]}"

    def admin(self, *args):
        r = subprocess.run([self.bin["admin"], *args], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise SystemExit(f"meshos-admin {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout

    def configure(self):
        self.key = os.path.join(self.root, "admin")
        pub = self.admin("keygen", self.key).strip().splitlines()[-1].strip()
        keyring = os.path.join(self.root, "cluster.keyring")
        self.admin("keygen", "--cluster", keyring)
        for i in range(self.n):
            d = os.path.join(self.root, f"m{i}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "node.toml"), "w") as f:
                f.write(f'[node]\nname = "m{i}"\ndata_dir = "data"\n'
                        f'[gossip]\ncluster = "sbs"\nbind = "{self.address(i)}"\nkeyring = "{keyring}"\n'
                        f'[control]\nsocket = "agent.sock"\nmode = "0600"\n'
                        f'[trust]\nadmins = ["{pub}"]\nthreshold = 1\n[log]\nlevel = "warn"\n')

    def start(self, i):
        d = os.path.join(self.root, f"m{i}")
        with open(os.path.join(d, "agent.log"), "ab") as log:
            self.procs[i] = subprocess.Popen([self.bin["agent"], "--config", "node.toml"], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT, cwd=d, start_new_session=True)

    def wait_serving(self, i, timeout_s=30):
        deadline = time.monotonic() + timeout_s
        while True:
            if self.procs[i].poll() is not None:
                raise SystemExit(f"meshos agent m{i} exited with {self.procs[i].returncode}; see {self.root}/m{i}")
            r = subprocess.run([self.bin["inspect"], "--socket", self.sockets[i], "ping"], capture_output=True)
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"meshos agent m{i}: no control socket within {timeout_s}s")
            time.sleep(0.02)

    def start_all(self):
        self.configure()
        for i in range(self.n):
            self.start(i)
        for i in range(self.n):
            self.wait_serving(i)

    def pid(self, i):
        return self.procs[i].pid

    def start_watch(self, interval_s=0.1):
        self.poller = subprocess.Popen([self.bin["poll"], "watch", "--interval-ms", str(int(interval_s * 1000)),
                                        *self.sockets], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

        def read(p):
            for line in p.stdout:
                e = json.loads(line)
                self.watch.feed(e["t"], e["i"], e["m"])

        threading.Thread(target=read, args=(self.poller,), daemon=True).start()

    def stop_watch(self):
        if self.poller is not None:
            self.poller.stdin.close()  # members_poll ends when its stdin closes
            self.poller.wait(30)
            self.poller = None

    def join_all(self, seed):
        subprocess.run([self.bin["poll"], "join", "--address", self.address(seed),
                        *[s for i, s in enumerate(self.sockets) if i != seed]], check=True, timeout=60)

    def leave(self, i):
        """Graceful leave: the agent leaves on SIGTERM."""
        self.procs[i].send_signal(signal.SIGTERM)
        self.procs[i].wait(30)

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait(30)

    def restart(self, i, seed):
        self.start(i)
        self.wait_serving(i)
        subprocess.run([self.bin["poll"], "join", "--address", self.address(seed), self.sockets[i]], check=True,
                       timeout=60)

    def listen_events(self):
        pass  # the agents' audit chains record when each accepted the commit

    def broadcast(self, origin, run):
        """A signed commit submitted to one agent; returns the time it was sent (monotonic)."""
        desired = os.path.join(self.root, f"desired{run}.toml")
        with open(desired, "w") as f:
            f.write(f'[[daemon]]\nname = "bench{run}"\nkind = "job"\ncommand = ["/bin/true"]\n')
        signed = os.path.join(self.root, f"commit{run}")
        self.admin("sign-commit", "--key", self.key + ".key", "--file", desired, "--agent", self.sockets[origin],
                   "-o", signed)
        t0 = time.monotonic()
        reply = json.loads(self.admin("submit", signed, "--socket", self.sockets[origin], "--json"))
        if reply.get("outcome") != "accepted":
            raise SystemExit(f"submit: {reply}")
        self.commit = reply["hash"]
        return t0

    def accepted_wall_ms(self, i):
        r = subprocess.run([self.bin["inspect"], "--socket", self.sockets[i], "chain", "tail", "audit", "--count",
                            "50", "--json"], capture_output=True, text=True, timeout=30)
        for rec in (json.loads(r.stdout) if r.returncode == 0 else {}).get("records", []):
            if rec["kind"] == "commit.accepted" and f'"{self.commit}"' in rec.get("payload_text", ""):
                return rec["time_ms"]
        return None

    def received(self):
        """When each agent accepted the commit (its audit record), on the monotonic clock."""
        out = []
        for i in range(self.n):
            ms = self.accepted_wall_ms(i)
            out.append(None if ms is None else self.t_mono_of_wall(ms / 1000.0))
        return out

    def t_mono_of_wall(self, wall):
        return time.monotonic() - (time.time() - wall)

    def stop_all(self):
        self.stop_watch()
        bc.kill_all(self.procs)
