#!/usr/bin/env bash
# plan_check.sh - `salcheck run JOB --plan` against the measured cost of the run
# (slurm/README.md, "How close it is").
#
# Usage: BUILD=build bash bench/plan_check.sh [RANKS] JOB.ini[:DIR] ...
# For each job: in its directory DIR (default: the repository; a test job's
# relative paths want a scratch directory, created when missing), the plan, then
# the run under /usr/bin/time; when the job trains models that were not there,
# the plan and the run again with the models cached (the audit alone). The
# measured cost is the CPU time (user + sys) of mpirun and every rank: it does not
# grow with other load on the machine the way wall time does (cache and memory
# bandwidth shared with other work still slow it somewhat). Part of it is not work:
# a rank waiting for another inside MPI (the root's probe for requests, a worker
# waiting for its next item, the collectives of the training and of parallel HDF5,
# the other ranks while the root writes the summary) polls in Open MPI's progress
# loop and burns CPU for as long as the wait lasts. bench/mpi_wait_cpu.c, preloaded
# into every rank, measures that CPU time through MPI's profiling interface; the
# measured work is the CPU time minus it. The load average at the start and end of
# each run is printed beside it. Prints one Markdown row per run: plan work core-s
# (maps + pairs + training + start-up x ranks + summary), plan allocation core-s
# (ranks x the simulated wall on dedicated cores), the measured CPU-s, the part of it
# spent waiting in MPI, the measured work (the difference), the wall time, and plan
# work / measured work.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
BUILD=${BUILD:-build}
SALCHECK=$ROOT/$BUILD/salcheck
RANKS=2
if [[ ${1:-} =~ ^[0-9]+$ ]]; then RANKS=$1; shift; fi
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
LOG=${LOG:-$ROOT/$BUILD/plan-check}
[ -x /usr/bin/time ] || { echo "plan_check.sh: needs GNU time (/usr/bin/time; Debian package time)" >&2; exit 1; }
mkdir -p "$LOG"
WAITLIB=$ROOT/$BUILD/bench/libmpi_wait_cpu.so
if [ ! -e "$WAITLIB" ] || [ bench/mpi_wait_cpu.c -nt "$WAITLIB" ]; then
    mkdir -p "$(dirname "$WAITLIB")"
    ${MPICC:-mpicc} -O2 -Wall -Wextra -shared -fPIC -o "$WAITLIB" bench/mpi_wait_cpu.c ||
        { echo "plan_check.sh: cannot build $WAITLIB" >&2; exit 1; }
fi

# plan_work FILE RANKS: work core-seconds and allocation core-seconds from a plan's output
plan_numbers() {
    awk -v R="$2" '
        /^  maps phase/   { gsub(/[()]/, ""); maps = $(NF - 1) }
        /^  pairs phase/  { gsub(/[()]/, ""); pairs = $(NF - 1) }
        /^  training/     { train = $2 * 3600 }
        /^  start-up/     { setup = $2; summary = $(NF - 3) }
        /^\| [0-9]+ \| / && !row { split($0, c, "|"); alloc = c[8] * 3600; row = 1 }
        END { printf "%.1f %.1f\n", maps + pairs + train + setup * R + summary, alloc }' "$1"
}

row() { # LABEL PLANFILE TIMEFILE WAITFILE LOADS
    local work alloc wall user sys cpu waits
    read -r work alloc < <(plan_numbers "$2" "$RANKS")
    read -r wall user sys < "$3"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
    # "mpi-wait rank R of N: cpu S s, in MPI waits W s, ..." from every rank
    waits=$(awk '/^mpi-wait rank/ { w += $12; n++ } END { if (n) print w; else print "nan" }' "$4")
    printf '| %s | %d | %.0f | %.0f | %.1f | %.1f | %.1f | %.0f | %s | %.2f |\n' "$1" "$RANKS" "$work" \
        "$alloc" "$cpu" "$waits" "$(awk -v c="$cpu" -v w="$waits" 'BEGIN { print c - w }')" "$wall" "$5" \
        "$(awk -v p="$work" -v c="$cpu" -v w="$waits" 'BEGIN { print p / (c - w) }')"
}

echo "| job | ranks | plan work core-s | plan allocation core-s | measured CPU-s | in MPI waits | measured work CPU-s | wall s | load avg start-end | plan work / measured work |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for spec in "$@"; do
    job=${spec%%:*}
    dir=$ROOT
    [ "$spec" != "$job" ] && dir=${spec#*:}
    name=$(basename "$job" .ini)
    [ "${job:0:1}" = / ] || job=$ROOT/$job
    mkdir -p "$dir"
    for pass in 1 2; do
        (cd "$dir" && "$SALCHECK" run "$job" --plan --cores-per-node "$RANKS") >"$LOG/$name-plan$pass.txt" 2>&1 ||
            { echo "plan of $job failed: $LOG/$name-plan$pass.txt" >&2; break; }
        trains=$(grep -c 'to be trained' "$LOG/$name-plan$pass.txt")
        l0=$(cut -d' ' -f1 /proc/loadavg)
        rm -f "$LOG/$name-waits$pass.txt"
        (cd "$dir" && /usr/bin/time -f '%e %U %S' -o "$LOG/$name-time$pass.txt" \
            mpirun --oversubscribe -np "$RANKS" -x LD_PRELOAD="$WAITLIB" \
            -x SC_MPI_WAIT_LOG="$LOG/$name-waits$pass.txt" "$SALCHECK" run "$job" --force) \
            >"$LOG/$name-run$pass.txt" 2>&1 || { echo "run of $job failed: $LOG/$name-run$pass.txt" >&2; break; }
        l1=$(cut -d' ' -f1 /proc/loadavg)
        label="$(basename "$job")"
        [ "$trains" -gt 0 ] && label="$label (training included)"
        [ "$pass" = 2 ] && label="$label (models cached)"
        row "$label" "$LOG/$name-plan$pass.txt" "$LOG/$name-time$pass.txt" "$LOG/$name-waits$pass.txt" "$l0-$l1"
        [ "$trains" -gt 0 ] || break
    done
done
