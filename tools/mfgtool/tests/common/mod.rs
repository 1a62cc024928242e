//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mfg_formats::identity::{IdRecord, IdentityMessage, SOC_IMX8MP, SecurityState};
use p256::ecdsa::{Signature, SigningKey, signature::Signer};

pub const SRK: [u8; 32] = [0x5a; 32];

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
    let mut m = IdentityMessage {
        soc: SOC_IMX8MP,
        uid: uid.to_be_bytes(),
        srk_hash: srk,
        security_state: state,
        boot_counter,
        loader_version: [0; 16],
        bundle_id,
        station_nonce: None,
    };
    m.set_loader_version("0.1.0");
    sign(k, m)
}

/// Signs a message as the device does (MPMR 0x11..).
pub fn sign(k: &SigningKey, m: IdentityMessage) -> IdRecord {
    let mut r = IdRecord {
        message: m,
        mpmr: [0x11; 32],
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

pub fn console_line(r: &IdRecord) -> String {
    let mut b = [0u8; 400];
    let n = r.console_line(&mut b).unwrap();
    String::from_utf8(b[..n].to_vec()).unwrap()
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
    out
}

/// Console lines of `recs`, one per line.
pub fn lines(recs: &[IdRecord]) -> String {
    recs.iter().map(|r| console_line(r) + "\n").collect()
}
