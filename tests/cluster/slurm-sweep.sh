#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine runs a sweep in 3 shards
# through scripts/slurm-sweep.sh; the merged output must equal the same sweep
# run unsharded, byte for byte. Needs root (it installs slurm-wlm if missing
# and runs the daemons as root); everything else lives in a temporary
# directory that is removed, daemons stopped, however the test ends.
# Recipe: ../shared/notes/slurm-local.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

MMUSIM=${MMUSIM:-target/release/mmusim}
SPEC=configs/ci/sweep.toml
SHARDS=3
CTLD_PORT=${SLURMCTLD_PORT:-16817}
SLURMD_PORT=${SLURMD_PORT:-16818}

say() { echo "slurm-sweep test: $*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

[ -x "$MMUSIM" ] || fail "$MMUSIM is not built (make build)"
if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null; then
    say "installing slurm-wlm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm > /dev/null
fi

T=$(mktemp -d /tmp/mmusim-slurm.XXXXXX)
chmod 755 "$T"
stop() {
    status=$?
    # Exactly the daemons this test started, by their pid files.
    for pidfile in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munge/munged.pid"; do
        if [ -s "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2> /dev/null || true
        fi
    done
    sleep 1
    if [ $status -ne 0 ]; then
        for log in "$T"/slurmctld.log "$T"/slurmd.log "$T"/out/logs/*.log; do
            [ -f "$log" ] && { echo "--- $log"; tail -n 20 "$log"; }
        done >&2
    fi
    rm -rf "$T"
    exit $status
}
trap stop EXIT

mkdir -m 755 "$T/munge" "$T/state" "$T/spool"
mungekey -c -k "$T/munge/munge.key" -b 1024
munged --socket="$T/munge/munge.sock" --key-file="$T/munge/munge.key" \
    --pid-file="$T/munge/munged.pid" --log-file="$T/munge/munged.log" --seed-file="$T/munge/munged.seed"

host=$(hostname -s)
cat > "$T/slurm.conf" << CONF
ClusterName=mmusim-ci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$T/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

for _ in $(seq 1 120); do
    state=$(sinfo -h -o %t 2> /dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.5
done
[ "$state" = idle ] || fail "the node did not come up (sinfo says '$state')"
say "cluster up on $host; submitting $SPEC in $SHARDS shards"

scripts/slurm-sweep.sh --wait --mmusim "$MMUSIM" "$SPEC" "$T/out" "$SHARDS"

# Every shard ran as an array task and holds its share of the runs.
runs=$("$MMUSIM" sweep --dry-run "$SPEC" | sed -n 's/^sweep [^:]*: \([0-9]*\) runs.*/\1/p')
held=0
for i in $(seq 0 $((SHARDS - 1))); do
    shard=$T/out/shards/$i/sweep.json
    [ -f "$shard" ] || fail "shard $i wrote no sweep.json"
    grep -q "\"index\": $i," "$shard" || fail "shard $i does not say it is shard $i of $SHARDS"
    grep -q "\"count\": $SHARDS," "$shard" || fail "shard $i does not say there are $SHARDS shards"
    n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["shard"]["runs"]))' "$shard")
    held=$((held + n))
done
[ "$held" -eq "$runs" ] || fail "the shards hold $held runs; the sweep has $runs"

# The script hands the jobs the spec's absolute path, and outputs record
# paths as given, so the reference run is given the same one.
"$MMUSIM" sweep "$(realpath "$SPEC")" --quiet --out "$T/whole" > /dev/null
diff -r --exclude=shards --exclude=logs "$T/whole" "$T/out" || fail "merged output differs from the unsharded sweep"
say "ok: $runs runs in $SHARDS Slurm array tasks, merged, byte-identical to the unsharded sweep"
