#!/usr/bin/env bash
# test_cluster.sh - the cluster tier: salcheck across three Slurm nodes, each in
# its own network and UTS namespace on this machine (tests/cluster/nodes.sh).
#
# Usage: [BUILD=build] [SC_CLUSTER_FULL=1] bash tests/cluster/test_cluster.sh
#        (as root; `make test-cluster` runs the full form, `make test` the small one)
#
# Open MPI is restricted to TCP over the namespaces' bridge (btl tcp,self, pml
# ob1): no shared-memory transport, so ranks on different "nodes" talk as on a
# real cluster.
#  1. start the cluster; `srun -N 3` of an MPI program: three host names, one
#     world (allreduce), only TCP
#  2. the audit (tests/slurm/tiny.ini) with `sbatch -N 1 -n 2` and with
#     `sbatch -N 3 -n 3`: one results file each, equal (h5diff), the second
#     computed by ranks on the three nodes
#  3. a node dies mid-run: the audit on 3 nodes, node 3's slurmd, step daemon
#     and ranks killed (SIGKILL) once cells are done; the job ends (fails);
#     `--resume` on the two remaining nodes finishes with the result equal to
#     the clean run, and every cell finished before the kill keeps its stored
#     time and rank (nothing finished was recomputed)
#  4. (full form) slurm/chain.sh: a training array whose tasks each train
#     data-parallel over 2 nodes, then the audit of those models on 3 nodes
#     with afterok
#  5. stop the cluster by PID; no process and no namespace is left
# Ends with "N passed, N failed"; skips visibly (with the reason) where the
# kernel refuses network namespaces or Slurm is missing.
#
# shellcheck disable=SC2317 # predicates are called through check()
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
export BUILD
export SC_CLUSTER_DIR=${SC_CLUSTER_DIR:-$ROOT/$BUILD/cluster-nodes}
NODES=$ROOT/tests/cluster/nodes.sh
WORK=$ROOT/$BUILD/cluster-test
SALCHECK_BIN=${SALCHECK:-$BUILD/salcheck}
case "$SALCHECK_BIN" in /*) ;; *) SALCHECK_BIN=$ROOT/$SALCHECK_BIN ;; esac
FULL=${SC_CLUSTER_FULL:-0}
NET=${SC_NET_BASE:-10.213.77}
P=${SC_NET_PREFIX:-scx}
export HDF5_USE_FILE_LOCKING=FALSE OPENBLAS_NUM_THREADS=1 SC_SALCHECK=$SALCHECK_BIN
export OMPI_MCA_btl=tcp,self OMPI_MCA_pml=ob1 OMPI_MCA_btl_tcp_if_include=$NET.0/24 \
    OMPI_MCA_oob_tcp_if_include=$NET.0/24
PY=${SALCHECK_PYTHON:-/usr/bin/python3}
t_start=$(date +%s)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "[PASS] $*"; }
fail() { failed=$((failed + 1)); echo "[FAIL] $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
both() { [ "$1" = 0 ] && [ "$2" = 0 ]; } # both STATUS STATUS: two conditions held
note() { echo "    $*"; }
show_tail() { [ -e "$1" ] && tail -n "${2:-15}" "$1" | sed 's/^/      | /'; }
cluster_started=0
finish() {
    trap - EXIT
    if [ "$cluster_started" -eq 1 ]; then
        cd "$ROOT" || exit 2
        bash "$NODES" stop
        check "stop: no process and no namespace of the cluster is left" bash "$NODES" leftovers
        note "tier time: $(($(date +%s) - t_start)) s"
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
trap finish EXIT
ctl() { bash "$NODES" run ctl "$@"; }

# ---- prerequisites ----------------------------------------------------------
missing=""
for tool in munged slurmctld slurmd sbatch mpicc h5diff ip nsenter unshare; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "[SKIP] cluster tier: missing$missing (apt-get install -y slurmctld slurmd slurm-client munge iproute2 hdf5-tools)"
    finish
fi
if [ "$(id -u)" != 0 ]; then
    echo "[SKIP] cluster tier: network namespaces and the Slurm daemons need root"
    finish
fi
if ! why=$(bash "$NODES" probe 2>&1); then
    echo "[SKIP] cluster tier: $why"
    finish
fi
if ! "$SALCHECK_BIN" run --help >/dev/null 2>&1; then
    echo "[SKIP] cluster tier: $SALCHECK_BIN has no run command"
    finish
fi

# ---- 1. the cluster and MPI over TCP between namespaces ---------------------
rm -rf "$WORK"
mkdir -p "$WORK" || exit 2
cd "$WORK" || exit 2
cluster_started=1
if ! timeout 120 bash "$NODES" start >"$WORK/start.log" 2>&1; then
    fail "start three slurmd nodes in their own namespaces"
    show_tail "$WORK/start.log" 30
    finish
fi
pass "start three slurmd nodes in their own network and UTS namespaces"
grep -E '^nodes: (network|slurmd)' "$WORK/start.log" | sed 's/^/    /'

cat >"$WORK/mpi_nodes.c" <<'EOF'
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    int rank, size, one_based, sum = 0;
    char host[64] = "";
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    gethostname(host, sizeof host - 1);
    one_based = rank + 1;
    MPI_Allreduce(&one_based, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    printf("mpi_nodes rank %d of %d on %s allreduce %d\n", rank, size, host, sum);
    MPI_Finalize();
    return 0;
}
EOF
if mpicc -O2 "$WORK/mpi_nodes.c" -o "$WORK/mpi_nodes"; then
    job=$(timeout 120 bash "$NODES" run ctl sbatch --wait --parsable -N 3 -n 3 --time=2 \
        --output=mpi-nodes-%j.out --wrap "srun --mpi=pmix $WORK/mpi_nodes")
    rc=$?
    out=mpi-nodes-${job%%;*}.out
    show_tail "$out" 5
    [ "$(grep -c ' of 3 on .* allreduce 6$' "$out" 2>/dev/null)" = 3 ]
    check "srun -N 3: one MPI world of 3 ranks over TCP (allreduce 6)" both "$rc" $?
    check "srun -N 3: the ranks see three host names (UTS namespaces)" \
        [ "$(awk '/^mpi_nodes/ {print $7}' "$out" 2>/dev/null | sort -u | grep -c "^${P}n[123]$")" -eq 3 ]
else
    fail "compile the MPI check program"
fi

# ---- 2. the audit on one node and on three -----------------------------------
JOB=$ROOT/tests/slurm/tiny.ini
AUDIT=$ROOT/slurm/audit.sbatch
results_equal() { # results_equal A B: the computed datasets of two results files
    local path out
    for path in /maps /metrics /pairs /scores /summary /status/done /status/pair_done; do
        # -c lists datasets h5diff cannot compare (a shape change), which count as different
        if ! out=$(h5diff -q -c "$1" "$2" "$path" 2>&1) || grep -qi 'not comparable' <<<"$out"; then
            note "h5diff: $path differs: $(head -2 <<<"$out")"
            return 1
        fi
    done
}
job_state() { ctl scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
job_nodes() { ctl scontrol show job "$1" 2>/dev/null | grep -o ' NodeList=[^ ]*' | cut -d= -f2; }
audit() { # audit NAME SBATCH_OPTS...: sbatch --wait the audit into NAME.h5
    local name=$1 job rc
    shift
    job=$(timeout 600 bash "$NODES" run ctl sbatch --wait --parsable "$@" --time=15 \
        --output="$name-%j.out" "$AUDIT" "$JOB" "$name.h5" --progress 1)
    rc=$?
    job=${job%%;*}
    note "job $job ($*): exit $rc, $(job_state "$job") on $(job_nodes "$job")"
    [ "$rc" -eq 0 ] || show_tail "$name-$job.out"
    return "$rc"
}
rank_hosts() { # distinct ranks that computed cells of a results file
    "$PY" -c 'import h5py,sys,numpy as np; f=h5py.File(sys.argv[1],"r"); d=f["status/done"][()].astype(bool); print(len(np.unique(f["status/rank"][()][d])))' "$1" 2>/dev/null
}
check "audit with sbatch -N 1 -n 2 (the one-node reference)" audit one -N 1 -n 2
check "audit with sbatch -N 3 -n 3" audit three -N 3 -n 3
check "sbatch -N 3: the results file equals the one-node result (h5diff)" results_equal one.h5 three.h5
check "sbatch -N 3: cells were computed by 3 ranks" [ "$(rank_hosts three.h5)" = 3 ]

# ---- 4. (full form) training array across nodes, then the audit --------------
if [ "$FULL" = 1 ]; then
    chain_log=$WORK/chain.log
    SC_TRAIN_SEEDS=1 SC_TRAIN_LABELS="true shuffled" \
        SC_TRAIN_SBATCH_ARGS="--array=0-1 -N 2 --ntasks=2 --time=10" SC_AUDIT_SBATCH_ARGS="-N 3 --ntasks=3 --time=15" \
        bash "$NODES" run ctl bash "$ROOT/slurm/chain.sh" "$ROOT/tests/slurm/chain.ini" models-chain \
        "$WORK/chain.h5" --data phantom --arch democnn --size 64 --epochs 1 >"$chain_log" 2>&1
    train_id=$(awk '$1 == "train" {print $2}' "$chain_log")
    audit_id=$(awk '$1 == "audit" {print $2}' "$chain_log")
    for ((i = 0; i < 300; i++)); do
        [ -z "$(ctl squeue -h -o '%i' 2>/dev/null)" ] && break
        sleep 1
    done
    note "chain: training array $train_id ($(job_nodes "${train_id}_0"), $(job_nodes "${train_id}_1")), audit $audit_id on $(job_nodes "$audit_id")"
    [ -s models-chain/model-true-seed1.h5 ]
    r1=$?
    [ -s models-chain/model-shuffled-seed1.h5 ]
    check "chain: both training tasks (2 nodes each) wrote their model" both "$r1" $?
    [ "$(job_state "$audit_id")" = COMPLETED ]
    r1=$?
    [ "$(job_nodes "$audit_id")" = "${P}n[1-3]" ]
    check "chain: the audit ran after them on 3 nodes and completed" both "$r1" $?
    check "chain: its results file is complete" \
        "$PY" -c 'import h5py,sys; f=h5py.File(sys.argv[1],"r"); sys.exit(0 if f["status/done"][()].sum()==f["status/planned"][()].sum()>0 else 1)' chain.h5
fi

# ---- 3. a node dies mid-run; --resume on the two others ----------------------
job=$(ctl sbatch --parsable -N 3 -n 3 --time=15 --output=kill-%j.out "$AUDIT" "$JOB" kill.h5 --progress 1)
job=${job%%;*}
note "job $job: audit on 3 nodes, node ${P}n3 to be killed"
cells_done() { grep -o '^salcheck: maps: [0-9]*' "kill-$job.out" 2>/dev/null | tail -1 | awk '{print $3}'; }
for ((i = 0; i < 600; i++)); do
    n=$(cells_done)
    [ -n "$n" ] && [ "$n" -ge 3 ] && break
    case "$(job_state "$job")" in "" | PENDING | CONFIGURING | RUNNING) sleep 0.5 ;; *) break ;; esac
done
note "killing node ${P}n3 after $(cells_done) finished items"
bash "$NODES" kill-node 3
# slurmctld marks the node down after SlurmdTimeout (10 s) and requeues the
# job (audit.sbatch asks for requeueing); its tasks on the live nodes end.
for ((i = 0; i < 120; i++)); do
    case "$(job_state "$job")" in RUNNING | COMPLETING | CONFIGURING) sleep 1 ;; *) break ;; esac
done
state=$(job_state "$job")
note "job $job after the kill: $state ($(ctl sinfo -h -n "${P}n3" -o '%t' 2>/dev/null) node ${P}n3)"
case "$state" in "" | COMPLETED | RUNNING | COMPLETING | CONFIGURING) r1=1 ;; *) r1=0 ;; esac
check "node death: the job ended or was requeued, not completed (state $state)" [ "$r1" = 0 ]
# A requeued job waits for 3 nodes, which no longer exist; the user resubmits on 2.
ctl scancel "$job" 2>/dev/null
for ((i = 0; i < 60; i++)); do
    case "$(job_state "$job")" in PENDING | RUNNING | COMPLETING | CONFIGURING) sleep 0.5 ;; *) break ;; esac
done
snapshot() {
    "$PY" - "$1" "$2" <<'EOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
np.savez(sys.argv[2], done=f["status/done"][()], seconds=f["status/seconds"][()], rank=f["status/rank"][()])
print(int(f["status/done"][()].sum()), int(f["status/planned"][()].sum()))
EOF
}
read -r before planned < <(snapshot kill.h5 "$WORK/before.npz")
note "cells done when the node died: $before of $planned"
[ "${before:-0}" -gt 0 ]
check "node death: part of the cells were done, part not" both $? "$([ "${before:-0}" -lt "${planned:-0}" ]; echo $?)"
SC_RESUME=yes timeout 600 bash "$NODES" run ctl sbatch --wait --parsable -N 2 -n 2 -w "${P}n1,${P}n2" \
    --time=15 --output=resume-%j.out "$AUDIT" "$JOB" kill.h5 --progress 1 >resume.id
rc=$?
rjob=$(cut -d';' -f1 resume.id)
note "job $rjob: --resume on $(job_nodes "$rjob"): exit $rc; $(grep -o '[0-9]* cells ([0-9]* done)' "resume-$rjob.out" | head -1)"
[ "$(job_state "$rjob")" = COMPLETED ]
check "resume on the two remaining nodes completes" both "$rc" $?
check "resume: the plan counts the cells finished before the kill as done" \
    grep -q "cells ($before done)" "resume-$rjob.out"
check "resume: the result equals the clean run (h5diff)" results_equal three.h5 kill.h5
check "resume: every cell finished before the kill kept its time and rank (not recomputed)" \
    "$PY" - kill.h5 "$WORK/before.npz" <<'EOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
b = np.load(sys.argv[2])
d = b["done"].astype(bool)
same = np.array_equal(f["status/seconds"][()][d], b["seconds"][d]) and np.array_equal(f["status/rank"][()][d], b["rank"][d])
complete = f["status/done"][()].sum() == f["status/planned"][()].sum()
sys.exit(0 if same and complete and d.any() else 1)
EOF
finish
