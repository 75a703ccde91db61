#!/usr/bin/env bash
# test_container_recipe.sh - the container recipe without building the image (building
# it takes most of an hour: make container). Checks that:
#   - build.sh and run.sh parse (bash -n);
#   - build.sh reads the Debian mirror from an apt configuration in one-line and in
#     deb822 format (a bookworm source; other suites skipped), and refuses one without;
#   - the packages the Containerfile installs come from the Makefile's lists
#     (print-deps-build, print-deps-test), which its package step can read from the
#     files it copies for it (the Makefile includes tests/fuzz/fuzz.mk);
#   - the Containerfile takes the mirror as a build argument and names no archive host.
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
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
