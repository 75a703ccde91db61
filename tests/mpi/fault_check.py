#!/usr/bin/python3
"""Checks of results files for the fault-injection tests (tests/mpi/test_faults.sh), with h5py.

usage:
  fault_check.py checksums FILE.h5     every finished cell's /status/checksum equals the CRC-32
                                       (Python's zlib.crc32) of its stored bytes, recomputed here
                                       from the definition in the dataset's attributes
  fault_check.py corrupt FILE.h5 V I   flip bits in the stored map of cell (V, I) of the first
                                       method (in place, through h5py), print variant and image
  fault_check.py done FILE.h5          print the number of finished cells and pairs
Prints "N passed, N failed" for checksums.
"""
import sys
import zlib

import h5py
import numpy as np


def cell_bytes(f, v, i):
    methods = [m.decode() if isinstance(m, bytes) else m for m in f["methods/name"][()]]
    metrics = f["status/checksum"].attrs["metrics"]
    metrics = metrics.decode() if isinstance(metrics, bytes) else metrics
    out = b""
    if "maps" in f and len(f["maps"].keys()):
        for m in methods:
            out += f["maps/" + m][v, i].astype(f["maps/" + m].dtype.newbyteorder("<")).tobytes()
    for k in [k for k in metrics.split(",") if k]:
        out += f["metrics/" + k][:, v, i].astype("<f8").tobytes()
    out += f["scores/logits"][v, i].astype("<f4").tobytes()
    out += np.array([f["scores/target"][v, i]], dtype="<i4").tobytes()
    return out


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "checksums":
        passed = failed = 0
        with h5py.File(path, "r") as f:
            done, sums = f["status/done"][()], f["status/checksum"][()]
            for v, i in zip(*np.nonzero(done)):
                crc = zlib.crc32(cell_bytes(f, v, i)) & 0xffffffff
                if crc == sums[v, i]:
                    passed += 1
                else:
                    failed += 1
                    print("[FAIL] cell (%d, %d): stored %08x, zlib.crc32 %08x" % (v, i, sums[v, i], crc))
        print("%d passed, %d failed" % (passed, failed))
        sys.exit(1 if failed or not passed else 0)
    if mode == "corrupt":
        v, i = int(sys.argv[3]), int(sys.argv[4])
        with h5py.File(path, "r+") as f:
            m = f["methods/name"][0]
            m = m.decode() if isinstance(m, bytes) else m
            d = f["maps/" + m]
            cell = d[v, i]
            cell.flat[len(cell.flat) // 2] += 0.25
            d[v, i] = cell
            name = f["variants/name"][v]
            img = f["images/id"][i]
            print((name.decode() if isinstance(name, bytes) else name),
                  (img.decode() if isinstance(img, bytes) else img))
        return
    if mode == "done":
        with h5py.File(path, "r") as f:
            print(int(f["status/done"][()].sum()), int(f["status/pair_done"][()].sum()))
        return
    sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
