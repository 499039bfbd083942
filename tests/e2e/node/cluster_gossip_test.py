"""Ten real meshos-agents on loopback forming a gossip cluster (SWIM + Lifeguard):
join, failure detection after SIGKILL, rejoin with the same id, graceful leave, and the
member records in a survivor's log chain.

Prints join-convergence, failure-detection, rejoin and leave times and every agent's RSS,
as figures to quote (asserted only against generous deadlines).
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import Workspace, run_tests, wait_for  # noqa: E402

N = 10
FAST = """cluster = "e2e-gossip"
probe_interval_ms = 200
probe_timeout_ms = 100
gossip_interval_ms = 50
push_pull_interval_ms = 2000"""


def members(agent):
    """name -> member of agent's members table; {} when the agent does not answer."""
    r = agent.inspect("members", "--json", check=False)
    if r.returncode != 0:
        return {}
    return {m["name"]: m for m in json.loads(r.stdout)["members"]}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def log_records(agent):
    out = []
    for r in agent.inspect_json("chain", "tail", "log", "--count", "1000")["records"]:
        try:
            r["payload"] = json.loads(r.get("payload_text", ""))
        except ValueError:
            r["payload"] = r.get("payload_text", "")
        out.append(r)
    return out


def wait_all(observers, check, timeout_s, what):
    """Polls every observer until check(observer, its members table) held for each one at
    least once (sticky: an observer that saw it is not asked again). Returns seconds taken."""
    start = time.monotonic()
    pending = {a.name: a for a in observers}
    last = {}

    def poll():
        for name, a in list(pending.items()):
            table = members(a)
            last[name] = table
            if check(a, table):
                del pending[name]
        return not pending

    try:
        wait_for(poll, timeout_s, what)
    except AssertionError as e:
        detail = {n: {m: (v["state"], v["incarnation"]) for m, v in last.get(n, {}).items()} for n in pending}
        raise AssertionError(f"{e}; still waiting on {sorted(pending)}: {detail}") from None
    return time.monotonic() - start


def all_alive(names):
    return lambda _a, t: set(t) >= names and all(t[n]["state"] == "alive" for n in names)


def test_cluster_gossip():
    with Workspace() as ws:
        agents = [ws.agent(f"n{i}") for i in range(N)]
        seed = f'seeds = ["127.0.0.1:{agents[0].port}"]'
        for i, a in enumerate(agents):
            a.set_keys("gossip", FAST + ("\n" + seed if i else ""))
        names = {a.name for a in agents}

        # Join: the seed first (a node whose seed is down retries with a backoff from 1 s).
        agents[0].start()
        t0 = time.monotonic()
        for a in agents[1:]:
            a.start()
        started_s = time.monotonic() - t0
        join_s = wait_all(agents, all_alive(names), 20, "every agent to see 10 alive") + started_s
        rss = {a.name: rss_kib(a.proc.pid) for a in agents}
        ids = {n: m["id"] for n, m in members(agents[0]).items()}
        assert len(set(ids.values())) == N, ids
        for a in agents:  # every agent lists itself too
            assert members(a)[a.name]["id"] == ids[a.name]

        # Failure detection: SIGKILL one; every other agent marks it dead.
        victim = agents[5]
        others = [a for a in agents if a is not victim]
        inc_before = members(agents[0])[victim.name]["incarnation"]
        dead_inc = {}

        def sees_dead(a, t):
            m = t.get(victim.name)
            if m and m["state"] == "dead":
                dead_inc[a.name] = m["incarnation"]
                return True
            return False

        t_kill = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        detect_s = wait_all(others, sees_dead, 20, f"every other agent to mark {victim.name} dead")
        kill_to_detect_s = time.monotonic() - t_kill

        # Rejoin with the same data dir: same id, a newer incarnation (kept in the chains
        # database's state area, never in a file of its own); 10 alive everywhere.
        assert not os.path.exists(os.path.join(victim.dir, "data", "gossip.incarnation"))
        victim.start()
        rejoin_s = wait_all(agents, all_alive(names), 20, f"every agent to see {victim.name} alive again")
        rejoin_inc = set()
        for a in agents:
            m = members(a)[victim.name]
            rejoin_inc.add(m["incarnation"])
            assert m["id"] == ids[victim.name], (a.name, m, ids[victim.name])
            if a is not victim:
                assert m["incarnation"] > dead_inc[a.name], (a.name, m, dead_inc[a.name])

        # Graceful leave: SIGTERM; the others see `left`.
        leaver = agents[9]
        t_term = time.monotonic()
        assert leaver.stop() == 0, leaver.read_log()[-2000:]
        remaining = [a for a in agents if a is not leaver]
        leave_s = wait_all(remaining, lambda _a, t: t.get(leaver.name, {}).get("state") == "left", 20,
                           f"every other agent to see {leaver.name} left")
        term_to_left_s = time.monotonic() - t_term

        # A survivor's log chain has the member records (flushed asynchronously).
        survivor = agents[1]

        def has(event, name):
            return lambda rs: any(r["kind"] == "member" and isinstance(r["payload"], dict)
                                  and r["payload"].get("event") == event and r["payload"].get("name") == name
                                  for r in rs)

        want = [("join", agents[0].name), ("join", victim.name), ("dead", victim.name), ("left", leaver.name)]
        seen = {}

        def chain_ok():
            seen["rs"] = log_records(survivor)
            return all(has(e, n)(seen["rs"]) for e, n in want)

        try:
            wait_for(chain_ok, 10, "member records in the survivor's log chain")
        except AssertionError as e:
            got = [r["payload"] for r in seen.get("rs", []) if r["kind"] == "member"]
            raise AssertionError(f"{e}; member records: {got}") from None
        assert survivor.inspect_json("chain", "verify", "log")["verify"]["ok"] is True

        print(f"figures: {N} agents, probe 200/100 ms, gossip 50 ms, push-pull 2000 ms")
        print(f"figures: starting {N - 1} agents after the seed took {started_s:.2f}s; "
              f"join convergence (first start after seed -> all see {N} alive) {join_s:.2f}s, "
              f"of which after the last agent served {join_s - started_s:.2f}s")
        print(f"figures: failure detection (SIGKILL -> all {N - 1} others see dead) {kill_to_detect_s:.2f}s "
              f"(poll {detect_s:.2f}s); incarnation before {inc_before}, seen dead at {sorted(set(dead_inc.values()))}")
        print(f"figures: rejoin (restart served -> all see {N} alive) {rejoin_s:.2f}s; "
              f"incarnation after restart {sorted(rejoin_inc)}")
        print(f"figures: graceful leave (SIGTERM -> all {N - 1} others see left) {term_to_left_s:.2f}s "
              f"(poll {leave_s:.2f}s)")
        print("figures: RSS after join (KiB): " + ", ".join(f"{n}={v}" for n, v in sorted(rss.items())))
        vals = sorted(rss.values())
        print(f"figures: RSS min {vals[0]} KiB, median {vals[len(vals) // 2]} KiB, max {vals[-1]} KiB")


if __name__ == "__main__":
    run_tests([test_cluster_gossip])
