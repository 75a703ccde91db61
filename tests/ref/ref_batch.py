#!/usr/bin/python3
"""Run several reference scripts in one Python process (importing torch once).

usage: ref_batch.py JOBS.txt
Each line of JOBS.txt is one command: a script path under tests/ref and its
arguments, separated by spaces (no quoting). Each script runs as __main__
with that argv; a script that exits non-zero is reported. Exits 1 when any
failed.
"""
import runpy
import sys


def main():
    failed = 0
    with open(sys.argv[1]) as f:
        jobs = [line.split() for line in f if line.strip()]
    for argv in jobs:
        sys.argv = argv
        try:
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as e:
            if e.code not in (None, 0):
                print("ref_batch: %s exited with %s" % (" ".join(argv), e.code), file=sys.stderr)
                failed += 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
