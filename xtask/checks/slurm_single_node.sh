#!/usr/bin/env bash
# A real single-node Slurm on this host (slurmctld + slurmd + munge from the distribution's
# packages, no accounting database), then the analysis of N generated files through it
# (`cargo xtask analyze --executor slurm`), compared with a local run: results.json must be
# byte-identical. Not part of the default tests. Needs root (it writes /etc/slurm/slurm.conf
# and starts the daemons); on Debian/Ubuntu:
#     apt-get install slurmctld slurmd slurm-client munge
# Usage: xtask/checks/slurm_single_node.sh [N_FILES=8] [EVENTS_PER_FILE=50000]
# With CANCEL_ONE=1, the first array task seen running is cancelled (scancel): a real failure,
# which the run must resubmit (and whose dependent jobs Slurm can then never start) before its
# results.json can equal the local run's.
set -euo pipefail
N=${1:-8}
EVENTS=${2:-50000}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-/tmp/hgg-slurm-check}
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))

echo "== Slurm: one node ($HOST, $CPUS CPUs, $MEM MB), munge, no accounting"
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=hgg-check
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=check Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
chown munge:munge /run/munge /etc/munge/munge.key 2>/dev/null || true
pgrep -x munged >/dev/null || su -s /bin/sh munge -c "munged" || munged --force
pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 1
slurmctld -c
slurmd -c
for _ in $(seq 30); do
    sinfo -h -o "%t" 2>/dev/null | grep -qE "idle|mix" && break
    sleep 1
done
sinfo

echo "== $N SYNTHETIC files of $EVENTS events (different seeds) and one signal MC"
cd "$REPO"
cargo build --release --quiet -p xtask
XTASK=$REPO/target/release/xtask
mkdir -p "$WORK"
: > "$WORK/files.txt"
for s in $(seq 1 "$N"); do
    "$XTASK" generate --out "$WORK/gen-$s" --data-events "$EVENTS" --mc-events 20000 --seed "$s" >/dev/null
    echo "$WORK/gen-$s/SYNTHETIC_data_A.GamGam.root" >> "$WORK/files.txt"
done
MC=$WORK/gen-1/SYNTHETIC_mc_343981.ggH125_gamgam.GamGam.root
# Each generated file stands for one 2020 data period: N of them, N times its luminosity.
LUMI=$(( N * 10064 ))

echo "== through Slurm"
rm -rf "$WORK/slurm" "$WORK/local"
if [ "${CANCEL_ONE:-0}" = 1 ]; then
    (
        for _ in $(seq 2400); do
            id=$(squeue -h -t R -o "%i" 2>/dev/null | grep "_" | head -n 1 || true)
            if [ -n "$id" ]; then
                scancel "$id"
                echo "== CANCEL_ONE: cancelled array task $id while it ran"
                break
            fi
            sleep 0.05
        done
    ) &
fi
"$XTASK" analyze --executor slurm --partition check --time 00:10:00 --mem 1G \
    --lumi "$LUMI" --data "@$WORK/files.txt" --mc "$MC" --out "$WORK/slurm" | tee "$WORK/slurm.txt"
wait
if [ "${CANCEL_ONE:-0}" = 1 ] && ! grep -q "resubmitted" "$WORK/slurm.txt"; then
    echo "CANCEL_ONE: the run did not resubmit the cancelled task"
    exit 1
fi

echo "== locally"
"$XTASK" analyze --lumi "$LUMI" --data "@$WORK/files.txt" --mc "$MC" --out "$WORK/local" > "$WORK/local.txt"

if cmp -s "$WORK/slurm/results.json" "$WORK/local/results.json"; then
    echo "results.json: identical (Slurm and local, $N files)"
else
    echo "results.json DIFFERS between Slurm and local:"
    diff <(python3 -m json.tool "$WORK/local/results.json") \
         <(python3 -m json.tool "$WORK/slurm/results.json") | head -40
    exit 1
fi
