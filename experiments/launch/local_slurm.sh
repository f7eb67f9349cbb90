#!/bin/bash
# A one-node SLURM cluster on this machine, for CI and for trying the launch
# scripts before a real cluster: Debian's slurmctld + slurmd + munge, with the
# node's CPUs (default 2) as its only resource.
#
#   sudo ./experiments/launch/local_slurm.sh        # install if needed, start, wait until idle
#   sbatch --nodes=1 --ntasks-per-node=2 ...         # see README.md in this folder
#
# Safe to run again: it installs nothing that is installed, starts only the
# daemons that are not running, and rewrites slurm.conf (reconfiguring a
# running slurmctld) only when it changed. Exits 1 with the reason if SLURM
# cannot be installed or started (no apt-get, not root, no network).
#
# Written for a container without systemd or cgroups (the CI machine): the
# daemons are started directly, processes are tracked by their parent
# (proctrack/linuxproc) and tasks are not bound (task/none).
set -euo pipefail

CPUS=${SLURM_LOCAL_CPUS:-2}
NODE=$(hostname -s)
CONF=/etc/slurm/slurm.conf
# A requeued job may start only once the credentials of its last run have
# expired (120 s + 16 s by default); 10 s lets CI requeue in ~25 s.
CRED_EXPIRE=${SLURM_LOCAL_CRED_EXPIRE:-10}

fail() { echo "local_slurm.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root (it installs packages and starts daemons)"

# --- packages ----------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || fail "no apt-get: install slurmctld, slurmd, slurm-client and munge yourself"
  export DEBIAN_FRONTEND=noninteractive
  packages="slurmctld slurmd slurm-client munge"
  apt-get install -y -q --no-install-recommends $packages >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
         && apt-get install -y -q --no-install-recommends $packages >/dev/null; } \
    || fail "apt-get could not install $packages"
fi

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- munge: authenticates every message between the daemons and the clients --
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  rm -f /run/munge/munged.pid
  # --force: a stale socket left by a killed munged would otherwise stop it.
  su -s /bin/sh munge -c "munged --force"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null || fail "munged does not answer"
fi

# --- slurm.conf ----------------------------------------------------------------
mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
new_conf=$(cat <<EOF
# written by gtnjax experiments/launch/local_slurm.sh
ClusterName=gtnjax-local
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=${CRED_EXPIRE}
# No systemd and no cgroups here: track processes by parent, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# A node whose slurmd restarts (e.g. after a reboot) becomes usable again.
ReturnToService=2
# Trust the CPU count below even where the machine reports more.
SlurmdParameters=config_overrides
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
)
changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$new_conf" ]; then
  printf '%s\n' "$new_conf" > "$CONF"
  changed=1
fi

# --- daemons ---------------------------------------------------------------------
if alive /run/slurmctld.pid; then
  [ "$changed" = 0 ] || scontrol reconfigure
else
  slurmctld
fi
if ! alive /run/slurmd.pid; then
  slurmd
fi

# The node is usable once it reports idle (or is running someone's job).
for _ in $(seq 100); do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
  case "$state" in
    idle*|mixed*|alloc*|allocated*) break ;;
    down*|drain*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 0.2
done
case "$state" in
  idle*|mixed*|alloc*|allocated*) ;;
  *) fail "node $NODE is '${state:-unknown}' after 20 s; see /var/log/slurm/slurmctld.log and slurmd.log" ;;
esac
echo "local_slurm.sh: SLURM $(sinfo --version | awk '{print $2}') up, node $NODE with $CPUS CPUs ($state)"
