"""Helpers for end-to-end tests: temporary agents with real processes and sockets.

Every wait polls with a deadline; every process started is killed at the end.
"""
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

AGENT = os.environ.get("MESHOS_AGENT", "meshos-agent")
INSPECT = os.environ.get("MESHOS_INSPECT", "meshos-inspect")
ADMIN = os.environ.get("MESHOS_ADMIN", "meshos-admin")


def wait_for(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1, outside the kernel's ephemeral range:
    a port the kernel picks (bind to 0) can be taken a moment later as the local end of some
    test's outgoing connection, and the agent's listen then fails."""
    lo, hi = _ephemeral_range()
    candidates = [p for p in range(10000, 30000) if not lo <= p <= hi] or list(range(10000, 30000))
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        port = rng.choice(candidates)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
                    socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise AssertionError("no free port for UDP and TCP in 200 tries")


class Agent:
    """One meshos-agent in its own temporary directory."""

    def __init__(self, root, name, extra="", port=None):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.socket = os.path.join(self.dir, "agent.sock")
        self.config = os.path.join(self.dir, "node.toml")
        self.port = port if port is not None else free_port()
        self.proc = None
        self.log = os.path.join(self.dir, "agent.log")
        with open(self.config, "w") as f:
            f.write(f"""[node]
name = "{name}"
data_dir = "data"
tick_interval_ms = 100
[gossip]
bind = "127.0.0.1:{self.port}"
[control]
socket = "agent.sock"
mode = "0600"
{extra}
""")

    def set_keys(self, table, text):
        """Adds `text` (key = value lines) to the existing [table] of node.toml, or appends a
        new [table] with them when the file has none."""
        with open(self.config) as f:
            lines = f.read().split("\n")
        header = f"[{table}]"
        body = text.strip("\n")
        if header in lines:
            i = lines.index(header)
            lines[i + 1:i + 1] = body.split("\n")
        else:
            lines += [header, *body.split("\n"), ""]
        with open(self.config, "w") as f:
            f.write("\n".join(lines))
        return self

    def start(self, wait=True, args=()):
        self.proc = subprocess.Popen([AGENT, "--config", self.config, *args],
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        if wait:
            wait_for(lambda: self.answers() or self.proc.poll() is not None, 10, f"{self.name} to serve")
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.read_log()}")
        return self

    def answers(self):
        try:
            self.inspect("ping")
            return True
        except AssertionError:
            return False

    def inspect(self, *args, check=True):
        r = subprocess.run([INSPECT, "--socket", self.socket, *args], capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError(f"meshos-inspect {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def inspect_json(self, *args):
        return json.loads(self.inspect(*args, "--json").stdout)

    def stop(self, sig=signal.SIGTERM, timeout_s=10):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop within {timeout_s}s")

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Workspace:
    """A temporary directory; every agent made in it is killed on exit."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="meshos-e2e-")
        self.agents = []

    def agent(self, name, extra="", port=None):
        a = Agent(self.root, name, extra, port)
        self.agents.append(a)
        return a

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for a in self.agents:
            if a.proc and a.proc.poll() is None:
                a.proc.kill()
                a.proc.wait()
        # Daemons outlive their agent by design (a restarted agent adopts them): the test
        # ends them itself, by pid, whatever state it stopped in.
        end_processes_under(self.root)
        if exc[0] is not None:
            for a in self.agents:
                print(f"--- log of {a.name} ---\n{a.read_log()[-4000:]}")
        shutil.rmtree(self.root, ignore_errors=True)
        return False


def processes_under(root):
    """Live pids (not zombies, not this process) working in or naming a path under root:
    an agent's daemons work in its data directory."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            cwd = os.readlink(f"/proc/{d}/cwd")
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if cwd.startswith(root) or root.encode() in cmdline:
            found.append(int(d))
    return found


def end_processes_under(root, timeout_s=5):
    for pid in processes_under(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    wait_for(lambda: not processes_under(root), timeout_s, f"the processes under {root} to end")


def raw_exchange(path, payload, timeout_s=5):
    """Sends raw bytes to a control socket; returns the reply frame payload (or b'' on close)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout_s)
        s.connect(path)
        s.sendall(payload)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                return buf[4:]
            buf += chunk
        return buf[4:]



# A [[daemon]] table's restart backoff of a steady 20 ms: a crash loop in well under a second.
FAST_BACKOFF = "[daemon.backoff]\ninitial_ms = 20\nfactor = 1.0\nmax_ms = 20\njitter = 0.0\n"


def admin(*args, check=True):
    """Runs meshos-admin; with check, a non-zero exit is an AssertionError with its output."""
    r = subprocess.run([ADMIN, *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"meshos-admin {' '.join(args)} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


def submit(agent, commit):
    """meshos-admin submit --json to one agent: the reply, with the exit status checked
    against the outcome (0 for accepted / duplicate / pending, 1 otherwise)."""
    r = admin("submit", commit, "--socket", agent.socket, "--json", check=False)
    assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
    j = json.loads(r.stdout)
    assert (r.returncode == 0) == (j["outcome"] in ("accepted", "duplicate", "pending")), (r.returncode, j)
    return j


def desired_jobs(ws, name, daemons):
    """A desired-state file of one-shot jobs named `daemons`."""
    path = os.path.join(ws.root, name)
    with open(path, "w") as f:
        for d in daemons:
            f.write(f'[[daemon]]\nname = "{d}"\nkind = "job"\ncommand = ["/bin/true"]\n\n')
    return path

def run_tests(tests):
    """Runs test functions; prints a summary line; exit status 1 if any failed.
    MESHOS_E2E_ONLY (names, comma-separated) runs only those."""
    only = [n for n in os.environ.get("MESHOS_E2E_ONLY", "").split(",") if n]
    if only:
        unknown = set(only) - {t.__name__ for t in tests}
        if unknown:
            raise SystemExit(f"MESHOS_E2E_ONLY names no test here: {', '.join(sorted(unknown))}")
        tests = [t for t in tests if t.__name__ in only]
    failed = 0
    for t in tests:
        start = time.monotonic()
        try:
            t()
            print(f"ok   {t.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report and go on
            failed += 1
            print(f"FAIL {t.__name__}: {e}", flush=True)
    print(f"{len(tests) - failed} passed, {failed} failed")
    raise SystemExit(1 if failed else 0)
