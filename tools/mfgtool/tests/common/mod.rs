//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A synthetic loader ELF (also included by the unit tests of `src/loaderimage.rs`).
pub mod elf;

use std::cell::RefCell;
use std::collections::HashMap;

use mfg_formats::identity::{
    self, IdRecord, IdentityMessage, SEALED_LEN, SOC_IMX8MP, SecurityState,
};
use p256::ecdsa::{Signature, SigningKey, signature::Signer};
use p256::pkcs8::EncodePrivateKey;
use sha2::{Digest, Sha256};

pub const SRK: [u8; 32] = [0x5a; 32];
/// The MPMR of every test record: the measurement the tests release.
pub const MPMR: [u8; 32] = [0x11; 32];
/// The test OEM record private key (scalar `4b` x 32; never a real key).
pub const RECORD_SECRET: [u8; 32] = [0x4b; 32];

/// The record public key (x || y) of `secret`.
pub fn record_public(secret: &[u8; 32]) -> [u8; 64] {
    mfg_formats::sealed::public_key(secret).unwrap()
}

/// A PEM block (64-column base64).
pub fn pem(label: &str, der: &[u8]) -> String {
    let mut b = vec![0u8; mfg_formats::base64::encoded_len(der.len())];
    mfg_formats::base64::encode(der, &mut b).unwrap();
    let body: Vec<&str> = b
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

/// Writes `secret` as a PKCS#8 PEM private key to `dir/name`; returns its path.
pub fn write_record_key(dir: &Path, name: &str, secret: &[u8; 32]) -> String {
    let sk = p256::SecretKey::from_slice(secret).unwrap();
    let f = dir.join(name);
    std::fs::write(
        &f,
        pem("PRIVATE KEY", sk.to_pkcs8_der().unwrap().as_bytes()),
    )
    .unwrap();
    f.to_str().unwrap().to_string()
}

/// The test record key ([`RECORD_SECRET`]) in `dir/record.pem` (PKCS#8 PEM).
pub fn rk(dir: &Path) -> String {
    write_record_key(dir, "record.pem", &RECORD_SECRET)
}

thread_local! {
    /// Bundles sealed by [`seal_bundle`] in this test (each test runs on its
    /// own thread): bundle id -> (product, SHA-256 of the file). A record of
    /// such a bundle id carries its product and digest, as a device
    /// provisioning from it would.
    static BUNDLES: RefCell<HashMap<u64, (String, [u8; 32])>> = RefCell::new(HashMap::new());
}

/// Remembers a sealed bundle file for [`message`].
pub fn remember_bundle(bundle_id: u64, product: &str, file: &Path) {
    let d: [u8; 32] = Sha256::digest(std::fs::read(file).unwrap()).into();
    BUNDLES.with(|b| b.borrow_mut().insert(bundle_id, (product.to_string(), d)));
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mfgtool"))
}

/// Runs mfgtool; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let o: Output = bin().args(args).output().expect("run mfgtool");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn ok(args: &[&str]) -> String {
    let (c, out, err) = run(args);
    assert_eq!(c, 0, "mfgtool {args:?} failed: {err}");
    out
}

pub fn key(b: u8) -> SigningKey {
    SigningKey::from_slice(&[b; 32]).unwrap()
}

pub fn pubhex(k: &SigningKey) -> String {
    hex::encode_upper(&k.verifying_key().to_sec1_point(false).as_bytes()[1..])
}

pub fn pubkey(k: &SigningKey) -> [u8; 64] {
    k.verifying_key().to_sec1_point(false).as_bytes()[1..]
        .try_into()
        .unwrap()
}

pub fn record(k: &SigningKey, uid: u128, srk: [u8; 32], state: SecurityState) -> IdRecord {
    record_with(k, uid, srk, state, Some(7), 1)
}

/// A signed record naming `bundle_id`, from boot `boot_counter`.
pub fn record_with(
    k: &SigningKey,
    uid: u128,
    srk: [u8; 32],
    state: SecurityState,
    bundle_id: Option<u64>,
    boot_counter: u32,
) -> IdRecord {
    sign(k, message(uid, srk, state, bundle_id, boot_counter))
}

/// The identity message a device makes: with a bundle that [`seal_bundle`]
/// sealed in this test, its product and SHA-256; with another bundle id,
/// product `widget` and a digest of no bundle (`dd` x 32).
pub fn message(
    uid: u128,
    srk: [u8; 32],
    state: SecurityState,
    bundle_id: Option<u64>,
    boot_counter: u32,
) -> IdentityMessage {
    let (product, bundle_digest) = match bundle_id {
        None => ("widget".to_string(), [0; 32]),
        Some(id) => BUNDLES
            .with(|b| b.borrow().get(&id).cloned())
            .unwrap_or(("widget".to_string(), [0xdd; 32])),
    };
    let mut m = IdentityMessage {
        soc: SOC_IMX8MP,
        uid: uid.to_be_bytes(),
        srk_hash: srk,
        security_state: state,
        boot_counter,
        loader_version: [0; 16],
        product: [0; 32],
        bundle_id,
        bundle_digest,
        station_nonce: None,
    };
    m.set_loader_version("0.1.0");
    m.set_product(&product);
    m
}

/// Signs a message as the device does (MPMR [`MPMR`]).
pub fn sign(k: &SigningKey, m: IdentityMessage) -> IdRecord {
    sign_with_mpmr(k, m, MPMR)
}

/// Signs a message as a device whose MPMR holds `mpmr`.
pub fn sign_with_mpmr(k: &SigningKey, m: IdentityMessage, mpmr: [u8; 32]) -> IdRecord {
    let mut r = IdRecord {
        message: m,
        mpmr,
        mes_rep: [0; 32],
        c: [0; 32],
        d: [0; 32],
    };
    r.mes_rep = r.digest();
    let sig: Signature = k.sign(&r.signed_bytes());
    let b = sig.to_bytes();
    r.c.copy_from_slice(&b[..32]);
    r.d.copy_from_slice(&b[32..]);
    r
}

/// A fresh ephemeral secret (the device draws one from the CAAM RNG).
pub fn ephemeral() -> [u8; 32] {
    loop {
        let mut e = [0u8; 32];
        getrandom::fill(&mut e).unwrap();
        if mfg_formats::sealed::public_key(&e).is_ok() {
            return e;
        }
    }
}

/// `r` sealed to the record key of `secret`, as a device built with that
/// key's public half stores and prints it.
pub fn seal_to(r: &IdRecord, secret: &[u8; 32]) -> [u8; SEALED_LEN] {
    r.seal(&record_public(secret), &ephemeral()).unwrap()
}

/// `r` sealed to the test record key.
pub fn sealed(r: &IdRecord) -> [u8; SEALED_LEN] {
    seal_to(r, &RECORD_SECRET)
}

/// The console line of a sealed record.
pub fn line_of(s: &[u8; SEALED_LEN]) -> String {
    let mut b = [0u8; identity::CONSOLE_LINE_LEN];
    let n = identity::console_line(s, &mut b).unwrap();
    String::from_utf8(b[..n].to_vec()).unwrap()
}

/// The device's `mfgprot-id:` line for `r` (sealed to the test record key).
pub fn console_line(r: &IdRecord) -> String {
    line_of(&sealed(r))
}

pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Seals a one-secret bundle for `pk` (product, bundle id) into `dir`.
pub fn seal_bundle(dir: &Path, pk: &str, product: &str, bundle_id: u64) -> PathBuf {
    let secret = dir.join(format!("secret-{bundle_id}.bin"));
    std::fs::write(&secret, format!("SECRET-OF-BUNDLE-{bundle_id}")).unwrap();
    let m = dir.join(format!("manifest-{bundle_id}.toml"));
    std::fs::write(
        &m,
        format!(
            "[[secret]]\nname = \"s\"\nfile = \"{}\"\ntype = \"raw\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let out = dir.join(format!("bundle-{product}-{bundle_id}.bin"));
    let _ = std::fs::remove_file(&out);
    ok(&[
        "seal",
        "--mp-pubkey",
        pk,
        "--secrets",
        s(&m),
        "--product",
        product,
        "--bundle-id",
        &bundle_id.to_string(),
        "-o",
        s(&out),
    ]);
    remember_bundle(bundle_id, product, &out);
    out
}

/// Releases the test loader measurement ([`MPMR`]) in ledger `db`.
pub fn release_test_loader(db: &str) {
    ok(&[
        "ledger",
        "--db",
        db,
        "release",
        "--measurement",
        &hex::encode(MPMR),
    ]);
}

/// Console lines of `recs`, one per line.
pub fn lines(recs: &[IdRecord]) -> String {
    recs.iter().map(|r| console_line(r) + "\n").collect()
}

/// `mfgtool seal` of `manifest` for `pk` (hex) as `product`, to `out`.
pub fn seal_args<'a>(
    pk: &'a str,
    manifest: &'a Path,
    product: &'a str,
    out: &'a Path,
) -> Vec<&'a str> {
    vec![
        "seal",
        "--mp-pubkey",
        pk,
        "--secrets",
        s(manifest),
        "--product",
        product,
        "-o",
        s(out),
    ]
}
