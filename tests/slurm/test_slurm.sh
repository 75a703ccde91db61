#!/usr/bin/env bash
# test_slurm.sh - the slurm test tier: slurm/*.sbatch and slurm/chain.sh on a
# real single-node Slurm cluster (tests/slurm/cluster.sh).
#
# Usage: [BUILD=build] [SALCHECK=build/salcheck] bash tests/slurm/test_slurm.sh
#        (as root; make test-slurm)
#
#  1. start the cluster (munged, slurmctld, slurmd -N localhost)
#  2. MPI under Slurm: `sbatch --wait` a 2-task job that runs an MPI program
#     with `srun --mpi=pmix`; both ranks see a world of 2 and the right
#     MPI_Allreduce sum
#  3. the audit (`salcheck run tests/slurm/tiny.ini`): `sbatch --wait`
#     slurm/audit.sbatch on 2 tasks, uninterrupted; then the same with
#     SC_LAUNCHER=mpirun, results equal (h5diff)
#  4. requeue cycle: the same audit, sent SIGUSR1 (as --signal=B:USR1@<s>
#     does before the time limit) once it has made progress; it flushes,
#     requeues itself, restarts with --resume and ends with results equal to
#     the uninterrupted run of step 3
#  5. Slurm's own warning: --time=5 with the script's --signal=B:USR1@300, so
#     slurmctld signals at its next time-limit check (within ~30 s); the
#     script stops resumable but refuses to requeue (the margin is not
#     shorter than the time limit); the same command resubmitted resumes to
#     the same result. This step runs a stand-in (below) that sleeps 36 s; it
#     is submitted first and runs alongside steps 2-4 in 2 extra CPU slots.
#  6. slurm/chain.sh: a training array (`salcheck train`, true and shuffled
#     labels), then the audit of those models with afterok; and a failing
#     training that makes Slurm cancel the audit
#  7. stop the daemons by PID (also on any error: an EXIT trap)
# Prints the job ids, the requeue and the resume, and ends with
# "N passed, N failed"; exits non-zero on any failure.
#
# The predicates and audit functions below are called through check(), which
# the linter cannot follow, hence:
# shellcheck disable=SC2317
set -u
cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
export BUILD
export SC_SLURM_DIR=${SC_SLURM_DIR:-$BUILD/slurm-cluster}
mkdir -p "$BUILD/slurm-test" || exit 2
WORK=$(cd "$BUILD/slurm-test" && pwd)
CLUSTER=$ROOT/tests/slurm/cluster.sh
SALCHECK_BIN=${SALCHECK:-$BUILD/salcheck}
case "$SALCHECK_BIN" in /*) ;; *) SALCHECK_BIN=$ROOT/$SALCHECK_BIN ;; esac
# Parallel HDF5 on file systems without POSIX locks; h5diff reads finished files.
export HDF5_USE_FILE_LOCKING=FALSE OPENBLAS_NUM_THREADS=1

passed=0
failed=0
pass() {
    passed=$((passed + 1))
    echo "[PASS] $*"
}
fail() {
    failed=$((failed + 1))
    echo "[FAIL] $*"
}
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
note() { echo "    $*"; }
not() { ! "$@"; }
between() { [ -n "$1" ] && [ "$1" -gt "$2" ] && [ "$1" -lt "$3" ]; } # between N LOW HIGH (exclusive)
not_before() { # not_before T T0 T1...: ISO time T is not before any of T0 T1...
    local t=$1 other
    shift
    [ -n "$t" ] || return 1
    for other in "$@"; do
        [ -n "$other" ] && [[ ! "$t" < "$other" ]] || return 1
    done
}
cluster_started=0
finish() { # stop the cluster (if this script started it), print the result line, exit
    trap - EXIT
    if [ "$cluster_started" -eq 1 ]; then
        cd "$ROOT" || exit 2
        bash "$CLUSTER" stop
        check "stop the cluster: none of its daemons is left" not bash "$CLUSTER" status
        note "tier time: $(($(date +%s) - t_start)) s"
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
show_tail() { # show_tail FILE [LINES]: the last lines of a log, indented
    [ -e "$1" ] && tail -n "${2:-20}" "$1" | sed 's/^/      | /'
}

# ---- prerequisites ----------------------------------------------------------
missing=""
for tool in munged slurmctld slurmd sbatch mpicc; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
# Slurm's mpi_pmix plugin dlopens <libdir>/pmix2/lib/libpmix.so (libpmix-dev).
pmix_lib=$(compgen -G '/usr/lib/*/pmix2/lib/libpmix.so' | head -1)
if [ -n "$missing" ] || [ -z "$pmix_lib" ]; then
    echo "[SKIP] slurm tier: missing${missing:- libpmix-dev}; apt-get install -y slurmctld slurmd slurm-client munge libpmix-dev libopenmpi-dev"
    finish
fi
if [ "$(id -u)" != 0 ]; then
    echo "[SKIP] slurm tier: the local cluster runs its daemons as root"
    finish
fi

# ==== The audit under test ===================================================
# The real `salcheck run` on tests/slurm/tiny.ini when $SALCHECK has the run
# command. Without it (a build without driver/cmd_run.c) the audit steps run
# the stand-in tests/slurm/standin_salcheck.c, which keeps the same contract
# (`run JOB --out FILE [--resume]`, SIGUSR1/SIGTERM: flush, exit 3), and say
# so with a [SKIP] line. The stand-in always runs step 5, which needs an audit
# that outlasts Slurm's 30 s time-limit check.
build_standin() {
    STANDIN=$WORK/standin_salcheck
    mpicc -std=c11 -D_DEFAULT_SOURCE -O2 -Wall -Wextra "$ROOT/tests/slurm/standin_salcheck.c" \
        -o "$STANDIN" || return 1
    STANDIN_JOB=$WORK/standin.ini
    STANDIN_ITEMS=24
    printf 'items = %d\nitem_ms = 250\n' "$STANDIN_ITEMS" >"$STANDIN_JOB"
}
audit_prepare() { # sets AUDIT_MODE AUDIT_BIN AUDIT_JOB AUDIT_EXT AUDIT_OPTS
    if [ -x "$SALCHECK_BIN" ] && "$SALCHECK_BIN" run --help >/dev/null 2>&1; then
        AUDIT_MODE=salcheck
        AUDIT_BIN=$SALCHECK_BIN
        AUDIT_JOB=$ROOT/tests/slurm/tiny.ini
        AUDIT_EXT=h5
        AUDIT_OPTS=(--progress 0.2) # frequent progress lines: audit_progress reads them
    else
        echo "[SKIP] real audit: $SALCHECK_BIN has no 'run' command; the audit steps use the stand-in"
        AUDIT_MODE=standin
        AUDIT_BIN=$STANDIN
        AUDIT_JOB=$STANDIN_JOB
        AUDIT_EXT=txt
        AUDIT_OPTS=()
    fi
}
audit_progress() { # audit_progress MODE OUT LOG: work items finished so far
    local n=0
    if [ "$1" = salcheck ]; then
        n=$(grep -o 'maps: [0-9]*/' "$3" 2>/dev/null | tail -1 | tr -dc '0-9')
    elif [ -e "$2" ]; then
        n=$(wc -l <"$2")
    fi
    echo "${n:-0}"
}
resumed_counts() { # resumed_counts MODE LOG: "DONE TOTAL" as the restarted run reports them
    if [ "$1" = salcheck ]; then # "plan: ... = 21 cells (8 done), ..."
        grep -o '= [0-9]* cells ([0-9]* done)' "$2" | tail -1 | awk '{gsub(/\(/, "", $4); print $4, $2}'
    else # "standin: run ... : 24 items, 10 already done (resume)"
        grep -o '[0-9]* items, [0-9]* already done (resume)' "$2" | tail -1 | awk '{print $3, $1}'
    fi
}
results_equal() { # results_equal MODE A B
    if [ "$1" = salcheck ]; then
        # The computed results; not / as a whole: the root attributes and the
        # per-cell /status/seconds and /status/rank differ between runs.
        # h5diff exits 0 on datasets of different shapes ("not comparable"),
        # so -c lists those and any such line counts as a difference.
        local path out
        for path in /maps /metrics /pairs /scores /summary /status/done /status/pair_done; do
            if ! out=$(h5diff -q -c "$2" "$3" "$path" 2>&1) || grep -qi 'not comparable' <<<"$out"; then
                note "h5diff: $path differs: $(head -2 <<<"$out")"
                return 1
            fi
        done
    else
        cmp -s "$2" "$3"
    fi
}
# =============================================================================

# The job state, exit code and restart count of a job, "STATE EXIT RESTARTS".
job_info() {
    scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | awk -F= '
        $1 == "JobState" {s = $2} $1 == "ExitCode" {e = $2} $1 == "Restarts" {r = $2}
        END {print s, e, r}'
}
job_field() { # job_field ID FIELD
    scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | awk -F= -v f="$2" '$1 == f {print $2; exit}'
}
# Wait until a job has ended; prints its final state.
wait_job_end() { # wait_job_end ID SECONDS
    local i state=""
    for ((i = 0; i < $2; i++)); do
        state=$(job_field "$1" JobState)
        case "$state" in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
            echo "$state"
            return 0
            ;;
        esac
        sleep 1
    done
    echo "TIMEOUT_WAITING($state)"
    return 1
}

trap finish EXIT
trap 'fail "interrupted by a signal"; exit 1' INT TERM
t_start=$(date +%s)

# ---- 1. the cluster ---------------------------------------------------------
# Two CPU slots more than the machine has, for the sleeping job of step 5.
export SC_SLURM_CPUS=$(($(nproc) + 2))
if ! bash "$CLUSTER" start; then
    fail "start a one-node Slurm cluster"
    cluster_started=1 # stop what did start
    finish
fi
cluster_started=1
pass "start a one-node Slurm cluster"
eval "$(bash "$CLUSTER" env)"
export SLURM_CONF
rm -rf "${WORK:?}"/run && mkdir -p "$WORK/run"
cd "$WORK/run" || exit 2
if ! build_standin; then
    fail "compile the stand-in with mpicc"
    finish
fi

# ---- 5, submitted now: Slurm's own time-limit warning (stand-in) --------------
tl_out=$WORK/run/timelimit.txt
# 12 rounds of 3 s: longer than the 30 s between slurmctld's time-limit checks.
tl_job=$(SC_SALCHECK=$STANDIN STANDIN_ITEM_MS=3000 sbatch --parsable --ntasks=2 --time=5 \
    --job-name=audit-timelimit "$ROOT/slurm/audit.sbatch" "$STANDIN_JOB" "$tl_out")
tl_job=${tl_job%%;*}
note "job $tl_job: audit.sbatch with --time=5 and its --signal=B:USR1@300 (stand-in); checked in step 5"

# ---- 2. an MPI program under srun --mpi=pmix --------------------------------
cat >"$WORK/mpi_check.c" <<'EOF'
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv)
{
    int rank, size, sum = 0, one_based;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    one_based = rank + 1;
    MPI_Allreduce(&one_based, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    printf("mpi_check rank %d of %d allreduce %d\n", rank, size, sum);
    MPI_Finalize();
    return 0;
}
EOF
if mpicc -O2 "$WORK/mpi_check.c" -o "$WORK/mpi_check"; then
    job=$(sbatch --wait --parsable --ntasks=2 --time=2 --output=mpi-check-%j.out \
        --wrap "srun --mpi=pmix $WORK/mpi_check")
    rc=$?
    job=${job%%;*}
    note "job $job: 2 tasks, srun --mpi=pmix mpi_check (sbatch --wait exit $rc)"
    out=mpi-check-$job.out
    show_tail "$out" 5
    # 1 + 2 = 3: both ranks joined one world of size 2 (singletons print "of 1").
    check "MPI job $job: sbatch --wait exits 0" [ "$rc" -eq 0 ]
    check "MPI job $job: srun --mpi=pmix wires 2 ranks into one world (allreduce 3)" \
        [ "$(grep -c '^mpi_check rank [01] of 2 allreduce 3$' "$out" 2>/dev/null)" -eq 2 ]
else
    fail "compile the MPI check with mpicc"
fi

# ---- 3. the audit, uninterrupted --------------------------------------------
audit_prepare
note "audit under test: $AUDIT_MODE ($AUDIT_BIN run $AUDIT_JOB)"
export SC_SALCHECK=$AUDIT_BIN
ref_out=$WORK/run/reference.$AUDIT_EXT
# --time=30: longer than the script's --signal=B:USR1@300 margin.
job=$(sbatch --wait --parsable --ntasks=2 --time=30 --job-name=audit-ref \
    "$ROOT/slurm/audit.sbatch" "$AUDIT_JOB" "$ref_out" "${AUDIT_OPTS[@]}")
rc=$?
job=${job%%;*}
log=salcheck-audit-$job.out
note "job $job: audit.sbatch on 2 tasks, uninterrupted (sbatch --wait exit $rc)"
show_tail "$log" 8
check "audit job $job: sbatch --wait exits 0" [ "$rc" -eq 0 ]
check "audit job $job: its log salcheck-audit-$job.out says complete" grep -q "complete: $ref_out" "$log"
check "audit job $job: ran on 2 ranks" grep -qE '2 ranks' "$log"
check "audit job $job: wrote the results file" [ -s "$ref_out" ]
check "audit job $job: a first run does not pass --resume" not grep -q -- '--resume' "$log"

# The same audit with the other launcher (SC_LAUNCHER=mpirun: Open MPI reads
# the allocation from Slurm); as root, Open MPI wants the two ALLOW variables.
mpirun_out=$WORK/run/mpirun.$AUDIT_EXT
job=$(SC_LAUNCHER=mpirun OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    sbatch --parsable --ntasks=2 --time=30 --job-name=audit-mpirun \
    "$ROOT/slurm/audit.sbatch" "$AUDIT_JOB" "$mpirun_out" "${AUDIT_OPTS[@]}")
job=${job%%;*}
final=$(wait_job_end "$job" 90)
note "job $job: audit.sbatch with SC_LAUNCHER=mpirun on 2 tasks: $final"
show_tail "salcheck-audit-$job.out" 3
check "audit job $job (mpirun): completed" [ "$final" = COMPLETED ]
check "audit job $job (mpirun): results equal the srun run" results_equal "$AUDIT_MODE" "$ref_out" "$mpirun_out"

# A launcher that exits 0 although salcheck never ran (srun does when its
# tasks fail to launch; job 2 of an earlier CI run): simulated by a salcheck
# whose `run` exits 0 at once and whose `info` is the real one. The script must
# not log "complete": exit 4, both for a file never written and for an
# incomplete file it was to resume.
if [ "$AUDIT_MODE" = salcheck ]; then
    nolaunch=$WORK/nolaunch_salcheck
    printf '#!/bin/sh\n[ "$1" = run ] && exit 0\nexec %s "$@"\n' "$SALCHECK_BIN" >"$nolaunch" && chmod +x "$nolaunch"
    partial=$WORK/run/partial.h5
    rm -f "$WORK/run/never.h5" "$partial"
    cp "$ref_out" "$partial" && /usr/bin/python3 -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r+') as f:
    d = f['status/done']; a = d[()]; a[0, 0] = 0; d[...] = a" "$partial" 2>/dev/null
    for case in never partial; do
        out=$WORK/run/$case.h5
        job=$(SC_SALCHECK=$nolaunch sbatch --wait --parsable --ntasks=2 --time=5 --job-name=audit-nolaunch \
            "$ROOT/slurm/audit.sbatch" "$AUDIT_JOB" "$out")
        rc=$?
        job=${job%%;*}
        log=salcheck-audit-$job.out
        note "job $job: audit.sbatch whose ranks never ran ($case file; sbatch --wait exit $rc)"
        show_tail "$log" 2
        check "failed launch ($case file), job $job: not logged as complete" not grep -q "complete: $out" "$log"
        if [ "$case" = never ]; then
            check "failed launch, job $job: exit 4 and the missing file named" \
                sh -c "[ $rc -eq 4 ] && grep -q 'the launcher exited 0 but $out was not written' '$log'"
        else
            check "failed launch on an incomplete file, job $job: exit 4, the file named incomplete" \
                sh -c "[ $rc -eq 4 ] && grep -q 'the launcher exited 0 but $out is incomplete (cells: ' '$log'"
        fi
    done
fi

# ---- 4. requeue cycle -------------------------------------------------------
rq_out=$WORK/run/requeued.$AUDIT_EXT
# SC_MIN_RUN_SECONDS=0: the script would not requeue a warning that comes
# this early after the start (see step 5).
job=$(SC_MIN_RUN_SECONDS=0 sbatch --parsable --ntasks=2 --time=30 --job-name=audit-requeue \
    "$ROOT/slurm/audit.sbatch" "$AUDIT_JOB" "$rq_out" "${AUDIT_OPTS[@]}")
job=${job%%;*}
log=salcheck-audit-$job.out
note "job $job: audit.sbatch on 2 tasks, to be interrupted and requeued"
progress=0
for ((i = 0; i < 300; i++)); do # until 4 work items are done (60 s at most)
    progress=$(audit_progress "$AUDIT_MODE" "$rq_out" "$log")
    [ "$progress" -ge 4 ] && break
    sleep 0.2
done
note "job $job: $progress work items done; sending SIGUSR1 to its batch script" \
    "(what --signal=B:USR1@<s> does before the time limit)"
scancel --batch --signal=USR1 "$job"
for ((i = 0; i < 60; i++)); do # until Slurm has requeued it
    [ "$(job_field "$job" Restarts)" = 1 ] && break
    sleep 0.5
done
note "job $job: requeued (state $(job_field "$job" JobState), reason $(job_field "$job" Reason))"
final=$(wait_job_end "$job" 120)
read -r state exit_code restarts <<<"$(job_info "$job")"
read -r done_at_restart total <<<"$(resumed_counts "$AUDIT_MODE" "$log")"
note "job $job: final state $final, exit code $exit_code, restarts $restarts;" \
    "the restart found ${done_at_restart:-?} of ${total:-?} done"
echo "    ---- $log"
grep -E '^salcheck-audit|interrupted|plan:|standin:|srun: error|resume' "$log" | sed 's/^/      | /'
check "requeue job $job: the batch script got SIGUSR1 and forwarded it" grep -q 'received SIGUSR1' "$log"
check "requeue job $job: salcheck stopped with its results flushed (status 3)" \
    grep -q 'stopped after SIGUSR1 with its results flushed' "$log"
check "requeue job $job: the script requeued itself" grep -q "requeueing job $job" "$log"
check "requeue job $job: Slurm restarted it once (Restarts=1)" [ "$restarts" = 1 ]
check "requeue job $job: one log across both runs (--open-mode=append)" \
    [ "$(grep -c 'start on .* restart' "$log")" -eq 2 ]
check "requeue job $job: the restart passed --resume" grep -q 'resuming .* (restart 1)' "$log"
check "requeue job $job: the restart kept the finished part (${done_at_restart:-?} of ${total:-?} done)" \
    between "${done_at_restart:-}" 0 "${total:-0}"
check "requeue job $job: completed" [ "$final" = COMPLETED ]
check "requeue job $job: exit code 0:0" [ "$exit_code" = 0:0 ]
check "requeue job $job: interrupted + resumed results equal the uninterrupted run" \
    results_equal "$AUDIT_MODE" "$ref_out" "$rq_out"

# ---- 5. Slurm's own time-limit warning (stand-in) ---------------------------
standin_ref=$WORK/run/standin-reference.txt
STANDIN_ITEM_MS=0 "$STANDIN" run "$STANDIN_JOB" --out "$standin_ref" 2>/dev/null
job=$tl_job
log=salcheck-audit-$job.out
note "job $job: audit.sbatch with --time=5 and its --signal=B:USR1@300: waiting for Slurm's warning"
final=$(wait_job_end "$job" 80)
read -r state exit_code restarts <<<"$(job_info "$job")"
note "job $job: $final, exit code $exit_code, restarts $restarts," \
    "$(audit_progress standin "$tl_out" "$log") of $STANDIN_ITEMS items written"
show_tail "$log" 12
check "time-limit job $job: Slurm sent SIGUSR1 to the batch script before the time limit" \
    grep -q 'received SIGUSR1' "$log"
check "time-limit job $job: the script refused to requeue a warning due at the start" \
    grep -q 'not requeueing: the time-limit warning came' "$log"
check "time-limit job $job: not requeued (Restarts=0)" [ "$restarts" = 0 ]
check "time-limit job $job: ended unfinished ($final, exit code $exit_code)" not [ "$final" = COMPLETED ]
job=$(SC_SALCHECK=$STANDIN sbatch --wait --parsable --ntasks=2 --time=30 --job-name=audit-resubmit \
    "$ROOT/slurm/audit.sbatch" "$STANDIN_JOB" "$tl_out")
rc=$?
job=${job%%;*}
log=salcheck-audit-$job.out
note "job $job: the same command resubmitted (sbatch --wait exit $rc)"
show_tail "$log" 5
check "resubmitted job $job: passed --resume because the results file exists" grep -q 'resuming ' "$log"
check "resubmitted job $job: completed" [ "$rc" -eq 0 ]
check "resubmitted job $job: results equal an uninterrupted run" results_equal standin "$standin_ref" "$tl_out"

# ---- 6. chain.sh: training array, then the audit (afterok) ------------------
if [ "$AUDIT_MODE" = salcheck ]; then
    chain_job=$ROOT/tests/slurm/chain.ini # its models: models-chain/model-<labels>-seed1.h5
    train_opts=(--data phantom --arch democnn --size 64 --epochs 1)
else
    chain_job=$STANDIN_JOB
    train_opts=()
fi
chain_log=$WORK/run/chain.log
SC_TRAIN_SEEDS=1 SC_TRAIN_LABELS="true shuffled" \
    SC_TRAIN_SBATCH_ARGS="--array=0-1 --ntasks=1 --time=10" SC_AUDIT_SBATCH_ARGS="--ntasks=2 --time=30" \
    bash "$ROOT/slurm/chain.sh" "$chain_job" models-chain "$WORK/run/chain.$AUDIT_EXT" "${train_opts[@]}" \
    >"$chain_log" 2>&1
rc=$?
train_id=$(awk '$1 == "train" {print $2}' "$chain_log")
audit_id=$(awk '$1 == "audit" {print $2}' "$chain_log")
note "chain.sh (exit $rc): training array ${train_id:-?}, audit ${audit_id:-?} with afterok:${train_id:-?}"
if [ "$rc" -eq 0 ] && [ -n "$train_id" ] && [ -n "$audit_id" ]; then
    check "chain: audit $audit_id depends on afterok:$train_id" \
        grep -q "afterok:${train_id}" <<<"$(scontrol show job "$audit_id")"
    final=$(wait_job_end "$audit_id" 90)
    t0_end=$(job_field "${train_id}_0" EndTime)
    t1_end=$(job_field "${train_id}_1" EndTime)
    a_start=$(job_field "$audit_id" StartTime)
    note "chain: train ${train_id}_0 $(job_field "${train_id}_0" JobState) at $t0_end," \
        "${train_id}_1 $(job_field "${train_id}_1" JobState) at $t1_end; audit $audit_id started $a_start, $final"
    show_tail "salcheck-train-${train_id}_1.out" 2
    check "chain: array task 0 wrote its model (seed 1, true labels)" [ -s models-chain/model-true-seed1.h5 ]
    check "chain: array task 1 wrote its model (seed 1, shuffled labels)" [ -s models-chain/model-shuffled-seed1.h5 ]
    check "chain: audit $audit_id of those models completed" [ "$final" = COMPLETED ]
    # ISO times compare as strings.
    check "chain: the audit started after every training task ended" \
        not_before "$a_start" "$t0_end" "$t1_end"
else
    fail "chain: chain.sh submits the training array and the audit"
    show_tail "$chain_log"
fi

# A failing training: Slurm must cancel the audit instead of running it.
SC_SALCHECK=/bin/false SC_TRAIN_SEEDS=1 SC_TRAIN_LABELS=true \
    SC_TRAIN_SBATCH_ARGS="--array=0-0 --ntasks=1 --time=10" SC_AUDIT_SBATCH_ARGS="--ntasks=1 --time=30" \
    bash "$ROOT/slurm/chain.sh" "$chain_job" models-bad "$WORK/run/never.$AUDIT_EXT" >"$chain_log" 2>&1
train_id=$(awk '$1 == "train" {print $2}' "$chain_log")
audit_id=$(awk '$1 == "audit" {print $2}' "$chain_log")
if [ -n "$train_id" ] && [ -n "$audit_id" ]; then
    final=$(wait_job_end "$audit_id" 60)
    note "chain with failing training ${train_id}: training $(job_field "${train_id}_0" JobState), audit $audit_id $final"
    check "chain: a failed training makes Slurm cancel the audit $audit_id (afterok)" [ "$final" = CANCELLED ]
    check "chain: the cancelled audit wrote nothing" [ ! -e "$WORK/run/never.$AUDIT_EXT" ]
else
    fail "chain: chain.sh submits a (failing) training array and the audit"
    show_tail "$chain_log"
fi

# ---- 7. stop (in finish) ----------------------------------------------------
finish
