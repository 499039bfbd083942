"""Sealed secrets end to end (docs/SECRETS.md), with two real agents:

- a value sealed to node n1 only (`meshos-admin secret seal --to n1`), put in a signed
  commit, read by a daemon from its environment and from a 0400 file;
- placement never chooses n2 for it, and a daemon n2 must run itself refuses to start
  there with a reason that names the secret;
- the plaintext is nowhere: not in any file under either data directory (RocksDB
  included), not in the snapshot, any inspect command's output or the HTTP API, not in
  either agent's log; the file is gone once its process ends;
- a rotation (a new commit) replaces the instance, which reads the new value;
- a secret in use cannot be removed; a cluster-sealed secret opens on a node holding the
  cluster key and is refused, with its reason, on one without it.
"""
import json
import os
import secrets
import stat
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import Workspace, admin, free_port, run_tests, submit, wait_for  # noqa: E402

CLUSTER = "e2e-secrets"


def keygen(ws):
    path = os.path.join(ws.root, "admin")
    pub = admin("keygen", path).stdout.strip()
    return path + ".key", pub


def agent(ws, name, pub, extra=""):
    a = ws.agent(name)
    a.set_keys("gossip", f'cluster = "{CLUSTER}"')
    a.set_keys("trust", f'admins = ["{pub}"]\nthreshold = 1')
    a.set_keys("secrets", f'files_dir = "{os.path.join(ws.root, "shm-" + name)}"\n{extra}')
    return a


def pair(ws, pub, n2_extra="", n1_extra=""):
    n1 = agent(ws, "n1", pub, n1_extra)
    n1.http = f"127.0.0.1:{free_port()}"
    n1.set_keys("control", f'http = "{n1.http}"')
    n1.start()
    n2 = agent(ws, "n2", pub, n2_extra)
    n2.set_keys("gossip", f'seeds = ["127.0.0.1:{n1.port}"]')
    n2.start()
    for a in (n1, n2):
        wait_for(lambda a=a: sum(m["state"] == "alive" for m in a.inspect_json("members")["members"]) == 2,
                 20, f"{a.name} to see both members")
    return n1, n2


def write(ws, name, text):
    path = os.path.join(ws.root, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def reader_spec(out_dir, name="reader", secret="db", extra=""):
    """A service that writes what it read (env and file) to out_dir, then sleeps."""
    script = (f'stat -c %a "$MESHOS_SECRETS_DIR/{secret}" > {out_dir}/{name}.mode; '
              f'echo "$MESHOS_SECRETS_DIR" > {out_dir}/{name}.dir; '
              f'cat "$MESHOS_SECRETS_DIR/{secret}" > {out_dir}/{name}.file.tmp && mv {out_dir}/{name}.file.tmp {out_dir}/{name}.file; '
              f'printf "%s" "$DB_PASSWORD" > {out_dir}/{name}.env.tmp && mv {out_dir}/{name}.env.tmp {out_dir}/{name}.env; '
              'exec sleep 3600')  # the environment file last: once it is there, so is the rest
    return f"""[[daemon]]
name = "{name}"
kind = "service"
command = ["/bin/sh", "-c", {json.dumps(script)}]
env = {{ DB_PASSWORD = {{ secret = "{secret}" }}, PLAIN = "visible" }}
secret_files = ["{secret}"]
replicas = 2
stop_grace_ms = 500
{extra}
[daemon.placement]
max_per_node = 1
"""


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def seal_and_commit(ws, n1, key, name, value, to_args, desired, out):
    value_file = write(ws, out + ".value", value)
    sealed = os.path.join(ws.root, out + ".sealed")
    admin("secret", "seal", name, "--from-file", value_file, *to_args, "-o", sealed)
    os.unlink(value_file)  # the test's own copy; the grep below must not find it
    commit = os.path.join(ws.root, out + ".commit")
    args = ["sign-commit", "--key", key, "--agent", n1.socket, "--secret", sealed, "-o", commit]
    if desired:
        args += ["--file", desired]
    admin(*args)
    j = submit(n1, commit)
    assert j["outcome"] == "accepted", j
    return commit


def files_holding(root, needle):
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            try:
                with open(p, "rb") as f:
                    if needle in f.read():
                        found.append(p)
            except OSError:
                pass
    return found


def instances(a, daemon):
    return [i for i in a.inspect_json("daemons")["daemons"] if i["instance"].split("#")[0] == daemon]


def every_inspect_output(a):
    out = []
    for args in (["snapshot"], ["snapshot", "--json"], ["members"], ["members", "--json"], ["daemons"],
                 ["daemons", "--json"], ["metrics"], ["placement"], ["placement", "--json"], ["endpoints"],
                 ["rollout", "reader"], ["logs", "reader#0"], ["logs", "reader#1"],
                 ["chain", "tail", "audit", "--count", "1000", "--json"], ["chain", "tail", "log", "--count", "1000", "--json"],
                 ["chain", "tail", "failure", "--count", "1000", "--json"], ["chain", "verify"]):
        r = a.inspect(*args, check=False)
        out.append(r.stdout + r.stderr)
    for path in ("/metrics", "/v1/snapshot", "/v1/members", "/v1/daemons", "/v1/commits", "/v1/placement?daemon=reader",
                 "/v1/chains/audit/records?from=1&count=1000", "/v1/chains/log/records?from=1&count=1000",
                 "/v1/chains/failure/records?from=1&count=1000"):
        if getattr(a, "http", None):
            with urllib.request.urlopen(f"http://{a.http}{path}", timeout=10) as r:
                out.append(r.read().decode(errors="replace"))
    return "\n".join(out)


def test_sealed_to_one_node():
    with Workspace() as ws:
        key, pub = keygen(ws)
        out_dir = os.path.join(ws.root, "out")
        os.makedirs(out_dir)
        # n2 must run a daemon of its own that uses the secret: it cannot open it.
        local = write(ws, "local.toml", reader_spec(out_dir, name="local-reader").replace("replicas = 2", "replicas = 1"))
        n1, n2 = pair(ws, pub, n2_extra="")
        plaintext = "pw-" + secrets.token_hex(12)
        desired = write(ws, "desired.toml", reader_spec(out_dir))
        commit = seal_and_commit(ws, n1, key, "db", plaintext, ["--to", "n1", "--agent", n1.socket], desired, "v1")
        shown = admin("show", commit, "--json").stdout
        assert "<secret:db>" in shown and plaintext not in shown, shown

        # The daemon reads the right value, in its environment and in its file (mode 0400).
        wait_for(lambda: read(f"{out_dir}/reader.env") == plaintext, 20, "the daemon to read the secret from its environment")
        wait_for(lambda: read(f"{out_dir}/reader.file") == plaintext, 5, "the daemon to read the secret file")
        assert read(f"{out_dir}/reader.mode").strip() == "400", read(f"{out_dir}/reader.mode")
        secret_dir = read(f"{out_dir}/reader.dir").strip()
        assert secret_dir.startswith(os.path.join(ws.root, "shm-n1")), secret_dir

        # Placement chose n1 alone: two replicas wanted, one node can open the secret.
        plan = n2.inspect_json("placement")
        decision = [d for d in plan["decisions"] if d["daemon"] == "reader"][0]
        assert decision["assigned"] == ["n1"], decision
        wait_for(lambda: len(instances(n1, "reader")) == 1,
                 10, "one reader instance on n1")
        assert not instances(n2, "reader")

        # A daemon n2 runs itself refuses to start, naming the secret and the node.
        n2.set_keys("runtime", f'local = "{local}"')
        admin("reload", "--socket", n2.socket, "--reason", "local daemon with a secret")

        def refused():
            return [i for i in instances(n2, "local-reader") if i["state"] == "failed"]
        inst = wait_for(refused, 20, "local-reader on n2 to fail")
        text = json.dumps(n2.inspect_json("chain", "tail", "failure", "--count", "100"))
        assert "secret db is not sealed to this node" in text and "node n2" in text, text[-2000:]
        assert read(f"{out_dir}/local-reader.env") is None, "n2 started it anyway"

        # The plaintext is nowhere: data directories, snapshots, inspect outputs, agent logs.
        needle = plaintext.encode()
        assert files_holding(out_dir, needle), "the search finds nothing even where the daemon wrote the value"
        for a in (n1, n2):
            assert not files_holding(os.path.join(a.dir, "data"), needle), files_holding(os.path.join(a.dir, "data"), needle)
            assert plaintext not in every_inspect_output(a), f"plaintext in {a.name}'s inspect output"
            assert plaintext not in a.read_log(), f"plaintext in {a.name}'s log"

        # A secret in use cannot be removed.
        c = os.path.join(ws.root, "rm.commit")
        r = admin("sign-commit", "--key", key, "--agent", n1.socket, "--op", "remove-secret db", "-o", c, check=False)
        assert r.returncode != 0 and "used by daemon" in r.stderr, r.stderr

        # Rotation: a new value in a new commit; the instance is replaced and reads it.
        old_pid = instances(n1, "reader")[0]["pid"]
        rotated = "pw-" + secrets.token_hex(12)
        seal_and_commit(ws, n1, key, "db", rotated, ["--to", "n1", "--agent", n1.socket], None, "v2")
        wait_for(lambda: read(f"{out_dir}/reader.env") == rotated, 20, "the replaced instance to read the rotated value")
        new = wait_for(lambda: [i for i in instances(n1, "reader") if i["state"] in ("running", "ready")],
                       10, "reader running")
        assert new[0]["pid"] != old_pid, "a rotation must replace the instance"
        for a in (n1, n2):
            assert not files_holding(os.path.join(a.dir, "data"), rotated.encode())

        # Its file goes with its process.
        n1.inspect("--reason", "e2e: files go with the process", "daemon", "stop", "reader")
        wait_for(lambda: not os.path.exists(secret_dir), 10, f"{secret_dir} to be removed")


def test_sealed_to_cluster():
    with Workspace() as ws:
        key, pub = keygen(ws)
        ck = os.path.join(ws.root, "cluster.secret")
        admin("secret", "cluster-key", ck)
        assert stat.S_IMODE(os.stat(ck).st_mode) == 0o600
        out_dir = os.path.join(ws.root, "out")
        os.makedirs(out_dir)
        # n1 holds the cluster key; n2 does not.
        n1, n2 = pair(ws, pub, n1_extra=f'cluster_key_file = "{ck}"')
        plaintext = "tok-" + secrets.token_hex(12)
        desired = write(ws, "desired.toml", reader_spec(out_dir, secret="token"))
        seal_and_commit(ws, n1, key, "token", plaintext, ["--to-cluster", "--cluster-key", ck + ".pub"], desired, "c1")
        wait_for(lambda: read(f"{out_dir}/reader.env") == plaintext, 20, "n1 to open the cluster-sealed secret")

        def refused():
            text = json.dumps(n2.inspect_json("chain", "tail", "failure", "--count", "100"))
            return "sealed to the cluster key, and this node has none" in text
        wait_for(refused, 20, "n2 to refuse the cluster secret without the key")
        for a in (n1, n2):
            assert not files_holding(os.path.join(a.dir, "data"), plaintext.encode())
            assert plaintext not in a.read_log()


if __name__ == "__main__":
    run_tests([test_sealed_to_one_node, test_sealed_to_cluster])
