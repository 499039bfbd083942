#!/usr/bin/env python3
"""Crash test for the hash chains: a real program appending as fast as it can is killed
with SIGKILL at random moments, 20 times; after each kill every acknowledged seq must be on
disk and every chain must verify. Every other round is a power cut: SIGKILL keeps the page
cache, so the helper notes each WAL sync in a ledger (sync_ledger_fs.h) and the test cuts
every WAL back to its last synced length before checking, dropping what a power cut may
drop. Bounded: gives up after 50 s. Prints its seed."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROUNDS = 20
DEADLINE_S = 50


def main():
    helper = sys.argv[1]
    seed = int(os.environ.get("MESHOS_SEED", str(int(time.time() * 1000) % 1000000)))
    print(f"seed {seed}", flush=True)
    rng = random.Random(seed)
    data_dir = tempfile.mkdtemp(prefix="meshos-chains-crash-")
    start = time.monotonic()
    max_acked = {"audit": 0, "log": 0}
    try:
        for round_no in range(ROUNDS):
            if time.monotonic() - start > DEADLINE_S:
                fail(f"seed {seed}: out of time after {round_no} rounds")
            power_cut = round_no % 2 == 1
            ledger = os.path.join(data_dir, "sync.ledger")
            if os.path.exists(ledger):
                os.unlink(ledger)
            proc = subprocess.Popen([helper, "append", data_dir, *([ledger] if power_cut else [])],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            lines = []
            reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
            reader.start()
            # Every fourth round dies during startup (WAL recovery); the others once acks
            # flow, at a random moment.
            t0 = time.monotonic()
            early = round_no % 4 == 3
            if early:
                time.sleep(rng.uniform(0.0, 0.05))
            while not early and not any(l.startswith("ack") for l in list(lines)):
                if proc.poll() is not None:
                    fail(f"seed {seed}: helper exited early: {proc.stderr.read()}")
                if time.monotonic() - t0 > 10:
                    fail(f"seed {seed}: helper did not ack within 10 s")
                time.sleep(0.005)
            time.sleep(0 if early else rng.uniform(0.0, 0.1))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            reader.join(timeout=5)
            dropped = drop_unsynced(ledger) if power_cut else 0
            acked_this_round = {"audit": 0, "log": 0}
            for line in lines:
                parts = line.split()
                if len(parts) == 3 and parts[0] == "ack":
                    acked_this_round[parts[1]] = max(acked_this_round[parts[1]], int(parts[2]))
            for chain, seq in acked_this_round.items():
                max_acked[chain] = max(max_acked[chain], seq)

            check = subprocess.run([helper, "check", data_dir], capture_output=True, text=True,
                                   timeout=30)
            try:
                report = json.loads(check.stdout)
            except json.JSONDecodeError:
                fail(f"seed {seed} round {round_no}: check printed no JSON: {check.stderr}")
            for chain, seq in max_acked.items():
                head = report[chain]["head"]
                verify = report[chain]["verify"]
                if not verify["ok"]:
                    fail(f"seed {seed} round {round_no}: {chain} does not verify: {verify}")
                if head < seq:
                    fail(f"seed {seed} round {round_no}: {chain} acked {seq} but head is {head}")
                if verify["first_seq"] != 1 or verify["last_seq"] != head:
                    fail(f"seed {seed} round {round_no}: {chain} records missing: {verify}")
            if check.returncode != 0:
                fail(f"seed {seed} round {round_no}: check exited {check.returncode}")
            print(f"round {round_no}{' (power cut: ' + str(dropped) + ' unsynced bytes dropped)' if power_cut else ''}: acked audit {max_acked['audit']} log {max_acked['log']}; "
                  f"heads audit {report['audit']['head']} log {report['log']['head']}; verify ok",
                  flush=True)
        if max_acked["audit"] == 0:
            fail(f"seed {seed}: nothing was acked")
        print(f"ok: {ROUNDS} SIGKILLs in {time.monotonic() - start:.1f} s, no acked record lost")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def drop_unsynced(ledger):
    """Cuts every WAL the ledger names back to its last synced length; returns the bytes
    dropped."""
    synced = {}
    try:
        with open(ledger) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == "create":
                    synced[parts[1]] = 0
                elif len(parts) == 3 and parts[0] == "sync":
                    synced[parts[1]] = int(parts[2])
    except FileNotFoundError:
        return 0
    dropped = 0
    for path, length in synced.items():
        try:
            size = os.path.getsize(path)
        except OSError:
            continue  # deleted by RocksDB since: nothing of it is needed
        if size > length:
            os.truncate(path, length)
            dropped += size - length
    return dropped


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
