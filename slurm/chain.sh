#!/bin/bash
# chain.sh - submit the training array, then the audit that starts only when
# every training task has succeeded (--dependency=afterok).
#
# Usage:  slurm/chain.sh [--dry-run] JOB.ini MODEL_DIR OUT.h5 [salcheck train options...]
#   JOB.ini    the audit's job file; its [model.*] sections name the files the
#              array writes (file = MODEL_DIR/model-<labels>-seed<seed>.h5, train = no)
#   MODEL_DIR  passed to slurm/train.sbatch
#   OUT.h5     passed to slurm/audit.sbatch
#   the other arguments go to `salcheck train` (--data DIR --arch NAME ...)
#   --dry-run  print the sbatch commands instead of submitting them
#
# Extra sbatch options for each job, word-split (the #SBATCH lines in the
# scripts are the defaults):
#   SC_TRAIN_SBATCH_ARGS="--array=0-1 --time=30"  SC_AUDIT_SBATCH_ARGS="--nodes=2"
# The SC_* site settings of the two scripts (SC_MODULES, SC_LAUNCHER,
# SC_TRAIN_SEEDS, ...) pass through the environment. If a training task fails,
# Slurm cancels the audit (--kill-on-invalid-dep=yes) instead of leaving it
# pending forever. Prints the two job ids as "train <id>" and "audit <id>".
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
SBATCH=${SBATCH:-sbatch}
dry_run=0
if [ "${1:-}" = --dry-run ]; then
    dry_run=1
    shift
fi
if [ $# -lt 3 ]; then
    echo "usage: $0 [--dry-run] JOB.ini MODEL_DIR OUT.h5 [salcheck train options...]" >&2
    exit 2
fi
job_file=$1
model_dir=$2
out_file=$3
shift 3
read -ra train_opts <<<"${SC_TRAIN_SBATCH_ARGS:-}"
read -ra audit_opts <<<"${SC_AUDIT_SBATCH_ARGS:-}"

if [ ! -r "$job_file" ]; then
    echo "chain.sh: cannot read the job file '$job_file'" >&2
    exit 2
fi

if [ "$dry_run" -eq 1 ]; then
    echo "$SBATCH --parsable ${train_opts[*]} $here/train.sbatch $model_dir $*"
    echo "$SBATCH --parsable --dependency=afterok:<train id> --kill-on-invalid-dep=yes ${audit_opts[*]} $here/audit.sbatch $job_file $out_file"
    exit 0
fi

# --parsable prints "id" or "id;cluster".
train_id=$("$SBATCH" --parsable "${train_opts[@]}" "$here/train.sbatch" "$model_dir" "$@") || {
    echo "chain.sh: submitting the training array failed" >&2
    exit 1
}
train_id=${train_id%%;*}
echo "train $train_id"

audit_id=$("$SBATCH" --parsable --dependency="afterok:$train_id" --kill-on-invalid-dep=yes \
    "${audit_opts[@]}" "$here/audit.sbatch" "$job_file" "$out_file") || {
    echo "chain.sh: submitting the audit failed; the training array $train_id is queued (scancel $train_id to drop it)" >&2
    exit 1
}
audit_id=${audit_id%%;*}
echo "audit $audit_id"
