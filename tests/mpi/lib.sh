# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are read by the scripts that source this file
# lib.sh - what the tests/mpi scripts share. Sourced from the repository root
# (each script cds there first). Sets ROOT, BUILD, SALCHECK (an absolute path),
# PY and MPIRUN; lets Open MPI run as root, OpenBLAS use one thread and HDF5
# open files without locking; starts the pass and fail counters; defines
#   ok NAME, bad NAME     count one passed or failed check and print it
#   py_check NAME CMD...  run a Python check that ends with "N passed, N
#                         failed"; one check, passed when it exits 0 with
#                         that line (its [FAIL] lines and, on failure, its
#                         last lines are printed)
#   finish                print "N passed, N failed"; its status is the
#                         script's (non-zero on any failure)
ROOT=$PWD
BUILD=${BUILD:-build}
SALCHECK=$ROOT/${SALCHECK:-$BUILD/salcheck}
PY=${SALCHECK_PYTHON:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export HDF5_USE_FILE_LOCKING=FALSE
MPIRUN="mpirun --oversubscribe"
pass=0; fail=0
ok() { echo "[ok]   $1"; pass=$((pass+1)); }
bad() { echo "[FAIL] $1"; fail=$((fail+1)); }
py_check() {
    local name=$1; shift
    local out; out=$("$@" 2>&1); local rc=$?
    echo "$out" | grep -E '^\[FAIL\]' | sed 's/^/    /'
    local line; line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ "$rc" -eq 0 ] && [ -n "$line" ]; then ok "$name ($line)"; else bad "$name ($line, exit $rc)"; echo "$out" | tail -5; fi
}
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
