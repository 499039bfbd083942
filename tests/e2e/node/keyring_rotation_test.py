"""Gossip keyring rotation through the control socket on three real agents:
install B on all, use B on all, remove A on all, with one membership at every step and
no packet refused for a wrong key; each step persisted (a restarted agent comes back with
the rotated ring) and audited; an agent still on the old key A is locked out afterwards.
Wrong input (bad base64, wrong length, removing the primary, an unknown key, an agent
without a keyring file) gets a clear error and changes nothing.
"""
import base64
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import ADMIN, Workspace, run_tests, wait_for  # noqa: E402

HEADER = "meshos-gossip-keyring-v1"
FAST = """cluster = "e2e-keyring"
probe_interval_ms = 200
probe_timeout_ms = 100
gossip_interval_ms = 50
push_pull_interval_ms = 2000"""


def write_keyring(path, keys):
    with open(path, "w") as f:
        f.write(HEADER + "\n" + "".join(k + "\n" for k in keys))
    os.chmod(path, 0o600)


def read_keyring(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")][1:]


def admin(agent, *args, check=True):
    reason = [] if args[0] == "list" else ["--reason", "keyring rotation test"]
    r = subprocess.run([ADMIN, "keyring", *args, "--socket", agent.socket, *reason], capture_output=True, text=True,
                       timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"meshos-admin keyring {' '.join(args)} on {agent.name} failed ({r.returncode}): "
                             f"{r.stdout}{r.stderr}")
    return r


def ring(agent):
    """[(id, primary)] as the agent reports it."""
    j = json.loads(admin(agent, "list", "--json").stdout)
    return [(k["id"], k["primary"]) for k in j["keys"]]


def members(agent):
    r = agent.inspect("members", "--json", check=False)
    if r.returncode != 0:
        return {}
    return {m["name"]: m for m in json.loads(r.stdout)["members"]}


def wrong_key_drops(agent):
    snap = agent.inspect_json("snapshot")

    def find(node):
        if isinstance(node, dict):
            g = node.get("gossip")
            if isinstance(g, dict) and "dropped" in g:
                return g["dropped"]["wrong_cluster_or_key"]
            for v in node.values():
                found = find(v)
                if found is not None:
                    return found
        return None

    value = find(snap)
    assert value is not None, "no gossip.dropped in the snapshot"
    return value


def one_membership(agents, hold_s=1.5, timeout_s=20, what=""):
    """Every agent sees every agent alive, and keeps seeing it for hold_s (past a few
    probe rounds and suspicion timeouts at these timings)."""
    names = {a.name for a in agents}

    def all_alive():
        for a in agents:
            t = members(a)
            if not (set(t) >= names and all(t[n]["state"] == "alive" for n in names)):
                return False
        return True

    wait_for(all_alive, timeout_s, f"one membership {what}")
    end = time.monotonic() + hold_s
    while time.monotonic() < end:
        assert all_alive(), f"membership broke {what}: " + json.dumps(
            {a.name: {n: m["state"] for n, m in members(a).items()} for a in agents})
        time.sleep(0.1)


def audit_keyring_records(agent):
    out = []
    for r in agent.inspect_json("chain", "tail", "audit", "--count", "1000")["records"]:
        text = r.get("payload_text", "")
        try:
            payload = json.loads(text)
        except ValueError:
            continue
        if isinstance(payload, dict) and "op" in payload and "key" in payload:
            out.append((payload, text))
    return out


def test_keyring_rotation():
    key_a = base64.b64encode(os.urandom(32)).decode()
    key_b = base64.b64encode(os.urandom(32)).decode()
    with Workspace() as ws:
        agents = [ws.agent(f"k{i}") for i in range(3)]
        for i, a in enumerate(agents):
            a.keyring = os.path.join(a.dir, "keyring")
            write_keyring(a.keyring, [key_a])
            seed = f'\nseeds = ["127.0.0.1:{agents[0].port}"]' if i else ""
            a.set_keys("gossip", FAST + f'\nkeyring = "{a.keyring}"' + seed)
        for a in agents:
            a.start()
        one_membership(agents, what="with key A")
        first = ring(agents[0])
        assert len(first) == 1 and first[0][1] is True, first
        id_a = first[0][0]
        for a in agents:
            assert ring(a) == [(id_a, True)], ring(a)
        drops_before = {a.name: wrong_key_drops(a) for a in agents}
        # Key bytes never leave the agent.
        listing = admin(agents[0], "list", "--json").stdout
        assert key_a not in listing and base64.b64decode(key_a).hex() not in listing

        # --- wrong input: clear errors, nothing changes (ring and file).
        k0 = agents[0]
        file_before = read_keyring(k0.keyring)
        bad = [
            (("install", "not base64!!"), "not valid base64"),
            (("install", base64.b64encode(os.urandom(31)).decode()), "32 bytes, got 31"),
            (("remove", key_a), "primary"),
            (("remove", id_a), "primary"),
            (("use", key_b), "not installed"),
            (("remove", "0123456789abcdef"), "no installed key has id"),
            (("use", base64.b64encode(os.urandom(5)).decode()), "32-byte key or its 8-byte id"),
        ]
        for args, expect in bad:
            r = admin(k0, *args, check=False)
            assert r.returncode != 0, (args, r.stdout)
            assert expect in r.stderr, (args, r.stderr)
            assert ring(k0) == [(id_a, True)], (args, ring(k0))
            assert read_keyring(k0.keyring) == file_before, args
        r = admin(k0, "install", check=False)
        assert r.returncode == 2 and "give the key" in r.stderr, r.stderr

        # --- install B on all: A stays primary.
        for a in agents:
            out = admin(a, "install", key_b).stdout
            assert "install" in out, out
        id_b = [i for i, p in ring(k0) if not p][0]
        for a in agents:
            assert ring(a) == [(id_a, True), (id_b, False)], ring(a)
            assert read_keyring(a.keyring) == [key_a, key_b]
        r = admin(k0, "install", key_b)  # again: no change
        assert "no change" in r.stdout, r.stdout
        one_membership(agents, what="after install B")

        # --- use B on all (by id on one of them).
        admin(agents[0], "use", key_b)
        one_membership(agents, hold_s=0.5, what="while B is primary on one agent only")
        admin(agents[1], "use", id_b)
        admin(agents[2], "use", key_b)
        for a in agents:
            assert ring(a) == [(id_b, True), (id_a, False)], ring(a)
            assert read_keyring(a.keyring) == [key_b, key_a]
        one_membership(agents, what="after use B")

        # --- remove A on all; B is now the primary, removing it is refused.
        for a in agents:
            admin(a, "remove", key_a)
            assert ring(a) == [(id_b, True)], ring(a)
            assert read_keyring(a.keyring) == [key_b]
        r = admin(k0, "remove", key_b, check=False)
        assert r.returncode != 0 and "primary" in r.stderr, r.stderr
        one_membership(agents, what="after remove A")
        for a in agents:
            assert wrong_key_drops(a) == drops_before[a.name], (a.name, wrong_key_drops(a), drops_before)

        # --- audited: four changes on k0 (install, use, remove; the no-op install is not one).
        recs = audit_keyring_records(k0)
        ops = [p["op"] for p, _ in recs]
        assert ops == ["install", "use", "remove"], ops
        for _, text in recs:
            assert key_a not in text and key_b not in text, text

        # --- persisted: k1 restarts with the rotated file and rejoins.
        agents[1].stop()
        agents[1].start()
        assert ring(agents[1]) == [(id_b, True)]
        one_membership(agents, what="after restarting k1 on the rotated keyring")

        # --- an agent still on key A is locked out.
        stale = ws.agent("stale")
        stale.keyring = os.path.join(stale.dir, "keyring")
        write_keyring(stale.keyring, [key_a])
        stale.set_keys("gossip", FAST + f'\nkeyring = "{stale.keyring}"\nseeds = ["127.0.0.1:{agents[0].port}"]')
        stale.start()
        before = wrong_key_drops(k0)
        wait_for(lambda: wrong_key_drops(k0) > before, 20, "k0 to refuse the stale agent's key")
        assert "stale" not in members(k0), members(k0)
        stale.stop()


def test_keyring_without_file():
    with Workspace() as ws:
        a = ws.agent("plain")
        a.set_keys("gossip", FAST)
        a.start()
        j = json.loads(admin(a, "list", "--json").stdout)
        assert j["keys"] == [] and j["encrypted"] is False, j
        r = admin(a, "install", base64.b64encode(os.urandom(32)).decode(), check=False)
        assert r.returncode != 0 and "no keyring file" in r.stderr, r.stderr
        assert json.loads(admin(a, "list", "--json").stdout)["keys"] == []


if __name__ == "__main__":
    run_tests([test_keyring_rotation, test_keyring_without_file])
