#!/usr/bin/env python3
"""An independent check of a signed FIT image, for the tests of the `fit` crate.

Debian bookworm's u-boot-tools has no `fit_check_sign`; building it from the
U-Boot source costs a source download and a several-minute build on every
fresh CI machine, so this script re-implements the check from U-Boot's
documented algorithm (doc/usage/fit/signature.rst; boot/image-fit-sig.c,
fit_config_check_sig and fit_config_get_signed_nodes; boot/fdt_region.c,
fdt_find_regions) with python3-libfdt for the device tree and python3-
cryptography for ECDSA. It shares no code with the Rust verifier.

Usage: fit_check_sign.py -f image.itb -k control.dtb
Prints "OK" and exits 0, or prints "REFUSED: reason" and exits 1.
"""
import argparse
import hashlib
import struct
import sys

import libfdt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

BEGIN_NODE, END_NODE, PROP, NOP, END = 1, 2, 3, 4, 9
EXCLUDED = ("data", "data-size", "data-position", "data-offset")
MAX_DEPTH = 32
NF = [libfdt.NOTFOUND]


class Refused(Exception):
    pass


def prop(fdt, node, name):
    v = fdt.getprop(node, name, quiet=NF)
    return None if isinstance(v, int) else bytes(v)


def prop_str(fdt, node, name):
    v = prop(fdt, node, name)
    if v is None or not v.endswith(b"\0"):
        return None
    return v[:-1].decode()


def string_list(v):
    if not v or not v.endswith(b"\0"):
        return []
    return [s.decode() for s in v[:-1].split(b"\0")]


def subnodes(fdt, node):
    off = fdt.first_subnode(node, quiet=NF)
    while off >= 0:
        yield off, fdt.get_name(off)
        off = fdt.next_subnode(off, quiet=NF)


def props(fdt, node):
    off = fdt.first_property_offset(node, quiet=NF)
    while off >= 0:
        p = fdt.get_property_by_offset(off)
        yield p.name, bytes(p)
        off = fdt.next_property_offset(off, quiet=NF)


def path_of(fdt, node):
    parts = []
    while node > 0:
        parts.append(fdt.get_name(node))
        node = fdt.parent_offset(node)
    return "/" + "/".join(reversed(parts))


def signed_nodes(fdt, conf):
    """fit_config_get_signed_nodes: root, the configuration, each image it
    names with its hash*, cipher and dm-verity subnodes."""
    paths = ["/", "/configurations/" + fdt.get_name(conf)]
    images = fdt.path_offset("/images", quiet=NF)
    if images < 0:
        raise Refused("no /images")
    count = 0
    for name, value in props(fdt, conf):
        if name in ("description", "compatible", "default"):
            continue
        for s in string_list(value):
            img = fdt.subnode_offset(images, s, quiet=NF)
            if img < 0:
                continue
            paths.append(path_of(fdt, img))
            hashes_seen = 0
            for sub, sub_name in subnodes(fdt, img):
                if sub_name.startswith("hash"):
                    paths.append(path_of(fdt, sub))
                    hashes_seen += 1
            if not hashes_seen:
                raise Refused("no hash node in image " + s)
            for special in ("cipher", "dm-verity"):
                sub = fdt.subnode_offset(img, special, quiet=NF)
                if sub >= 0:
                    paths.append(path_of(fdt, sub))
            count += 1
    if not count:
        raise Refused("no images in configuration")
    return paths


def hashed_regions(blob, fdt, inc):
    """fdt_find_regions over the structure block: (offset, size) in blob."""
    base = fdt.off_dt_struct()
    size = fdt.size_dt_struct()
    strings = fdt.off_dt_strings()

    def word(o):
        if o + 4 > size:
            raise Refused("structure block truncated")
        return struct.unpack_from(">I", blob, base + o)[0]

    def cstr(at):
        end = blob.index(b"\0", at)
        return blob[at:end].decode("latin-1")

    regions = []
    start = None
    depth = -1
    want = 0
    stack = [0] * MAX_DEPTH
    path = []
    off = 0
    expect_end = False
    while True:
        tag = word(off)
        if expect_end and tag != END:
            raise Refused("two root nodes")
        if tag == BEGIN_NODE:
            name = cstr(base + off + 4)
            nxt = off + 4 + ((len(name) + 1 + 3) & ~3)
        elif tag == PROP:
            length, nameoff = word(off + 4), word(off + 8)
            nxt = off + 12 + ((length + 3) & ~3)
        elif tag in (END_NODE, NOP, END):
            nxt = off + 4
        else:
            raise Refused("bad structure token")
        stop_at = nxt
        include = False
        if tag == PROP:
            include = want >= 2 and cstr(strings + nameoff) not in EXCLUDED
            stop_at = off
        elif tag == NOP:
            include = want >= 2
            stop_at = off
        elif tag == BEGIN_NODE:
            depth += 1
            if depth == MAX_DEPTH:
                raise Refused("too deep")
            path.append(name)
            full = "/" + "/".join(path[1:])
            stack[depth] = want
            if want == 1:
                stop_at = off
            if full in inc:
                want = 2
            elif want:
                want -= 1
            else:
                stop_at = off
            include = want > 0
        elif tag == END_NODE:
            if depth < 0:
                raise Refused("unbalanced end node")
            include = want > 0
            want = stack[depth]
            depth -= 1
            path.pop()
            if depth == -1:
                expect_end = True
        else:
            include = True
        if include and start is None:
            if regions and regions[-1][1] == off:
                start = regions.pop()[0]
            else:
                start = off
        if not include and start is not None:
            regions.append((start, stop_at))
            start = None
        if tag == END:
            break
        off = nxt
    if nxt != size:
        raise Refused("data after FDT_END")
    regions.append((start, nxt))
    return [(base + s, e - s) for s, e in regions]


def control_keys(dtb):
    fdt = libfdt.Fdt(dtb)
    sig = fdt.path_offset("/signature", quiet=NF)
    if sig < 0:
        raise Refused("no /signature in the key blob")
    keys = []
    for node, name in subnodes(fdt, sig):
        if prop_str(fdt, node, "ecdsa,curve") != "prime256v1":
            raise Refused("key %s is not P-256" % name)
        x = int.from_bytes(prop(fdt, node, "ecdsa,x-point"), "big")
        y = int.from_bytes(prop(fdt, node, "ecdsa,y-point"), "big")
        pub = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        keys.append((name, pub, prop_str(fdt, node, "required") == "conf"))
    mode_any = prop_str(fdt, sig, "required-mode") == "any"
    return keys, mode_any


def sig_verifies(blob, fdt, conf, sig, pub):
    if prop_str(fdt, sig, "algo") != "sha256,ecdsa256":
        return False
    value = prop(fdt, sig, "value")
    if value is None or len(value) != 64:
        return False
    inc = signed_nodes(fdt, conf)
    h = hashlib.sha256()
    for o, n in hashed_regions(blob, fdt, inc):
        h.update(blob[o:o + n])
    hs = prop(fdt, sig, "hashed-strings")
    if hs is not None:
        if len(hs) < 8:
            return False
        n = struct.unpack_from(">I", hs, 4)[0]
        if n > fdt.size_dt_strings():
            return False
        o = fdt.off_dt_strings()
        h.update(blob[o:o + n])
    r = int.from_bytes(value[:32], "big")
    s = int.from_bytes(value[32:], "big")
    try:
        pub.verify(utils.encode_dss_signature(r, s), h.digest(),
                   ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return True
    except (InvalidSignature, ValueError):
        return False


def check(blob, key_dtb):
    try:
        fdt = libfdt.Fdt(blob)
    except libfdt.FdtException as e:
        raise Refused("not a device tree: %s" % e)
    confs = fdt.path_offset("/configurations", quiet=NF)
    if confs < 0:
        raise Refused("no /configurations")
    default = prop_str(fdt, confs, "default")
    conf = -1 if default is None else fdt.subnode_offset(confs, default, quiet=NF)
    if conf < 0:
        raise Refused("no default configuration")
    if "@" in fdt.get_name(conf):
        raise Refused("configuration name contains @")
    keys, mode_any = control_keys(key_dtb)
    required = [k for k in keys if k[2]]
    candidates = required or keys
    sigs = [n for n, name in subnodes(fdt, conf) if name.startswith("signature")]
    ok = [any(sig_verifies(blob, fdt, conf, s, pub) for s in sigs)
          for _, pub, _ in candidates]
    if required and not mode_any:
        if not all(ok):
            raise Refused("a required key did not verify")
    elif not any(ok):
        raise Refused("no signature verified")
    # The images used: each hash node checked against the data.
    images = fdt.path_offset("/images")
    for kind in ("kernel", "fdt", "ramdisk"):
        names = string_list(prop(fdt, conf, kind))
        if not names:
            if kind == "kernel":
                raise Refused("no kernel")
            continue
        img = fdt.subnode_offset(images, names[0], quiet=NF)
        if img < 0:
            raise Refused("%s image missing" % kind)
        data = prop(fdt, img, "data")
        if data is None:
            raise Refused("%s image has no data" % kind)
        digest = hashlib.sha256(data).digest()
        seen = 0
        for sub, name in subnodes(fdt, img):
            if "@" in name:
                raise Refused("node name contains @")
            if not name.startswith("hash"):
                continue
            if prop_str(fdt, sub, "algo") != "sha256":
                raise Refused("%s hash is not sha256" % kind)
            if prop(fdt, sub, "value") != digest:
                raise Refused("%s image does not match its hash" % kind)
            seen += 1
        if not seen:
            raise Refused("%s image has no hash" % kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-f", required=True, help="FIT image")
    ap.add_argument("-k", required=True, help="control DTB with /signature keys")
    a = ap.parse_args()
    blob = open(a.f, "rb").read()
    key_dtb = open(a.k, "rb").read()
    try:
        check(blob, key_dtb)
    except Refused as e:
        print("REFUSED:", e)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
