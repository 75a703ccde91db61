#!/usr/bin/env bash
# test_install.sh - `make PREFIX=DIR install` as a user without root, and the
# installed binary at work (README "Installing without root").
#
# A copy of what the install rule reads (the Makefile, the job files, the
# Slurm scripts, the documentation and the built binary) goes to a scratch
# directory; as root the test runs as the user nobody (setpriv), otherwise as
# the calling user. It checks:
#   - make PREFIX=<scratch>/prefix install succeeds and puts the binary, the job
#     files, the Slurm scripts and the documentation there, owned by the user;
#     it writes nothing into the tree it installs from; DESTDIR stages the same;
#   - a prefix the user cannot write is refused with a non-zero status;
#   - the dependency step without Debian (DEPS=pkg-config) finds modules only
#     through PKG_CONFIG_PATH: an empty search path names every missing module,
#     a module of another name (BLAS_PC=...) is taken from PKG_CONFIG_PATH with its
#     flags, and MPI/HDF5 come from the compiler wrappers (MPI_PC=mpicc);
#   - the installed salcheck prints its usage, and runs tests/install/mini.ini
#     (phantom data, one model trained, two methods) to a complete results file.
# Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
pass=0
fail=0
ok() { echo "[PASS] $1"; pass=$((pass + 1)); }
bad() { echo "[FAIL] $1"; fail=$((fail + 1)); }
# verdict NAME STATUS: the check NAME passed when STATUS (of the test just run) is 0
verdict() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1"; return 1; fi; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

if [ ! -x "$BUILD/salcheck" ]; then
    bad "no $BUILD/salcheck (build it first)"
    finish
fi
tmp=$(mktemp -d /tmp/sc-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
src=$tmp/src
mkdir -p "$src/$BUILD" "$src/tests/fuzz" "$src/slurm" "$tmp/home" "$tmp/jobdir"
cp -p Makefile README.md "$src/"
cp -p tests/fuzz/fuzz.mk "$src/tests/fuzz/"
cp -rp jobs "$src/"
cp -p slurm/README.md slurm/*.sbatch slurm/chain.sh "$src/slurm/"
cp -p "$BUILD/salcheck" "$src/$BUILD/salcheck"
cp tests/install/mini.ini "$tmp/jobdir/"

# the user: nobody when this runs as root
if [ "$(id -u)" = 0 ]; then
    chown -R 65534:65534 "$tmp/home" "$tmp/jobdir"
    as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$tmp/home" TMPDIR="$tmp/home" "$@"; }
    user=nobody
else
    as_user() { env HOME="$tmp/home" TMPDIR="$tmp/home" "$@"; }
    user=$(id -un)
fi
mkdir -p "$tmp/stage"
[ "$(id -u)" = 0 ] && chown 65534:65534 "$tmp/stage"
# install without rebuilding the binary (-o: it is taken as it is)
imake() { as_user make -s -C "$src" BUILD="$BUILD" -o "$BUILD/salcheck" "$@"; }

touch "$tmp/before"
sleep 1
prefix=$tmp/stage/prefix
imake PREFIX="$prefix" install >"$tmp/install.log" 2>&1; verdict "make PREFIX=DIR install as $user (exit 0)" $? || cat "$tmp/install.log"
[ -x "$prefix/bin/salcheck" ] && [ -f "$prefix/share/salcheck/jobs/demo.ini" ] &&
     [ -x "$prefix/share/salcheck/slurm/audit.sbatch" ] && [ -x "$prefix/share/salcheck/slurm/chain.sh" ] &&
     [ -f "$prefix/share/doc/salcheck/README.md" ] && [ -f "$prefix/share/doc/salcheck/README-slurm.md" ]; verdict "installed: bin/salcheck executable, jobs, Slurm scripts, documentation" $?
[ -z "$(find "$prefix" ! -user "$user" | head -1)" ] && [ -n "$(find "$prefix" -type f | head -1)" ]; verdict "installed files belong to $user" $?
cmp -s "$prefix/bin/salcheck" "$BUILD/salcheck"; verdict "the installed binary is the built one" $?
[ -z "$(find "$src" -newer "$tmp/before" | head -1)" ]; verdict "nothing written into the tree installed from" $?

imake PREFIX=/opt/salcheck DESTDIR="$tmp/stage/dest" install >"$tmp/destdir.log" 2>&1 && [ -x "$tmp/stage/dest/opt/salcheck/bin/salcheck" ] &&
     [ "$(cd "$tmp/stage/dest/opt/salcheck" && find . | sort)" = "$(cd "$prefix" && find . | sort)" ]; verdict "DESTDIR stages the same files under DESTDIR/PREFIX" $?

mkdir -p "$tmp/readonly"
chmod 555 "$tmp/readonly"
! imake PREFIX="$tmp/readonly/p" install >"$tmp/ro.log" 2>&1; verdict "a prefix $user cannot write is refused (non-zero status)" $?

# the dependency step through pkg-config only
mkdir -p "$tmp/pc-empty" "$tmp/pc"
out=$(as_user env PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR="$tmp/pc-empty" \
      make -s -C "$src" BUILD="$tmp/nobuild" DEPS_STAMP="$tmp/home/stamp" DEPS=pkg-config \
      MPI_PC=ompi-c HDF5_PC=hdf5 "$tmp/home/stamp" 2>&1)
rc=$?
[ $rc -ne 0 ] && [[ "$out" == *"pkg-config does not find: ompi-c hdf5 openblas libpng inih"* ]]; verdict "DEPS=pkg-config with an empty search path: refused, naming the modules" $? ||
    echo "    $out"
if pkg-config --exists openblas 2>/dev/null && command -v mpicc >/dev/null; then
    cat >"$tmp/pc/siteblas.pc" <<EOF
Name: siteblas
Description: a site's BLAS module under another name
Version: 1
Cflags: -I/opt/siteblas/include -DSITEBLAS_MARK
Libs: -L/opt/siteblas/lib -lopenblas
EOF
    flags=$(as_user env PKG_CONFIG_PATH="$tmp/pc" make -s -C "$src" BUILD="$BUILD" DEPS=pkg-config \
            BLAS_PC=siteblas MPI_PC=mpicc print-flags 2>&1)
    [[ "$flags" == *"-DSITEBLAS_MARK"* && "$flags" == *"-L/opt/siteblas/lib -lopenblas"* &&
            "$flags" == *"-Wl,-rpath,/opt/siteblas/lib"* ]]; verdict "BLAS_PC=siteblas is read from PKG_CONFIG_PATH (its flags, its run path)" $? || echo "    $flags"
    [[ "$flags" == *"-lmpi"* && "$flags" == *"$(mpicc --showme:incdirs 2>/dev/null | cut -d" " -f1)"* ]]; verdict "MPI_PC=mpicc takes MPI from the wrapper (-lmpi and its include directory)" $? ||
        echo "    $flags"
else
    echo "[SKIP] pkg-config module openblas or mpicc missing: the module checks need them"
fi

# the installed binary
usage=$(as_user "$prefix/bin/salcheck" --help 2>&1)
[[ "$usage" == *"usage: salcheck"* && "$usage" == *" run"* ]]; verdict "installed salcheck --help prints the commands" $?
(cd "$tmp/jobdir" && as_user env OPENBLAS_NUM_THREADS=1 "$prefix/bin/salcheck" run mini.ini) >"$tmp/run.log" 2>&1
rc=$?
[ $rc -eq 0 ]; verdict "installed salcheck runs mini.ini as $user (exit 0)" $? || tail -5 "$tmp/run.log"
info=$(as_user "$prefix/bin/salcheck" info "$tmp/jobdir/mini.h5" 2>&1)
[[ "$info" == *"status: complete"* ]]; verdict "its results file is complete" $? || echo "$info" | head -5
finish
