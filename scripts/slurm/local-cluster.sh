#!/usr/bin/env bash
# local-cluster.sh — a real, single-node Slurm on this machine, for `make test-slurm`
# (issue #23): slurmctld and slurmd on localhost, authenticated by munge, with all of
# their state in one folder. Nothing under /etc is changed: the daemons and every client
# (sbatch, squeue, scontrol, …) read the slurm.conf this script writes because SLURM_CONF
# points at it.
#
#   scripts/slurm/local-cluster.sh install   Debian's slurm-wlm and munge (as root or with sudo)
#   scripts/slurm/local-cluster.sh start     write the configuration, start munged, slurmctld
#                                            and slurmd, wait until the node is idle
#   scripts/slurm/local-cluster.sh stop      stop the three daemons (the folder stays, for its logs)
#   scripts/slurm/local-cluster.sh env       print the export line a shell needs to use the cluster
#
# Every command is idempotent: install does nothing when the packages are there, start
# leaves running daemons alone and only waits for the node, stop of a stopped cluster does
# nothing. Every wait has a deadline, after which the command fails with the daemons' logs.
#
# Environment: OSDS_SLURM_DIR (state folder, default /tmp/osds-slurm-$UID), OSDS_SLURM_CPUS
# (CPUs the node offers, default: this machine's), OSDS_SLURM_PORT (slurmctld's port,
# slurmd's is the next one; default 6817), OSDS_SLURM_WAIT (seconds each wait may take,
# default 60).
#
# The configuration is the smallest that behaves like a cluster for osds's job arrays:
# one partition, consumable CPUs (select/cons_tres, CR_CPU) so that tasks run side by side,
# process tracking by the process tree (proctrack/linuxproc) and no task plugin, so no
# cgroups are needed (containers rarely allow them), requeueing allowed (JobRequeue=1), no
# accounting database. The daemons run as the user who starts them (SlurmUser, SlurmdUser),
# and so do the jobs; tested as root, the usual case on CI machines and containers (as
# another user, slurmd can only run that user's jobs, which is all a test needs). Jobs left
# in the state folder by an earlier, interrupted run come back with the cluster.
set -euo pipefail

cmd=${1:-}
dir=${OSDS_SLURM_DIR:-/tmp/osds-slurm-$(id -u)}
port=${OSDS_SLURM_PORT:-6817}
wait_s=${OSDS_SLURM_WAIT:-60}
conf=$dir/slurm.conf

say() { printf 'local-cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# shellcheck source=scripts/lib/debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/debian.sh"


install() {
	local missing=()
	for p in slurm-wlm munge; do
		if command -v dpkg-query >/dev/null; then installed "$p" || missing+=("$p"); fi
	done
	if ! command -v dpkg-query >/dev/null; then
		for b in slurmctld slurmd munged sbatch; do
			command -v "$b" >/dev/null || die "not a Debian/Ubuntu system and $b is missing: install Slurm and munge yourself"
		done
		return 0
	fi
	[ ${#missing[@]} -eq 0 ] && return 0
	say "apt-get install ${missing[*]}"
	as_root apt-get update -qq
	# The packages' own start scripts need systemd, which containers and CI machines lack;
	# this script starts the daemons itself, with its own configuration.
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

need() {
	for b in munged slurmctld slurmd sinfo scontrol sbatch; do
		command -v "$b" >/dev/null || die "$b is missing: run \`$0 install\` first (Debian's slurm-wlm and munge)"
	done
}

# alive FILE: the process whose pid FILE holds is running.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_for WHAT CMD...: run CMD until it succeeds, for at most wait_s seconds.
wait_for() {
	local what=$1; shift
	local end=$((SECONDS + wait_s))
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $end ]; then
			say "gave up after ${wait_s}s waiting for $what; the logs:"
			for f in "$dir"/log/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 20 "$f"; } >&2; done
			return 1
		fi
		sleep 0.5
	done
}

write_conf() {
	local host cpus user
	host=$(hostname -s)
	cpus=${OSDS_SLURM_CPUS:-$(nproc)}
	user=$(id -un)
	mkdir -p "$dir"/{state,spool,log,run,munge}
	cat >"$conf.new" <<CONF
# Written by scripts/slurm/local-cluster.sh: a single-node Slurm for osds's tests.
ClusterName=osds-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
JobRequeue=1
# SIGTERM, then this many seconds before SIGKILL: time for osds to checkpoint.
KillWait=60
# Finished jobs stay visible to scontrol for this long, so tests can read their state.
MinJobAge=600
# The node offers the CPUs it is configured with, whatever slurmd detects (a container's
# view of the hardware need not match), instead of draining itself over the difference.
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
	if [ -f "$conf" ] && cmp -s "$conf" "$conf.new"; then rm "$conf.new"; else mv "$conf.new" "$conf"; fi
}

start_munge() {
	local m=$dir/munge
	chmod 700 "$m"
	if [ ! -s "$m/munge.key" ]; then
		# 1024 random bytes, as mungekey makes them; only this cluster uses the key.
		(umask 077 && head -c 1024 /dev/urandom >"$m/munge.key.new" && mv "$m/munge.key.new" "$m/munge.key")
	fi
	alive "$m/munged.pid" && return 0
	rm -f "$m/munge.socket" "$m/munge.socket.lock"
	# --force: munged refuses some setups (running as root, a socket outside /run/munge)
	# that are fine for a private test cluster.
	munged --force --socket="$m/munge.socket" --key-file="$m/munge.key" --pid-file="$m/munged.pid" \
		--log-file="$dir/log/munged.log" --seed-file="$m/munged.seed"
	wait_for "munged's socket" test -S "$m/munge.socket"
}

start() {
	need
	write_conf
	export SLURM_CONF=$conf
	start_munge
	if ! alive "$dir/run/slurmctld.pid"; then
		slurmctld -f "$conf"
	fi
	wait_for "slurmctld to answer" scontrol ping
	if ! alive "$dir/run/slurmd.pid"; then
		slurmd -f "$conf"
	fi
	local host
	host=$(hostname -s)
	# A node that was down (a crashed slurmd of an earlier run) comes back when asked.
	wait_for "slurmd to register" node_known "$host"
	scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
	wait_for "node $host to be idle" node_idle "$host"
	say "up: node $host idle in $dir (export SLURM_CONF=$conf)"
}

node_known() { sinfo -h -n "$1" -o %T | grep -qv -e '^$' -e unknown -e 'not_responding' -e '\*'; }
node_idle() { sinfo -h -n "$1" -o %T | grep -qx 'idle'; }

# stop_daemon NAME PIDFILE: SIGTERM, then SIGKILL after the deadline.
stop_daemon() {
	local name=$1 pidf=$2
	alive "$pidf" || return 0
	local pid end
	pid=$(cat "$pidf")
	kill -TERM "$pid" 2>/dev/null || true
	end=$((SECONDS + wait_s))
	while kill -0 "$pid" 2>/dev/null; do
		if [ $SECONDS -ge $end ]; then say "$name ($pid) did not stop in ${wait_s}s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; break; fi
		sleep 0.2
	done
	rm -f "$pidf"
}

stop() {
	stop_daemon slurmd "$dir/run/slurmd.pid"
	stop_daemon slurmctld "$dir/run/slurmctld.pid"
	stop_daemon munged "$dir/munge/munged.pid"
	say "stopped ($dir keeps the logs and state)"
}

case $cmd in
install) install ;;
start) start ;;
stop) stop ;;
env) echo "export SLURM_CONF=$conf" ;;
*) die "usage: $0 install|start|stop|env" ;;
esac
