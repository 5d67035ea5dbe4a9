#!/usr/bin/env bash
# Side by side with Dinero IV on the miss-heavy stream (BENCHMARKS.md):
# `mmusim run` from its binary format against Dinero IV from its binary
# input, simulating the same TLB (configs/bench/dinero-dtlb.toml: one
# 64-entry 4-way LRU data TLB of 4 KiB pages). Checks first that both count
# the same misses, then times whole processes in one paired run, A B A B
# ..., and prints each side's median wall time and the ratio of medians.
#
#   scripts/bench-dinero.sh [RUNS]        (default 11 pairs; MMUSIM=path times another build;
#                                          MMUSIM_BASE=path times a second build in the same
#                                          rounds, A C B A C B ..., for a before/after ratio)
#
# Needs target/bench-data/gups.mmt and gups.dbin (`MMUSIM_BENCH_ONLY=miss-heavy
# make bench` writes them) and builds Dinero IV from ../shared/peers; uses
# python3 to read mmusim's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-11}
data=target/bench-data
mmusim=${MMUSIM:-target/release/mmusim}
base=${MMUSIM_BASE:-}
config=configs/bench/dinero-dtlb.toml

for file in "$data/gups.mmt" "$data/gups.dbin"; do
    [ -f "$file" ] || { echo "$file is missing: run MMUSIM_BENCH_ONLY=miss-heavy make bench first" >&2; exit 2; }
done
[ -x "$mmusim" ] || cargo build --release --locked
# shellcheck source=scripts/dinero-common.sh
. scripts/dinero-common.sh
build_dinero
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

check_same_work "$data/gups.mmt" "$data/gups.dbin"

# Paired wall times, A B A B ...
seconds() { local start end; start=$(date +%s%N); "$@" >/dev/null 2>&1; end=$(date +%s%N); awk -v ns=$((end - start)) 'BEGIN {printf "%.4f\n", ns / 1e9}'; }
: >"$out/a"; : >"$out/b"; : >"$out/c"
for _ in $(seq "$runs"); do
    seconds "$mmusim" run --config "$config" --trace "$data/gups.mmt" --out "$out/run" >>"$out/a"
    [ -z "$base" ] || seconds "$base" run --config "$config" --trace "$data/gups.mmt" --out "$out/run" >>"$out/c"
    seconds sh -c '"$@" <"'"$data/gups.dbin"'"' sh "${dinero[@]}" >>"$out/b"
done
median() { sort -n "$1" | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
a=$(median "$out/a"); b=$(median "$out/b")
echo "median wall time over $runs pairs: mmusim $a s, Dinero IV $b s; mmusim / Dinero = $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}')"
if [ -n "$base" ]; then
    c=$(median "$out/c")
    echo "MMUSIM_BASE: $c s; its / Dinero = $(awk -v c="$c" -v b="$b" 'BEGIN {printf "%.2f", c / b}'); mmusim / MMUSIM_BASE = $(awk -v a="$a" -v c="$c" 'BEGIN {printf "%.2f", a / c}')"
fi
