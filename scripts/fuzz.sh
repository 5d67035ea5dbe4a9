#!/usr/bin/env bash
# Coverage-guided fuzzing of mmusim's parsers with AFL++, through cargo-afl
# (fuzz/README.md): every trace decoder plain and through each decompressor,
# format detection, machine configs with overrides, sweep specs, workload
# files, and check's tolerance files and metrics tables.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]    default 600 s per target; targets: trace config sweep tables
#
# `trace:FORMAT` (e.g. trace:lackey, trace:drmemtrace) runs the trace target
# with that one decoder forced, so every execution exercises it; its findings
# go to fuzz/findings/trace-FORMAT. With FUZZ_EXECS=N in the environment each
# target stops after about N executions instead of after SECONDS.
#
# Builds fuzz/ with `cargo afl build`, seeds each target from traces/ and
# configs/, runs afl-fuzz on it for SECONDS (findings in fuzz/findings/TARGET/),
# prints each target's executions, coverage, crashes and hangs, and exits 1
# if any target saved a crash or a hang. Needs cargo-afl
# (`cargo install cargo-afl --locked`, then `cargo afl config --build`).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(trace config sweep tables)
command -v cargo-afl >/dev/null || { echo "cargo-afl is missing: cargo install cargo-afl --locked" >&2; exit 2; }
# Instrumented builds in a target directory of their own, whatever CARGO_TARGET_DIR says.
(cd fuzz && CARGO_TARGET_DIR="$PWD/target" cargo afl build --release --quiet)

# Seeds: real inputs of each kind, small, each behind the target's selector byte.
seed() { # TARGET NAME SELECTOR FILE
    mkdir -p "fuzz/findings/$1/seeds"
    { [ -z "$3" ] || printf "\\x$3"; head -c 8192 "$4"; } >"fuzz/findings/$1/seeds/$2"
}
for target in "${targets[@]}"; do
    rm -rf "fuzz/findings/${target/:/-}"
    case $target in
    trace | trace:*)
        for f in traces/tiny/* traces/drmemtrace/drmemtrace.small.x64.trace traces/drmemtrace/drmemtrace.allasm_x86_64.trace.zip \
            traces/sort.lackey.zst traces/gzip.lackey.xz traces/python-dict.lackey.gz; do
            seed "${target/:/-}" "$(basename "$f")" 00 "$f"
        done ;;
    config)
        for f in configs/*.toml configs/bench/*.toml; do seed config "$(basename "$f")" "" "$f"; done
        # Finite memory's keys, which no preset sets.
        printf '[pages]\npolicy = "thp"\nhuge_pool = 2\n[memory]\nresident = "64MiB"\nreplacement = "clock"\nclock_clear_flushes = true\nfragmentation = 0.25\n[memory.costs]\nmajor_fault = 90000\n' \
            >/tmp/mmusim-fuzz-paging.toml
        seed config paging.toml "" /tmp/mmusim-fuzz-paging.toml
        printf '[memory]\ncurve = ["1MiB", "64KiB", "16MiB"]\nresident = "256KiB"\nreplacement = "lru"\n' >/tmp/mmusim-fuzz-curve.toml
        seed config curve.toml "" /tmp/mmusim-fuzz-curve.toml
        printf 'mode = "nested"\n[memory]\nresident = "1MiB"\n[host.memory]\nresident = "64MiB"\nreplacement = "random"\nclock_clear_flushes = true\n[[balloon]]\nvm = 1\nat = 100\npages = 16\n' >/tmp/mmusim-fuzz-host.toml
        seed config host.toml "" /tmp/mmusim-fuzz-host.toml
        # Zero-page sharing, host LRU, and a host limit under shadow paging.
        printf 'mode = "nested"\n[host]\nshare_zero_pages = true\n[host.memory]\nresident = "2MiB"\nreplacement = "lru"\n' >/tmp/mmusim-fuzz-sharing.toml
        seed config sharing.toml "" /tmp/mmusim-fuzz-sharing.toml
        printf 'mode = "shadow"\n[host.memory]\nresident = "2MiB"\nreplacement = "clock"\n' >/tmp/mmusim-fuzz-shadow.toml
        seed config shadow-host.toml "" /tmp/mmusim-fuzz-shadow.toml ;;
    sweep) for f in configs/sweeps/*.toml configs/ci/*.toml; do seed sweep "$(basename "$f")" "" "$f"; done ;;
    tables)
        printf '[default]\nabs = 0.5\n[metrics]\n"walks.walks" = { rel = 0.01, direction = "lower" }\n' >/tmp/mmusim-fuzz-tolerances.toml
        seed tables tolerances 00 /tmp/mmusim-fuzz-tolerances.toml
        seed tables metrics 01 results/ci-baseline/metrics.csv
        for f in configs/workloads/*.toml; do seed tables "$(basename "$f")" 02 "$f"; done ;;
    *) echo "unknown fuzz target $target (trace, config, sweep, tables)" >&2; exit 2 ;;
    esac
done

budget=(-V "$seconds")
[ -z "${FUZZ_EXECS:-}" ] || budget=(-E "$FUZZ_EXECS")
found=0
for target in "${targets[@]}"; do
    binary=${target%%:*} forced= dir=fuzz/findings/${target/:/-}
    [ "$binary" = "$target" ] || forced=${target#*:}
    MMUSIM_FUZZ_FORMAT=$forced AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 \
        cargo afl fuzz -i "$dir/seeds" -o "$dir" "${budget[@]}" -t 2000 \
        "fuzz/target/release/$binary" >"$dir/afl.log" 2>&1 ||
        { echo "$target: afl-fuzz failed; see $dir/afl.log" >&2; tail -5 "$dir/afl.log" >&2; exit 2; }
    stats=$dir/default/fuzzer_stats
    value() { awk -v k="$1" '$1 == k {print $3}' "$stats"; }
    crashes=$(value saved_crashes); hangs=$(value saved_hangs)
    printf '%-7s %10s executions (%s/s), coverage %s of the map, corpus %s, crashes %s, hangs %s\n' \
        "$target" "$(value execs_done)" "$(value execs_per_sec)" "$(value bitmap_cvg)" "$(value corpus_count)" "$crashes" "$hangs"
    if [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then
        echo "  saved in fuzz/findings/$target/default/crashes and .../hangs: make each a regression test (fuzz/README.md)" >&2
        found=1
    fi
done
exit $found
