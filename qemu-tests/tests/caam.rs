//! The emulated CAAM and fuses through the console: MP public key identity,
//! MP signatures checked by an independent verifier (Python `cryptography`),
//! blobs bound to the chip and key modifier, the production image, and the
//! refusals without a usable fuse file.

mod common;

use common::*;
use qemu_tests::{Qemu, QemuOpts, chip, loader_image, write_fuse_file};
use std::path::PathBuf;
use std::process::Command;

const SRK_A: [u8; 32] = [0x5a; 32];
const SRK_B: [u8; 32] = [0xa5; 32];

fn fuse_path(name: &str, uid: &[u8; 16], srk: [u8; 32], open: bool) -> PathBuf {
    let mut f = chip(*uid, srk);
    f.open = open;
    write_fuse_file(name, &f.to_bytes()).expect("write fuse file")
}

fn boot_chip(image: PathBuf, fuses: &PathBuf, disk: Option<&PathBuf>) -> Qemu {
    let mut o = QemuOpts::new(image).fuses(fuses);
    if let Some(d) = disk {
        o = o.disk(d);
    }
    let (q, banner) = boot(o);
    assert!(!banner.contains("Fuses:"), "fuse file refused: {banner}");
    q
}

/// The 64-byte X||Y printed by `mfgprot pubk`.
fn pubk(q: &mut Qemu) -> String {
    let out = run(q, "mfgprot pubk");
    let mut lines = out.lines().skip_while(|l| *l != "Public key:");
    assert!(lines.next().is_some(), "no `Public key:` in {out:?}");
    let key = lines.next().unwrap_or_default().to_string();
    assert_eq!(key.len(), 128, "{out:?}");
    assert!(
        key.chars()
            .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)),
        "not upper-case hex: {key}"
    );
    key
}

fn pubk_of(fuses: &PathBuf) -> String {
    let mut q = boot_chip(loader_image(), fuses, None);
    let k = pubk(&mut q);
    poweroff(q);
    k
}

#[test]
fn mp_public_key_identifies_the_oem_and_state() {
    let a1 = fuse_path("pk-a1", b"chip-a1-uid-0001", SRK_A, false);
    let a2 = fuse_path("pk-a2", b"chip-a2-uid-0002", SRK_A, false);
    let b = fuse_path("pk-b", b"chip-a1-uid-0001", SRK_B, false);
    let open = fuse_path("pk-open", b"chip-a1-uid-0001", SRK_A, true);
    let k1 = pubk_of(&a1);
    assert_eq!(pubk_of(&a1), k1, "not stable across boots");
    assert_eq!(pubk_of(&a2), k1, "same SRK hash, different key");
    assert_ne!(pubk_of(&b), k1, "another SRK hash, same key");
    assert_ne!(pubk_of(&open), k1, "an open part has the closed key");
}

/// The MPMR as `md.l 30900380 8` shows it: the emulated register reads
/// back byte-reversed per word as silicon does, so the printed hex digits
/// are the MPMR bytes in order.
fn mpmr(q: &mut Qemu) -> Vec<u8> {
    let out = run(q, "md.l 30900380 8");
    let words = md_values(&out);
    assert_eq!(words.len(), 8, "{out:?}");
    unhex(&words.concat())
}

struct Signed {
    digest: String,
    c: String,
    d: String,
}

fn sign(q: &mut Qemu, addr: u64, size: &str) -> Signed {
    let out = run(q, &format!("mfgprot sign {addr:x} {size}"));
    let lines: Vec<&str> = out.lines().collect();
    let after = |key: &str| {
        let i = lines
            .iter()
            .position(|l| *l == key)
            .unwrap_or_else(|| panic!("no {key:?} in {out:?}"));
        let v = lines[i + 1].to_string();
        assert_eq!(v.len(), 64, "{key} {v:?}");
        v
    };
    Signed {
        digest: after("Message Representative Digest(SHA-256):"),
        c: after("C:"),
        d: after("d:"),
    }
}

/// Verifies with Python `cryptography` (OpenSSL underneath), independent of
/// the model's Rust crypto. Returns what the script printed.
const VERIFY_PY: &str = r#"
import sys, hashlib
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives import hashes
from cryptography.exceptions import InvalidSignature
pub, mpmr, msg, c, d = (bytes.fromhex(a) for a in sys.argv[1:6])
digest = hashlib.sha256(mpmr + msg).hexdigest()
print("digest", digest)
key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + pub)
sig = utils.encode_dss_signature(int.from_bytes(c, "big"), int.from_bytes(d, "big"))
try:
    key.verify(sig, mpmr + msg, ec.ECDSA(hashes.SHA256()))
    print("VERIFIED")
except InvalidSignature:
    print("BAD SIGNATURE")
"#;

fn verify(pubk: &str, mpmr: &[u8], msg: &[u8], s: &Signed) -> (String, bool) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(VERIFY_PY)
        .args([pubk, &to_hex(mpmr), &to_hex(msg), &s.c, &s.d])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "verifier failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = text
        .lines()
        .find_map(|l| l.strip_prefix("digest "))
        .expect("digest line")
        .to_string();
    (digest, text.contains("VERIFIED"))
}

#[test]
fn mp_signatures_verify_independently_over_mpmr_and_message() {
    let f = fuse_path("sign", b"chip-sign-uid-01", SRK_A, false);
    let mut q = boot_chip(loader_image(), &f, None);
    let key = pubk(&mut q);
    let msg = b"device 0042: serial=QT-7781\x00\xff\x10";
    put_bytes(&mut q, SCRATCH, msg);

    // The loader locked its measurement into the MPMR at boot, before the
    // console existed: it is not zero, says locked, and ignores writes.
    assert!(run(&mut q, "caam info").contains("MPMR locked     = yes"));
    let locked = mpmr(&mut q);
    assert_ne!(locked, [0u8; 32]);
    assert_eq!(
        locked,
        qemu_tests::loader_measurement(&loader_image()),
        "the MPMR is not the loader's measurement"
    );
    for k in 0..8u32 {
        run(&mut q, &format!("mw.l {:x} 0", 0x3090_0380 + 4 * k));
    }
    let scfgr = md_values(&run(&mut q, "md.l 3090000c 1"));
    let scfgr = u32::from_str_radix(&scfgr[0], 16).expect("SCFGR");
    run(&mut q, &format!("mw.l 3090000c {:x}", scfgr & !(1 << 26)));
    assert_eq!(mpmr(&mut q), locked, "the MPMR changed after the boot lock");

    let s = sign(&mut q, SCRATCH, &msg.len().to_string());
    let (digest, ok) = verify(&key, &locked, msg, &s);
    assert!(ok, "signature over the locked MPMR || msg does not verify");
    assert_eq!(s.digest.to_lowercase(), digest);
    // The same signature does not verify for another message, over the
    // message alone or over a zero MPMR.
    assert!(!verify(&key, &locked, &msg[1..], &s).1);
    assert!(!verify(&key, &[0; 32], msg, &s).1);
    assert!(!verify(&key, &[], msg, &s).1);
    // The hex size form is accepted too.
    let s2 = sign(&mut q, SCRATCH, &format!("0x{:x}", msg.len()));
    assert!(verify(&key, &locked, msg, &s2).1);

    // Size limits.
    let out = run(&mut q, &format!("mfgprot sign {SCRATCH:x} 0"));
    assert!(out.contains("message size must be 1.."), "{out:?}");
    let out = run(&mut q, "mfgprot sign 20000000 16");
    assert!(out.contains("outside RAM"), "{out:?}");
}

/// Blob test layout in RAM and on the disk (LBAs).
const PLAIN: u64 = SCRATCH;
const KM: u64 = SCRATCH + 0x1000;
const BLOB: u64 = SCRATCH + 0x2000;
const OUT: u64 = SCRATCH + 0x3000;
const LBA_PLAIN: u64 = 0x100;
const LBA_KM: u64 = 0x101;
const LBA_BLOB: u64 = 0x200;
const LBA_OUT: u64 = 0x300;
const LEN: usize = 64;

fn load_inputs(q: &mut Qemu) {
    for (addr, lba) in [(PLAIN, LBA_PLAIN), (KM, LBA_KM), (BLOB, LBA_BLOB)] {
        let out = run(q, &format!("mmc read {addr:x} {lba:x} 1"));
        assert!(out.contains("1 blocks read: OK"), "{out}");
    }
}

/// Pre-fills OUT, decapsulates BLOB into it, returns the console output.
fn decap(q: &mut Qemu) -> String {
    run(q, &format!("mw.l {OUT:x} aaaaaaaa 20"));
    run(q, &format!("blob dec {BLOB:x} {OUT:x} {LEN:x} {KM:x}"))
}

fn assert_mac_mismatch(q: &mut Qemu, what: &str) {
    let out = decap(q);
    assert!(
        out.contains("Decapsulating blob to get data")
            && out.contains("blob: blob MAC mismatch (ICV check failed"),
        "{what}: {out:?}"
    );
    // DST (LEN bytes) is zeroed; the bytes after it are untouched.
    let out = ram_bytes(q, OUT, 0x80);
    assert_eq!(out[..LEN], [0u8; LEN], "{what}: output not zeroed");
    assert!(out[LEN..].iter().all(|&b| b == 0xaa), "{what}: {out:02x?}");
}

#[test]
fn blobs_round_trip_and_bind_to_chip_and_key_modifier() {
    let chip_a = fuse_path("blob-a", b"chip-blob-uid-0a", SRK_A, false);
    let chip_b = fuse_path("blob-b", b"chip-blob-uid-0b", SRK_A, false);
    let disk = blank_disk("blob.img", 1 << 20);
    let plain = pattern(7, LEN);
    let km = *b"key-modifier-qt1";
    write_at(&disk, LBA_PLAIN * BLK, &plain);
    write_at(&disk, LBA_KM * BLK, &km);

    // Chip A: encapsulate, keep the blob on the disk, round-trip.
    let mut q = boot_chip(loader_image(), &chip_a, Some(&disk));
    load_inputs(&mut q);
    let out = run(
        &mut q,
        &format!("blob enc {PLAIN:x} {BLOB:x} {LEN:x} {KM:x}"),
    );
    assert_eq!(out, "\r\nEncapsulating data to form blob\r\n");
    for (addr, lba) in [(BLOB, LBA_BLOB), (OUT, LBA_OUT)] {
        if addr == OUT {
            let out = decap(&mut q);
            assert_eq!(out, "\r\nDecapsulating blob to get data\r\n");
        }
        let out = run(&mut q, &format!("mmc write {addr:x} {lba:x} 1"));
        assert!(out.contains("1 blocks written: OK"), "{out}");
    }
    // Corrupt one byte of the ciphertext (after the 32-byte key blob).
    let b40 = ram_bytes(&mut q, BLOB + 40, 1)[0];
    run(&mut q, &format!("mw.b {:x} {:x}", BLOB + 40, b40 ^ 0x01));
    assert_mac_mismatch(&mut q, "changed ciphertext byte");
    run(&mut q, &format!("mw.b {:x} {b40:x}", BLOB + 40));
    // Corrupt the MAC (last byte).
    let last = BLOB + LEN as u64 + 47;
    let bl = ram_bytes(&mut q, last, 1)[0];
    run(&mut q, &format!("mw.b {last:x} {:x}", bl ^ 0x80));
    assert_mac_mismatch(&mut q, "changed MAC byte");
    run(&mut q, &format!("mw.b {last:x} {bl:x}"));
    // Another key modifier.
    run(&mut q, &format!("mw.b {KM:x} {:x}", km[0] ^ 0x20));
    assert_mac_mismatch(&mut q, "another key modifier");
    run(&mut q, &format!("mw.b {KM:x} {:x}", km[0]));
    // Restored: decapsulates again (the failures above were the changes).
    assert!(!decap(&mut q).contains("mismatch"));
    assert_eq!(ram_bytes(&mut q, OUT, LEN), plain);
    poweroff(q);

    let blob = read_at(&disk, LBA_BLOB * BLK, LEN + 48);
    assert_eq!(read_at(&disk, LBA_OUT * BLK, LEN), plain, "round trip");
    assert!(
        !blob.windows(16).any(|w| plain.windows(16).any(|p| p == w)),
        "the blob contains plaintext"
    );

    // Chip A again (a new power-on): the stored blob still opens.
    let mut q = boot_chip(loader_image(), &chip_a, Some(&disk));
    load_inputs(&mut q);
    assert!(!decap(&mut q).contains("mismatch"));
    assert_eq!(ram_bytes(&mut q, OUT, LEN), plain);
    poweroff(q);

    // Chip B (same OEM, other OTPMK): the same blob does not.
    let mut q = boot_chip(loader_image(), &chip_b, Some(&disk));
    load_inputs(&mut q);
    assert_eq!(ram_bytes(&mut q, BLOB, LEN + 48), blob);
    assert_mac_mismatch(&mut q, "another chip");
}

#[test]
fn blob_kmlen_binds_the_blob_to_secure_key_not_its_padding() {
    // `blob enc|dec ... KM a`: the 10-byte modifier of Linux trusted keys.
    let f = fuse_path("blob-kmlen", b"chip-blob-uid-0c", SRK_A, false);
    let mut q = boot_chip(loader_image(), &f, None);
    let plain = pattern(11, 32);
    put_bytes(&mut q, PLAIN, &plain);
    // SECURE_KEY, then six bytes a 16-byte modifier would include.
    put_bytes(&mut q, KM, b"SECURE_KEYzzzzzz");
    let out = run(&mut q, &format!("blob enc {PLAIN:x} {BLOB:x} 20 {KM:x} a"));
    assert_eq!(out, "\r\nEncapsulating data to form blob\r\n");
    let dec = |q: &mut Qemu, km_len: &str| {
        run(q, &format!("mw.l {OUT:x} aaaaaaaa 8"));
        run(q, &format!("blob dec {BLOB:x} {OUT:x} 20 {KM:x} {km_len}"))
    };
    assert!(!dec(&mut q, "a").contains("mismatch"));
    assert_eq!(ram_bytes(&mut q, OUT, 32), plain);
    // Not with the 16 bytes at KM (the default), not with a 9-byte prefix.
    for km_len in ["", "10", "9"] {
        let out = dec(&mut q, km_len);
        assert!(
            out.contains("blob MAC mismatch"),
            "KMLEN '{km_len}': {out:?}"
        );
        assert_eq!(ram_bytes(&mut q, OUT, 32), [0; 32], "KMLEN '{km_len}'");
    }
    // Not with SECURE_KEY zero-padded to 16 bytes either.
    put_bytes(&mut q, KM + 10, &[0; 6]);
    assert!(dec(&mut q, "10").contains("blob MAC mismatch"));
    assert!(!dec(&mut q, "a").contains("mismatch"));
    assert_eq!(ram_bytes(&mut q, OUT, 32), plain);
    // KMLEN outside 1..=16 is refused before any job.
    for bad in ["0", "11"] {
        let out = run(
            &mut q,
            &format!("blob dec {BLOB:x} {OUT:x} 20 {KM:x} {bad}"),
        );
        assert!(out.contains("KMLEN must be 1..0x10"), "{out:?}");
    }
    poweroff(q);
}

#[test]
fn the_production_image_has_no_mfgprot_pubk_but_signs() {
    let f = fuse_path("prod", b"chip-prod-uid-01", SRK_A, false);
    // The development image offers pubk (the control for what follows).
    let mut q = boot_chip(loader_image(), &f, None);
    assert!(run(&mut q, "help mfgprot").contains("pubk"));
    let key = pubk(&mut q);
    poweroff(q);

    let mut q = boot_chip(qemu_tests::production_loader_image(), &f, None);
    let help = run(&mut q, "help mfgprot");
    assert!(help.contains("sign ADDR SIZE"), "{help}");
    assert!(!help.contains("pubk"), "production help lists pubk: {help}");
    assert!(!run(&mut q, "help").contains("pubk"));
    // The production console is locked: unlock what this test uses with a
    // token of the development key set the test image is built with.
    assert!(run(&mut q, "mfgprot pubk").contains("locked: `unlock` first"));
    qemu_tests::mfg::unlock(&mut q, "md,mw,mfgprot");
    let out = run(&mut q, "mfgprot pubk");
    assert_eq!(out, "mfgprot: unknown subcommand 'pubk'\r\n");
    assert!(!out.contains("Public key"));
    // Signing works and verifies with the key of the same chip.
    let msg = b"production";
    put_bytes(&mut q, SCRATCH, msg);
    // The MPMR holds the production loader's own measurement (md cannot
    // read the CAAM page on a production console, even unlocked).
    let locked = qemu_tests::loader_measurement(&qemu_tests::production_loader_image());
    let s = sign(&mut q, SCRATCH, "10");
    let (_, ok) = verify(&key, &locked, msg, &s);
    assert!(
        ok,
        "production signature does not verify over its measurement"
    );
    // Issue 13, attacks 3 and 7: even unlocked, the console never signs
    // what could pass for an identity message (it would carry the same
    // locked MPMR as the flow's records).
    let forged = b"MFID\x02\x00\x50\x8aforged identity for another UID";
    put_bytes(&mut q, SCRATCH, forged);
    let out = run(
        &mut q,
        &format!("mfgprot sign {SCRATCH:x} {:x}", forged.len()),
    );
    assert!(
        out.contains("refused: the message starts like an identity message (MFID)"),
        "{out}"
    );
    assert!(!out.contains("Signature"), "{out}");
}

fn assert_refused(q: &mut Qemu, reason: &str) {
    for cmd in [
        "mfgprot pubk".to_string(),
        format!("mfgprot sign {SCRATCH:x} 4"),
        format!(
            "blob enc {SCRATCH:x} {:x} 10 {:x}",
            SCRATCH + 0x100,
            SCRATCH + 0x200
        ),
        format!(
            "blob dec {SCRATCH:x} {:x} 10 {:x}",
            SCRATCH + 0x100,
            SCRATCH + 0x200
        ),
        "fuse read 6 0 4".into(),
        "caam info".into(),
    ] {
        let out = run(q, &cmd);
        let name = cmd.split(' ').next().unwrap_or_default();
        assert!(
            out.contains(&format!("\r\n{name}: security hardware unavailable: "))
                || out.starts_with(&format!("{name}: security hardware unavailable: "))
                    && out.contains(reason),
            "`{cmd}` said {out:?}"
        );
        assert!(!out.contains("Public key") && !out.contains("Signature"));
    }
    // Plain console commands still work.
    assert!(run(q, "version").contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn without_a_usable_fuse_file_caam_and_fuse_commands_refuse() {
    let (mut q, banner) = boot(QemuOpts::new(loader_image()));
    assert!(banner.contains("no fuse file loaded"), "{banner}");
    assert_refused(&mut q, "no fuse file");
    poweroff(q);

    let mut bytes = chip(*b"chip-corrupt-001", SRK_A).to_bytes();
    bytes[20] ^= 0x40; // in the UID
    let path = write_fuse_file("caam-corrupt", &bytes).expect("write");
    let (mut q, banner) = boot(QemuOpts::new(loader_image()).fuses(path));
    assert!(
        banner.contains("fuse file corrupt (CRC mismatch)"),
        "{banner}"
    );
    assert_refused(&mut q, "corrupt");
}

#[test]
fn fuse_read_shows_the_chip_srk_hash() {
    let f = fuse_path("fuse", b"chip-fuse-uid-01", SRK_B, false);
    let mut q = boot_chip(loader_image(), &f, None);
    let out = run(&mut q, "fuse read 6 0 4");
    assert!(out.starts_with("Reading bank 6:"), "{out:?}");
    let words: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Word 0x00000000:"))
        .flat_map(str::split_whitespace)
        .collect();
    assert_eq!(words, ["a5a5a5a5"; 4], "{out:?}");
    // The i.MX8M Plus has 96 banks (U-Boot mxc_ocotp.c): 95 reads, 96 not.
    let out = run(&mut q, "fuse read 95 3");
    assert!(out.contains("Word 0x00000003: 00000000"), "{out:?}");
    let out = run(&mut q, "fuse read 96 0");
    assert!(
        out.contains("fuse bank 96 word 0 out of range (banks 0..96"),
        "{out:?}"
    );
}

fn fuse_path_with(name: &str, open: bool, options: imx_emu::fusefile::ChipOptions) -> PathBuf {
    let mut f = chip(*b"chip-mpcurve-000", SRK_A);
    f.open = open;
    f.options = options;
    write_fuse_file(name, &f.to_bytes()).expect("write fuse file")
}

#[test]
fn an_open_part_without_an_mp_key_gets_one_from_mpprivk() {
    use imx_emu::fusefile::ChipOptions;
    let zero = ChipOptions {
        mp_curve_zero: true,
        ..ChipOptions::default()
    };
    let with_rom_key = fuse_path_with("mpc-rom", true, ChipOptions::default());
    let no_key = fuse_path_with("mpc-zero", true, zero);
    let mut q = boot_chip(loader_image(), &no_key, None);
    let scfgr = |q: &mut Qemu| md_values(&run(q, "md.l 3090000c 1"))[0].clone();
    assert!(scfgr(&mut q).starts_with('0'), "MPCURVE 0 at power-on");
    let k = pubk(&mut q);
    assert!(scfgr(&mut q).starts_with('3'), "MPCURVE 3 after MPPRIVK");
    assert_eq!(pubk(&mut q), k, "one key per power cycle");
    poweroff(q);
    assert_eq!(pubk_of(&no_key), k, "same key next power-on");
    assert_ne!(pubk_of(&with_rom_key), k, "the ROM's key is another");
    // A closed part with MPCURVE = 0 is refused, as OP-TEE refuses it.
    let closed = fuse_path_with("mpc-closed", false, zero);
    let mut q = boot_chip(loader_image(), &closed, None);
    let out = run(&mut q, "mfgprot pubk");
    assert!(
        out.contains("closed part with SCFGR.MPCURVE = 0"),
        "{out:?}"
    );
    poweroff(q);
}

#[test]
fn a_refused_controller_page_names_op_tee_at_boot() {
    use imx_emu::fusefile::{ChipOptions, Page0};
    let fuses = fuse_path_with(
        "page0-zero",
        false,
        ChipOptions {
            page0: Page0::ReadsZero,
            ..ChipOptions::default()
        },
    );
    let (q, banner) = boot(QemuOpts::new(loader_image()).fuses(&fuses));
    assert!(
        banner.contains(
            "CAAM:  init failed: CAAM controller page not accessible: is OP-TEE in the boot image?"
        ),
        "{banner}"
    );
    poweroff(q);
}
