#!/usr/bin/env python3
"""Disk images for the uSDHC QEMU smoke test.

make IMG BLOCKS      fill IMG with the pattern the guest checks
check IMG ORIG       verify what the guest wrote (and did not write)
"""
import sys


def pat_block(lba):
    a, x = lba * 131, lba >> 8
    return bytes((((a + j * 7) ^ x) & 0xFF) for j in range(512))


def fill(seed, n):
    return bytes(((i * 13) & 0xFF) ^ seed ^ ((i >> 9) & 0xFF) for i in range(n))


def make(path, blocks):
    with open(path, "wb") as f:
        f.truncate(blocks * 512)
        # Only the areas the guest reads carry the pattern (the rest stays
        # sparse so a 4 GiB card costs nothing).
        for lba in list(range(2048, 2600)) + list(range(5990, 6010)):
            f.seek(lba * 512)
            f.write(pat_block(lba))


def check(path, orig):
    img, org = open(path, "rb"), open(orig, "rb")

    def blocks(f, lba, n):
        f.seek(lba * 512)
        return f.read(n * 512)

    writes = [(64, 4096), (7, 4200), (2, 4300), (3, 4400), (2, 4500)]
    for i, (n, lba) in enumerate(writes):
        assert blocks(img, lba, n) == fill(i, n * 512), f"write {i} at lba {lba}"
    assert blocks(img, 8192, 5000) == fill(0x5A, 5000 * 512), "multi-MiB write"
    assert blocks(img, 6000, 4) == b"\xff" * 2048, "erase"
    assert blocks(img, 5999, 1) == blocks(org, 5999, 1), "erase spilled before"
    assert blocks(img, 6004, 1) == blocks(org, 6004, 1), "erase spilled after"
    assert blocks(img, 2048, 500) == blocks(org, 2048, 500), "reads changed data"
    print("host check: writes landed at the right LBAs")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        check(sys.argv[2], sys.argv[3])
