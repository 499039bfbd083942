#!/usr/bin/env python3
"""The same seed gives the same run, across processes: meshos-sim cluster runs twice, as two
separate processes, for seeds 1..3, and must print the same trace hash each time (and a
different one for a different seed). Usage: trace_repeat_test.py <meshos-sim>"""
import json
import os
import subprocess
import sys

SIM = sys.argv[1]


def run(seed):
    out = subprocess.run([SIM, 'cluster', '--nodes', '5', '--seed', str(seed), '--duration-s', '90',
                          '--faults', 'all', '--daemons', '4', '--json'],
                         capture_output=True, text=True, timeout=300)
    j = json.loads(out.stdout)
    if not j['ok']:
        sys.exit('seed %d failed: %s\nreplay: %s' % (seed, j['error'], j['replay']))
    return j['trace_hash'], j['trace_events']


def main():
    seeds = [int(os.environ['MESHOS_SEED'])] if os.environ.get('MESHOS_SEED') else [1, 2, 3]
    hashes = {}
    for seed in seeds:
        a, b = run(seed), run(seed)
        if a != b:
            sys.exit('seed %d: two processes gave different traces: %s vs %s\nreplay: MESHOS_SEED=%d %s %s'
                     % (seed, a, b, seed, sys.argv[0], SIM))
        hashes[seed] = a
        print('seed %d: trace %s (%d events) twice' % (seed, a[0], a[1]))
    if len(set(h for h, _ in hashes.values())) != len(hashes):
        sys.exit('different seeds gave the same trace: %s' % hashes)


if __name__ == '__main__':
    main()
