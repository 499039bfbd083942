#!/usr/bin/env python3
"""tools/cluster: a real meshos cluster on one machine (Python 3 standard library only).

Every command works on one cluster directory (--dir, else $MESHOS_CLUSTER_DIR, else
/tmp/meshos-cluster) that `up` creates and `down` removes. `cluster.json` in it records
everything that was created (processes, namespaces, bridge, iptables rules), written before
each thing is made, so `down` can undo a half-finished `up` too.

  up N [--netns] [--threshold M] [--fast] [--net K] [--set TABLE.KEY=VALUE ...]
  apply FILE | --op "OP" ...      status [--json]      wait DAEMON [--ready N]
  logs NODE [INSTANCE]            kill NODE            restart NODE          down
  stats [--seconds S]             (RSS and CPU of every agent)
  partition A,B C,D,E             heal                 loss NODE PERCENT

Binaries: --build DIR, else $MESHOS_BUILD, else $MESHOS_AGENT / $MESHOS_ADMIN /
$MESHOS_INSPECT (set by the meson e2e tests), else build/ of this checkout.

Exit status: 0 done, 1 failed (the reason is printed), 2 bad usage, 77 `--netns` asked
for where network namespaces cannot be created (the automake/meson "skipped" code).
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DIR = "/tmp/meshos-cluster"
STATE = "cluster.json"
EXIT_FAIL, EXIT_USAGE, EXIT_SKIP = 1, 2, 77
BINARIES = {"agent": "agent/net/meshos-agent", "admin": "tools/admin/meshos-admin",
            "inspect": "tools/inspect/meshos-inspect"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$")
# Short gossip timings for tests (--fast): failure detection in about a second.
FAST = {"node.tick_interval_ms": "100", "gossip.probe_interval_ms": "200", "gossip.probe_timeout_ms": "100",
        "gossip.gossip_interval_ms": "50", "gossip.push_pull_interval_ms": "2000"}
# The defaults of a cluster made by `up`: the agent's own, with a faster tick and push-pull
# so that a demo heals within seconds.
DEFAULTS = {"node.tick_interval_ms": "200", "gossip.push_pull_interval_ms": "5000"}
IPT_CHAINS = {"MESHOS-PART-IN": "INPUT", "MESHOS-PART-OUT": "OUTPUT",
              "MESHOS-LOSS-IN": "INPUT", "MESHOS-LOSS-OUT": "OUTPUT"}


class Fail(Exception):
    """A command failed: message printed, exit status `code`."""

    def __init__(self, message, code=EXIT_FAIL):
        super().__init__(message)
        self.code = code


def say(msg):
    print(msg, flush=True)


def warn(msg):
    print(f"cluster: warning: {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, timeout=30):
    """Runs a command; returns CompletedProcess. check: raise Fail with its stderr."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise Fail(f"{cmd[0]}: not found") from None
    except subprocess.TimeoutExpired:
        raise Fail(f"{' '.join(cmd)}: no answer within {timeout}s") from None
    if check and r.returncode != 0:
        detail = (r.stderr or r.stdout).strip()
        raise Fail(f"{' '.join(cmd)} failed (exit {r.returncode}): {detail}")
    return r


# ----------------------------------------------------------------------------- processes

def proc_stat(pid):
    """(state, start_ticks) of a pid, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[19])


def alive(pid):
    s = proc_stat(pid) if pid else None
    return s is not None and s[0] not in ("Z", "X")


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def agent_pid(node):
    """The pid of the node's agent when it runs (pid file + its command line names the
    node's config, so a reused pid is never taken for it), else None."""
    try:
        with open(node["pidfile"]) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    args = [a.decode(errors="replace") for a in cmdline(pid)]
    return pid if node["config"] in args else None


def wait_until(pred, timeout_s, interval_s=0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval_s)


def signal_pid(pid, sig):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def instance_records(directory):
    """The runtime's instance records (docs/RUNTIME.md): the journal `instances.journal`,
    whose lines are tab-separated, `S` then key=value fields (a save) or `E` then
    instance=... (an erase), the last line about an instance winning."""
    records = {}
    try:
        with open(os.path.join(directory, "instances.journal")) as f:
            for line in f:
                kind, *fields = line.rstrip("\n").split("\t")
                rec = dict(fld.partition("=")[::2] for fld in fields)
                if kind == "S" and rec.get("instance"):
                    records[rec["instance"]] = rec
                elif kind == "E":
                    records.pop(rec.get("instance", ""), None)
    except OSError:
        pass
    return list(records.values())


def daemon_processes(cluster, node=None):
    """Processes of the cluster's daemons: the groups recorded in the nodes' runtime instance
    records (start time checked, so a reused pid is not taken), every process whose working
    directory is inside a node's directory, and (netns) every process in a node's
    namespace. Agents excluded. Returns {pid: why}."""
    nodes = [node] if node else cluster["nodes"]
    agents = {agent_pid(n) for n in cluster["nodes"]}
    found = {}
    for n in nodes:
        for rec in instance_records(os.path.join(n["dir"], "data", "runtime", "instances")):
            try:
                pid, pgid, ticks = int(rec.get("pid", 0)), int(rec.get("pgid", 0)), int(rec.get("start_ticks", 0))
            except ValueError:
                continue
            st = proc_stat(pid) if pid > 0 else None
            if st and st[0] not in ("Z", "X") and (ticks == 0 or st[1] == ticks):
                found[pid] = f"{n['name']} {rec.get('instance', '?')} (group {pgid})"
                if pgid > 0:
                    for p in pids_in_group(pgid):
                        found.setdefault(p, f"{n['name']} group {pgid}")
        prefix = n["dir"].rstrip("/") + "/"
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                cwd = os.readlink(f"/proc/{d}/cwd")
            except OSError:
                continue
            # Only a daemon's processes (their environment names the instance), never, say,
            # a user's shell that happens to sit in the directory.
            if (cwd + "/").startswith(prefix) and alive(int(d)) and is_daemon_process(int(d)):
                found.setdefault(int(d), f"{n['name']} (working directory {cwd})")
        if n.get("ns"):
            r = run(["ip", "netns", "pids", n["ns"]], check=False)
            for p in r.stdout.split():
                if p.isdigit() and alive(int(p)):
                    found.setdefault(int(p), f"{n['name']} (in namespace {n['ns']})")
    for a in agents:
        found.pop(a, None)
    found.pop(os.getpid(), None)
    return found


def is_daemon_process(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return any(v.startswith(b"MESHOS_INSTANCE=") for v in f.read().split(b"\0"))
    except OSError:
        return False


def pids_in_group(pgid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    data = f.read()
                rest = data[data.rfind(")") + 2:].split()
                if int(rest[2]) == pgid and rest[0] not in ("Z", "X"):
                    out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def kill_daemons(cluster, node=None, timeout_s=5):
    """SIGKILLs every daemon process of the cluster (or of one node), their groups too, until
    none is left. Returns how many were killed; Fail if some survive the deadline."""
    killed = set()

    def sweep():
        procs = daemon_processes(cluster, node)
        for pid in procs:
            st = proc_stat(pid)
            if st is None:
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    data = f.read()
                pgid = int(data[data.rfind(")") + 2:].split()[2])
            except (OSError, ValueError, IndexError):
                pgid = 0
            # A daemon leads its own group (uv_spawn DETACHED); never signal an agent's group.
            if pgid == pid:
                signal_group(pgid, signal.SIGKILL)
            signal_pid(pid, signal.SIGKILL)
            killed.add(pid)
        return not procs

    if not wait_until(sweep, timeout_s, 0.1):
        left = daemon_processes(cluster, node)
        raise Fail("daemon processes survived SIGKILL: " + ", ".join(f"{p} {w}" for p, w in left.items()))
    return len(killed)


# ----------------------------------------------------------------------------- cluster state

def cluster_dir(args):
    d = args.dir or os.environ.get("MESHOS_CLUSTER_DIR") or DEFAULT_DIR
    return os.path.abspath(d)


def load(args, need=True):
    d = cluster_dir(args)
    path = os.path.join(d, STATE)
    try:
        with open(path) as f:
            c = json.load(f)
    except FileNotFoundError:
        if need:
            raise Fail(f"no cluster in {d} (make one with: tools/cluster/up N --dir {d})") from None
        return None
    except (OSError, ValueError) as e:
        raise Fail(f"{path}: cannot read: {e}") from None
    if args.build:
        c["binaries"] = find_binaries(args.build)
    return c


def save(c):
    path = os.path.join(c["dir"], STATE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(c, f, indent=1)
    os.replace(tmp, path)


def find_binaries(build=None):
    build = build or os.environ.get("MESHOS_BUILD")
    out = {}
    for k, rel in BINARIES.items():
        env = os.environ.get(f"MESHOS_{k.upper()}")
        if build:
            p = os.path.join(os.path.abspath(build), rel)
        elif env and os.sep in env:
            p = os.path.abspath(env)
        else:
            p = os.path.join(ROOT, "build", rel)
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            where = build or os.path.join(ROOT, "build")
            raise Fail(f"{os.path.basename(rel)} not found at {p}: build it first (tools/dev build), "
                       f"or say where with --build DIR or $MESHOS_BUILD (looked in {where})")
        out[k] = p
    return out


def node_by_name(c, name):
    for n in c["nodes"]:
        if n["name"] == name:
            return n
    raise Fail(f"no node named {name!r} in this cluster (nodes: {', '.join(n['name'] for n in c['nodes'])})",
               EXIT_USAGE)


def inspect(c, node, *args, timeout=10):
    return run([c["binaries"]["inspect"], "--socket", node["socket"], "--timeout-ms", "5000", *args],
               check=False, timeout=timeout)


def inspect_json(c, node, *args):
    """meshos-inspect ARGS --json through the node's socket; None when it does not answer."""
    if agent_pid(node) is None:
        return None
    try:
        r = inspect(c, node, *args, "--json")
    except Fail:
        return None
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def answers(c, node):
    try:
        return inspect(c, node, "ping").returncode == 0
    except Fail:
        return False


# ----------------------------------------------------------------------------- network

def netns_possible():
    """None when network namespaces, veths and bridges can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, e.g. in CI)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"meshos-probe-{os.getpid()}"
    veth = f"mshp{os.getpid() % 1000000}"
    r = run(["ip", "netns", "add", probe], check=False)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    try:
        for cmd, what in [(["ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p"], "a veth pair"),
                          (["ip", "link", "set", veth + "p", "netns", probe], "a veth in a namespace")]:
            r = run(cmd, check=False)
            if r.returncode != 0:
                return f"cannot create {what}: {r.stderr.strip()}"
    finally:
        run(["ip", "link", "del", veth], check=False)
        run(["ip", "netns", "del", probe], check=False)
    return None


def ipt(ns, *rule, check=True):
    return run(["ip", "netns", "exec", ns, "iptables", "-w", "5", *rule], check=check)


def ensure_chains(node):
    for chain, parent in IPT_CHAINS.items():
        if ipt(node["ns"], "-n", "-L", chain, check=False).returncode != 0:
            ipt(node["ns"], "-N", chain)
        if ipt(node["ns"], "-C", parent, "-j", chain, check=False).returncode != 0:
            ipt(node["ns"], "-A", parent, "-j", chain)


def need_netns(c, what):
    if c["mode"] != "netns":
        raise Fail(f"{what} needs a cluster made with `up N --netns` (this one runs on loopback, "
                   "where nodes share one network stack)", EXIT_USAGE)
    if shutil.which("iptables") is None:
        raise Fail(f"{what} needs iptables (apt-get install iptables)")


# ----------------------------------------------------------------------------- up

def parse_sets(items):
    out = {}
    for s in items or []:
        k, eq, v = s.partition("=")
        if not eq or not re.match(r"^[a-z_]+\.[a-z_]+$", k) or not v:
            raise Fail(f"--set {s!r}: expected TABLE.KEY=VALUE (a TOML value), e.g. gossip.probe_interval_ms=200",
                       EXIT_USAGE)
        out[k] = v
    return out


HTTP_PORT = 9464
DNS_PORT = 8600


def render_config(c, n, settings):
    seeds = [m["addr"] for m in c["nodes"] if m is not n][:3]
    tables = {
        "node": {"name": f'"{n["name"]}"', "data_dir": '"data"',
                 "labels": f'{{ node = "{n["name"]}", zone = "z{(n["index"] - 1) % 3 + 1}" }}'},
        "gossip": {"cluster": f'"{c["name"]}"', "bind": f'"{n["addr"]}"',
                   "seeds": "[" + ", ".join(f'"{s}"' for s in seeds) + "]", "keyring": '"../cluster.key"'},
        # Every node serves HTTP (the status page, /metrics, /v1/) on its own address.
        "control": {"socket": '"agent.sock"', "mode": '"0600"', "http": f'"{n["host"]}:{HTTP_PORT}"'},
        # And DNS for discovery: <daemon>.service.<cluster>. and SRV records (docs/DISCOVERY.md).
        "dns": {"bind": f'"{n["host"]}:{DNS_PORT}"'},
        "trust": {"admins": "[" + ", ".join(f'"{a["pub"]}"' for a in c["admins"]) + "]",
                  "threshold": str(c["threshold"])},
        "log": {"level": '"info"'},
    }
    for k, v in settings.items():
        t, key = k.split(".", 1)
        tables.setdefault(t, {})[key] = v
    lines = [f"# node {n['name']} of cluster {c['name']}, written by tools/cluster/up"]
    for t, kv in tables.items():
        lines.append(f"[{t}]")
        lines += [f"{k} = {v}" for k, v in kv.items()]
        lines.append("")
    return "\n".join(lines)


def port_free(host, port):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:  # as libuv does: TIME_WAIT left by a previous cluster is fine
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                return f"{host}:{port} ({'udp' if kind == socket.SOCK_DGRAM else 'tcp'}): {e.strerror}"
    return None


def start_agent(c, n):
    cmd = [c["binaries"]["agent"], "--config", n["config"]]
    if n.get("ns"):
        cmd = ["ip", "netns", "exec", n["ns"], *cmd]
    with open(n["log"], "ab") as log:
        # Its own session: Ctrl-C in the terminal that ran `up` does not reach it.
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             cwd=n["dir"], start_new_session=True, close_fds=True)
    with open(n["pidfile"], "w") as f:
        f.write(f"{p.pid}\n")
    return p


def log_tail(n, lines=15):
    try:
        with open(n["log"], errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_serving(c, nodes, procs, timeout_s):
    pending = list(nodes)

    def check():
        for n in list(pending):
            p = procs.get(n["name"])
            if p is not None and p.poll() is not None:
                raise Fail(f"agent {n['name']} exited with status {p.returncode}; its log "
                           f"({n['log']}):\n{log_tail(n)}")
            if answers(c, n):
                pending.remove(n)
        return not pending

    if not wait_until(check, timeout_s, 0.05):
        raise Fail(f"agents {', '.join(n['name'] for n in pending)} did not answer on their control "
                   f"sockets within {timeout_s}s; last log lines of {pending[0]['name']}:\n{log_tail(pending[0])}")


def members_view(c, n):
    j = inspect_json(c, n, "members")
    return {m["name"]: m for m in j["members"]} if j else None


def wait_converged(c, nodes, timeout_s):
    """Every node in `nodes` sees every one of them alive."""
    names = {n["name"] for n in nodes}
    last = {}

    def check():
        for n in nodes:
            v = members_view(c, n)
            last[n["name"]] = v
            if v is None or not all(v.get(m, {}).get("state") == "alive" for m in names):
                return False
        return True

    if not wait_until(check, timeout_s, 0.1):
        view = {k: ({m: x["state"] for m, x in v.items()} if v else "no answer") for k, v in last.items()}
        raise Fail(f"the agents did not all see {len(names)} alive members within {timeout_s}s: {view}")


def cmd_up(args):
    d = cluster_dir(args)
    n_nodes = args.nodes
    if n_nodes < 1 or n_nodes > 200:
        raise Fail(f"N must be between 1 and 200, got {n_nodes}", EXIT_USAGE)
    if not 0 <= args.net <= 200:
        raise Fail(f"--net must be between 0 and 200, got {args.net}", EXIT_USAGE)
    if not 1 <= args.threshold <= 16:
        raise Fail(f"--threshold must be between 1 and 16, got {args.threshold}", EXIT_USAGE)
    if not 1 <= args.port <= 65535:
        raise Fail(f"--port must be between 1 and 65535, got {args.port}", EXIT_USAGE)
    name = args.name or "meshos"
    if not NAME_RE.match(name):
        raise Fail(f"--name {name!r}: 1-31 of [A-Za-z0-9._-], starting alphanumeric", EXIT_USAGE)
    settings = dict(DEFAULTS)
    if args.fast:
        settings.update(FAST)
    settings.update(parse_sets(args.set))
    if os.path.exists(os.path.join(d, STATE)):
        raise Fail(f"a cluster already exists in {d}: stop it first with tools/cluster/down --dir {d}")
    if os.path.exists(d) and os.listdir(d):
        raise Fail(f"{d} exists and is not empty: choose another --dir or remove it")
    binaries = find_binaries(args.build)
    if args.netns:
        why = netns_possible()
        if why:
            raise Fail(f"skipped: --netns is not possible here: {why}", EXIT_SKIP)
        bridge = f"meshos-br{args.net}"
        if os.path.exists(f"/sys/class/net/{bridge}"):
            raise Fail(f"bridge {bridge} exists already: another netns cluster uses --net {args.net} "
                       "(stop it with its down, or pick another --net)")
        for i in range(1, n_nodes + 1):
            ns = f"meshos-{name}-n{i}"
            if os.path.exists(f"/run/netns/{ns}"):
                raise Fail(f"network namespace {ns} exists already: another cluster named {name!r} runs "
                           "(stop it with its down, or pick another --name)")
    os.makedirs(d, mode=0o700, exist_ok=True)
    c = {"name": name, "dir": d, "mode": "netns" if args.netns else "loopback", "net": args.net,
         "port": args.port, "threshold": args.threshold, "binaries": binaries, "admins": [],
         "keyring": os.path.join(d, "cluster.key"), "nodes": [], "bridge": None, "forward_rule": False,
         "settings": settings, "created_unix": int(time.time())}
    for i in range(1, n_nodes + 1):
        nd = os.path.join(d, f"n{i}")
        host = f"10.77.{args.net}.{10 + i}" if args.netns else f"127.0.{1 + args.net}.{i}"
        c["nodes"].append({"name": f"n{i}", "index": i, "host": host, "addr": f"{host}:{args.port}", "dir": nd,
                           "config": os.path.join(nd, "node.toml"), "socket": os.path.join(nd, "agent.sock"),
                           "log": os.path.join(nd, "agent.log"), "pidfile": os.path.join(nd, "agent.pid"),
                           "ns": f"meshos-{name}-n{i}" if args.netns else None,
                           "veth": f"meshos{args.net}v{i}" if args.netns else None})
    too_long = [n["socket"] for n in c["nodes"] if len(n["socket"].encode()) > 107]
    if too_long:
        raise Fail(f"control socket path {too_long[0]} is longer than 107 bytes: use a shorter --dir", EXIT_USAGE)
    save(c)
    try:
        build_cluster(c, args)
    except BaseException:
        warn("up failed; removing what it made")
        try:
            teardown(c, quiet=True)
        except Fail as e:
            warn(str(e))
        raise
    say(f"cluster {name}: {n_nodes} agent(s) up ({c['mode']}), dir {d}")
    print_status(c, collect(c, verify=False))
    return 0


def build_cluster(c, args):
    d = c["dir"]
    admin = c["binaries"]["admin"]
    run([admin, "keygen", "--cluster", c["keyring"]])
    for k in range(1, max(2, c["threshold"]) + 1):
        base = os.path.join(d, f"admin{k}")
        pub = run([admin, "keygen", base]).stdout.strip().splitlines()[-1].strip()
        c["admins"].append({"key": base + ".key", "pub": pub})
    save(c)
    if c["mode"] == "netns":
        setup_netns(c)
    else:
        for n in c["nodes"]:
            busy = port_free(n["host"], c["port"]) or port_free(n["host"], DNS_PORT)
            if busy:
                raise Fail(f"cannot bind {busy}: another cluster on --net {c['net']}? (pick another --net)")
    for n in c["nodes"]:
        os.makedirs(n["dir"], mode=0o700, exist_ok=True)
        with open(n["config"], "w") as f:
            f.write(render_config(c, n, c["settings"]))
    check = run([c["binaries"]["agent"], "--config", c["nodes"][0]["config"], "--check"], check=False)
    if check.returncode != 0:
        raise Fail(f"the generated config is refused: {(check.stderr or check.stdout).strip()}", EXIT_USAGE)
    first, rest = c["nodes"][0], c["nodes"][1:]
    procs = {first["name"]: start_agent(c, first)}
    wait_serving(c, [first], procs, args.timeout)
    for n in rest:
        procs[n["name"]] = start_agent(c, n)
    wait_serving(c, rest, procs, args.timeout)
    wait_converged(c, c["nodes"], args.timeout)


def setup_netns(c):
    k = c["net"]
    bridge = f"meshos-br{k}"
    c["bridge"] = bridge
    save(c)
    run(["ip", "link", "add", bridge, "type", "bridge"])
    run(["ip", "addr", "add", f"10.77.{k}.1/24", "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])
    if shutil.which("iptables"):
        # Bridged packets pass the root FORWARD chain when br_netfilter is loaded; a host
        # with a DROP policy there (Docker) would cut the nodes off from each other.
        c["forward_rule"] = True
        save(c)
        run(["iptables", "-w", "5", "-I", "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"])
    for n in c["nodes"]:
        ns, veth, peer = n["ns"], n["veth"], n["veth"] + "p"
        n["ns_made"] = True
        save(c)
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", peer])
        run(["ip", "link", "set", peer, "netns", ns])
        run(["ip", "-n", ns, "link", "set", peer, "name", "eth0"])
        run(["ip", "-n", ns, "addr", "add", f"{n['host']}/24", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "link", "set", veth, "master", bridge])
        run(["ip", "link", "set", veth, "up"])


# ----------------------------------------------------------------------------- down

def stop_agent(n, timeout_s):
    """SIGTERM, then SIGKILL after timeout_s. Returns 'stopped', 'killed' or None (not running)."""
    pid = agent_pid(n)
    if pid is None:
        return None
    signal_pid(pid, signal.SIGTERM)
    if wait_until(lambda: not alive(pid), timeout_s, 0.05):
        return "stopped"
    signal_pid(pid, signal.SIGKILL)
    if not wait_until(lambda: not alive(pid), 5, 0.05):
        raise Fail(f"agent {n['name']} (pid {pid}) survived SIGKILL")
    return "killed"


def teardown(c, quiet=False, keep=False, timeout_s=10):
    errors = []
    # Agents first, all at once, so none restarts a daemon that another step kills.
    pids = {n["name"]: agent_pid(n) for n in c["nodes"]}
    for n in c["nodes"]:
        if pids[n["name"]]:
            signal_pid(pids[n["name"]], signal.SIGTERM)
    wait_until(lambda: not any(alive(p) for p in pids.values() if p), timeout_s, 0.05)
    for name, pid in pids.items():
        if pid and alive(pid):
            warn(f"agent {name} (pid {pid}) did not stop within {timeout_s}s after SIGTERM: SIGKILL")
            signal_pid(pid, signal.SIGKILL)
    if not wait_until(lambda: not any(alive(p) for p in pids.values() if p), 5, 0.05):
        errors.append("agents survived SIGKILL: " + ", ".join(str(p) for p in pids.values() if p and alive(p)))
    try:
        killed = kill_daemons(c)
    except Fail as e:
        errors.append(str(e))
        killed = -1
    for n in c["nodes"]:
        if n.get("ns") and os.path.exists(f"/run/netns/{n['ns']}"):
            r = run(["ip", "netns", "del", n["ns"]], check=False)
            if r.returncode != 0:
                errors.append(f"ip netns del {n['ns']}: {r.stderr.strip()}")
        if n.get("veth") and os.path.exists(f"/sys/class/net/{n['veth']}"):
            run(["ip", "link", "del", n["veth"]], check=False)
    if c.get("forward_rule"):
        rule = ["FORWARD", "-i", c["bridge"], "-o", c["bridge"], "-j", "ACCEPT"]
        while run(["iptables", "-w", "5", "-C", *rule], check=False).returncode == 0:
            run(["iptables", "-w", "5", "-D", *rule], check=False)
    if c.get("bridge") and os.path.exists(f"/sys/class/net/{c['bridge']}"):
        r = run(["ip", "link", "del", c["bridge"]], check=False)
        if r.returncode != 0:
            errors.append(f"ip link del {c['bridge']}: {r.stderr.strip()}")
    for n in c["nodes"]:
        try:
            os.unlink(n["socket"])
        except FileNotFoundError:
            pass
    if errors:
        raise Fail("down could not remove everything: " + "; ".join(errors))
    if keep:
        os.replace(os.path.join(c["dir"], STATE), os.path.join(c["dir"], STATE + ".down"))
    else:
        shutil.rmtree(c["dir"], ignore_errors=True)
    if not quiet:
        stopped = sum(1 for p in pids.values() if p)
        what = f"{stopped} agent(s) stopped, {max(killed, 0)} daemon process(es) killed"
        if c["mode"] == "netns":
            what += f", {len(c['nodes'])} namespace(s) and bridge {c['bridge']} removed"
        say(f"cluster {c['name']} down: {what}; " +
            (f"{c['dir']} kept ({STATE}.down)" if keep else f"{c['dir']} removed"))


def cmd_down(args):
    c = load(args, need=False)
    if c is None:
        say(f"no cluster in {cluster_dir(args)}: nothing to stop")
        return 0
    teardown(c, keep=args.keep, timeout_s=args.timeout)
    return 0


# ----------------------------------------------------------------------------- apply

def live_node(c, name=None):
    if name:
        n = node_by_name(c, name)
        if not answers(c, n):
            raise Fail(f"agent {name} does not answer (see tools/cluster/logs {name})")
        return n
    for n in c["nodes"]:
        if agent_pid(n) and answers(c, n):
            return n
    raise Fail("no agent of the cluster answers (tools/cluster/status)")


def cmd_apply(args):
    c = load(args)
    if (args.file and args.op) or not (args.file or args.op or args.secret):
        raise Fail("apply needs a desired-state FILE or one or more --op \"OP ARGS\" (not both), or --secret", EXIT_USAGE)
    if args.file and not os.path.isfile(args.file):
        raise Fail(f"{args.file}: no such file", EXIT_USAGE)
    n = live_node(c, args.node)
    admin = c["binaries"]["admin"]
    os.makedirs(os.path.join(c["dir"], "commits"), exist_ok=True)
    out = os.path.join(c["dir"], "commits", f"{time.time_ns()}.commit")
    cmd = [admin, "sign-commit", "--key", c["admins"][0]["key"], "--agent", n["socket"], "-o", out]
    if args.file:
        cmd += ["--file", os.path.abspath(args.file)]
        if args.keep_missing:
            cmd.append("--keep-missing")
    for op in args.op or []:
        cmd += ["--op", op]
    for sealed in args.secret or []:
        cmd += ["--secret", os.path.abspath(sealed)]
    if args.note:
        cmd += ["--note", args.note]
    r = run(cmd, check=False)
    if r.returncode != 0:
        raise Fail(f"sign-commit refused it: {(r.stderr or r.stdout).strip()}")
    for a in c["admins"][1:c["threshold"]]:
        run([admin, "cosign", out, "--key", a["key"]])
    r = run([admin, "submit", out, "--socket", n["socket"], "--json"], check=False)
    try:
        j = json.loads(r.stdout)
    except ValueError:
        raise Fail(f"submit failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()}") from None
    outcome = j.get("outcome")
    if outcome not in ("accepted", "duplicate", "pending"):
        say(f"rejected by {n['name']}: {j.get('reason')}: {j.get('message')}")
        return EXIT_FAIL
    say(f"{outcome} by {n['name']}: seq {j.get('seq')}, hash {str(j.get('hash'))[:16]} "
        f"({c['threshold']} signature(s)); commit file {out}")
    if args.wait > 0 and outcome == "accepted":
        target = {"seq": j.get("seq"), "hash": j.get("hash")}
        live = [m for m in c["nodes"] if agent_pid(m)]
        have = set()

        def spread():
            for m in live:
                if m["name"] not in have:
                    s = inspect_json(c, m, "snapshot")
                    if s and s.get("commit_head") == target:
                        have.add(m["name"])
            return len(have) == len(live)

        wait_until(spread, args.wait, 0.1)
        if len(have) == len(live):
            say(f"every running agent ({len(live)}) has it")
        else:
            missing = sorted({m["name"] for m in live} - have)
            say(f"after {args.wait:g}s {len(have)} of {len(live)} running agents have it (not yet: "
                f"{', '.join(missing)}); commits reach the others by gossip")
    return 0


# ----------------------------------------------------------------------------- status

LIVE_STATES = ("starting", "running", "ready", "paused", "waiting", "backing-off")


def is_ready(instance):
    """An instance of a snapshot's `daemons` list is ready (state `ready`; `daemons --json`
    also has a `ready` flag)."""
    return bool(instance.get("ready")) or instance.get("state") == "ready"


def collect(c, verify=True):
    """One look at the whole cluster: per node and per daemon (the document of status --json)."""
    nodes, snaps = [], {}
    for n in c["nodes"]:
        pid = agent_pid(n)
        snap = inspect_json(c, n, "snapshot") if pid else None
        if snap is not None:
            snaps[n["name"]] = snap
        row = {"name": n["name"], "address": n["addr"], "namespace": n.get("ns"), "pid": pid,
               "agent": "running" if snap else ("not answering" if pid else "stopped")}
        if snap:
            head = snap.get("commit_head") or {}
            insts = snap.get("daemons") or []
            row.update({"head": {"seq": head.get("seq", 0), "hash": head.get("hash", "")},
                        "instances": len(insts), "ready": sum(1 for i in insts if is_ready(i)),
                        "local": [{"instance": i.get("instance"), "state": i.get("state"), "ready": is_ready(i)}
                                  for i in insts]})
        if verify:
            row["chains"] = verify_chains(c, n, bool(snap))
        nodes.append(row)
    # How the running agents see each node.
    for row in nodes:
        seen = {}
        for other, snap in snaps.items():
            if other == row["name"]:
                continue
            for m in snap.get("members") or []:
                if m.get("name") == row["name"]:
                    seen[other] = m.get("state")
        row["seen_by"] = seen
    # Daemons: the desired set from the running agent with the highest commit head.
    best_name = max(snaps, key=lambda k: (snaps[k].get("commit_head") or {}).get("seq", 0), default=None)
    best = snaps.get(best_name) if best_name else None
    daemons = []
    placement = (best or {}).get("placement")
    decisions = {x.get("daemon"): x for x in (placement or {}).get("decisions", [])}
    for d in ((best or {}).get("commits") or {}).get("daemons", []):
        spec = d.get("spec") or {}
        kind = spec.get("kind", "service")
        wanted = spec.get("replicas", 1) if kind == "service" else 1
        running, ready = [], []
        for name, snap in snaps.items():
            for i in snap.get("daemons") or []:
                if i.get("name") == d["name"] and i.get("state") in LIVE_STATES:
                    running.append(name)
                    if is_ready(i):
                        ready.append(name)
        dec = decisions.get(d["name"])
        daemons.append({"name": d["name"], "kind": kind, "wanted": 0 if d.get("paused") else wanted,
                        "paused": bool(d.get("paused")), "running_on": sorted(running), "ready_on": sorted(ready),
                        "ready": len(ready), "assigned": sorted(dec.get("assigned", [])) if dec else None,
                        "infeasible": dec.get("infeasible") if dec else None,
                        "why": dec.get("why") if dec else None,
                        "excluded": dec.get("excluded") if dec else None})
    # Rollouts in progress or halted, as the agent with the highest head sees them.
    best_node = next((n for n in c["nodes"] if n["name"] == best_name), None)
    for d in daemons:
        r = inspect_json(c, best_node, "rollout", d["name"]) if best_node else None
        if r and r.get("state") != "complete":
            d["rollout"] = (f"rollout halted: {r.get('why')}" if r.get("state") == "halted"
                            else f"rolling {r.get('done')}/{r.get('total')} to {str(r.get('target'))[:8]}")
    return {"cluster": c["name"], "dir": c["dir"], "mode": c["mode"], "threshold": c["threshold"],
            "nodes": nodes, "daemons": daemons, "placement_reported": placement is not None,
            "desired_from": best_name,
            "maintenance": ((best or {}).get("commits") or {}).get("maintenance", []),
            "freeze": ((best or {}).get("commits") or {}).get("freeze"),
            "dns": [f"{n['host']}:{DNS_PORT}" for n in c["nodes"]]}


def verify_chains(c, n, running):
    out = {}
    for chain in ("audit", "log", "failure"):
        args = ["chain", "verify", chain, "--json"]
        if not running:
            args += ["--data-dir", os.path.join(n["dir"], "data")]
        try:
            r = inspect(c, n, *args, timeout=60)
        except Fail as e:
            out[chain] = {"ok": False, "why": str(e)}
            continue
        try:
            v = json.loads(r.stdout)["verify"]
            out[chain] = {"ok": bool(v.get("ok")), "records": v.get("records"),
                          "why": v.get("error") or v.get("reason") or ""}
        except (ValueError, KeyError):
            out[chain] = {"ok": False, "why": (r.stderr or r.stdout).strip()[:200] or f"exit {r.returncode}"}
    return out


def table(rows, header):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip() for r in [header, *rows])


def summarize_seen(seen):
    if not seen:
        return "-"
    counts = {}
    for s in seen.values():
        counts[s] = counts.get(s, 0) + 1
    return " ".join(f"{s} {k}/{len(seen)}" for s, k in sorted(counts.items(), key=lambda x: -x[1]))


def print_status(c, st):
    say(f"cluster {st['cluster']} ({st['mode']}, {len(st['nodes'])} nodes, commits need {st['threshold']} "
        f"signature(s)), dir {st['dir']}")
    rows = []
    for r in st["nodes"]:
        chains = "-"
        if "chains" in r:
            bad = [k for k, v in r["chains"].items() if not v["ok"]]
            chains = "ok" if not bad else "BAD " + ",".join(bad)
        head = f"{r['head']['seq']} {r['head']['hash'][:8]}" if r.get("head") else "-"
        ready = f"{r['ready']}/{r['instances']}" if "instances" in r else "-"
        rows.append([r["name"], r["address"], r["agent"], summarize_seen(r["seen_by"]), head, ready, chains])
    say("")
    say(table(rows, ["NODE", "ADDRESS", "AGENT", "SEEN BY OTHERS", "HEAD", "READY", "CHAINS"]))
    say("")
    if not st["daemons"]:
        say("daemons: none desired (apply one: tools/cluster/apply examples/web.toml)")
    else:
        rows = []
        for d in st["daemons"]:
            assigned = "-" if d["assigned"] is None else (",".join(d["assigned"]) or "(none)")
            note = ""
            if d.get("infeasible"):
                ex = d.get("excluded") or {}
                note = "infeasible" + (": " + ", ".join(f"{k} {v}" for k, v in sorted(ex.items())) if ex else "")
            elif d["paused"]:
                note = "paused"
            if d.get("rollout"):
                note = (note + "; " if note else "") + d["rollout"]
            rows.append([d["name"], d["kind"], d["wanted"], assigned, ",".join(d["running_on"]) or "-",
                         f"{d['ready']}/{d['wanted']}", note])
        say(table(rows, ["DAEMON", "KIND", "WANTED", "ASSIGNED", "RUNNING ON", "READY", "NOTE"]))
        if not st["placement_reported"]:
            say("(the agents report no placement: this agent build does not run committed daemons yet)")
        else:
            say(f"(desired state and ASSIGNED as {st['desired_from']} sees them; RUNNING ON and READY "
                "from every running agent)")
    for m in st["maintenance"]:
        say(f"maintenance: {m.get('node')} {m.get('mode')} (commit {m.get('seq')})")
    if st.get("dns"):
        host, port = st["dns"][0].rsplit(":", 1)
        example = st["daemons"][0]["name"] if st["daemons"] else "web"
        say(f"DNS: every node answers on its address, port {port}: "
            f"dig @{host} -p {port} {example}.service.{st['cluster']}. (SRV: _http._tcp.{example}.service.{st['cluster']}.)")
    if st["freeze"]:
        say(f"frozen until {st['freeze'].get('expires_at_ms')} ms: {st['freeze'].get('reason')}")


def cmd_status(args):
    c = load(args)
    st = collect(c, verify=not args.no_verify)
    if args.json:
        print(json.dumps(st, indent=1))
    else:
        print_status(c, st)
    bad = any(not v["ok"] for r in st["nodes"] for v in r.get("chains", {}).values())
    return EXIT_FAIL if bad else 0


def cmd_wait(args):
    c = load(args)
    start = time.monotonic()
    last = {}

    def check():
        st = collect(c, verify=False)
        last["st"] = st
        d = next((x for x in st["daemons"] if x["name"] == args.daemon), None)
        last["d"] = d
        if d is None:
            return False
        want = args.ready if args.ready is not None else d["wanted"]
        return d["ready"] >= want and len(set(d["ready_on"])) >= min(want, 1 if args.shared else want)

    if wait_until(check, args.timeout, 0.2):
        d = last["d"]
        say(f"{args.daemon}: {d['ready']} ready on {', '.join(d['ready_on'])} "
            f"after {time.monotonic() - start:.1f}s")
        return 0
    d, st = last.get("d"), last.get("st")
    if d is None:
        say(f"timed out after {args.timeout:g}s: no running agent has a daemon named {args.daemon!r} in its "
            "desired state (apply it first; tools/cluster/status)")
    else:
        want = args.ready if args.ready is not None else d["wanted"]
        hint = ""
        if not st["placement_reported"]:
            hint = (" The agents report no placement: this agent build does not run committed daemons yet, "
                    "so no replica will start.")
        elif not d["running_on"]:
            hint = f" No node runs it: {d.get('why') or 'see meshos-inspect placement ' + args.daemon}."
        say(f"timed out after {args.timeout:g}s: {args.daemon} has {d['ready']} of {want} ready "
            f"(running on: {', '.join(d['running_on']) or 'none'}).{hint}")
    return EXIT_FAIL


# ----------------------------------------------------------------------------- nodes

def cmd_logs(args):
    c = load(args)
    n = node_by_name(c, args.node)
    if args.tail < 0:
        raise Fail("--tail must be >= 0", EXIT_USAGE)
    if args.instance:
        cmd = [c["binaries"]["inspect"], "--socket", n["socket"], "logs", args.instance, "--tail", str(args.tail)]
        if args.follow:
            cmd.append("--follow")
        return subprocess.call(cmd)
    try:
        f = open(n["log"], errors="replace")
    except OSError as e:
        raise Fail(f"{n['log']}: {e.strerror}") from None
    with f:
        lines = f.readlines()
        sys.stdout.write("".join(lines[-args.tail:] if args.tail else []))
        sys.stdout.flush()
        while args.follow:
            line = f.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.2)
    return 0


def cmd_kill(args):
    c = load(args)
    n = node_by_name(c, args.node)
    pid = agent_pid(n)
    if pid is None:
        raise Fail(f"agent {n['name']} is not running")
    signal_pid(pid, signal.SIGKILL)
    if not wait_until(lambda: not alive(pid), 5, 0.02):
        raise Fail(f"agent {n['name']} (pid {pid}) survived SIGKILL")
    extra = ""
    if args.with_daemons:
        k = kill_daemons(c, n)
        extra = f" and {k} daemon process(es) (a machine crash)"
    else:
        left = len(daemon_processes(c, n))
        if left:
            extra = f"; its {left} daemon process(es) keep running (re-adopted on restart; --with-daemons kills them too)"
    say(f"killed agent {n['name']} (pid {pid}, SIGKILL){extra}")
    return 0


def cmd_restart(args):
    c = load(args)
    n = node_by_name(c, args.node)
    how = stop_agent(n, args.timeout)
    # A killed agent leaves its socket; the new one removes a stale socket by itself.
    p = start_agent(c, n)
    wait_serving(c, [n], {n["name"]: p}, args.timeout)
    say(f"agent {n['name']} {'restarted' if how else 'started'} (pid {p.pid})" +
        (" after SIGKILL (it did not stop on SIGTERM)" if how == "killed" else ""))
    return 0


def proc_usage(pid):
    """(cpu ticks user+system, rss KiB) of a pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
        rest = data[data.rfind(")") + 2:].split()
        ticks = int(rest[11]) + int(rest[12])
        with open(f"/proc/{pid}/status") as f:
            rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        return ticks, rss
    except (OSError, ValueError, IndexError):
        return None


def cmd_stats(args):
    c = load(args)
    if not 0.1 <= args.seconds <= 3600:
        raise Fail("--seconds must be between 0.1 and 3600", EXIT_USAGE)
    hz = os.sysconf("SC_CLK_TCK")
    pids = {n["name"]: agent_pid(n) for n in c["nodes"]}
    first = {k: proc_usage(p) for k, p in pids.items() if p}
    t0 = time.monotonic()
    time.sleep(args.seconds)
    dt = time.monotonic() - t0
    rows, out = [], []
    for n in c["nodes"]:
        a, b = first.get(n["name"]), proc_usage(pids[n["name"]]) if pids[n["name"]] else None
        if not a or not b:
            rows.append([n["name"], "-", "-", "-"])
            continue
        cpu = 100.0 * (b[0] - a[0]) / hz / dt
        rows.append([n["name"], pids[n["name"]], f"{b[1] / 1024:.1f}", f"{cpu:.2f}"])
        out.append({"name": n["name"], "pid": pids[n["name"]], "rss_kib": b[1], "cpu_percent": round(cpu, 3)})
    if args.json:
        print(json.dumps({"seconds": round(dt, 3), "agents": out}, indent=1))
        return 0
    say(f"agents over {dt:.1f}s (CPU: percent of one core; RSS: resident memory)")
    say(table(rows, ["NODE", "PID", "RSS_MIB", "CPU_%"]))
    if out:
        rss = sorted(x["rss_kib"] for x in out)
        cpu = sorted(x["cpu_percent"] for x in out)
        say(f"RSS MiB min {rss[0] / 1024:.1f} median {rss[len(rss) // 2] / 1024:.1f} max {rss[-1] / 1024:.1f}; "
            f"CPU % min {cpu[0]:.2f} median {cpu[len(cpu) // 2]:.2f} max {cpu[-1]:.2f}")
    return 0


# ----------------------------------------------------------------------------- faults

def parse_groups(c, groups):
    seen = {}
    out = []
    for g in groups:
        names = [x for x in g.split(",") if x]
        if not names:
            raise Fail(f"empty group {g!r}", EXIT_USAGE)
        for x in names:
            node_by_name(c, x)
            if x in seen:
                raise Fail(f"node {x} is in two groups", EXIT_USAGE)
            seen[x] = True
        out.append(names)
    if len(out) < 2:
        raise Fail("partition needs at least two groups, e.g. partition n1,n2 n3,n4,n5", EXIT_USAGE)
    return out


def cmd_partition(args):
    c = load(args)
    need_netns(c, "partition")
    groups = parse_groups(c, args.groups)
    group_of = {x: i for i, g in enumerate(groups) for x in g}
    rules = 0
    for n in c["nodes"]:
        if n["name"] not in group_of:
            continue
        ensure_chains(n)
        ipt(n["ns"], "-F", "MESHOS-PART-IN")
        ipt(n["ns"], "-F", "MESHOS-PART-OUT")
        for m in c["nodes"]:
            if m["name"] in group_of and group_of[m["name"]] != group_of[n["name"]]:
                ipt(n["ns"], "-A", "MESHOS-PART-IN", "-s", m["host"], "-j", "DROP")
                ipt(n["ns"], "-A", "MESHOS-PART-OUT", "-d", m["host"], "-j", "DROP")
                rules += 2
    unlisted = [n["name"] for n in c["nodes"] if n["name"] not in group_of]
    say(f"partitioned: {' | '.join(','.join(g) for g in groups)} ({rules} iptables rules)" +
        (f"; {', '.join(unlisted)} still reach everyone" if unlisted else ""))
    return 0


def cmd_heal(args):
    c = load(args)
    need_netns(c, "heal")
    removed = 0
    for n in c["nodes"]:
        if not os.path.exists(f"/run/netns/{n['ns']}"):
            continue
        for chain in IPT_CHAINS:
            r = ipt(n["ns"], "-S", chain, check=False)
            if r.returncode == 0:
                removed += sum(1 for line in r.stdout.splitlines() if line.startswith("-A"))
                ipt(n["ns"], "-F", chain)
    say(f"healed: {removed} iptables rule(s) removed (partitions and packet loss)")
    return 0


def cmd_loss(args):
    c = load(args)
    need_netns(c, "loss")
    n = node_by_name(c, args.node)
    try:
        pct = float(args.percent.rstrip("%"))
    except ValueError:
        raise Fail(f"PERCENT must be a number from 0 to 100, got {args.percent!r}", EXIT_USAGE) from None
    if not 0 <= pct <= 100:
        raise Fail(f"PERCENT must be from 0 to 100, got {pct:g}", EXIT_USAGE)
    ensure_chains(n)
    ipt(n["ns"], "-F", "MESHOS-LOSS-IN")
    ipt(n["ns"], "-F", "MESHOS-LOSS-OUT")
    if pct > 0:
        p = f"{pct / 100:.4f}"
        ipt(n["ns"], "-A", "MESHOS-LOSS-IN", "-i", "eth0", "-m", "statistic", "--mode", "random",
            "--probability", p, "-j", "DROP")
        ipt(n["ns"], "-A", "MESHOS-LOSS-OUT", "-o", "eth0", "-m", "statistic", "--mode", "random",
            "--probability", p, "-j", "DROP")
        say(f"{n['name']}: dropping {pct:g}% of packets in and {pct:g}% out (tools/cluster/loss {n['name']} 0 "
            "or heal ends it)")
    else:
        say(f"{n['name']}: no packet loss")
    return 0


# ----------------------------------------------------------------------------- main

def parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", help=f"cluster directory (default: $MESHOS_CLUSTER_DIR or {DEFAULT_DIR})")
    common.add_argument("--build", help="build directory holding the binaries (default: $MESHOS_BUILD or build/)")
    p = argparse.ArgumentParser(prog="tools/cluster", description="a real meshos cluster on one machine")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    s = sub.add_parser("up", parents=[common], help="make and start a cluster of N agents")
    s.add_argument("nodes", type=int, metavar="N")
    s.add_argument("--netns", action="store_true", help="each agent in its own network namespace on a bridge")
    s.add_argument("--threshold", type=int, default=1, help="admin signatures a commit needs (default 1)")
    s.add_argument("--name", help="cluster id, also names the namespaces (default: meshos)")
    s.add_argument("--net", type=int, default=0,
                   help="network number K: loopback 127.0.(K+1).i, netns 10.77.K.(10+i) (default 0)")
    s.add_argument("--port", type=int, default=7946, help="gossip port of every node (default 7946)")
    s.add_argument("--fast", action="store_true", help="short gossip timings (probe 200 ms) for tests")
    s.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", help="a node.toml key for every node")
    s.add_argument("--timeout", type=float, default=30, help="seconds to wait for the agents (default 30)")
    s.set_defaults(fn=cmd_up)

    s = sub.add_parser("apply", parents=[common], help="sign a desired-state file (or operations) and submit it")
    s.add_argument("file", nargs="?")
    s.add_argument("--op", action="append", help='an operation, e.g. "drain n3 +300" (repeatable)')
    s.add_argument("--keep-missing", action="store_true", help="do not remove daemons absent from FILE")
    s.add_argument("--secret", action="append", help="a sealed-secret file to put (meshos-admin secret seal; repeatable)")
    s.add_argument("--node", help="submit through this node (default: the first that answers)")
    s.add_argument("--note", help="free text kept in the commit")
    s.add_argument("--wait", type=float, default=5, help="seconds to wait for every agent to have it (default 5)")
    s.set_defaults(fn=cmd_apply)

    s = sub.add_parser("status", parents=[common], help="one table for the whole cluster")
    s.add_argument("--json", action="store_true")
    s.add_argument("--no-verify", action="store_true", help="skip the chain verification")
    s.set_defaults(fn=cmd_status)

    s = sub.add_parser("wait", parents=[common], help="wait until a daemon has its replicas ready")
    s.add_argument("daemon")
    s.add_argument("--ready", type=int, help="how many ready instances (default: its replicas)")
    s.add_argument("--shared", action="store_true", help="instances may share a node")
    s.add_argument("--timeout", type=float, default=60)
    s.set_defaults(fn=cmd_wait)

    s = sub.add_parser("logs", parents=[common], help="a node's agent log, or a daemon instance's output")
    s.add_argument("node")
    s.add_argument("instance", nargs="?", help="NAME or NAME#N: that daemon's output instead")
    s.add_argument("--tail", type=int, default=50)
    s.add_argument("-f", "--follow", action="store_true")
    s.set_defaults(fn=cmd_logs)

    s = sub.add_parser("kill", parents=[common], help="SIGKILL a node's agent")
    s.add_argument("node")
    s.add_argument("--with-daemons", action="store_true", help="its daemons too (a machine crash)")
    s.set_defaults(fn=cmd_kill)

    s = sub.add_parser("restart", parents=[common], help="stop (if running) and start a node's agent")
    s.add_argument("node")
    s.add_argument("--timeout", type=float, default=10)
    s.set_defaults(fn=cmd_restart)

    s = sub.add_parser("down", parents=[common], help="stop everything and remove the cluster")
    s.add_argument("--keep", action="store_true", help="keep the directory (data, logs)")
    s.add_argument("--timeout", type=float, default=10, help="seconds between SIGTERM and SIGKILL")
    s.set_defaults(fn=cmd_down)

    s = sub.add_parser("stats", parents=[common], help="RSS and CPU of every agent over a few seconds")
    s.add_argument("--seconds", type=float, default=5)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_stats)

    s = sub.add_parser("partition", parents=[common], help="cut the network between groups (netns only)")
    s.add_argument("groups", nargs="+", metavar="A,B")
    s.set_defaults(fn=cmd_partition)

    s = sub.add_parser("heal", parents=[common], help="remove every partition and packet loss (netns only)")
    s.set_defaults(fn=cmd_heal)

    s = sub.add_parser("loss", parents=[common], help="drop PERCENT of a node's packets (netns only)")
    s.add_argument("node")
    s.add_argument("percent")
    s.set_defaults(fn=cmd_loss)
    return p


def main(argv):
    p = parser()
    args = p.parse_args(argv)  # bad usage: argparse prints it and exits 2
    try:
        return args.fn(args)
    except Fail as e:
        print(f"tools/cluster {args.cmd}: {e}", file=sys.stderr, flush=True)
        return e.code
    except KeyboardInterrupt:
        print(f"tools/cluster {args.cmd}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `status | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
