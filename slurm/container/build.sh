#!/usr/bin/env bash
# build.sh - build the salcheck container image from nothing but the Debian archive
# (slurm/README.md, "Containers"), as root:
#   1. debootstrap a minimal Debian 12 into a directory and import it into podman as
#      localhost/salcheck-debian12-base (skipped when that image exists);
#   2. podman build slurm/container/Containerfile with the tracked files of this tree
#      as the context -> localhost/salcheck:latest, saved as salcheck.tar (OCI archive);
#   3. with apptainer (or singularity) on PATH: salcheck.sif from that archive.
# Usage: [MIRROR=URL] [WITH_TESTS=yes|no] [OUT=DIR] [SC_PODMAN_ISOLATION=chroot|oci] bash slurm/container/build.sh
# Needs: debootstrap podman (Debian 12 packages); apptainer for step 3.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/build/container}
MIRROR=${MIRROR:-$(awk '/^deb / && /bookworm/ {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)}
WITH_TESTS=${WITH_TESTS:-yes}
BASE=localhost/salcheck-debian12-base:latest
mkdir -p "$OUT"
say() { echo "container: $*"; }

if ! podman image exists "$BASE"; then
    rootfs=$OUT/rootfs
    rm -rf "$rootfs"
    say "debootstrap bookworm into $rootfs${MIRROR:+ from $MIRROR}"
    debootstrap --variant=minbase bookworm "$rootfs" ${MIRROR:+"$MIRROR"}
    # the same apt sources as this machine (the archive the image may use)
    [ -n "$MIRROR" ] && echo "deb $MIRROR bookworm main" >"$rootfs/etc/apt/sources.list"
    tar -C "$rootfs" -c . | podman import - "$BASE"
    rm -rf "$rootfs"
fi

ctx=$OUT/context
rm -rf "$ctx"
mkdir -p "$ctx"
git ls-files -z | xargs -0 tar -cf - | tar -xf - -C "$ctx"
say "podman build (tests inside: $WITH_TESTS)"
# chroot isolation: RUN steps work where crun may not set rlimits or cgroups (VMs, nested
# containers); SC_PODMAN_ISOLATION=oci for podman's default
podman build --isolation="${SC_PODMAN_ISOLATION:-chroot}" --build-arg BASE="$BASE" --build-arg WITH_TESTS="$WITH_TESTS" \
    -f "$ROOT/slurm/container/Containerfile" -t localhost/salcheck:latest "$ctx"
podman save --format oci-archive -o "$OUT/salcheck.tar" localhost/salcheck:latest
say "image: localhost/salcheck:latest, archive $OUT/salcheck.tar"
if command -v apptainer >/dev/null 2>&1 || command -v singularity >/dev/null 2>&1; then
    "$(command -v apptainer || command -v singularity)" build --force "$OUT/salcheck.sif" "oci-archive://$OUT/salcheck.tar"
    say "Apptainer image: $OUT/salcheck.sif"
else
    say "no apptainer here: on the cluster, apptainer build salcheck.sif oci-archive://salcheck.tar"
fi
