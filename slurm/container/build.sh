#!/usr/bin/env bash
# build.sh - build the salcheck container image from nothing but the Debian archive
# (slurm/README.md, "Containers"), as root:
#   1. debootstrap a minimal Debian 12 into a directory and import it into podman as
#      localhost/salcheck-debian12-base (skipped when that image exists, unless
#      SC_REBUILD_BASE=1);
#   2. podman build slurm/container/Containerfile with the tracked files of this tree
#      as the context -> localhost/salcheck:latest, saved as salcheck.tar (OCI archive);
#   3. with apptainer (or singularity) on PATH: salcheck.sif from that archive.
# The Debian mirror is a build argument: MIRROR=URL, by default the first bookworm
# source of this machine's apt configuration (one-line or deb822 format). It is
# used by debootstrap and written into the image's apt sources.
# Usage: [MIRROR=URL] [WITH_TESTS=yes|no] [OUT=DIR] [SC_REBUILD_BASE=1]
#        [SC_PODMAN_ISOLATION=chroot|oci] bash slurm/container/build.sh
#        bash slurm/container/build.sh --print-mirror   (the mirror it would use; APT_ETC=DIR
#        reads another apt configuration than /etc/apt)
# Needs: debootstrap podman (Debian 12 packages); apptainer for step 3.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/build/container}
WITH_TESTS=${WITH_TESTS:-yes}
BASE=localhost/salcheck-debian12-base:latest
IMAGE=${IMAGE:-localhost/salcheck:latest}
say() { echo "container: $*"; }

# The first bookworm mirror of the apt configuration: "deb URL bookworm ..." lines, or
# deb822 stanzas (URIs: URL / Suites: bookworm ...).
apt_mirror() {
    local f
    local etc=${APT_ETC:-/etc/apt}
    for f in "$etc/sources.list" "$etc"/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '$1 == "deb" && / bookworm( |$)/ { u = $2; if (u ~ /^\[/) u = $3; print u; exit }' "$f"
    done
    for f in "$etc"/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
            { uri = ""; ok = 0
              for (i = 1; i <= NF; i++) {
                  if ($i ~ /^URIs:/) { split($i, a, " "); uri = a[2] }
                  if ($i ~ /^Suites:/ && $i ~ / bookworm( |$)/) ok = 1 }
              if (ok && uri != "") { print uri; exit } }' "$f"
    done
    return 0
}
MIRROR=${MIRROR:-$(apt_mirror | head -n 1)}
[ -n "$MIRROR" ] || { echo "container: no bookworm source in ${APT_ETC:-/etc/apt}; pass MIRROR=URL" >&2; exit 1; }
if [ "${1:-}" = --print-mirror ]; then echo "$MIRROR"; exit 0; fi
mkdir -p "$OUT"

[ "${SC_REBUILD_BASE:-0}" = 1 ] && podman image exists "$BASE" && podman rmi -f "$BASE" >/dev/null
if ! podman image exists "$BASE"; then
    rootfs=$OUT/rootfs
    rm -rf "$rootfs"
    say "debootstrap bookworm into $rootfs from $MIRROR"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR"
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
podman build --isolation="${SC_PODMAN_ISOLATION:-chroot}" --build-arg BASE="$BASE" \
    --build-arg MIRROR="$MIRROR" --build-arg WITH_TESTS="$WITH_TESTS" \
    -f "$ROOT/slurm/container/Containerfile" -t "$IMAGE" "$ctx"
rm -f "$OUT/salcheck.tar"
podman save --format oci-archive -o "$OUT/salcheck.tar" "$IMAGE"
say "image: $IMAGE, archive $OUT/salcheck.tar ($(du -h "$OUT/salcheck.tar" | cut -f1))"
if command -v apptainer >/dev/null 2>&1 || command -v singularity >/dev/null 2>&1; then
    "$(command -v apptainer || command -v singularity)" build --force "$OUT/salcheck.sif" "oci-archive://$OUT/salcheck.tar"
    say "Apptainer image: $OUT/salcheck.sif"
else
    say "no apptainer here: on the cluster, apptainer build salcheck.sif oci-archive://salcheck.tar"
fi
