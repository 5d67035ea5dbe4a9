#!/usr/bin/env bash
# The LRU memory curve's price (BENCHMARKS.md): whole processes of one run
# with a 16-limit `memory.curve`, one run with one LRU limit, one run
# without a limit, and the sweep of the same 16 limits (one thread), in one
# paired run (A B C D A B C D ...); prints each median and its ratio to the
# run with one limit.
#
#   scripts/bench-memory-curve.sh [ROUNDS]     (default 15; MMUSIM=path times another build)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-15}
mmusim=${MMUSIM:-target/release/mmusim}
[ -x "$mmusim" ] || cargo build --release --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
limits='"64KiB","96KiB","128KiB","160KiB","192KiB","224KiB","256KiB","288KiB","320KiB","384KiB","448KiB","512KiB","576KiB","640KiB","768KiB","1MiB"'
cat >"$work/sweep.toml" <<SPEC
name = "curve-bench"
configs = ["$PWD/configs/skylake.toml"]
traces = ["$PWD/traces/sort.lackey.zst"]
[set]
memory.replacement = "lru"
[axes]
memory.resident = [$limits]
SPEC
run=("$mmusim" run --config configs/skylake.toml --trace traces/sort.lackey.zst --out "$work/run")
names=(no-limit one-lru-limit curve-of-16 sweep-of-16)
time_one() { # INDEX
    case $1 in
    0) "${run[@]}" ;;
    1) "${run[@]}" --set memory.resident=256KiB --set memory.replacement=lru ;;
    2) "${run[@]}" --set "memory.curve=[$limits]" ;;
    3) rm -rf "$work/sweep" && "$mmusim" sweep "$work/sweep.toml" --out "$work/sweep" --threads 1 --quiet ;;
    esac >/dev/null
}
for ((round = 0; round < rounds; round++)); do
    for i in 0 1 2 3; do
        start=$(date +%s.%N)
        time_one "$i"
        end=$(date +%s.%N)
        echo "$i $(echo "$end - $start" | bc)" >>"$work/times"
    done
done
median() { awk -v i="$1" '$1 == i { print $2 }' "$work/times" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
base=$(median 1)
for i in 0 1 2 3; do
    m=$(median "$i")
    printf '%-14s median %.1f ms, %.2fx one LRU limit\n' "${names[$i]}" "$(echo "$m * 1000" | bc)" "$(echo "$m / $base" | bc -l)"
done
