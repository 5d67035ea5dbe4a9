#!/usr/bin/env bash
# Submit an mmusim sweep to Slurm: a job array with one shard per task, and a
# merge job that runs once every shard has succeeded.
#
#   scripts/slurm-sweep.sh [--wait] [--mmusim PATH] SPEC OUT SHARDS [SBATCH OPTION...]
#
# Shard I writes OUT/shards/I (each task runs `mmusim sweep SPEC`, which takes
# its shard from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT); the merge
# job writes the whole sweep to OUT, byte for byte what one unsharded
# `mmusim sweep SPEC --out OUT` writes. Logs go to OUT/logs. A failed shard
# cancels the merge; rerunning this script resumes (each shard skips the
# runs it already finished). Further arguments go to both sbatch calls
# (e.g. --partition=batch --time=2:00:00). --wait returns when the merge has
# finished, with its exit status.
set -euo pipefail

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

wait_flag=()
mmusim=""
while [ $# -gt 0 ]; do
    case "$1" in
        --wait) wait_flag=(--wait); shift ;;
        --mmusim) mmusim="$2"; shift 2 ;;
        -h|--help) usage ;;
        *) break ;;
    esac
done
[ $# -ge 3 ] || usage
spec=$1 out=$2 shards=$3
shift 3
case "$shards" in
    ''|*[!0-9]*|0) echo "slurm-sweep: SHARDS must be a whole number >= 1, not '$shards'" >&2; exit 2 ;;
esac
[ -f "$spec" ] || { echo "slurm-sweep: $spec: no such sweep spec" >&2; exit 2; }

if [ -z "$mmusim" ]; then
    mmusim=$(command -v mmusim || echo target/release/mmusim)
fi
[ -x "$mmusim" ] || { echo "slurm-sweep: $mmusim: not an executable mmusim (build it, or give --mmusim)" >&2; exit 2; }
# The jobs run in this directory, but absolute paths survive a different one.
mmusim=$(realpath "$mmusim")
spec=$(realpath "$spec")
mkdir -p "$out/shards" "$out/logs"
out=$(realpath "$out")

# Refuse a spec that does not expand before anything is queued.
"$mmusim" sweep --dry-run "$spec" > /dev/null

q() { printf '%q' "$1"; }
array=$(sbatch --parsable --job-name=mmusim-sweep --array="0-$((shards - 1))" \
    --output="$out/logs/shard-%a.log" "$@" \
    --wrap "$(q "$mmusim") sweep $(q "$spec") --quiet --out $(q "$out")/shards/\$SLURM_ARRAY_TASK_ID")
array=${array%%;*}
echo "submitted $shards shards of $spec as job array $array"
merge=$(sbatch --parsable "${wait_flag[@]}" --job-name=mmusim-merge --dependency="afterok:$array" \
    --kill-on-invalid-dep=yes --output="$out/logs/merge.log" "$@" \
    --wrap "$(q "$mmusim") merge $(q "$out") $(q "$out")/shards/*")
echo "merge job ${merge%%;*} writes $out once every shard has succeeded"
