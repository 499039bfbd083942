"""meshos-agent end to end with signed admin commits (single agent: commits are not spread
between agents yet): keys from meshos-admin keygen, a commit built from a desired-state file
against the agent, submit, head, snapshot and audit chain; untrusted, tampered and
under-signed commits rejected with their reasons and nothing changed; cosign; persistence
across a restart.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import ADMIN, Workspace, admin, desired_jobs, run_tests, submit, wait_for  # noqa: E402

CLUSTER = "e2e-commits"



def keygen(ws, name):
    path = os.path.join(ws.root, name)
    pub = admin("keygen", path).stdout.strip()
    with open(path + ".pub") as f:
        assert f.read().strip() == pub
    return path + ".key", pub


def trusted_agent(ws, name, admins, threshold):
    a = ws.agent(name)
    a.set_keys("gossip", f'cluster = "{CLUSTER}"')
    a.set_keys("trust", "admins = [" + ", ".join(f'"{k}"' for k in admins) + f"]\nthreshold = {threshold}")
    return a



def sign(ws, agent, key, file, out, note=None):
    path = os.path.join(ws.root, out)
    args = ["sign-commit", "--key", key, "--file", file, "--agent", agent.socket, "-o", path]
    if note:
        args += ["--note", note]
    admin(*args)
    return path



def head(agent):
    return json.loads(admin("head", "--socket", agent.socket, "--json").stdout)["head"]


def snapshot_head(agent, want):
    """Waits for the snapshot (refreshed each tick) to show commit head `want`."""
    seen = {}

    def check():
        seen["h"] = agent.inspect_json("snapshot")["commit_head"]
        return seen["h"] == want

    try:
        wait_for(check, 5, f"snapshot commit_head {want}")
    except AssertionError as e:
        raise AssertionError(f"{e}; last {seen.get('h')}") from None


def audit(agent, want, what):
    """Waits for an audit record matching want(kind, payload); returns its payload."""
    seen = {}

    def check():
        seen["rs"] = []
        for r in agent.inspect_json("chain", "tail", "audit", "--count", "1000")["records"]:
            try:
                p = json.loads(r.get("payload_text", ""))
            except ValueError:
                p = r.get("payload_text", "")
            seen["rs"].append((r["kind"], p))
            if want(r["kind"], p):
                return p
        return None

    try:
        return wait_for(check, 10, what)
    except AssertionError as e:
        got = [x for x in seen.get("rs", []) if x[0].startswith("commit")]
        raise AssertionError(f"{e}; commit records: {got}") from None


def test_commits_single_signer():
    with Workspace() as ws:
        alice_key, alice_pub = keygen(ws, "alice")
        mallory_key, _ = keygen(ws, "mallory")
        assert admin("keygen", os.path.join(ws.root, "alice"), check=False).returncode != 0  # never overwrites
        a = trusted_agent(ws, "a", [alice_pub], 1).start()
        assert head(a)["seq"] == 0

        # Accepted: seq 1, in head, snapshot and audit chain.
        c1 = sign(ws, a, alice_key, desired_jobs(ws, "d1.toml", ["hello"]), "c1")
        r = submit(a, c1)
        assert r["outcome"] == "accepted" and r["seq"] == 1, r
        h1 = head(a)
        assert h1 == {"seq": 1, "hash": r["hash"]}, (h1, r)
        snapshot_head(a, h1)
        p = audit(a, lambda k, p: k == "commit.accepted" and p.get("hash") == h1["hash"], "commit.accepted")
        assert p["seq"] == 1 and p["signers"] == [alice_pub], p
        assert submit(a, c1)["outcome"] == "duplicate"

        # Untrusted signer: rejected (unknown-key), head unchanged, audited.
        c_bad = sign(ws, a, mallory_key, desired_jobs(ws, "d2.toml", ["hello", "world"]), "c-mallory")
        r = submit(a, c_bad)
        assert r["outcome"] == "rejected" and r["reason"] == "unknown-key", r
        assert head(a) == h1
        audit(a, lambda k, p: k == "commit.rejected" and p.get("hash") == r["hash"]
              and p.get("reason") == "unknown-key", "commit.rejected unknown-key")

        # Tampered: one byte of the signed body (inside the note) flipped after signing.
        c2 = sign(ws, a, alice_key, os.path.join(ws.root, "d2.toml"), "c2", note="tamper-me")
        with open(c2, "rb") as f:
            data = bytearray(f.read())
        at = data.find(b"tamper-me")
        assert at >= 0 and data.count(b"tamper-me") == 1
        data[at + len("tamper-m")] ^= 0x01
        tampered = os.path.join(ws.root, "c2-tampered")
        with open(tampered, "wb") as f:
            f.write(data)
        r = submit(a, tampered)
        assert r["outcome"] == "rejected" and r["reason"] == "bad-signature", r
        assert head(a) == h1
        audit(a, lambda k, p: k == "commit.rejected" and p.get("reason") == "bad-signature",
              "commit.rejected bad-signature")
        # A byte that breaks the encoding itself: malformed-commit.
        garbage = os.path.join(ws.root, "c-garbage")
        with open(garbage, "wb") as f:
            f.write(b"\xff" * 64)
        assert admin("submit", garbage, "--socket", a.socket, check=False).returncode != 0
        assert head(a) == h1

        # The untampered commit still goes in: seq 2.
        r = submit(a, c2)
        assert r["outcome"] == "accepted" and r["seq"] == 2, r
        h2 = head(a)
        assert h2["seq"] == 2 and h2["hash"] == r["hash"], h2
        snapshot_head(a, h2)

        # Persistence: the head survives a restart.
        assert a.stop() == 0
        a.start()
        assert head(a) == h2
        snapshot_head(a, h2)
        assert a.inspect_json("chain", "verify", "audit")["verify"]["ok"] is True


def test_commits_threshold_two():
    with Workspace() as ws:
        alice_key, alice_pub = keygen(ws, "alice")
        bob_key, bob_pub = keygen(ws, "bob")
        a = trusted_agent(ws, "b", [alice_pub, bob_pub], 2).start()

        c1 = sign(ws, a, alice_key, desired_jobs(ws, "d1.toml", ["hello"]), "c1")
        r = submit(a, c1)
        assert r["outcome"] == "rejected" and r["reason"] == "insufficient-signatures", r
        assert head(a)["seq"] == 0
        audit(a, lambda k, p: k == "commit.rejected" and p.get("reason") == "insufficient-signatures",
              "commit.rejected insufficient-signatures")

        # alice co-signing her own commit counts once.
        dup = os.path.join(ws.root, "c1-dup")
        admin("cosign", c1, "--key", alice_key, "-o", dup)
        r = submit(a, dup)
        assert r["outcome"] == "rejected" and r["reason"] in ("duplicate-signer", "insufficient-signatures"), r
        assert head(a)["seq"] == 0

        admin("cosign", c1, "--key", bob_key)  # in place
        r = submit(a, c1)
        assert r["outcome"] == "accepted" and r["seq"] == 1, r
        h1 = head(a)
        assert h1 == {"seq": 1, "hash": r["hash"]}, (h1, r)
        p = audit(a, lambda k, p: k == "commit.accepted" and p.get("hash") == h1["hash"], "commit.accepted")
        assert sorted(p["signers"]) == sorted([alice_pub, bob_pub]), p
        snapshot_head(a, h1)

        assert a.stop() == 0
        a.start()
        assert head(a) == h1


if __name__ == "__main__":
    run_tests([test_commits_single_signer, test_commits_threshold_two])
