#!/usr/bin/env bash
# Start a single-node SLURM on this machine (run as root; CI does it before the cluster tests).
#   tests/cluster/start-slurm.sh start   -> installs munge + slurm if needed, starts munged,
#                                           slurmctld and slurmd, waits until the node is idle
#   tests/cluster/start-slurm.sh stop    -> stops them by the PIDs recorded at start
# No systemd, no cgroups: proctrack/linuxproc, task/none, select/cons_tres; no accounting,
# so Snakemake must use `--slurm-status-command squeue` (MinJobAge keeps finished jobs visible).
set -euo pipefail
STATE=${SLURM_TEST_STATE:-/tmp/fragility-slurm}
CONF=/etc/slurm/slurm.conf

start() {
    if sinfo -h -o '%T' 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'; then
        echo "SLURM is already up: $(sinfo -h -o '%P %D %T %c')"
        return 0
    fi
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        packages="slurmctld slurmd slurm-client munge"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $packages >/dev/null 2>&1 || {
            apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $packages >/dev/null; }
    fi
    mkdir -p "$STATE"/{spool,state,log} /etc/slurm /etc/munge /run/munge /var/lib/munge /var/log/munge
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    cpus=$(nproc)
    memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    cat > "$CONF" <<CONF
ClusterName=fragility-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
MpiDefault=none
NodeName=localhost CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    sudo_munge="munged --force"
    if id munge >/dev/null 2>&1; then su -s /bin/sh munge -c "$sudo_munge" ; else $sudo_munge; fi
    pgrep -x munged > "$STATE/munged.pid"
    rm -f "$STATE"/slurm*.pid
    slurmctld -f "$CONF"
    slurmd -f "$CONF"
    for _ in $(seq 1 120); do
        if sinfo -h -o '%T' 2>/dev/null | grep -q -E '^idle'; then
            echo "SLURM is up: $(sinfo -h -o '%P %D %T %c')"
            return 0
        fi
        scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    echo "SLURM did not come up; logs in $STATE/log" >&2
    tail -n 20 "$STATE"/log/*.log >&2 || true
    return 1
}

stop() {
    [ -d "$STATE" ] || return 0
    for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" "$STATE/munged.pid"; do
        [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
