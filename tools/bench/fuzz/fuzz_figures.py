#!/usr/bin/env python3
"""Runs every libFuzzer target of a -Dfuzz=true build for a fixed time and prints, per
target, the executions, their rate, the coverage reached (libFuzzer's `cov` and `ft`), the
corpus size and the findings, as a Markdown table for docs/BENCHMARKS.md (#fuzzing).

Usage: tools/bench/fuzz/fuzz_figures.py BUILD_FUZZ_DIR [--seconds 600] [--parallel 2]
       [--targets a,b] [--work DIR]

Each target starts from a copy of its committed corpus (tests/fuzz/corpus/<target>) in a
work directory, so the repository is not touched; crashes are left there as crash-*,
leak-*, timeout-* or oom-* files, named in the table. Exit status 1 when any target found
something. See docs/TESTING.md for building the fuzz targets.
"""
import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TARGETS = ["commit", "gossip_packet", "gossip_stream", "keyring", "control_frame", "node_config",
           "daemon_spec", "node_report", "commit_sync", "chain_record", "instance_journal"]


def run_target(build, target, seconds, work):
    exe = os.path.join(build, "tests", "fuzz", f"fuzz_{target}")
    corpus = os.path.join(work, target, "corpus")
    artifacts = os.path.join(work, target, "artifacts") + "/"
    shutil.copytree(os.path.join(ROOT, "tests", "fuzz", "corpus", target), corpus, dirs_exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    seeds = len(os.listdir(corpus))
    start = time.monotonic()
    # -fork keeps fuzzing past a crash (each found one is an artifact); timeouts and OOMs count.
    r = subprocess.run([exe, f"-max_total_time={seconds}", "-print_final_stats=1", "-fork=1",
                        "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1", "-rss_limit_mb=2048",
                        f"-artifact_prefix={artifacts}", corpus],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                       timeout=seconds + 300)
    wall = time.monotonic() - start
    log = r.stdout
    with open(os.path.join(work, target, "fuzz.log"), "w") as f:
        f.write(log)
    execs = 0
    for m in re.finditer(r"#(\d+)[:\s]", log):
        execs = max(execs, int(m.group(1)))
    cov = [int(x) for x in re.findall(r"cov: (\d+)", log)]
    ft = [int(x) for x in re.findall(r"ft: (\d+)", log)]
    found = sorted(os.listdir(artifacts))
    return {"target": target, "seconds": round(wall), "execs": execs, "rate": int(execs / wall) if wall else 0,
            "cov": max(cov) if cov else 0, "ft": max(ft) if ft else 0, "seeds": seeds,
            "corpus": len(os.listdir(corpus)), "found": found, "rc": r.returncode}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--work")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="meshos-fuzz-")
    targets = [t for t in a.targets.split(",") if t]
    print(f"fuzzing {len(targets)} targets for {a.seconds} s each, {a.parallel} at a time; work in {work}",
          file=sys.stderr)
    with concurrent.futures.ThreadPoolExecutor(a.parallel) as pool:
        results = list(pool.map(lambda t: run_target(a.build, t, a.seconds, work), targets))
    print("| target | time | executions | per second | cov | ft | corpus (committed → after) | findings |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        found = ", ".join(r["found"]) if r["found"] else "0"
        print(f"| `{r['target']}` | {r['seconds']} s | {r['execs']:,} | {r['rate']:,} | {r['cov']} | {r['ft']} | "
              f"{r['seeds']} → {r['corpus']} | {found} |")
    return 1 if any(r["found"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
