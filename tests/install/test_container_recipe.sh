#!/usr/bin/env bash
# test_container_recipe.sh - the container recipe without building the image (building
# it takes most of an hour: make container). Checks that:
#   - build.sh and run.sh parse (bash -n);
#   - build.sh reads the Debian mirror from an apt configuration in one-line and in
#     deb822 format (a bookworm source; other suites skipped), and refuses one without;
#   - the packages the Containerfile installs come from the Makefile's lists
#     (print-deps-build, print-deps-test), which its package step can read from the
#     files it copies for it (the Makefile includes tests/fuzz/fuzz.mk);
#   - the Containerfile takes the mirror as a build argument and names no archive host;
#   - run.sh, with a stand-in podman (and runc) on PATH that records its arguments:
#     bad arguments refused, podman run used when it works, the runc runtime with this
#     shell's limits when only that works, the chroot path when neither does, and the
#     demo and test modes hand the image the commands they document.
# Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
pass=0
fail=0
verdict() { if [ "$2" -eq 0 ]; then echo "[PASS] $1"; pass=$((pass + 1)); else echo "[FAIL] $1"; fail=$((fail + 1)); return 1; fi; }
tmp=$(mktemp -d /tmp/sc-recipe.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

bash -n slurm/container/build.sh && bash -n slurm/container/run.sh
verdict "build.sh and run.sh parse" $?

mkdir -p "$tmp/one/sources.list.d" "$tmp/deb822/sources.list.d" "$tmp/none/sources.list.d"
printf 'deb http://mirror.example/debian-security bookworm-security main\n# deb http://old.example/debian bookworm main\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n' \
    >"$tmp/one/sources.list"
printf 'Types: deb\nURIs: http://mirror.example/other\nSuites: bullseye\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n' \
    >"$tmp/deb822/sources.list.d/debian.sources"
m1=$(APT_ETC=$tmp/one bash slurm/container/build.sh --print-mirror 2>&1)
m2=$(APT_ETC=$tmp/deb822 bash slurm/container/build.sh --print-mirror 2>&1)
[ "$m1" = http://mirror.example/debian ] && [ "$m2" = http://mirror.example/debian ]
verdict "the mirror from one-line and deb822 apt sources (got '$m1', '$m2')" $?
m3=$(APT_ETC=$tmp/none bash slurm/container/build.sh --print-mirror 2>&1)
rc=$?
[ $rc -ne 0 ] && [[ "$m3" == *"pass MIRROR=URL"* ]]
verdict "no bookworm source: refused, asking for MIRROR" $?
m4=$(MIRROR=http://given.example/debian APT_ETC=$tmp/none bash slurm/container/build.sh --print-mirror 2>&1)
[ "$m4" = http://given.example/debian ]
verdict "MIRROR=URL overrides the apt configuration" $?

# the files the Containerfile copies for its package step, alone in a directory, as there
mkdir -p "$tmp/deps"
while read -r _ from to; do
    mkdir -p "$tmp/deps/$(dirname "${to#/tmp/salcheck-deps/}")"
    cp "$from" "$tmp/deps/${to#/tmp/salcheck-deps/}"
done < <(grep -E '^COPY [^ ]+ /tmp/salcheck-deps/' slurm/container/Containerfile)
b=$(cd / && make -s -C "$tmp/deps" print-deps-build 2>/dev/null)
t=$(cd / && make -s -C "$tmp/deps" print-deps-test 2>/dev/null)
grep -q 'make -s -C /tmp/salcheck-deps print-deps-build' slurm/container/Containerfile &&
    grep -q 'make -s -C /tmp/salcheck-deps print-deps-test' slurm/container/Containerfile &&
    [ "$b" = "$(make -s print-deps-build)" ] && [ "$t" = "$(make -s print-deps-test)" ] &&
    [[ " $b " == *" libopenmpi-dev "* && " $b " == *" libhdf5-openmpi-dev "* && " $t " == *" libpmix-dev "* ]]
verdict "the Containerfile's package step reads the Makefile's lists from the files it copies" $?
grep -q '^ARG MIRROR' slurm/container/Containerfile && ! grep -Eq 'https?://[a-z]' slurm/container/Containerfile
verdict "the Containerfile takes the mirror as a build argument and names no host" $?

# run.sh with stand-ins: podman logs its arguments one per line (a blank line ends a
# call) and succeeds as PODMAN_OK says: "all", "runc" (only with --runtime runc) or
# "none" (no run works; create/mount/umount/rm succeed, so run.sh takes its chroot path,
# whose unshare is a stand-in that records the command).
mkdir -p "$tmp/bin"
cat >"$tmp/bin/podman" <<'EOS'
#!/bin/bash
printf '%s\n' "$@" >>"$PODMAN_LOG"; echo >>"$PODMAN_LOG"
case $1 in
run) case $PODMAN_OK in all) exit 0 ;; runc) [[ " $* " == *" --runtime runc "* ]] && exit 0; exit 126 ;; *) exit 126 ;; esac ;;
create) echo ctr1 ;;
mount) echo "$STUB_ROOT" ;;
esac
exit 0
EOS
printf '#!/bin/sh\nexit 0\n' >"$tmp/bin/runc"
printf '#!/bin/bash\nprintf "%%s\\n" "$@" >>"$UNSHARE_LOG"\nexit 0\n' >"$tmp/bin/unshare"
chmod +x "$tmp/bin/podman" "$tmp/bin/runc" "$tmp/bin/unshare"
stub() { # PODMAN_OK, run.sh args...: run.sh under the stand-ins; the podman log in $tmp/podman.log
    local ok=$1
    shift
    rm -f "$tmp/podman.log" "$tmp/unshare.log"
    PATH=$tmp/bin:$PATH PODMAN_LOG=$tmp/podman.log UNSHARE_LOG=$tmp/unshare.log PODMAN_OK=$ok \
        STUB_ROOT=$tmp/root BIND=$tmp bash slurm/container/run.sh "$@" 2>"$tmp/run.err"
}
stub all demo x; rc=$?
grep -q "RANKS is a positive number" "$tmp/run.err"; msg=$?
SC_CONTAINER_MODE=bogus stub all true; rc2=$?
[ $rc -eq 2 ] && [ $msg -eq 0 ] && [ $rc2 -eq 2 ] && grep -q "SC_CONTAINER_MODE is auto" "$tmp/run.err" &&
    [ ! -e "$tmp/podman.log" ]
verdict "run.sh refuses a bad rank count and an unknown SC_CONTAINER_MODE before starting anything" $?
stub all demo 3
grep -q -- '--network' "$tmp/podman.log" && ! grep -q -- '--runtime' "$tmp/podman.log" &&
    grep -q 'mpirun --oversubscribe -np "$1" salcheck run /opt/salcheck/share/salcheck/jobs/demo.ini --force' "$tmp/podman.log" &&
    grep -q 'salcheck report build/demo/results.h5' "$tmp/podman.log" && grep -qx 3 "$tmp/podman.log" &&
    grep -qx "$tmp" "$tmp/podman.log"
verdict "run.sh demo 3: podman run of the installed demo job on 3 ranks, then the report, in the bound directory" $?
stub runc test test-unit
hn=$(ulimit -Hn)
grep -qx -- '--runtime' "$tmp/podman.log" && grep -qx "nofile=$hn:$hn" "$tmp/podman.log" &&
    grep -q -- "--exclude=./build" "$tmp/podman.log" && grep -q 'make "\$@"' "$tmp/podman.log" &&
    grep -qx test-unit "$tmp/podman.log" && grep -q "using runc" "$tmp/run.err"
verdict "run.sh test test-unit: the runc runtime with this shell's open-file limit when only it works; the tree copied without build/ and made there" $?
stub none test
grep -qx create "$tmp/podman.log" && grep -qx mount "$tmp/podman.log" && grep -qx umount "$tmp/podman.log" &&
    grep -qx rm "$tmp/podman.log" && grep -qx -- '--pid' "$tmp/unshare.log" && grep -qx "$tmp/root" "$tmp/unshare.log" &&
    grep -qx test "$tmp/unshare.log" && grep -q "chrooted" "$tmp/run.err"
verdict "run.sh test with no working podman run: the image mounted, chrooted in new mount and PID namespaces, unmounted and removed" $?
SC_CONTAINER_MODE=chroot stub all salcheck --help
! grep -qx run "$tmp/podman.log" && grep -qx -- '--help' "$tmp/unshare.log"
verdict "SC_CONTAINER_MODE=chroot forces the chroot path" $?
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
