#!/usr/bin/python3
"""Small PNG files of every layout salcheck's reader accepts, for the PNG fuzz corpus.

usage: make_png_seeds.py DIR
Writes 8/16-bit gray, gray+alpha, RGB, RGBA, palette, 1/2/4-bit gray and an
interlaced file, each a few hundred bytes, with the PNG chunks written by hand
(zlib and struct only).
"""
import os
import struct
import sys
import zlib


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xffffffff)


def png(w, h, depth, color, rows, extra=b"", interlace=0):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace)
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pack_bits(values, depth):
    out, acc, n = bytearray(), 0, 0
    for v in values:
        acc = (acc << depth) | v
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def main(directory):
    os.makedirs(directory, exist_ok=True)
    w, h = 7, 5
    files = {}
    files["gray8.png"] = png(w, h, 8, 0, [bytes((x * 37 + y * 11) % 256 for x in range(w)) for y in range(h)])
    files["gray16.png"] = png(w, h, 16, 0, [b"".join(struct.pack(">H", (x * 9000 + y * 300) % 65536)
                                                      for x in range(w)) for y in range(h)])
    files["gray_alpha.png"] = png(w, h, 8, 4, [bytes(v for x in range(w) for v in (x * 30, 255 - y))
                                               for y in range(h)])
    files["rgb.png"] = png(w, h, 8, 2, [bytes(v for x in range(w) for v in (x * 30, y * 50, 200))
                                        for y in range(h)])
    files["rgba16.png"] = png(3, 2, 16, 6, [b"".join(struct.pack(">HHHH", x * 20000, y * 30000, 100, 65535)
                                                     for x in range(3)) for y in range(2)])
    plte = chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]))
    files["palette.png"] = png(w, h, 8, 3, [bytes((x + y) % 4 for x in range(w)) for y in range(h)], plte)
    trns = chunk(b"tRNS", bytes([255, 128]))
    files["palette2_trns.png"] = png(w, h, 2, 3, [pack_bits([(x + y) % 4 for x in range(w)], 2)
                                                  for y in range(h)], plte + trns)
    for depth in (1, 2, 4):
        files["gray%d.png" % depth] = png(w, h, depth, 0, [pack_bits([(x * y) % (1 << depth) for x in range(w)],
                                                                     depth) for y in range(h)])
    # Adam7 interlacing: seven passes, each with its own filter bytes
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        xs, ys = range(x0, w, dx), range(y0, h, dy)
        if len(xs) and len(ys):
            raw += b"".join(b"\x00" + bytes((x * 40 + y) % 256 for x in xs) for y in ys)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 1)
    files["interlaced.png"] = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                               chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
