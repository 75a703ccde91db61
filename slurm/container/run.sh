#!/usr/bin/env bash
# run.sh - run a command inside the salcheck image on the build machine, as root, the
# way Apptainer runs it on a cluster: the image's file system (its salcheck, Open MPI,
# HDF5, Python), this machine's kernel, network and processes, the working directory
# bound at the same path (slurm/README.md, "Containers").
#
# Usage: [IMAGE=localhost/salcheck:latest] [BIND=DIR] bash slurm/container/run.sh CMD [ARG...]
#   bash slurm/container/run.sh salcheck --help
#   bash slurm/container/run.sh bash -c 'cd /opt/salcheck/src && make test-unit'
#
# With `podman run` where it works. Where podman's OCI runtime cannot start a
# container (crun refuses cgroup v1/v2 hybrid hosts and rlimits in some VMs), the
# image is mounted as a writable container file system (podman create + podman mount)
# and the command runs chrooted into it in its own mount and PID namespaces, with
# /proc, /dev, /sys and the bound directory mounted: no cgroups, as with Apptainer.
# The container is removed afterwards; the exit status is the command's.
set -euo pipefail
IMAGE=${IMAGE:-localhost/salcheck:latest}
BIND=${BIND:-$PWD}
[ $# -gt 0 ] || { echo "usage: bash slurm/container/run.sh CMD [ARG...]" >&2; exit 2; }
ENVS=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
      OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)

if podman run --rm --entrypoint /bin/true "$IMAGE" >/dev/null 2>&1; then
    args=()
    for e in "${ENVS[@]}"; do args+=(-e "$e"); done
    exec podman run --rm --network host --ipc host -v "$BIND:$BIND" -w "$BIND" "${args[@]}" \
        --entrypoint "" "$IMAGE" "$@"
fi

echo "container: podman run cannot start a container here; running chrooted into the image" >&2
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
