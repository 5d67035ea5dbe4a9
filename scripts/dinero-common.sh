# Sourced by scripts/bench-dinero.sh and scripts/bench-dinero-hits.sh: what
# both side-by-side runs with Dinero IV share. Expects mmusim, base (may be
# empty), config and out (a scratch directory) to be set.

peers=../shared/peers
dinero_dir=${TMPDIR:-/tmp}/mmusim-dinero

# Dinero IV as the TLB of configs/bench/dinero-dtlb.toml: 64 one-byte blocks
# over page numbers, 4-way, LRU (../shared/peers/README.md).
dinero=("$dinero_dir/dineroIV" -informat b -l1-isize 64 -l1-ibsize 1 -l1-dsize 64 -l1-dbsize 1 -l1-dassoc 4 -l1-drepl l)

# Builds Dinero IV from ../shared/peers unless it is built already.
build_dinero() {
    if [ ! -x "$dinero_dir/dineroIV" ]; then
        [ -x "$peers/build-dinero.sh" ] || { echo "no Dinero IV: $peers/build-dinero.sh is missing" >&2; exit 2; }
        "$peers/build-dinero.sh" "$dinero_dir" >/dev/null
    fi
}

# The dTLB misses build $1 counts on the mmusim trace $2.
misses_of() {
    "$1" run --config "$config" --trace "$2" --out "$out/run" >/dev/null
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["metrics"]; print(next(t["misses"] for t in m["tlbs"] if t["name"]=="dtlb"))' "$out/run/summary.json"
    rm -rf "$out/run"
}

# The same TLB does the same work: mmusim on $1 (and MMUSIM_BASE's build, if
# given) and Dinero IV on $2 count the same misses, or the script stops.
check_same_work() {
    local ours theirs
    ours=$(misses_of "$mmusim" "$1")
    if [ -n "$base" ]; then
        [ -x "$base" ] || { echo "MMUSIM_BASE=$base is not an executable" >&2; exit 2; }
        [ "$(misses_of "$base" "$1")" = "$ours" ] || { echo "MMUSIM_BASE counts other misses: not the same work" >&2; exit 1; }
    fi
    theirs=$("${dinero[@]}" <"$2" | awk '/l1-dcache/ {d = 1} d && /Demand Misses/ {print $3; exit}')
    echo "misses: mmusim $ours, Dinero IV $theirs"
    [ "$ours" = "$theirs" ] || { echo "the miss counts differ: not the same work" >&2; exit 1; }
}
