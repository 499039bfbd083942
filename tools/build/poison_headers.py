#!/usr/bin/env python3
"""Writes headers that refuse to compile, for the layering rule of the sans-IO cores.

usage: poison_headers.py OUT_DIR

OUT_DIR/uv.h, OUT_DIR/http_parser.h and OUT_DIR/rocksdb/<every header of the installed RocksDB> each hold one
#error. The cores (gossip, commits, state, executor, reconcile, placement, the chain
format, ...) are compiled with -I OUT_DIR ahead of the system headers, so a core source that
includes libuv or RocksDB fails to build, naming the rule. The shells (agent/net, agent/sim,
the chains store, the process runtime) are compiled without it.
"""
import os
import sys

RULE = ('#error "a sans-IO core must not include {name}: I/O belongs to a shell '
        '(agent/net, agent/sim, chains/chain_store, agent/runtime/process_runtime); see docs/ARCHITECTURE.md"\n')


def write(path, name):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = RULE.format(name=name)
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    with open(path, 'w') as f:
        f.write(text)


def main():
    out = sys.argv[1]
    write(os.path.join(out, 'uv.h'), 'uv.h')
    write(os.path.join(out, 'http_parser.h'), 'http_parser.h')
    for base in ('/usr/include/rocksdb', '/usr/local/include/rocksdb'):
        if not os.path.isdir(base):
            continue
        for root, _, files in os.walk(base):
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), base)
                write(os.path.join(out, 'rocksdb', rel), 'rocksdb/' + rel)
    # Always at least the headers the project knows, whatever is installed.
    for h in ('db.h', 'env.h', 'options.h', 'write_batch.h', 'file_system.h', 'table.h'):
        write(os.path.join(out, 'rocksdb', h), 'rocksdb/' + h)


if __name__ == '__main__':
    main()
