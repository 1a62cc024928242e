//! The provisioning flow end to end on QEMU: a fresh chip provisions at
//! boot; the host checks the disk with `mfgtool`; a second boot verifies
//! every blob against the host's CRC of each known secret; nothing secret
//! leaks into the disk image or the logs; every refusal leaves only a
//! journal entry and the device re-provisionable; a power cut after any
//! eMMC write of the flow resumes to exactly one provisioning.
//!
//! One fixture per test process (built once, shared by the tests): two
//! virtual chips of different OEMs (other SRK hash, so other MP keys), the
//! MP public keys read from development boots (`mfgprot pubk`), a bundle of
//! two secrets sealed by `mfgtool seal`, and a disk image from `mfgtool
//! image`. Those development boots print the MP public key by design, so
//! the leak scan covers only the provisioning and verification boots.

mod provisioning;

use mfg_formats::area::{self, BundlePartitionHeader, ProvState, error_code};
use provisioning::{
    bundle_key, bundle_present, disk_id_record, journal, open_record, p, record_key,
};
use qemu_tests::mfg::{self, find_leak, fuse_bytes, id_lines, mfgtool, parse_pubkey, partition};
use qemu_tests::{Error, Qemu, QemuOpts, chip, loader_image};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

const PRODUCT: &str = "imx8mp-demo";
const BOOT: Duration = Duration::from_secs(30);

struct Fixture {
    dir: PathBuf,
    chip_a: imx_emu::fusefile::FuseFile,
    fuses_a: PathBuf,
    fuses_b: PathBuf,
    /// `mfgprot pubk` output of chip A (what `mfgtool` reads).
    pubk_a: PathBuf,
    pubkey_a: [u8; 64],
    /// (name, content) of the two secrets in the bundle.
    secrets: Vec<(String, Vec<u8>)>,
    /// The bundle sealed for chip A's OEM.
    bundle_a: Vec<u8>,
    /// The same secrets sealed for chip B's OEM.
    bundle_b: Vec<u8>,
    /// The same secrets sealed for chip A's key but another product.
    /// A disk image holding `bundle_a`, never booted.
    fresh: PathBuf,
}

/// Deterministic bytes that look random (SplitMix64).
fn pseudo(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

/// CRC-32 (IEEE 802.3, reflected 0xEDB88320), computed independently of
/// the formats crate.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn boot(loader: &Path, fuses: Option<&Path>, disk: &Path) -> (Qemu, String) {
    let mut o = QemuOpts::new(loader).disk(disk).no_reboot(true);
    if let Some(f) = fuses {
        o = o.fuses(f);
    }
    let mut q = Qemu::boot(o).expect("QEMU starts");
    let banner = q
        .wait_prompt_timeout(BOOT)
        .expect("boot reaches the prompt");
    (q, banner)
}

/// Reads a development boot's MP public key and saves its output.
fn read_pubkey(dir: &Path, fuses: &Path, blank: &Path, name: &str) -> ([u8; 64], PathBuf) {
    let (mut q, banner) = boot(&loader_image(), Some(fuses), blank);
    assert!(
        banner.contains("blank device and no bundle"),
        "banner: {banner}"
    );
    let out = q.run_timeout("mfgprot pubk", BOOT).expect("pubk");
    let key = parse_pubkey(&out).unwrap_or_else(|| panic!("no key in {out:?}"));
    let path = dir.join(format!("{name}.pubk"));
    fs::write(&path, &out).expect("write pubk");
    (key, path)
}

fn seal(dir: &Path, pubk: &Path, product: &str, out: &str) -> Vec<u8> {
    let path = dir.join(out);
    mfg::mfgtool_run(&[
        "seal",
        "--mp-pubkey",
        p(pubk),
        "--secrets",
        p(&dir.join("secrets.toml")),
        "--product",
        product,
        "--bundle-id",
        "7",
        "-o",
        p(&path),
    ]);
    fs::read(&path).expect("read bundle")
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("qt-flow-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("fixture dir");
        let chip_a = chip(*b"flow-test-chip-A", [0xa1; 32]);
        let chip_b = chip(*b"flow-test-chip-B", [0xb2; 32]);
        let fuses_a = dir.join("a.fuses");
        let fuses_b = dir.join("b.fuses");
        fs::write(&fuses_a, fuse_bytes(&chip_a, None)).expect("fuses");
        fs::write(&fuses_b, fuse_bytes(&chip_b, None)).expect("fuses");
        let blank = dir.join("blank.img");
        mfg::mfgtool_run(&["image", "-o", p(&blank), "--size", "32M"]);
        let (pubkey_a, pubk_a) = read_pubkey(&dir, &fuses_a, &blank, "a");
        let (pubkey_b, pubk_b) = read_pubkey(&dir, &fuses_b, &blank, "b");
        assert_ne!(pubkey_a, pubkey_b, "two OEMs share an MP key");

        let secrets = vec![
            ("wifi-psk".to_string(), pseudo(1, 32)),
            ("cloud-token".to_string(), pseudo(2, 64)),
        ];
        let mut manifest = String::new();
        for (i, (name, data)) in secrets.iter().enumerate() {
            let file = format!("secret{i}.bin");
            fs::write(dir.join(&file), data).expect("secret file");
            let kind = if i == 0 { "raw" } else { "opaque" };
            manifest.push_str(&format!(
                "[[secret]]\nname = \"{name}\"\nfile = \"{file}\"\ntype = \"{kind}\"\n\n"
            ));
        }
        fs::write(dir.join("secrets.toml"), manifest).expect("manifest");
        let bundle_a = seal(&dir, &pubk_a, PRODUCT, "bundle-a.bin");
        let bundle_b = seal(&dir, &pubk_b, PRODUCT, "bundle-b.bin");
        let fresh = dir.join("fresh.img");
        mfg::mfgtool_run(&[
            "image",
            "-o",
            p(&fresh),
            "--size",
            "32M",
            "--bundle",
            p(&dir.join("bundle-a.bin")),
        ]);
        Fixture {
            dir,
            chip_a,
            fuses_a,
            fuses_b,
            pubk_a,
            pubkey_a,
            secrets,
            bundle_a,
            bundle_b,
            fresh,
        }
    })
}

/// A copy of the fresh image under a new name.
fn fresh_copy(name: &str) -> PathBuf {
    let f = fixture();
    mfg::copy(&f.fresh, &f.dir.join(format!("{name}.img"))).expect("copy image")
}

/// Writes `bundle` into the image's `mfg-bundle` partition (header + bundle).
fn put_bundle(img: &Path, bundle: &[u8]) {
    let mut d = fs::read(img).expect("read image");
    let r = partition(&d, "mfg-bundle").expect("mfg-bundle");
    d[r.clone()].fill(0);
    let h = BundlePartitionHeader::for_bundle(bundle).expect("partition header");
    d[r.start..r.start + area::BLOCK].copy_from_slice(&h.to_block());
    let at = r.start + area::BUNDLE_OFFSET as usize;
    d[at..at + bundle.len()].copy_from_slice(bundle);
    fs::write(img, d).expect("write image");
}

fn decode_id_line(line: &str) -> Vec<u8> {
    let b64 = line.trim().trim_start_matches(mfg::ID_PREFIX).trim();
    let mut out = vec![0u8; b64.len()];
    let n = mfg_formats::base64::decode(b64.as_bytes(), &mut out).expect("base64 ID line");
    out.truncate(n);
    out
}

/// Checks `provision verify` output: every secret ok, with the CRC the host
/// computes from the secret it sealed.
fn assert_verify(out: &str, secrets: &[(String, Vec<u8>)]) {
    for (name, data) in secrets {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name.as_str()))
            .unwrap_or_else(|| panic!("no verify line for {name}: {out}"));
        let want = format!("ok (secret crc32 0x{:08x})", crc32(data));
        assert!(line.contains(&want), "{name}: {line:?}, want {want:?}");
    }
    let n = secrets.len();
    assert!(
        out.contains(&format!("provision verify: {n} of {n} blob(s) ok")),
        "{out}"
    );
}

#[test]
fn host_crc32_is_the_formats_crc32() {
    let d = pseudo(9, 100);
    assert_eq!(crc32(&d), mfg_formats::crc32(&d));
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
}

#[test]
fn full_flow_then_host_checks_and_nothing_secret_leaks() {
    let f = fixture();
    let img = fresh_copy("full");
    let loader = loader_image();

    // Boot 1: a fresh chip provisions automatically.
    let (mut q, banner) = boot(&loader, Some(&f.fuses_a), &img);
    let expect = [
        "provision: state blank, bundle present",
        "provision: [1/4] sign-ID",
        "mfgprot-id: ",
        "provision: [2/4] decrypt-bundle",
        "provision:       2 secret(s) authenticated",
        "provision: [3/4] blob-encapsulate",
        "provision:       2 blob(s) written and verified",
        "provision: [4/4] consume the bundle",
        "provision: device provisioned",
    ];
    let mut at = 0;
    for e in expect {
        let i = banner[at..]
            .find(e)
            .unwrap_or_else(|| panic!("{e:?} missing or out of order in:\n{banner}"));
        at += i + e.len();
    }
    let status = q.run("provision status").expect("status");
    assert!(status.contains("state        : done"), "{status}");
    assert!(status.contains("blob table   : 2 blob(s)"), "{status}");
    assert!(status.contains("bundle       : absent"), "{status}");
    q.send_line("poweroff").expect("poweroff");
    q.wait_exit(BOOT).expect("QEMU exits");
    let console1 = q.console_bytes();
    let defmt1 = q.defmt_log().expect("defmt log decodes");
    let defmt1_raw = q.defmt_raw().expect("defmt raw");
    drop(q);
    assert!(
        defmt1.contains("bench flow sign="),
        "no bench line:\n{defmt1}"
    );
    let lines = id_lines(&String::from_utf8_lossy(&console1));
    assert_eq!(lines.len(), 1, "one ID line per provisioning");

    // The host checks the image and the console line.
    let rk = record_key().1;
    let inspect = mfg::mfgtool_run(&[
        "inspect",
        p(&img),
        "--mp-pubkey",
        p(&f.pubk_a),
        "--record-key",
        p(&rk),
    ]);
    assert!(inspect.contains("done"), "inspect:\n{inspect}");
    for (name, _) in &f.secrets {
        assert!(
            inspect.contains(name.as_str()),
            "inspect lacks {name}:\n{inspect}"
        );
    }
    let uid_hex = mfg::hex(&f.chip_a.uid);
    let verify = |what: &Path, mp: &str| {
        mfgtool([
            "verify-id",
            "--mp-pubkey",
            mp,
            "--record-key",
            p(&rk),
            p(what),
        ])
        .expect("runs")
    };
    let v = String::from_utf8_lossy(&verify(&img, p(&f.pubk_a)).stdout).into_owned();
    assert!(v.contains("signature OK") && v.contains(&uid_hex), "{v}");
    let log = f.dir.join("full-console.log");
    fs::write(&log, &console1).expect("console log");
    let v = String::from_utf8_lossy(&verify(&log, p(&f.pubk_a)).stdout).into_owned();
    assert!(v.contains("signature OK") && v.contains(&uid_hex), "{v}");
    let d = fs::read(&img).expect("image");
    // The console carries exactly the sealed record the eMMC holds, and it
    // opens with the OEM's record key only.
    assert_eq!(decode_id_line(&lines[0]), disk_id_record(&d));
    let rec = open_record(&disk_id_record(&d));
    assert_eq!(rec.message.uid, f.chip_a.uid);
    // Another OEM's key does not verify the record.
    let other = verify(&img, &"11".repeat(64));
    assert!(!other.status.success(), "verified with a wrong key");

    // Boot 2: already provisioned; every blob decapsulates to its secret.
    let (mut q, banner2) = boot(&loader, Some(&f.fuses_a), &img);
    assert!(
        banner2.contains("provision: already provisioned; nothing to do"),
        "{banner2}"
    );
    let out = q.run_timeout("provision verify", BOOT).expect("verify");
    assert_verify(&out, &f.secrets);
    q.send_line("poweroff").expect("poweroff");
    q.wait_exit(BOOT).expect("QEMU exits");
    let console2 = q.console_bytes();
    let defmt2 = q.defmt_log().expect("defmt log decodes");
    let defmt2_raw = q.defmt_raw().expect("defmt raw");
    drop(q);
    assert_eq!(
        fs::read(&img).expect("image"),
        d,
        "a provisioned boot wrote"
    );

    // Leak scan: the final image, both boots' console, raw and decoded defmt.
    let key = bundle_key(&f.pubkey_a, &f.bundle_a);
    let mut needles: Vec<(String, Vec<u8>)> = f
        .secrets
        .iter()
        .map(|(n, s)| (format!("secret {n}"), s.clone()))
        .collect();
    needles.push(("bundle key".into(), key.to_vec()));
    needles.push(("MP public key".into(), f.pubkey_a.to_vec()));
    needles.push(("MP public key X".into(), f.pubkey_a[..32].to_vec()));
    needles.push(("MP public key Y".into(), f.pubkey_a[32..].to_vec()));
    let hays: [(&str, &[u8]); 7] = [
        ("final disk image", &d),
        ("provisioning boot console", &console1),
        ("provisioning boot defmt (decoded)", defmt1.as_bytes()),
        ("provisioning boot defmt (raw)", &defmt1_raw),
        ("verify boot console", &console2),
        ("verify boot defmt (decoded)", defmt2.as_bytes()),
        ("verify boot defmt (raw)", &defmt2_raw),
    ];
    for (what, hay) in hays {
        assert!(!hay.is_empty(), "{what} is empty");
        for (name, needle) in &needles {
            if let Some(hit) = find_leak(hay, needle) {
                panic!("{name} found in the {what}: {hit}");
            }
        }
    }
    // The scan can find what it looks for: the sealed bundle is in the fresh
    // image, the secret's own bytes in the secret file.
    assert!(find_leak(&fs::read(&f.fresh).expect("fresh"), &f.bundle_a[..64]).is_some());
    assert!(find_leak(&f.secrets[0].1, &f.secrets[0].1).is_some());
}

/// One refusal: boots, expects `message` on the console and `code` in the
/// journal (state blank), and nothing else changed on the disk; then puts
/// `good` in the bundle partition and expects the device to provision.
fn refusal(
    name: &str,
    loader: &Path,
    fuses: Option<&Path>,
    img: &Path,
    message: &str,
    code: u16,
    retry: (&Path, &Path, &[u8]),
) {
    let before = fs::read(img).expect("image");
    let (mut q, banner) = boot(loader, fuses, img);
    assert!(
        banner.contains("provision: refused: ") && banner.contains(message),
        "{name}: no refusal {message:?} in:\n{banner}"
    );
    assert!(
        id_lines(&banner).is_empty(),
        "{name}: an ID line was printed"
    );
    let status = q.run("provision status").expect("status");
    assert!(status.contains("state        : blank"), "{name}: {status}");
    let want = format!("last error   : {}", error_code::name(code));
    assert!(status.contains(&want), "{name}: want {want:?} in {status}");
    assert!(
        status.contains("bundle       : present"),
        "{name}: {status}"
    );
    q.send_line("poweroff").expect("poweroff");
    q.wait_exit(BOOT).expect("QEMU exits");
    drop(q);

    let after = fs::read(img).expect("image");
    let data = partition(&after, "mfg-data").expect("mfg-data");
    let journal_blocks = data.start..data.start + 2 * area::BLOCK;
    assert_eq!(before.len(), after.len());
    let changed: Vec<usize> = (0..after.len() / area::BLOCK)
        .filter(|b| {
            let r = b * area::BLOCK..(b + 1) * area::BLOCK;
            before[r.clone()] != after[r]
        })
        .collect();
    assert!(!changed.is_empty(), "{name}: no journal entry written");
    for b in &changed {
        assert!(
            journal_blocks.contains(&(b * area::BLOCK)),
            "{name}: block {b} changed outside the journal"
        );
    }
    let j = journal(&after).expect("journal");
    assert_eq!(j.state, ProvState::Blank, "{name}");
    assert_eq!(j.last_error, code, "{name}");
    assert_eq!(j.id_slot, None, "{name}");

    // Still re-provisionable.
    let (retry_loader, retry_fuses, good) = retry;
    put_bundle(img, good);
    let (mut q, banner) = boot(retry_loader, Some(retry_fuses), img);
    assert!(
        banner.contains("provision: device provisioned"),
        "{name}: no re-provisioning:\n{banner}"
    );
    if banner.contains(", production)") {
        // A production console is locked: the OEM's token unlocks verify.
        qemu_tests::mfg::unlock(&mut q, "provision");
    }
    let out = q.run_timeout("provision verify", BOOT).expect("verify");
    assert!(
        out.contains("provision verify: 2 of 2 blob(s) ok"),
        "{name}: {out}"
    );
    let j = journal(&fs::read(img).expect("image")).expect("journal");
    assert_eq!(j.state, ProvState::Done, "{name}");
    assert_eq!(j.last_error, 0, "{name}: the error outlived the success");
}

#[test]
fn refused_bundle_sealed_for_another_mp_key() {
    let f = fixture();
    let loader = loader_image();
    // Chip B (another OEM) gets chip A's OEM bundle.
    let img = fresh_copy("other-oem");
    let msg = "bundle authentication failed";
    refusal(
        "other OEM's chip",
        &loader,
        Some(&f.fuses_b),
        &img,
        msg,
        error_code::BUNDLE_AUTH,
        (&loader, &f.fuses_b, &f.bundle_b),
    );
    // Chip A gets a bundle sealed for another key.
    let img = fresh_copy("wrong-key");
    put_bundle(&img, &f.bundle_b);
    refusal(
        "wrong key",
        &loader,
        Some(&f.fuses_a),
        &img,
        msg,
        error_code::BUNDLE_AUTH,
        (&loader, &f.fuses_a, &f.bundle_a),
    );
}

#[test]
fn refused_open_part_in_a_production_build() {
    let f = fixture();
    let prod = qemu_tests::production_loader_image();
    let mut open = f.chip_a.clone();
    open.open = true;
    let open_fuses = f.dir.join("a-open.fuses");
    fs::write(&open_fuses, fuse_bytes(&open, None)).expect("fuses");
    let img = fresh_copy("open-part");
    refusal(
        "open part (production)",
        &prod,
        Some(&open_fuses),
        &img,
        "open (non-closed) part",
        error_code::OPEN_PART,
        // The same board, once its fuses are closed, provisions.
        (&prod, &f.fuses_a, &f.bundle_a),
    );
}

#[test]
fn refused_without_a_fuse_file() {
    let f = fixture();
    let loader = loader_image();
    let img = fresh_copy("no-fuses");
    refusal(
        "no fuse file",
        &loader,
        None,
        &img,
        "security hardware unavailable",
        error_code::FUSE_READ,
        (&loader, &f.fuses_a, &f.bundle_a),
    );
}

#[test]
fn power_cut_after_every_write_resumes_to_exactly_one_provisioning() {
    let f = fixture();
    let loader = loader_image();
    // The host tests (provision/src/tests.rs) cut the power after every
    // write of the flow; here a few cuts, through the loader's power-cut
    // plan, QEMU's power-off and a real reboot, end to end: the first write
    // (ID record), one in the middle (a blob), then every later point
    // until a boot runs through.
    let mut last = None;
    for k in (1..=64u32).filter(|&k| k == 1 || k == 4 || k >= 9) {
        let img = fresh_copy(&format!("cut-{k}"));
        let fuses = f.dir.join(format!("a-cut-{k}.fuses"));
        fs::write(&fuses, fuse_bytes(&f.chip_a, Some(k))).expect("fuses");
        let mut q = Qemu::boot(
            QemuOpts::new(&loader)
                .fuses(&fuses)
                .disk(&img)
                .no_reboot(true),
        )
        .expect("QEMU starts");
        match q.wait_prompt_timeout(BOOT) {
            Ok(banner) => {
                // k is past the flow's last write: it ran to the end.
                assert!(banner.contains("provision: device provisioned"), "{banner}");
                last = Some(k - 1);
                break;
            }
            Err(Error::Exited { status, .. }) => {
                assert!(status.success(), "k={k}: QEMU exited with {status}");
            }
            Err(e) => panic!("k={k}: {e}"),
        }
        let cut_console = q.console_log();
        drop(q);
        let tag = format!("*** power cut (test plan) after eMMC write {k} ***");
        assert!(cut_console.contains(&tag), "k={k}:\n{cut_console}");

        // The bundle is never gone before the blobs are durable.
        let d = fs::read(&img).expect("image");
        let state = journal(&d).map_or(ProvState::Blank, |j| j.state);
        if !bundle_present(&d) {
            assert!(
                matches!(state, ProvState::SecretsBlobbed | ProvState::Done),
                "k={k}: bundle erased in state {}",
                state.as_str()
            );
        }

        // The next boot, without a plan, finishes the job.
        let (mut q, banner) = boot(&loader, Some(&f.fuses_a), &img);
        if state == ProvState::Done {
            assert!(banner.contains("already provisioned"), "k={k}: {banner}");
        } else {
            assert!(
                banner.contains("provision: device provisioned"),
                "k={k}: {banner}"
            );
        }
        let out = q.run_timeout("provision verify", BOOT).expect("verify");
        assert_verify(&out, &f.secrets);
        q.send_line("poweroff").expect("poweroff");
        q.wait_exit(BOOT).expect("QEMU exits");
        drop(q);

        // Exactly one identity: at most one line on the console, and every
        // record seen (console, disk) is the same one, signed by chip A.
        let d = fs::read(&img).expect("image");
        let j = journal(&d).expect("journal");
        assert_eq!(j.state, ProvState::Done, "k={k}");
        assert_eq!(j.blob_count, 2, "k={k}");
        assert!(!bundle_present(&d), "k={k}: bundle still there");
        let rec = disk_id_record(&d);
        let mut lines = id_lines(&cut_console);
        lines.extend(id_lines(&banner));
        assert!(lines.len() <= 1, "k={k}: {} ID lines", lines.len());
        for l in &lines {
            assert_eq!(
                decode_id_line(l),
                rec,
                "k={k}: console and disk records differ"
            );
        }
        let v = mfg::mfgtool_run(&[
            "verify-id",
            "--mp-pubkey",
            p(&f.pubk_a),
            "--record-key",
            p(&record_key().1),
            p(&img),
        ]);
        assert!(v.contains("signature OK"), "k={k}: {v}");
        let _ = fs::remove_file(&img);
    }
    let last = last.expect("the flow ends within 64 writes");
    // ID record, journal, 2 blobs, table, journal, bundle header, bundle
    // body, journal: at least 8 writes for 2 secrets.
    assert!(last >= 8, "only {last} writes in a 2-secret flow");
    eprintln!("power cut: all {last} write points checked");
}

#[test]
fn largest_secret_provisions_and_verifies() {
    // One secret of the maximum size (64 KiB): its blob and the read-back
    // decapsulation need the most scratch RAM.
    let f = fixture();
    let dir = f.dir.join("big");
    fs::create_dir_all(&dir).expect("dir");
    let data = pseudo(3, mfg_formats::bundle::MAX_SECRET_LEN);
    fs::write(dir.join("big.bin"), &data).expect("secret");
    fs::write(
        dir.join("secrets.toml"),
        "[[secret]]\nname = \"big\"\nfile = \"big.bin\"\ntype = \"opaque\"\n",
    )
    .expect("manifest");
    let bundle = seal(&dir, &f.pubk_a, PRODUCT, "bundle.bin");
    let img = fresh_copy("big");
    put_bundle(&img, &bundle);
    let (mut q, banner) = boot(&loader_image(), Some(&f.fuses_a), &img);
    assert!(banner.contains("provision: device provisioned"), "{banner}");
    let out = q.run_timeout("provision verify", BOOT).expect("verify");
    assert_verify(&out, &[("big".to_string(), data)]);
}

/// Issue 13, attack 7: a counterfeit, an open chip, given secrets the CM
/// sealed itself for that chip's own MP key, provisions on a development
/// loader; its record, presented as the OEM's, is refused by the ledger.
/// (v1: such a record passed `inspect`, `provision verify` and the ledger.)
/// A production loader does not even provision the open chip
/// (`refused_open_part_in_a_production_build`), and a genuine closed chip
/// cannot be made to sign a forged message: the production console's
/// `mfgprot` is locked (`qemu-tests/tests/unlock.rs`) and the MPMR is
/// locked at boot (`qemu-tests/tests/caam.rs`).
#[test]
fn a_counterfeit_open_chip_is_refused_by_the_oem_ledger() {
    let f = fixture();
    let dir = f.dir.join("counterfeit");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("dir");
    let mut open = f.chip_a.clone();
    open.open = true;
    let open_fuses = dir.join("open.fuses");
    fs::write(&open_fuses, fuse_bytes(&open, None)).expect("fuses");
    // The CM reads the open chip's MP key and seals its own copy of the
    // secrets for it, under the OEM's product and bundle id.
    let blank = dir.join("blank.img");
    mfg::mfgtool_run(&["image", "-o", p(&blank), "--size", "32M"]);
    let (open_key, open_pubk) = read_pubkey(&dir, &open_fuses, &blank, "open");
    assert_ne!(
        open_key, f.pubkey_a,
        "an open part has the closed parts' MP key"
    );
    fs::copy(f.dir.join("secrets.toml"), dir.join("secrets.toml")).expect("manifest");
    for i in 0..f.secrets.len() {
        let s = format!("secret{i}.bin");
        fs::copy(f.dir.join(&s), dir.join(&s)).expect("secret");
    }
    let cm_bundle = seal(&dir, &open_pubk, PRODUCT, "cm-bundle.bin");
    let img = dir.join("counterfeit.img");
    fs::copy(&f.fresh, &img).expect("image");
    put_bundle(&img, &cm_bundle);
    let (mut q, banner) = boot(&loader_image(), Some(&open_fuses), &img);
    assert!(banner.contains("provision: device provisioned"), "{banner}");
    q.send_line("poweroff").expect("poweroff");
    q.wait_exit(BOOT).expect("QEMU exits");
    drop(q);
    let log = dir.join("counterfeit.log");
    fs::write(&log, &banner).expect("log");
    assert_eq!(id_lines(&banner).len(), 1);

    // The OEM's ledger: its closed MP key and SRK hash, its own bundle, the
    // loaders it released (the development image too, to show that even
    // that mistake does not let the counterfeit in).
    let db = dir.join("oem.db");
    let rk = record_key().1;
    let srk = mfg::hex(&f.chip_a.srk_hash);
    let run_ok = |args: &[&str]| {
        let o = mfgtool(args.iter().copied()).expect("mfgtool runs");
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run_ok(&[
        "ledger",
        "--db",
        p(&db),
        "init",
        "--mp-pubkey",
        p(&f.pubk_a),
        "--srk-hash",
        &srk,
    ]);
    let bundle_a = dir.join("bundle-a.bin");
    fs::write(&bundle_a, &f.bundle_a).expect("bundle");
    run_ok(&[
        "ledger",
        "--db",
        p(&db),
        "add-bundle",
        "--lot",
        "L1",
        p(&bundle_a),
    ]);
    let elf = loader_image().with_file_name("loader.elf");
    run_ok(&["ledger", "--db", p(&db), "release", "--loader", p(&elf)]);
    let o = mfgtool([
        "ledger",
        "--db",
        p(&db),
        "register",
        "--record-key",
        p(&rk),
        p(&log),
    ])
    .expect("mfgtool runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!o.status.success(), "the counterfeit was registered: {out}");
    assert!(
        out.contains("signature"),
        "not refused on its signature: {out}"
    );
    let list = mfg::mfgtool_run(&["ledger", "--db", p(&db), "--json", "list"]);
    assert!(
        !list.contains(&mfg::hex(&open.uid)),
        "the counterfeit's UID is in the ledger: {list}"
    );
    // With the OEM's record key the record opens: it says "open" and carries
    // the open chip's signature, which the OEM's MP key does not verify.
    let v = mfgtool([
        "verify-id",
        "--mp-pubkey",
        p(&f.pubk_a),
        "--record-key",
        p(&rk),
        p(&log),
    ])
    .expect("runs");
    assert!(!v.status.success(), "verify-id accepted the counterfeit");
    let _ = fs::remove_dir_all(&dir);
}
