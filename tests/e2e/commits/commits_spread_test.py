"""Commit spreading between real meshos-agents: five agents on loopback (encrypted gossip),
a commit signed with meshos-admin and submitted to one agent reaches every agent (push over
the gossip TCP stream); a commit with a bad signature and one with no signature are rejected
with their reasons and change nothing on any node; an agent that was down when a commit was
made catches up by fetching the range from a peer when it comes back.
"""
import json
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import ADMIN, Workspace, admin, desired_jobs, run_tests, submit, wait_for  # noqa: E402

N = 5
CLUSTER = "e2e-spread"
FAST = f"""cluster = "{CLUSTER}"
probe_interval_ms = 200
probe_timeout_ms = 100
gossip_interval_ms = 50
push_pull_interval_ms = 2000"""



def snapshot(agent):
    r = agent.inspect("snapshot", "--json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else {}


def alive_names(agent):
    r = agent.inspect("members", "--json", check=False)
    if r.returncode != 0:
        return set()
    return {m["name"] for m in json.loads(r.stdout)["members"] if m["state"] == "alive"}


def heads(agents):
    return {a.name: snapshot(a).get("commit_head") for a in agents}


def wait_heads(agents, want, timeout_s, what):
    """Polls every agent's snapshot until each shows commit head `want`; seconds taken."""
    start = time.monotonic()
    last = {}

    def check():
        last.update(heads(agents))
        return all(last[a.name] == want for a in agents)

    try:
        wait_for(check, timeout_s, what)
    except AssertionError as e:
        raise AssertionError(f"{e}; heads {last}") from None
    return time.monotonic() - start




def strip_signatures(src, dst):
    """Writes a copy of the commit file with its signature list cut off (null pointer): a
    well-formed commit with no signature at all. Cap'n Proto flat layout: segment table,
    then the root pointer to Commit {body @0, signatures @1}."""
    with open(src, "rb") as f:
        data = bytearray(f.read())
    nseg = struct.unpack_from("<I", data, 0)[0] + 1
    base = 4 + 4 * nseg
    base += base % 8  # the table is padded to a word
    root = struct.unpack_from("<Q", data, base)[0]
    assert root & 3 == 0, "root is not a struct pointer"
    offset = (root >> 2) & 0x3FFFFFFF
    if offset & 0x20000000:
        offset -= 0x40000000
    data_words = (root >> 32) & 0xFFFF
    ptr_count = (root >> 48) & 0xFFFF
    assert ptr_count >= 2, ptr_count
    start = base + 8 + offset * 8
    sig_ptr = start + data_words * 8 + 8  # pointer 1
    assert struct.unpack_from("<Q", data, sig_ptr)[0] != 0, "no signature list to strip"
    struct.pack_into("<Q", data, sig_ptr, 0)
    with open(dst, "wb") as f:
        f.write(data)
    return dst


def audit_reasons(agent):
    out = []
    for r in agent.inspect_json("chain", "tail", "audit", "--count", "1000")["records"]:
        if not r["kind"].startswith("commit."):
            continue
        try:
            p = json.loads(r.get("payload_text", ""))
        except ValueError:
            continue
        out.append((r["kind"], p.get("reason"), p.get("hash")))
    return out


def start_cluster(ws, key_pub, keyring):
    agents = []
    for i in range(N):
        a = ws.agent(f"s{i}")
        a.set_keys("gossip", FAST + f'\nkeyring = "{keyring}"')
        if i > 0:
            a.set_keys("gossip", f'seeds = ["127.0.0.1:{agents[0].port}"]')
        a.set_keys("trust", f'admins = ["{key_pub}"]\nthreshold = 1')
        agents.append(a)
    for a in agents:
        a.start()
    names = {a.name for a in agents}
    wait_for(lambda: all(alive_names(a) >= names for a in agents), 20, "every agent to see all alive")
    return agents


def test_commits_spread():
    with Workspace() as ws:
        key = os.path.join(ws.root, "alice")
        pub = admin("keygen", key).stdout.strip()
        mallory = os.path.join(ws.root, "mallory")
        admin("keygen", mallory)
        keyring = os.path.join(ws.root, "cluster.keyring")
        admin("keygen", "--cluster", keyring)
        agents = start_cluster(ws, pub, keyring)
        empty = heads(agents)
        assert all(h == {"seq": 0, "hash": empty[agents[0].name]["hash"]} for h in empty.values()), empty

        # A good commit to one agent: every agent reaches its head.
        c1 = os.path.join(ws.root, "c1")
        admin("sign-commit", "--key", key + ".key", "--file", desired_jobs(ws, "d1.toml", ["hello"]),
              "--agent", agents[2].socket, "-o", c1)
        r = submit(agents[2], c1)
        assert r["outcome"] == "accepted" and r["seq"] == 1, r
        h1 = {"seq": 1, "hash": r["hash"]}
        took = wait_heads(agents, h1, 10, "every agent at seq 1")
        print(f"seq 1 on all {N} agents {took * 1000:.0f} ms after the submit returned")
        # It travelled by push: the submitting agent pushed, the others received.
        sync = snapshot(agents[2])["commits"]["sync"]
        assert sync["pushes_sent"] >= N - 1, sync
        received = sum(snapshot(a)["commits"]["sync"]["pushes_received"] for a in agents)
        assert received >= N - 1, received

        # Bad signature: one byte of the signed note flipped after signing.
        c2 = os.path.join(ws.root, "c2")
        admin("sign-commit", "--key", key + ".key", "--file", desired_jobs(ws, "d2.toml", ["hello", "world"]),
              "--agent", agents[0].socket, "--note", "tamper-me", "-o", c2)
        with open(c2, "rb") as f:
            data = bytearray(f.read())
        at = data.find(b"tamper-me")
        assert at >= 0
        data[at + 3] ^= 0x01
        tampered = os.path.join(ws.root, "c2-tampered")
        with open(tampered, "wb") as f:
            f.write(data)
        r = submit(agents[0], tampered)
        assert r["outcome"] == "rejected" and r["reason"] == "bad-signature", r
        bad_hash = r["hash"]

        # Missing signature: the same commit with its signature list removed.
        unsigned = strip_signatures(c2, os.path.join(ws.root, "c2-unsigned"))
        r = submit(agents[1], unsigned)
        assert r["outcome"] == "rejected" and r["reason"] == "insufficient-signatures", r
        # An untrusted signer, for good measure.
        c3 = os.path.join(ws.root, "c3")
        admin("sign-commit", "--key", mallory + ".key", "--file", os.path.join(ws.root, "d2.toml"),
              "--agent", agents[3].socket, "-o", c3)
        r = submit(agents[3], c3)
        assert r["outcome"] == "rejected" and r["reason"] == "unknown-key", r

        # Nothing changed anywhere: give pushes (there should be none) time to land, then check.
        time.sleep(0.5)
        assert heads(agents) == {a.name: h1 for a in agents}, heads(agents)
        for a in agents:
            desired_names = [d["name"] for d in snapshot(a)["commits"]["daemons"]]
            assert desired_names == ["hello"], (a.name, desired_names)
        # Rejections are audited where they were submitted, and not spread.
        assert ("commit.rejected", "bad-signature", bad_hash) in audit_reasons(agents[0])
        assert any(k == "commit.rejected" and why == "insufficient-signatures"
                   for k, why, _ in audit_reasons(agents[1]))
        for a in (agents[2], agents[4]):
            assert not any(k == "commit.rejected" for k, _, _ in audit_reasons(a)), (a.name, audit_reasons(a))

        # The untampered commit goes in and spreads.
        r = submit(agents[0], c2)
        assert r["outcome"] == "accepted" and r["seq"] == 2, r
        h2 = {"seq": 2, "hash": r["hash"]}
        wait_heads(agents, h2, 10, "every agent at seq 2")

        # An agent that misses commits while down fetches them when it is back.
        down = agents[4]
        assert down.stop() == 0
        c4 = os.path.join(ws.root, "c4")
        admin("sign-commit", "--key", key + ".key", "--file", desired_jobs(ws, "d4.toml", ["hello", "world", "more"]),
              "--agent", agents[1].socket, "-o", c4)
        r = submit(agents[1], c4)
        assert r["outcome"] == "accepted" and r["seq"] == 3, r
        h3 = {"seq": 3, "hash": r["hash"]}
        wait_heads(agents[:4], h3, 10, "the running agents at seq 3")
        down.start()
        wait_heads([down], h3, 15, "the restarted agent at seq 3")
        sync = snapshot(down)["commits"]["sync"]
        # Nobody pushed seq 3 to it (it was down then): it fetched it from a peer's head.
        assert sync["fetched_commits_accepted"] >= 1, sync


if __name__ == "__main__":
    run_tests([test_commits_spread])
