# shellcheck shell=bash
# slurm_common.sh - what the two test clusters share: tests/slurm/cluster.sh
# (one slurmd on this host) and tests/cluster/nodes.sh (three slurmd in
# network namespaces): the slurm.conf settings, memory size and munge key, and
# the daemons' pid-file handling. Sourced from the repository root by both
# (which define `say`); defines functions only.

# MB of memory slurmd will certainly find on each of PARTS nodes sharing this
# machine (90 % of MemTotal split evenly): slurmd drains a node whose
# RealMemory is above what it measures.
slurm_real_memory_mb() { # slurm_real_memory_mb PARTS
    local kb
    kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    echo $((kb * 9 / 10240 / $1))
}

# The settings both clusters share, on stdout. Everything lives under STATE
# (no /etc/slurm, no system munged); PER_NODE is "" for one slurmd or "%n" to
# give each node its own spool directory, pid file and log.
slurm_conf_common() { # slurm_conf_common CLUSTER_NAME CTLD_HOST PORT MUNGE_SOCKET STATE PER_NODE JOB_REQUEUE SLURMD_TIMEOUT
    local name=$1 host=$2 port=$3 socket=$4 state=$5 per_node=$6 requeue=$7 slurmd_timeout=$8
    cat <<CONF
ClusterName=$name
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket,cred_expire=10
SchedulerParameters=sched_interval=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool${per_node:+/$per_node}
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd${per_node:+-$per_node}.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd${per_node:+-$per_node}.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
JobRequeue=$requeue
ReturnToService=2
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
KillWait=5
MinJobAge=600
InactiveLimit=0
MessageTimeout=10
SlurmdTimeout=$slurmd_timeout
CONF
}

# The state directories, and a munge key (1 KiB of random bytes, readable by
# its owner only) kept across restarts of the cluster.
slurm_state_dirs() { # slurm_state_dirs STATE
    mkdir -p "$1/etc" "$1/munge" "$1/ctld" "$1/spool" "$1/log" "$1/run" || return 1
    chmod 755 "$1/munge"
    if [ ! -s "$1/munge/munge.key" ]; then
        head -c 1024 /dev/urandom >"$1/munge/munge.key" || return 1
    fi
    chmod 400 "$1/munge/munge.key"
}

# The pid in FILE when that process is alive (on stdout); 1 otherwise.
live_pid() {
    local file=$1 pid
    [ -s "$file" ] || return 1
    pid=$(tr -dc '0-9' <"$file")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
    local seconds=$1 what=$2 i
    shift 2
    for ((i = 0; i < seconds * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    say "timed out after ${seconds}s waiting for $what"
    return 1
}

stop_pid_file() { # stop_pid_file NAME FILE: TERM, then KILL after 10 s
    local name=$1 file=$2 pid i
    pid=$(live_pid "$file") || { rm -f "$file"; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.2
    fi
    rm -f "$file"
    say "stopped $name (pid $pid)"
}
