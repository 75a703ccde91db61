#!/usr/bin/env bash
# run.sh - run a command inside the salcheck image on the build machine, as root, the
# way Apptainer runs it on a cluster: the image's file system (its salcheck, Open MPI,
# HDF5, Python), this machine's kernel, network and processes, the working directory
# bound at the same path (slurm/README.md, "Containers").
#
# Usage: [IMAGE=localhost/salcheck:latest] [BIND=DIR] bash slurm/container/run.sh CMD [ARG...]
#        bash slurm/container/run.sh demo [RANKS]     the demo audit with the image's salcheck
#        bash slurm/container/run.sh test [TARGET...] the tree's test tiers, built in the image
#   bash slurm/container/run.sh salcheck --help
#   bash slurm/container/run.sh bash -c 'cd /opt/salcheck/src && make test-unit'
#
# demo: `salcheck run` of the installed jobs/demo.ini on RANKS ranks (default 2) under
# the image's mpirun, then `salcheck report`, in BIND/build/container-demo (the phantom
# data, the trained models, results.h5 and the report stay there; --force starts the
# audit afresh, the models are reused when present). Prints the wall time of each step.
# test: the source tree at BIND (this repository, default) is copied to
# BIND/build/container-test/src without its build/ folder, built there with the image's
# compilers and libraries, and `make TARGET...` (default: test) runs in it; so the tree
# under test is the current one, not the image's copy (SC_CONTAINER_SRC=/opt/salcheck/src
# tests the image's own, with the objects its build left). Prints the wall times; the
# target's output ends with its TOTAL line.
#
# How the command is started (SC_CONTAINER_MODE=auto, the default, takes the first that
# works; podman, runc or chroot forces one):
#   podman  `podman run` with its configured OCI runtime;
#   runc    `podman run --runtime runc` with this shell's open-file limit and 4,096
#           processes (crun refuses cgroup v1/v2 hybrid hosts, and podman's default
#           rlimits exceed what some VMs allow: both were so on the development machine);
#   chroot  the image mounted as a writable container file system (podman create +
#           podman mount), the command chrooted into it in its own mount and PID
#           namespaces with /proc, /dev, /sys and the bound directory mounted: no cgroups
#           and no OCI runtime, as with Apptainer.
# The container is removed afterwards; the exit status is the command's.
set -euo pipefail
IMAGE=${IMAGE:-localhost/salcheck:latest}
BIND=${BIND:-$PWD}
MODE=${SC_CONTAINER_MODE:-auto}
usage() {
    echo "usage: bash slurm/container/run.sh CMD [ARG...] | demo [RANKS] | test [TARGET...]" >&2
    exit 2
}
[ $# -gt 0 ] || usage
case $MODE in auto | podman | runc | chroot) ;; *) echo "run.sh: SC_CONTAINER_MODE is auto, podman, runc or chroot (got '$MODE')" >&2; exit 2 ;; esac
ENVS=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
      OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)

# The two built-in jobs, as shell scripts run inside the image.
case $1 in
demo)
    ranks=${2:-2}
    [[ $ranks =~ ^[1-9][0-9]*$ ]] || { echo "run.sh demo: RANKS is a positive number (got '$ranks')" >&2; exit 2; }
    set -- bash -c '
        set -e
        mkdir -p build/container-demo && cd build/container-demo
        t0=$(date +%s)
        mpirun --oversubscribe -np "$1" salcheck run /opt/salcheck/share/salcheck/jobs/demo.ini --force
        t1=$(date +%s)
        salcheck report build/demo/results.h5 --out build/demo/report
        t2=$(date +%s)
        echo "container demo: salcheck run on $1 ranks $((t1 - t0)) s, report $((t2 - t1)) s (results and report in $PWD/build/demo)"' \
        demo "$ranks"
    ;;
test)
    shift
    [ $# -gt 0 ] || set -- test
    set -- bash -c '
        set -e
        src=${SC_CONTAINER_SRC:-$PWD}
        dst=$PWD/build/container-test/src
        rm -rf "$dst" && mkdir -p "$dst"
        excl=--exclude=./build  # the bound tree: built afresh in the image; the image'"'"'s own keeps its objects
        [ -z "${SC_CONTAINER_SRC:-}" ] || excl=--exclude=./build/container-test
        tar -C "$src" "$excl" --exclude=./.git -cf - . | tar -C "$dst" -xf -
        cd "$dst"
        t0=$(date +%s)
        nice -n 10 make -j"$(nproc)" >build.log 2>&1 || { tail -20 build.log; exit 1; }
        t1=$(date +%s)
        echo "container test: built $src in $((t1 - t0)) s"
        rc=0
        nice -n 10 make "$@" || rc=$?
        t2=$(date +%s)
        echo "container test: make $* took $((t2 - t1)) s, exit status $rc"
        exit $rc' \
        test "$@"
    ENVS+=("SC_CONTAINER_SRC=${SC_CONTAINER_SRC:-}")
    ;;
esac

podman_run() { # podman run ARGS... for the command
    local args=()
    for e in "${ENVS[@]}"; do args+=(-e "$e"); done
    podman run --rm --network host --ipc host -v "$BIND:$BIND" -w "$BIND" "${args[@]}" \
        "$@" --entrypoint "" "$IMAGE" "${CMD[@]}"
}
CMD=("$@")
RUNC_ARGS=(--runtime runc --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
if [ "$MODE" = auto ] || [ "$MODE" = podman ]; then
    if [ "$MODE" = podman ] || podman run --rm --entrypoint /bin/true "$IMAGE" >/dev/null 2>&1; then
        podman_run
        exit
    fi
fi
if [ "$MODE" = auto ] || [ "$MODE" = runc ]; then
    if [ "$MODE" = runc ] || { command -v runc >/dev/null &&
        podman run --rm "${RUNC_ARGS[@]}" --entrypoint /bin/true "$IMAGE" >/dev/null 2>&1; }; then
        [ "$MODE" = runc ] || echo "container: podman's default runtime cannot start a container here; using runc" >&2
        podman_run "${RUNC_ARGS[@]}"
        exit
    fi
fi

[ "$MODE" = chroot ] || echo "container: podman run cannot start a container here; running chrooted into the image" >&2
ctr=$(podman create --entrypoint /bin/true "$IMAGE")
# shellcheck disable=SC2317  # called by the trap
cleanup() { podman umount "$ctr" >/dev/null 2>&1 || true; podman rm -f "$ctr" >/dev/null 2>&1 || true; }
trap cleanup EXIT
root=$(podman mount "$ctr")
set +e
unshare --mount --pid --fork --propagation private bash -s -- "$root" "$BIND" "${ENVS[@]}" -- "$@" <<'EOS'
set -e
root=$1 bind=$2; shift 2
envs=()
while [ "$1" != -- ]; do envs+=("$1"); shift; done
shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount -t tmpfs tmpfs "$root/tmp"
mkdir -p "$root$bind"
mount --bind "$bind" "$root$bind"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
cd "$root$bind"
exec chroot "$root" /usr/bin/env -i "${envs[@]}" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$bind" "$@"
EOS
rc=$?
exit $rc
