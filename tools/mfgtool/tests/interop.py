#!/usr/bin/env python3
"""Independent implementation of docs/formats.md (sections 1 and 2), written
from the document only, using Python's `cryptography` package.

  interop.py seal --pubkey HEX --product P --bundle-id N --out FILE \
      --secret NAME:TYPE:FILE[:KMHEX (1..16 bytes)] ...
  interop.py open --pubkey HEX FILE          -> JSON on stdout
  interop.py verify-id --pubkey HEX --record-key PEM FILE
                                             -> JSON on stdout (console line file)
Exit 3 on authentication failure, 5 on malformed input.
"""
import argparse, base64, hashlib, json, os, re, struct, sys, zlib

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TYPES = {"raw": 1, "der": 2, "pem": 3, "opaque": 4}
NAMES = {v: k for k, v in TYPES.items()}
NAME_RE = re.compile(rb"^[A-Za-z0-9._-]+$")


def fail(code, msg):
    print(msg, file=sys.stderr)
    sys.exit(code)


def pad(name: bytes, width: int) -> bytes:
    assert 1 <= len(name) <= width and NAME_RE.match(name)
    return name + b"\0" * (width - len(name))


def unpad(field: bytes) -> bytes:
    name = field.split(b"\0", 1)[0]
    if field[len(name):].strip(b"\0") or not NAME_RE.match(name):
        fail(5, "bad name field")
    return name


def derive_km(name: bytes) -> bytes:
    return hashlib.sha256(b"mfgprot key modifier v1\0" + name).digest()[:16]


def bundle_key(pub: bytes, salt: bytes, label: bytes, product: bytes) -> bytes:
    info = label + product + struct.pack("<H", 1)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(pub)


def seal(a):
    pub = bytes.fromhex(a.pubkey)[-64:]
    entries = b""
    for spec in a.secret:
        parts = spec.split(":")
        name, typ, path = parts[0].encode(), parts[1], parts[2]
        data = open(path, "rb").read()
        kmlen = 0
        if len(parts) > 3:
            km, flags = bytes.fromhex(parts[3]), 1
            assert 1 <= len(km) <= 16
            if len(km) < 16:
                # Section 1.3: a short key modifier sets flag bit 1, its
                # length at byte 34, the field zero-padded.
                flags, kmlen, km = 3, len(km), km + b"\0" * (16 - len(km))
        else:
            km, flags = derive_km(name), 0
        entries += (pad(name, 32) + struct.pack("<BBBBI", TYPES[typ], flags, kmlen, 0, len(data))
                    + km + data)
    pt = b"SECL" + struct.pack("<HH", 1, len(a.secret)) + entries
    salt, nonce = os.urandom(32), os.urandom(12)
    label, product = b"mfgprot-bundle", a.product.encode()
    header = (b"MFGBUNDL" + struct.pack("<HHI", 1, 128, 0) + pad(product, 32)
              + struct.pack("<Q", a.bundle_id) + salt + pad(label, 24) + nonce
              + struct.pack("<I", len(pt)))
    assert len(header) == 128
    ct_tag = AESGCM(bundle_key(pub, salt, label, product)).encrypt(nonce, pt, header)
    open(a.out, "wb").write(header + ct_tag)


def open_bundle(a):
    pub = bytes.fromhex(a.pubkey)[-64:]
    b = open(a.file, "rb").read()
    if len(b) < 128 or b[:8] != b"MFGBUNDL":
        fail(5, "not a bundle")
    version, hlen, flags = struct.unpack_from("<HHI", b, 8)
    if version != 1 or hlen != 128 or flags != 0:
        fail(5, "unsupported header")
    product = unpad(b[16:48])
    (bundle_id,) = struct.unpack_from("<Q", b, 48)
    salt, label, nonce = b[56:88], unpad(b[88:112]), b[112:124]
    (ln,) = struct.unpack_from("<I", b, 124)
    if len(b) != 128 + ln + 16:
        fail(5, "length mismatch")
    try:
        pt = AESGCM(bundle_key(pub, salt, label, product)).decrypt(nonce, b[128:], b[:128])
    except InvalidTag:
        fail(3, "bundle authentication failed")
    if pt[:4] != b"SECL":
        fail(5, "bad secret list")
    _, count = struct.unpack_from("<HH", pt, 4)
    off, out = 8, []
    for _ in range(count):
        name = unpad(pt[off:off + 32])
        typ, flags, kmlen, reserved, n = struct.unpack_from("<BBBBI", pt, off + 32)
        km = pt[off + 40:off + 56]
        if flags & ~3 or reserved:
            fail(5, "bad secret flags")
        if flags & 2:
            if not flags & 1 or not 1 <= kmlen <= 15 or km[kmlen:].strip(b"\0"):
                fail(5, "bad short key modifier")
            km = km[:kmlen]
        elif kmlen:
            fail(5, "key modifier length without flag bit 1")
        if not flags & 1 and km != derive_km(name):
            fail(5, "derived key modifier mismatch")
        data = pt[off + 56:off + 56 + n]
        out.append({"name": name.decode(), "type": NAMES[typ], "size": n,
                    "key_modifier": km.hex(), "content_hex": data.hex()})
        off += 56 + n
    if off != len(pt):
        fail(5, "trailing bytes")
    print(json.dumps({"product": product.decode(), "bundle_id": bundle_id, "secrets": out}))


def open_sealed(priv, sealed):
    """Section 2.4: ECIES over P-256, HKDF-SHA256, AES-256-GCM."""
    if len(sealed) < 76 + 16 or sealed[:4] != b"MFSR":
        fail(5, "not a sealed record")
    version, kind = struct.unpack_from("<HH", sealed, 4)
    eph = sealed[8:72]
    plen, reserved = struct.unpack_from("<HH", sealed, 72)
    if version != 1 or kind != 1 or reserved != 0 or len(sealed) != 76 + plen + 16:
        fail(5, "bad sealed record header")
    try:
        epub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + eph)
    except ValueError:
        fail(5, "ephemeral key is not a P-256 point")
    z = priv.exchange(ec.ECDH(), epub)
    rpub = priv.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)[1:]
    okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=eph + rpub,
               info=b"imx-mfg sealed record v1" + struct.pack("<H", kind)).derive(z)
    try:
        return AESGCM(okm[:32]).decrypt(okm[32:44], sealed[76:], sealed[:76])
    except InvalidTag:
        fail(3, "sealed for another record key or altered")


def verify_id(a):
    pub = bytes.fromhex(a.pubkey)[-64:]
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + pub)
    priv = serialization.load_pem_private_key(open(a.record_key, "rb").read(), password=None)
    text = open(a.file).read()
    line = next(l for l in text.splitlines() if "mfgprot-id: " in l)
    sealed = base64.b64decode(line.split("mfgprot-id: ", 1)[1].strip(), validate=True)
    rec = open_sealed(priv, sealed)
    if len(rec) != 324 or rec[:4] != b"MFIR" or struct.unpack_from("<HH", rec, 4) != (2, 184):
        fail(5, "not an ID record")
    if zlib.crc32(rec[:320]) != struct.unpack_from("<I", rec, 320)[0]:
        fail(5, "ID record CRC mismatch")
    msg, mpmr, mes_rep, c, d = rec[8:192], rec[192:224], rec[224:256], rec[256:288], rec[288:320]
    if hashlib.sha256(mpmr + msg).digest() != mes_rep:
        fail(3, "message representative mismatch")
    sig = encode_dss_signature(int.from_bytes(c, "big"), int.from_bytes(d, "big"))
    try:
        key.verify(sig, mpmr + msg, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        fail(3, "signature verification failed")
    if msg[:4] != b"MFID" or struct.unpack_from("<H", msg, 4)[0] != 2:
        fail(5, "not a v2 identity message")
    (soc,) = struct.unpack_from("<H", msg, 6)
    flags = msg[57]
    (boot_counter,) = struct.unpack_from("<I", msg, 60)
    (bundle_id,) = struct.unpack_from("<Q", msg, 112)
    print(json.dumps({"soc": soc, "uid": msg[8:24].hex(), "srk_hash": msg[24:56].hex(),
                      "security_state": msg[56], "boot_counter": boot_counter,
                      "loader_version": msg[64:80].rstrip(b"\0").decode(),
                      "product": unpad(msg[80:112]).decode(),
                      "bundle_id": bundle_id if flags & 1 else None,
                      "bundle_digest": msg[120:152].hex(),
                      "station_nonce": msg[152:184].hex() if flags & 2 else None,
                      "mpmr": mpmr.hex()}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seal")
    s.add_argument("--pubkey", required=True)
    s.add_argument("--product", required=True)
    s.add_argument("--bundle-id", type=int, default=1)
    s.add_argument("--out", required=True)
    s.add_argument("--secret", action="append", required=True)
    o = sub.add_parser("open")
    o.add_argument("--pubkey", required=True)
    o.add_argument("file")
    v = sub.add_parser("verify-id")
    v.add_argument("--pubkey", required=True)
    v.add_argument("--record-key", required=True)
    v.add_argument("file")
    a = p.parse_args()
    {"seal": seal, "open": open_bundle, "verify-id": verify_id}[a.cmd](a)


if __name__ == "__main__":
    main()
