#!/usr/bin/env bash
# Regenerates the committed seed corpus of every fuzz target: tests/fuzz/corpus/<target>/
# seed-<i> from the target's built-in seeds (fuzz_replay --write-corpus), and the example
# daemon files as daemon_spec inputs. Files of other names (regress-*: inputs that once
# crashed a decoder) are kept. Run after changing a target's seeds or a format:
#   tests/fuzz/make_corpus.sh [BUILD_DIR]      (default: build)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$root/build}
replay="$build/tests/fuzz/fuzz_replay"
ninja -C "$build" tests/fuzz/fuzz_replay >/dev/null
for target in $("$replay" --list); do
  dir="$root/tests/fuzz/corpus/$target"
  mkdir -p "$dir"
  rm -f "$dir"/seed-*
  "$replay" --target "$target" --write-corpus "$dir"
done
for f in "$root"/examples/*.toml; do
  cp "$f" "$root/tests/fuzz/corpus/daemon_spec/seed-example-$(basename "$f" .toml)"
done
