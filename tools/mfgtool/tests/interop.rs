//! Interoperability with an independent Python implementation written only
//! from docs/formats.md (needs `python3` with the `cryptography` package;
//! CI installs it with pip).

mod common;

use std::fs;
use std::process::Command;

use common::*;
use mfg_formats::identity::SecurityState;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop.py");

fn py(args: &[&str]) -> (i32, String, String) {
    let o = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("python3 is required for the interop tests");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !err.contains("No module named 'cryptography'"),
        "the interop tests need Python's cryptography package (pip install cryptography)"
    );
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        err,
    )
}

#[test]
fn python_seals_mfgtool_opens() {
    let d = tempfile::tempdir().unwrap();
    let k = key(0x61);
    let pk = pubhex(&k);
    let a = d.path().join("a.bin");
    let b = d.path().join("b.der");
    fs::write(&a, b"python-made secret \x00\x01\x02").unwrap();
    fs::write(&b, [0x30, 0x03, 0x02, 0x01, 0x09]).unwrap();
    let t = d.path().join("disk.key");
    fs::write(&t, [0x7d; 32]).unwrap();
    let out = d.path().join("py.bundle");
    let (c, _, err) = py(&[
        "seal",
        "--pubkey",
        &pk,
        "--product",
        "widget-9000",
        "--bundle-id",
        "77",
        "--out",
        s(&out),
        "--secret",
        &format!("wifi-key:raw:{}", s(&a)),
        "--secret",
        &format!("dev.der:der:{}:{}", s(&b), "aa".repeat(16)),
        "--secret",
        &format!("disk-key:raw:{}:{}", s(&t), hex::encode(b"SECURE_KEY")),
    ]);
    assert_eq!(c, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "open",
        "--json",
        "--reveal",
        "--mp-pubkey",
        &pk,
        s(&out),
    ]))
    .unwrap();
    assert_eq!(j["product"], "widget-9000");
    assert_eq!(j["bundle_id"], 77);
    assert_eq!(j["secrets"][0]["name"], "wifi-key");
    assert_eq!(
        j["secrets"][0]["content_hex"],
        hex::encode(fs::read(&a).unwrap())
    );
    assert_eq!(j["secrets"][0]["key_modifier_given"], false);
    assert_eq!(j["secrets"][1]["type"], "der");
    assert_eq!(j["secrets"][1]["key_modifier"], "aa".repeat(16));
    // A short key modifier as section 1.3 describes it.
    assert_eq!(j["secrets"][2]["key_modifier"], hex::encode(b"SECURE_KEY"));
    assert_eq!(j["secrets"][2]["linux_trusted_key"], true);
    assert_eq!(j["secrets"][1]["linux_trusted_key"], false);
    // And the tag binds: another key fails in mfgtool.
    assert_eq!(
        run(&["open", "--mp-pubkey", &pubhex(&key(0x62)), s(&out)]).0,
        3
    );
}

#[test]
fn mfgtool_seals_python_opens() {
    let d = tempfile::tempdir().unwrap();
    let k = key(0x63);
    let pk = pubhex(&k);
    fs::write(d.path().join("s1"), b"first secret").unwrap();
    fs::write(d.path().join("s2"), vec![0x5c; 3000]).unwrap();
    fs::write(d.path().join("s3"), vec![0x3e; 64]).unwrap();
    let m = d.path().join("m.toml");
    fs::write(
        &m,
        "[[secret]]\nname = \"one\"\nfile = \"s1\"\ntype = \"raw\"\n\n[[secret]]\nname = \"two.bin\"\nfile = \"s2\"\ntype = \"opaque\"\nkey_modifier = \"0102030405060708090a0b0c0d0e0f10\"\n\n[[secret]]\nname = \"disk-key\"\nfile = \"s3\"\ntype = \"raw\"\nlinux_trusted_key = true\n",
    )
    .unwrap();
    let out = d.path().join("rs.bundle");
    ok(&[
        "seal",
        "--mp-pubkey",
        &pk,
        "--secrets",
        s(&m),
        "--product",
        "gadget",
        "--bundle-id",
        "3",
        "-o",
        s(&out),
    ]);
    let (c, stdout, err) = py(&["open", "--pubkey", &pk, s(&out)]);
    assert_eq!(c, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["product"], "gadget");
    assert_eq!(j["bundle_id"], 3);
    assert_eq!(j["secrets"][0]["content_hex"], hex::encode(b"first secret"));
    assert_eq!(j["secrets"][1]["size"], 3000);
    assert_eq!(
        j["secrets"][1]["key_modifier"],
        "0102030405060708090a0b0c0d0e0f10"
    );
    assert_eq!(j["secrets"][2]["key_modifier"], hex::encode(b"SECURE_KEY"));
    assert_eq!(j["secrets"][2]["content_hex"], "3e".repeat(64));
    // Python refuses the wrong key and a changed byte too.
    assert_eq!(py(&["open", "--pubkey", &pubhex(&key(0x64)), s(&out)]).0, 3);
    let mut t = fs::read(&out).unwrap();
    t[150] ^= 1;
    fs::write(&out, &t).unwrap();
    assert_eq!(py(&["open", "--pubkey", &pk, s(&out)]).0, 3);
}

/// The python side opens the sealed record (ECDH, HKDF, AES-GCM) and
/// checks the v2 record from the document alone.
#[test]
fn python_opens_and_verifies_id_record_console_line() {
    let d = tempfile::tempdir().unwrap();
    let k = key(0x65);
    let rk = rk(d.path());
    let mut m = message(0xfeed, SRK, SecurityState::Closed, Some(7), 3);
    m.station_nonce = Some([0xc3; 32]);
    m.bundle_digest = [0x9d; 32];
    m.set_product("widget-9000");
    let r = sign(&k, m);
    let f = d.path().join("console.log");
    fs::write(&f, format!("boot...\n{}\n=> ", console_line(&r))).unwrap();
    let (c, stdout, err) = py(&[
        "verify-id",
        "--pubkey",
        &pubhex(&k),
        "--record-key",
        &rk,
        s(&f),
    ]);
    assert_eq!(c, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["uid"], format!("{:032x}", 0xfeed));
    assert_eq!(j["soc"], 0x8a50);
    assert_eq!(j["security_state"], 2);
    assert_eq!(j["bundle_id"], 7);
    assert_eq!(j["boot_counter"], 3);
    assert_eq!(j["product"], "widget-9000");
    assert_eq!(j["bundle_digest"], "9d".repeat(32));
    assert_eq!(j["station_nonce"], "c3".repeat(32));
    assert_eq!(j["mpmr"], hex::encode(MPMR));
    assert_eq!(j["loader_version"], "0.1.0");
    // mfgtool agrees on the same line.
    let ours: serde_json::Value = serde_json::from_str(&ok(&[
        "verify-id",
        "--json",
        "--mp-pubkey",
        &pubhex(&k),
        "--record-key",
        &rk,
        s(&f),
    ]))
    .unwrap();
    for f in [
        "uid",
        "product",
        "bundle_digest",
        "station_nonce",
        "mpmr",
        "bundle_id",
    ] {
        assert_eq!(ours[0][f], j[f], "{f}");
    }
    // Another MP key, another record key, a changed byte: refused.
    assert_eq!(
        py(&[
            "verify-id",
            "--pubkey",
            &pubhex(&key(0x66)),
            "--record-key",
            &rk,
            s(&f)
        ])
        .0,
        3
    );
    let other = write_record_key(d.path(), "other.pem", &[0x4c; 32]);
    let (c, _, err) = py(&[
        "verify-id",
        "--pubkey",
        &pubhex(&k),
        "--record-key",
        &other,
        s(&f),
    ]);
    assert_eq!(c, 3, "{err}");
    assert!(
        err.contains("sealed for another record key or altered"),
        "{err}"
    );
    let mut t = sealed(&r);
    t[200] ^= 1;
    fs::write(&f, line_of(&t) + "\n").unwrap();
    assert_eq!(
        py(&[
            "verify-id",
            "--pubkey",
            &pubhex(&k),
            "--record-key",
            &rk,
            s(&f)
        ])
        .0,
        3
    );
}
