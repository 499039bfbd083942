#!/usr/bin/env python3
"""How much faster than real time the whole-agent simulation runs.

Runs `meshos-sim cluster` (the command users run) once per seed and reports, per run,
simulated seconds per wall second two ways: for the whole process (start, set-up, run,
final checks, exit), and for the simulated run alone (the `speedup` the summary prints).
Also prints the machine's load average before and after, since the figures are wall-clock.

  tools/bench/sim/sim_speed.py [--build build] [--nodes 20] [--duration-s 600]
                               [--faults crash,partition,loss,disk-full,clock] [--seeds 1..3]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def seed_range(text):
    lo, _, hi = text.partition("..")
    lo = int(lo)
    hi = int(hi) if hi else lo
    if hi < lo:
        raise argparse.ArgumentTypeError("seeds: expected A..B with A <= B")
    return range(lo, hi + 1)


def run_once(sim, args, seed):
    cmd = [sim, "cluster", "--nodes", str(args.nodes), "--seed", str(seed),
           "--duration-s", str(args.duration_s), "--faults", args.faults, "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout_s)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        summary = json.loads(proc.stdout)
    except json.JSONDecodeError:
        sys.exit(f"seed {seed}: no JSON summary (exit {proc.returncode}): {proc.stderr[-500:]}")
    return {
        "seed": seed,
        "ok": summary["ok"],
        "exit": proc.returncode,
        "process_wall_s": wall,
        "process_cpu_s": cpu,
        "process_speedup": summary["sim_ms"] / 1000.0 / wall,
        "run_speedup": summary["speedup"],
        "trace_hash": summary["trace_hash"],
        "faults": summary["faults_scheduled"],
        "invariant_checks": summary["invariant_checks"],
        "command": " ".join(cmd),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--duration-s", type=int, default=600)
    ap.add_argument("--faults", default="crash,partition,loss,disk-full,clock")
    ap.add_argument("--seeds", type=seed_range, default=seed_range("1..3"))
    ap.add_argument("--timeout-s", type=int, default=1800)
    ap.add_argument("--json", action="store_true", help="print the runs as JSON")
    args = ap.parse_args()
    sim = os.path.join(args.build, "tools", "sim", "meshos-sim")
    if not os.access(sim, os.X_OK):
        sys.exit(f"{sim} is not built: run `meson compile -C {args.build}` first")
    load_before = os.getloadavg()
    runs = [run_once(sim, args, s) for s in args.seeds]
    load_after = os.getloadavg()
    if args.json:
        print(json.dumps({"runs": runs, "load_before": load_before, "load_after": load_after},
                         indent=2))
    else:
        print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
              f"({os.cpu_count()} cpus)")
        print(f"{'seed':>5} {'ok':>3} {'wall s':>8} {'cpu s':>8} {'× real (process)':>17} "
              f"{'× real (run)':>13} {'faults':>7}  trace hash")
        for r in runs:
            print(f"{r['seed']:>5} {'yes' if r['ok'] else 'NO':>3} {r['process_wall_s']:>8.1f} "
                  f"{r['process_cpu_s']:>8.1f} {r['process_speedup']:>17.1f} "
                  f"{r['run_speedup']:>13.1f} {r['faults']:>7}  {r['trace_hash']}")
        speed = [r["process_speedup"] for r in runs]
        print(f"process speed-up: min {min(speed):.1f}×, median {statistics.median(speed):.1f}×, "
              f"max {max(speed):.1f}×")
    return 0 if all(r["ok"] and r["exit"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
