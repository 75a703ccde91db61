"""cascade_check.py - compare the results files of tests/mpi/test_cascade.sh with h5py.

  same REF.h5 OTHER.h5        every map, metric, logit, target and done flag bit-equal
  done FILE.h5 OUT.npz        save the done flags and /status/seconds of FILE.h5
  kept BEFORE.npz FILE.h5     the cells done in BEFORE keep their seconds in FILE.h5
                              (not computed again), and at least one was done
Prints "N passed, N failed" (done: nothing checked, 0 passed).
"""
import sys

import h5py
import numpy as np

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("[FAIL] " + what)


def same(ref, other):
    with h5py.File(ref, "r") as a, h5py.File(other, "r") as b:
        check(np.all(a["/status/done"][...] == 1), ref + ": every cell done")
        check(np.all(b["/status/done"][...] == 1), other + ": every cell done")
        names = [n.decode() if isinstance(n, bytes) else n for n in a["/variants/name"][...]]
        check(any("/cascading/" in n for n in names) and any("/independent/" in n for n in names),
              "the plan has cascading and independent states")
        for group in ("maps", "metrics"):
            for key in a[group]:
                x, y = a[group][key][...], b[group][key][...]
                check(x.shape == y.shape and x.tobytes() == y.tobytes(),
                      "%s/%s differs between %s and %s" % (group, key, ref, other))
        for key in a["status"]:
            if key in ("seconds", "rank", "checksum"):
                continue
            check(a["status"][key][...].tobytes() == b["status"][key][...].tobytes(),
                  "status/%s differs" % key)
        m = a["maps/ig"][...]
        v = len(names)
        # the maps are not all alike: a randomized state differs from the trained model
        check(np.nanmax(np.abs(m[v - 1] - m[0])) > 0, "the states' IG maps differ")


def done(path, out):
    with h5py.File(path, "r") as f:
        np.savez(out, done=f["/status/done"][...], seconds=f["/status/seconds"][...])


def kept(before, path):
    b = np.load(before)
    with h5py.File(path, "r") as f:
        d, s = f["/status/done"][...], f["/status/seconds"][...]
    was = b["done"] == 1
    check(was.sum() > 0, "some cells were done before the kill")
    check(not np.all(was), "some cells were not done before the kill")
    check(np.all(d == 1), "every cell done after --resume")
    check(np.array_equal(s[was], b["seconds"][was]), "the cells done before kept their seconds")


if __name__ == "__main__":
    cmd = sys.argv[1]
    {"same": same, "done": done, "kept": kept}[cmd](*sys.argv[2:])
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
