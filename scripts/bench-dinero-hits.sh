#!/usr/bin/env bash
# Side by side with Dinero IV on a real data stream that mostly hits
# (BENCHMARKS.md): the data references of the committed sort, gzip,
# python-dict and randaccess Lackey traces, 24 times over (34,764,144
# references, 9.2% of which miss a 64-entry 4-way TLB). `mmusim run` from its
# binary format against Dinero IV from its binary input, simulating the same
# TLB (configs/bench/dinero-dtlb.toml). Checks first that both count the same
# misses, then times whole processes in turn (A B A B ..., or A C B with
# MMUSIM_BASE=path, another build) with /usr/bin/time and prints each side's
# median wall and CPU time (user + system, all threads) and the CPU ratios.
#
#   scripts/bench-dinero-hits.sh [ROUNDS]     (default 9; MMUSIM=path times another build)
#
# Makes its inputs once under target/bench-data/hits/ (about 850 MB) with the
# peers' converter (../shared/peers/lackey-to-dinero.py) and `mmusim convert`;
# builds Dinero IV from ../shared/peers. Needs python3 and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-9}
data=target/bench-data/hits
mmusim=${MMUSIM:-target/release/mmusim}
base=${MMUSIM_BASE:-}
config=configs/bench/dinero-dtlb.toml
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install time" >&2; exit 2; }
[ -x "$mmusim" ] || cargo build --release --locked
# shellcheck source=scripts/dinero-common.sh
. scripts/dinero-common.sh
build_dinero

if [ ! -f "$data/hits.mmt" ] || [ ! -f "$data/hits.dbin" ]; then
    mkdir -p "$data"
    work=$(mktemp -d)
    for name in sort.lackey.zst gzip.lackey.xz python-dict.lackey.gz randaccess.lackey.zst; do
        case $name in
        *.zst) zstd -dc "traces/$name" ;;
        *.xz) xz -dc "traces/$name" ;;
        *.gz) gzip -dc "traces/$name" ;;
        esac
    done >"$work/once.lackey"
    python3 "$peers/lackey-to-dinero.py" "$work/once.lackey" "$work/once"
    for _ in $(seq 24); do cat "$work/once.din"; done >"$work/hits.din"
    for _ in $(seq 24); do cat "$work/once.dbin"; done >"$data/hits.dbin.part"
    "$mmusim" convert "$work/hits.din" "$data/hits.mmt.part" >/dev/null
    mv "$data/hits.dbin.part" "$data/hits.dbin"
    mv "$data/hits.mmt.part" "$data/hits.mmt"
    rm -rf "$work"
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

check_same_work "$data/hits.mmt" "$data/hits.dbin"

# Whole processes in turn: "LABEL wall user system" per run.
timed() { local label=$1; shift; /usr/bin/time -f "$label %e %U %S" -a -o "$out/times" "$@" >/dev/null; }
for _ in $(seq "$rounds"); do
    timed A "$mmusim" run --config "$config" --trace "$data/hits.mmt" --out "$out/a"
    [ -z "$base" ] || timed C "$base" run --config "$config" --trace "$data/hits.mmt" --out "$out/c"
    timed B sh -c '"$@" <"'"$data/hits.dbin"'"' sh "${dinero[@]}"
done
python3 - "$out/times" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
names = {"A": "mmusim", "C": "mmusim (MMUSIM_BASE)", "B": "Dinero IV"}
cpu = {}
for label in "ACB":
    runs = [r for r in rows if r[0] == label]
    if not runs:
        continue
    wall = statistics.median(float(r[1]) for r in runs)
    cpu[label] = statistics.median(float(r[2]) + float(r[3]) for r in runs)
    print(f"{names[label]:22} median wall {wall:.3f} s, CPU {cpu[label]:.3f} s over {len(runs)} runs")
for label in "AC":
    if label in cpu:
        print(f"{names[label]} CPU / Dinero IV CPU = {cpu[label] / cpu['B']:.2f}")
PY
