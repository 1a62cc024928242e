//! CLI tests of every subcommand and refusal.

mod common;

use std::fs;

use common::*;
use mfg_formats::area::{self, BlobEntry, BundlePartitionHeader, JournalRecord, ProvState};
use mfg_formats::identity::SecurityState;
use mfg_formats::{SecretType, crc32};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn help_on_every_subcommand_lists_exit_codes() {
    for args in [
        vec!["--help"],
        vec!["seal", "--help"],
        vec!["open", "--help"],
        vec!["verify-id", "--help"],
        vec!["ledger", "--help"],
        vec!["ledger", "--db", "x", "release", "--help"],
        vec!["image", "--help"],
        vec!["inspect", "--help"],
        vec!["pubkey", "--help"],
    ] {
        let out = ok(&args);
        assert!(out.contains("Exit codes:"), "{args:?}");
        assert!(out.contains("4  refused by ledger policy"), "{args:?}");
    }
    let (c, _, err) = run(&["seal"]);
    assert_eq!(c, 2, "{err}");
}

#[test]
fn docs_worked_example_is_current() {
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/formats.md");
    let doc = fs::read_to_string(doc_path).unwrap();
    let generated = ok(&["example"]);
    let (b, e) = (
        "<!-- BEGIN GENERATED EXAMPLE -->\n",
        "<!-- END GENERATED EXAMPLE -->",
    );
    let i = doc.find(b).unwrap() + b.len();
    let j = doc.find(e).unwrap();
    if std::env::var_os("MFGTOOL_UPDATE_DOCS").is_some() {
        let new = format!("{}{}{}", &doc[..i], generated, &doc[j..]);
        fs::write(doc_path, new).unwrap();
        return;
    }
    assert_eq!(
        &doc[i..j],
        generated,
        "docs/formats.md worked example is stale: run MFGTOOL_UPDATE_DOCS=1 cargo test -p mfgtool docs_worked"
    );
}

const DER: &[u8] = &[0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07];

fn write_manifest(dir: &std::path::Path) -> std::path::PathBuf {
    fs::create_dir_all(dir.join("sec")).unwrap();
    fs::write(dir.join("sec/wifi.key"), b"WIFI-SECRET-0123456789abcdef!!").unwrap();
    fs::write(dir.join("sec/dev.der"), DER).unwrap();
    fs::write(
        dir.join("sec/dev.pem"),
        "-----BEGIN CERTIFICATE-----\nMAYCAQUCAQc=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    fs::write(dir.join("sec/blob.bin"), b"OPAQUE-PAYLOAD-XYZ").unwrap();
    let m = dir.join("manifest.toml");
    fs::write(
        &m,
        r#"
[[secret]]
name = "wifi-key"
file = "sec/wifi.key"
type = "raw"

[[secret]]
name = "device.der"
file = "sec/dev.der"
type = "der"
key_modifier = "000102030405060708090a0b0c0d0e0f"

[[secret]]
name = "device.pem"
file = "sec/dev.pem"
type = "pem"

[[secret]]
name = "app_blob"
file = "sec/blob.bin"
type = "opaque"
"#,
    )
    .unwrap();
    m
}

#[test]
fn seal_and_open_round_trip_without_echoing_secrets() {
    let d = tmp();
    let k = key(0x21);
    let pk = pubhex(&k);
    let m = write_manifest(d.path());
    let b = p(d.path(), "bundle.bin");
    let out = ok(&[
        "seal",
        "--mp-pubkey",
        &pk,
        "--secrets",
        s(&m),
        "--product",
        "widget",
        "--bundle-id",
        "9",
        "-o",
        s(&b),
    ]);
    assert!(!out.contains("WIFI-SECRET"));
    let raw = fs::read(&b).unwrap();
    assert!(
        !raw.windows(11).any(|w| w == b"WIFI-SECRET"),
        "plaintext in bundle"
    );
    let out = ok(&["open", "--mp-pubkey", &pk, s(&b)]);
    for n in [
        "wifi-key",
        "device.der",
        "device.pem",
        "app_blob",
        "raw",
        "der",
        "pem",
        "opaque",
        "widget",
    ] {
        assert!(out.contains(n), "{n} missing in {out}");
    }
    assert!(out.contains("000102030405060708090a0b0c0d0e0f"));
    assert!(
        !out.contains("WIFI") && !out.contains(&hex::encode("WIFI-SECRET")),
        "secret shown without --reveal"
    );
    let rev = ok(&["open", "--mp-pubkey", &pk, "--reveal", s(&b)]);
    assert!(rev.contains(&hex::encode(b"WIFI-SECRET-0123456789abcdef!!")));
    let j: serde_json::Value =
        serde_json::from_str(&ok(&["open", "--json", "--mp-pubkey", &pk, s(&b)])).unwrap();
    assert_eq!(j["bundle_id"], 9);
    assert_eq!(j["secrets"][0]["size"], 30);
    assert_eq!(j["secrets"][1]["size"], DER.len());
    // Key forms: 04-prefixed hex, U-Boot output file, PEM file.
    ok(&["open", "--mp-pubkey", &format!("04{pk}"), s(&b)]);
    let uboot = p(d.path(), "pubk.txt");
    fs::write(
        &uboot,
        format!("\nGenerating Manufacturing Protection Public Key\nPublic key:\n{pk}\n"),
    )
    .unwrap();
    ok(&["open", "--mp-pubkey", s(&uboot), s(&b)]);
    let pem = p(d.path(), "pubk.pem");
    fs::write(&pem, ok(&["pubkey", "--mp-pubkey", &pk, "--pem"])).unwrap();
    ok(&["open", "--mp-pubkey", s(&pem), s(&b)]);
    assert_eq!(ok(&["pubkey", "--mp-pubkey", s(&pem)]).trim(), pk);
}

#[test]
fn open_refuses_wrong_key_tampering_and_truncation() {
    let d = tmp();
    let k = key(0x21);
    let pk = pubhex(&k);
    let m = write_manifest(d.path());
    let b = p(d.path(), "bundle.bin");
    ok(&seal_args(&pk, &m, "widget", &b));
    let good = fs::read(&b).unwrap();
    let (c, _, err) = run(&["open", "--mp-pubkey", &pubhex(&key(0x22)), s(&b)]);
    assert_eq!(c, 3);
    assert!(err.contains("bundle authentication failed"), "{err}");
    // A changed byte in the bundle id (header), the ciphertext and the tag.
    for i in [48, 200, good.len() - 1] {
        let mut t = good.clone();
        t[i] ^= 0x10;
        let tb = p(d.path(), "t.bin");
        fs::write(&tb, &t).unwrap();
        let (c, _, err) = run(&["open", "--mp-pubkey", &pk, s(&tb)]);
        assert_eq!(c, 3, "byte {i}: {err}");
        assert!(err.contains("bundle authentication failed"));
    }
    for n in [0, 10, 127, good.len() - 1] {
        let tb = p(d.path(), "t.bin");
        fs::write(&tb, &good[..n]).unwrap();
        let (c, _, err) = run(&["open", "--mp-pubkey", &pk, s(&tb)]);
        assert_eq!(c, 5, "len {n}: {err}");
    }
    // Bad keys.
    assert_eq!(run(&["open", "--mp-pubkey", "1234", s(&b)]).0, 2);
    let notpoint = "00".repeat(64);
    let (c, _, err) = run(&["open", "--mp-pubkey", &notpoint, s(&b)]);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("not a valid P-256 point"));
}

#[test]
fn seal_refuses_bad_manifests() {
    let d = tmp();
    let pk = pubhex(&key(0x21));
    write_manifest(d.path());
    let out = p(d.path(), "o.bin");
    let cases: [(&str, i32, &str); 7] = [
        (
            "[[secret]]\nname = \"a\"\nfile = \"sec/wifi.key\"\ntype = \"raw\"\ncolour = 1\n",
            5,
            "unknown field",
        ),
        (
            "[[secret]]\nname = \"a\"\nfile = \"sec/wifi.key\"\ntype = \"rsa\"\n",
            5,
            "type 'rsa' unknown",
        ),
        (
            "[[secret]]\nname = \"a\"\nfile = \"sec/wifi.key\"\ntype = \"pem\"\n",
            5,
            "not valid PEM",
        ),
        (
            "[[secret]]\nname = \"a\"\nfile = \"sec/wifi.key\"\ntype = \"der\"\n",
            5,
            "not valid DER",
        ),
        (
            "[[secret]]\nname = \"a\"\nfile = \"sec/missing\"\ntype = \"raw\"\n",
            1,
            "missing",
        ),
        (
            "[[secret]]\nname = \"a\"\nfile = \"sec/wifi.key\"\ntype = \"raw\"\nkey_modifier = \"0011\"\n",
            5,
            "32 hex digits",
        ),
        (
            "[[secret]]\nname = \"a b\"\nfile = \"sec/wifi.key\"\ntype = \"raw\"\n",
            5,
            "secret name",
        ),
    ];
    for (text, code, msg) in cases {
        let m = p(d.path(), "bad.toml");
        fs::write(&m, text).unwrap();
        let (c, _, err) = run(&seal_args(&pk, &m, "w", &out));
        assert_eq!(c, code, "{text}: {err}");
        assert!(err.contains(msg), "{text}: {err}");
        assert!(!err.contains("WIFI-SECRET"), "secret echoed");
    }
    let m = p(d.path(), "dup.toml");
    fs::write(&m, "[[secret]]\nname = \"a\"\nfile = \"sec/wifi.key\"\ntype = \"raw\"\n[[secret]]\nname = \"a\"\nfile = \"sec/blob.bin\"\ntype = \"raw\"\n").unwrap();
    assert!(run(&seal_args(&pk, &m, "w", &out)).2.contains("duplicate"));
    let m = write_manifest(d.path());
    assert_eq!(run(&seal_args(&pk, &m, "bad product", &out)).0, 5);
}

#[test]
fn seal_makes_linux_trusted_keys_and_refuses_what_linux_would_not_load() {
    let d = tmp();
    let pk = pubhex(&key(0x22));
    for n in [31usize, 32, 128, 129] {
        fs::write(d.path().join(format!("k{n}")), vec![0x5a; n]).unwrap();
    }
    fs::write(
        d.path().join("k.pem"),
        "-----BEGIN CERTIFICATE-----\nMAMCAQU=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let out = p(d.path(), "o.bin");
    let seal = |text: &str| {
        let m = p(d.path(), "m.toml");
        fs::write(&m, text).unwrap();
        let _ = fs::remove_file(&out);
        run(&seal_args(&pk, &m, "w", &out))
    };
    let entry = |file: &str, extra: &str| {
        format!(
            "[[secret]]\nname = \"disk-key\"\nfile = \"{file}\"\ntype = \"raw\"\nlinux_trusted_key = true\n{extra}"
        )
    };
    // Refused at seal time, nothing written: payloads Linux's trusted keys
    // do not take (32..=128 bytes), another key modifier, another type.
    let refusals = [
        (
            entry("k31", ""),
            "k31 holds 31 bytes; a Linux trusted key is 32..=128 bytes",
        ),
        (
            entry("k129", ""),
            "k129 holds 129 bytes; a Linux trusted key is 32..=128 bytes",
        ),
        (
            entry(
                "k32",
                "key_modifier = \"000102030405060708090a0b0c0d0e0f\"\n",
            ),
            "linux_trusted_key sets the key modifier (SECURE_KEY); remove key_modifier",
        ),
        (
            entry("k.pem", "").replace("\"raw\"", "\"pem\""),
            "a Linux trusted key is type = \"raw\" (its payload is the key), not 'pem'",
        ),
        (
            entry("k32", "").replace("= true", "= \"yes\""),
            "invalid type: string \"yes\", expected a boolean",
        ),
    ];
    for (text, msg) in refusals {
        let (c, _, err) = seal(&text);
        assert_eq!(c, 5, "{text}: {err}");
        assert!(err.contains(msg), "{text}: {err}");
        assert!(!out.exists(), "{text}: a bundle was written");
    }
    // The limits themselves are sealed, with SECURE_KEY (10 bytes).
    let text = format!(
        "{}\n{}\n[[secret]]\nname = \"other\"\nfile = \"k32\"\ntype = \"raw\"\nlinux_trusted_key = false\n",
        entry("k32", ""),
        entry("k128", "").replace("disk-key", "big-key")
    );
    let (c, _, err) = seal(&text);
    assert_eq!(c, 0, "{err}");
    let j: serde_json::Value =
        serde_json::from_str(&ok(&["open", "--json", "--mp-pubkey", &pk, s(&out)])).unwrap();
    for (i, size) in [(0, 32), (1, 128)] {
        let e = &j["secrets"][i];
        assert_eq!(e["size"], size);
        assert_eq!(e["key_modifier"], hex::encode(b"SECURE_KEY"));
        assert_eq!(e["key_modifier_given"], true);
        assert_eq!(e["linux_trusted_key"], true);
    }
    assert_eq!(j["secrets"][2]["key_modifier_given"], false);
    assert_eq!(j["secrets"][2]["linux_trusted_key"], false);
    let text = ok(&["open", "--mp-pubkey", &pk, s(&out)]);
    assert!(
        text.contains("km 5345435552455f4b4559 (SECURE_KEY: Linux trusted key)"),
        "{text}"
    );
}

#[test]
fn verify_id_accepts_console_lines_raw_records_and_refuses_tampering() {
    let d = tmp();
    let k = key(0x31);
    let pk = pubhex(&k);
    let rk = rk(d.path());
    let r = record(&k, 0x1234, SRK, SecurityState::Closed);
    let log = p(d.path(), "console.log");
    fs::write(
        &log,
        format!(
            "U-Boot-ish noise\n=> provision\n{}\r\n=> \n",
            console_line(&r)
        ),
    )
    .unwrap();
    let vid = |path: &std::path::Path| {
        run(&[
            "verify-id",
            "--mp-pubkey",
            &pk,
            "--record-key",
            &rk,
            s(path),
        ])
    };
    let out = ok(&[
        "verify-id",
        "--mp-pubkey",
        &pk,
        "--record-key",
        &rk,
        s(&log),
    ]);
    assert!(out.contains("signature OK"));
    assert!(out.contains("00000000000000000000000000001234"));
    assert!(out.contains("closed") && out.contains("i.MX8MP"));
    // The v2 fields.
    assert!(out.contains("product") && out.contains("widget"), "{out}");
    assert!(out.contains(&"dd".repeat(32)), "bundle digest: {out}");
    assert!(out.contains(&hex::encode(MPMR)), "{out}");
    let raw = p(d.path(), "rec.bin");
    fs::write(&raw, sealed(&r)).unwrap();
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "verify-id",
        "--json",
        "--mp-pubkey",
        &pk,
        "--record-key",
        &rk,
        s(&raw),
    ]))
    .unwrap();
    assert_eq!(j[0]["bundle_id"], 7);
    assert_eq!(j[0]["product"], "widget");
    assert_eq!(j[0]["bundle_digest"], "dd".repeat(32));
    assert_eq!(j[0]["station_nonce"], serde_json::Value::Null);
    assert_eq!(j[0]["mpmr"], hex::encode(MPMR));
    // A station nonce is shown.
    let mut m = message(0x1235, SRK, SecurityState::Closed, Some(7), 1);
    m.station_nonce = Some([0xab; 32]);
    fs::write(&raw, sealed(&sign(&k, m))).unwrap();
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "verify-id",
        "--json",
        "--mp-pubkey",
        &pk,
        "--record-key",
        &rk,
        s(&raw),
    ]))
    .unwrap();
    assert_eq!(j[0]["station_nonce"], "ab".repeat(32));
    fs::write(&raw, sealed(&r)).unwrap();
    // Wrong key.
    let (c, _, err) = run(&[
        "verify-id",
        "--mp-pubkey",
        &pubhex(&key(0x32)),
        "--record-key",
        &rk,
        s(&raw),
    ]);
    assert_eq!(c, 3);
    assert!(err.contains("signature verification failed"), "{err}");
    // A changed message byte with a recomputed CRC and message representative
    // (anyone can seal to the record public key): only the signature catches it.
    let mut t = r.clone();
    t.message.boot_counter += 1;
    t.mes_rep = t.digest();
    fs::write(&raw, sealed(&t)).unwrap();
    assert_eq!(vid(&raw).0, 3);
    // Wrong message representative.
    let mut t = r.clone();
    t.mes_rep[0] ^= 1;
    fs::write(&raw, sealed(&t)).unwrap();
    assert!(vid(&raw).2.contains("message representative"));
    // Plaintext corruption (CRC) inside a well-sealed record, truncation,
    // no record.
    let mut b = r.to_bytes();
    b[100] ^= 1;
    let mut sb = [0u8; mfg_formats::identity::SEALED_LEN];
    mfg_formats::sealed::seal(
        &mut sb,
        mfg_formats::sealed::Kind::IdRecord,
        &b,
        &record_public(&RECORD_SECRET),
        &ephemeral(),
    )
    .unwrap();
    fs::write(&raw, sb).unwrap();
    let (c, _, err) = vid(&raw);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("CRC"), "{err}");
    fs::write(&raw, &sealed(&r)[..200]).unwrap();
    assert_eq!(vid(&raw).0, 5);
    let line = console_line(&r);
    fs::write(&raw, &line[..line.len() - 8]).unwrap();
    assert_eq!(vid(&raw).0, 5);
    fs::write(&raw, "hello\n").unwrap();
    assert_eq!(vid(&raw).0, 5);
    // A plaintext record is not what a device emits: refused.
    fs::write(&raw, r.to_bytes()).unwrap();
    let (c, _, err) = vid(&raw);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("a plaintext ID record"), "{err}");
    // Without --record-key: a usage error.
    assert_eq!(run(&["verify-id", "--mp-pubkey", &pk, s(&log)]).0, 2);
    // A record key file that is not a private key.
    let bad = p(d.path(), "bad.pem");
    fs::write(&bad, ok(&["pubkey", "--mp-pubkey", &pk, "--pem"])).unwrap();
    let (c, _, err) = run(&[
        "verify-id",
        "--mp-pubkey",
        &pk,
        "--record-key",
        s(&bad),
        s(&log),
    ]);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("no PEM private key"), "{err}");
}

/// Principle 1 of the v2 design: the CM relays sealed bytes. A record
/// sealed to another record key (a loader built with another key, or a CM
/// that sealed its own) is refused as not opening; so is one byte changed
/// anywhere in a sealed line. On v1 records were plaintext: there was
/// nothing to open.
#[test]
fn sealed_records_open_only_with_the_record_key_and_unaltered() {
    let d = tmp();
    let k = key(0x33);
    let pk = pubhex(&k);
    let rk = rk(d.path());
    let r = record(&k, 0x4321, SRK, SecurityState::Closed);
    let f = p(d.path(), "r.log");
    // Sealed to another record key.
    fs::write(&f, line_of(&seal_to(&r, &[0x4c; 32])) + "\n").unwrap();
    let (c, _, err) = run(&["verify-id", "--mp-pubkey", &pk, "--record-key", &rk, s(&f)]);
    assert_eq!(c, 3, "{err}");
    assert!(
        err.contains("sealed for another record key or altered"),
        "{err}"
    );
    // And the other key opens it (the record itself is fine).
    let other = write_record_key(d.path(), "other.pem", &[0x4c; 32]);
    ok(&[
        "verify-id",
        "--mp-pubkey",
        &pk,
        "--record-key",
        &other,
        s(&f),
    ]);
    // A key set directory: its record.pem, checked against its record.pub.
    let ks = d.path().join("keyset");
    fs::create_dir(&ks).unwrap();
    write_record_key(&ks, "record.pem", &[0x4c; 32]);
    let by_dir = |ks: &std::path::Path| {
        run(&[
            "verify-id",
            "--mp-pubkey",
            &pk,
            "--record-key",
            s(ks),
            s(&f),
        ])
    };
    assert_eq!(by_dir(&ks).0, 0);
    fs::write(
        ks.join("record.pub"),
        hex::encode(record_public(&[0x4c; 32])) + "\n",
    )
    .unwrap();
    assert_eq!(by_dir(&ks).0, 0);
    fs::write(
        ks.join("record.pub"),
        hex::encode(record_public(&RECORD_SECRET)),
    )
    .unwrap();
    let (c, _, err) = by_dir(&ks);
    assert_eq!(c, 5, "{err}");
    assert!(
        err.contains("record.pub is not the public key of record.pem"),
        "{err}"
    );
    // One byte changed in the sealed record (header, ephemeral key,
    // ciphertext, tag), re-encoded as a console line.
    let good = sealed(&r);
    for i in [5usize, 9, 40, 80, 300, good.len() - 1] {
        let mut t = good;
        t[i] ^= 0x01;
        fs::write(&f, line_of(&t) + "\n").unwrap();
        let (c, _, err) = run(&["verify-id", "--mp-pubkey", &pk, "--record-key", &rk, s(&f)]);
        assert!(c == 3 || c == 5, "byte {i}: exit {c}: {err}");
        if i >= 76 {
            assert_eq!(c, 3, "byte {i}: {err}");
            assert!(
                err.contains("sealed for another record key or altered"),
                "{err}"
            );
        }
    }
    // One base64 character changed in the line itself.
    let line = line_of(&good);
    let mut b = line.clone().into_bytes();
    let at = b.len() - 30;
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    fs::write(&f, [&b[..], b"\n"].concat()).unwrap();
    let (c, _, err) = run(&["verify-id", "--mp-pubkey", &pk, "--record-key", &rk, s(&f)]);
    assert_eq!(c, 3, "{err}");
    assert!(
        err.contains("sealed for another record key or altered"),
        "{err}"
    );
    // The ledger refuses such a line, reports it and goes on.
    let db = p(d.path(), "l.sqlite");
    let db = s(&db);
    init_ledger(db, &pk, None);
    release_test_loader(db);
    let b7 = seal_bundle(d.path(), &pk, "widget", 7);
    ok(&["ledger", "--db", db, "add-bundle", "--lot", "L1", s(&b7)]);
    let genuine = record(&k, 0x4322, SRK, SecurityState::Closed);
    fs::write(
        &f,
        format!(
            "{}\n{}\n{}\n",
            String::from_utf8(b).unwrap(),
            line_of(&seal_to(&r, &[0x4c; 32])),
            console_line(&genuine)
        ),
    )
    .unwrap();
    let j: serde_json::Value = serde_json::from_str(
        &run(&[
            "ledger",
            "--db",
            db,
            "--json",
            "register",
            "--record-key",
            &rk,
            s(&f),
        ])
        .1,
    )
    .unwrap();
    assert_eq!(j[0]["result"], "refused");
    assert_eq!(j[0]["reason_code"], "sealed");
    assert_eq!(j[1]["reason_code"], "sealed");
    assert!(
        j[1]["reason"]
            .as_str()
            .unwrap()
            .contains("sealed for another record key or altered")
    );
    assert_eq!(j[2]["result"], "registered");
}

fn init_ledger(db: &str, pk: &str, quota: Option<&str>) {
    let mut a = vec![
        "ledger",
        "--db",
        db,
        "init",
        "--mp-pubkey",
        pk,
        "--srk-hash",
    ];
    let srk = hex::encode(SRK);
    a.push(&srk);
    if let Some(q) = quota {
        a.extend(["--quota", q]);
    }
    ok(&a);
}

#[test]
fn ledger_registers_and_refuses_with_audit() {
    let d = tmp();
    let k = key(0x41);
    let pk = pubhex(&k);
    let rk = rk(d.path());
    let rk = rk.as_str();
    let db = p(d.path(), "ledger.sqlite");
    let db = s(&db);
    init_ledger(db, &pk, Some("3"));
    release_test_loader(db);
    assert_eq!(
        run(&[
            "ledger",
            "--db",
            db,
            "init",
            "--mp-pubkey",
            &pk,
            "--srk-hash",
            &hex::encode(SRK)
        ])
        .0,
        2
    );
    let w = |name: &str, recs: &[mfg_formats::IdRecord]| {
        let f = p(d.path(), name);
        fs::write(
            &f,
            recs.iter()
                .map(|r| console_line(r) + "\n")
                .collect::<String>(),
        )
        .unwrap();
        f
    };
    // Records are accepted only for bundles the OEM sealed and registered:
    // bundle 7 (the records' default) for lot L1, bundle 8 for lot L2.
    let b7 = seal_bundle(d.path(), &pk, "widget", 7);
    ok(&["ledger", "--db", db, "add-bundle", "--lot", "L1", s(&b7)]);
    let b8 = seal_bundle(d.path(), &pk, "widget", 8);
    ok(&["ledger", "--db", db, "add-bundle", "--lot", "L2", s(&b8)]);
    let a = record(&k, 1, SRK, SecurityState::Closed);
    let b = record(&k, 2, SRK, SecurityState::Closed);
    let fa = w("a.txt", &[a.clone(), b]);
    let out = ok(&[
        "ledger",
        "--db",
        db,
        "register",
        "--record-key",
        rk,
        "--product",
        "widget",
        "--lot",
        "L1",
        s(&fa),
    ]);
    assert_eq!(out.matches("accepted").count(), 2, "{out}");
    // Duplicate UID: names the earlier record. (A byte-identical resubmission
    // is "already registered (same record)" now, so the clone is another
    // record of the same UID: a later boot.)
    let clone = record_with(&k, 1, SRK, SecurityState::Closed, Some(7), 2);
    let dup = w("dup.txt", &[clone]);
    let (c, out, _) = run(&[
        "ledger",
        "--db",
        db,
        "register",
        "--record-key",
        rk,
        s(&dup),
    ]);
    assert_eq!(c, 4);
    assert!(
        out.contains("already registered as device #1") && out.contains("lot L1"),
        "{out}"
    );
    // Wrong SRK hash, open part, wrong key (another OEM's MP key).
    let fs_ = w(
        "srk.txt",
        &[record(&k, 10, [0x77; 32], SecurityState::Closed)],
    );
    let (c, out, _) = run(&[
        "ledger",
        "--db",
        db,
        "register",
        "--record-key",
        rk,
        s(&fs_),
    ]);
    assert_eq!(c, 4);
    assert!(out.contains("is not the OEM's"), "{out}");
    let fo = w("open.txt", &[record(&k, 11, SRK, SecurityState::Open)]);
    assert!(
        run(&["ledger", "--db", db, "register", "--record-key", rk, s(&fo)])
            .1
            .contains("security state 'open'")
    );
    let fk = w(
        "key.txt",
        &[record(&key(0x42), 12, SRK, SecurityState::Closed)],
    );
    assert!(
        run(&["ledger", "--db", db, "register", "--record-key", rk, s(&fk)])
            .1
            .contains("signature verification failed")
    );
    // UID ranges.
    ok(&[
        "ledger",
        "--db",
        db,
        "allow",
        "--uid-range",
        &format!("{:032x}-{:032x}", 0, 100),
    ]);
    assert_eq!(
        run(&["ledger", "--db", db, "allow", "--uid-range", "12-34"]).0,
        2
    );
    let fr = w("range.txt", &[record(&k, 1000, SRK, SecurityState::Closed)]);
    assert!(
        run(&["ledger", "--db", db, "register", "--record-key", rk, s(&fr)])
            .1
            .contains("outside every allowed UID range")
    );
    // Quota 3: one more is fine, then over-production.
    let f3 = w(
        "q.txt",
        &[
            record_with(&k, 3, SRK, SecurityState::Closed, Some(8), 1),
            record_with(&k, 4, SRK, SecurityState::Closed, Some(8), 1),
        ],
    );
    let (c, out, _) = run(&[
        "ledger",
        "--db",
        db,
        "register",
        "--record-key",
        rk,
        "--lot",
        "L2",
        s(&f3),
    ]);
    assert_eq!(c, 4);
    assert!(
        out.contains("accepted uid 00000000000000000000000000000003"),
        "{out}"
    );
    assert!(out.contains("over the production quota (3"), "{out}");
    // list / report / audit.
    let list: serde_json::Value =
        serde_json::from_str(&ok(&["ledger", "--db", db, "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let r: serde_json::Value =
        serde_json::from_str(&ok(&["ledger", "--db", db, "report", "--json"])).unwrap();
    assert_eq!(r["devices"], 3);
    for code in ["duplicate", "srk", "state", "signature", "range", "quota"] {
        assert_eq!(r["refusals"][code], 1, "{code}: {r}");
    }
    assert_eq!(
        r["duplicates"][0]["uid"],
        "00000000000000000000000000000001"
    );
    // init + release + 2 add-bundle + allow + 2 + 1 + 1 + 1 + 1 + 1 + 2
    // register decisions.
    assert_eq!(r["audit_entries"], 14);
    let human = ok(&["ledger", "--db", db, "report"]);
    assert!(
        human.contains("product widget lot L1: 2") && human.contains("duplicate UIDs: 1"),
        "{human}"
    );
    // Missing (no longer created silently) and not initialised.
    let db2 = p(d.path(), "empty.sqlite");
    let (c, _, err) = run(&[
        "ledger",
        "--db",
        s(&db2),
        "register",
        "--record-key",
        rk,
        s(&fa),
    ]);
    assert_eq!(c, 2);
    assert!(err.contains("does not exist"), "{err}");
    fs::write(&db2, b"").unwrap();
    let (c, _, err) = run(&[
        "ledger",
        "--db",
        s(&db2),
        "register",
        "--record-key",
        rk,
        s(&fa),
    ]);
    assert_eq!(c, 2);
    assert!(err.contains("not initialised"));
}

fn image_parts(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap()
}

#[test]
fn image_is_valid_gpt_and_inspect_decodes_it() {
    let d = tmp();
    let k = key(0x51);
    let pk = pubhex(&k);
    let m = write_manifest(d.path());
    let b = p(d.path(), "bundle.bin");
    ok(&[
        "seal",
        "--mp-pubkey",
        &pk,
        "--secrets",
        s(&m),
        "--product",
        "widget",
        "--bundle-id",
        "5",
        "-o",
        s(&b),
    ]);
    let kernel = p(d.path(), "Image");
    fs::write(&kernel, vec![0xaa; 3 * 1024 * 1024 + 100]).unwrap();
    let dtb = p(d.path(), "board.dtb");
    fs::write(&dtb, vec![0xd0; 5000]).unwrap();
    let initrd = p(d.path(), "initrd");
    fs::write(&initrd, vec![0x1d; 7000]).unwrap();
    let img = p(d.path(), "disk.img");
    let parts = image_parts(&ok(&[
        "image",
        "-o",
        s(&img),
        "--size",
        "64M",
        "--bundle",
        s(&b),
        "--kernel",
        s(&kernel),
        "--dtb",
        s(&dtb),
        "--initrd",
        s(&initrd),
        "--json",
    ]));
    assert_eq!(fs::metadata(&img).unwrap().len(), 64 << 20);
    let names: Vec<_> = parts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["mfg-data", "mfg-bundle", "kernel", "dtb", "initrd"]);
    let sectors = |i: usize| {
        parts[i]["last_lba"].as_u64().unwrap() + 1 - parts[i]["first_lba"].as_u64().unwrap()
    };
    assert_eq!(sectors(2), (3 * 1024 * 1024 + 100u64).div_ceil(512));
    assert_eq!(sectors(3), 5000u64.div_ceil(512));
    assert_eq!(sectors(0) * 512, area::MFG_DATA_BYTES);
    // sgdisk validates the GPT we wrote.
    let v = std::process::Command::new("sgdisk")
        .arg("-v")
        .arg(&img)
        .output()
        .expect("sgdisk (Debian package gdisk) must be installed for this test");
    let vout = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.status.success() && vout.contains("No problems found"),
        "sgdisk -v: {vout}"
    );
    let pr = std::process::Command::new("sgdisk")
        .arg("-p")
        .arg(&img)
        .output()
        .unwrap();
    let pout = String::from_utf8_lossy(&pr.stdout);
    assert!(
        pout.contains("mfg-data") && pout.contains("mfg-bundle") && pout.contains("initrd"),
        "{pout}"
    );
    // sgdisk reads our type GUIDs back in their textual form (upper case).
    for (i, def) in mfg_formats::partitions::ALL[..2].iter().enumerate() {
        let info = std::process::Command::new("sgdisk")
            .arg(format!("-i{}", i + 1))
            .arg(&img)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            text.contains(&def.type_guid.to_string().to_uppercase()),
            "{text}"
        );
        assert!(
            text.contains(&format!("Partition name: '{}'", def.name)),
            "{text}"
        );
    }
    // Kernel bytes landed in the kernel partition.
    let raw = fs::read(&img).unwrap();
    let kstart = parts[2]["first_lba"].as_u64().unwrap() as usize * 512;
    assert!(
        raw[kstart..kstart + 3 * 1024 * 1024 + 100]
            .iter()
            .all(|&x| x == 0xaa)
    );

    // Fresh image: blank, bundle present.
    let j: serde_json::Value = serde_json::from_str(&ok(&["inspect", "--json", s(&img)])).unwrap();
    assert_eq!(j["state"], "blank");
    assert_eq!(j["bundle"]["present"], true);
    assert_eq!(j["bundle"]["bundle_id"], 5);
    assert!(ok(&["inspect", s(&img)]).contains("bundle: present"));

    // Simulate what the loader writes: ID record, blobs, table, journal,
    // bundle erased.
    let data_off = parts[0]["first_lba"].as_u64().unwrap() as usize * 512;
    let bundle_off = parts[1]["first_lba"].as_u64().unwrap() as usize * 512;
    let mut raw = raw;
    let r = record(&k, 0xabc, SRK, SecurityState::Closed);
    let rk = rk(d.path());
    let rk = rk.as_str();
    raw[data_off + 3 * 512..data_off + 3 * 512 + mfg_formats::identity::SEALED_LEN]
        .copy_from_slice(&sealed(&r));
    let blob1 = vec![0x11u8; area::blob_len(30)];
    let blob2 = vec![0x22u8; area::blob_len(8)];
    let o1 = area::next_blob_offset(None);
    let o2 = area::next_blob_offset(Some(o1 + blob1.len() as u64));
    raw[data_off + o1 as usize..][..blob1.len()].copy_from_slice(&blob1);
    raw[data_off + o2 as usize..][..blob2.len()].copy_from_slice(&blob2);
    let e1 = BlobEntry::new(
        "wifi-key",
        SecretType::Raw,
        [1; 16].into(),
        false,
        o1 as u32,
        blob1.len() as u32,
        crc32(&blob1),
    )
    .unwrap();
    let e2 = BlobEntry::new(
        "device.der",
        SecretType::Der,
        mfg_formats::KeyModifier::LINUX_TRUSTED,
        true,
        o2 as u32,
        blob2.len() as u32,
        0xdead,
    )
    .unwrap();
    let mut tb = [0u8; area::TABLE_MAX_LEN];
    let (tn, tcrc) = area::write_blob_table(&mut tb, &[e1, e2]).unwrap();
    raw[data_off + 8 * 512..][..tn].copy_from_slice(&tb[..tn]);
    let j1 = JournalRecord {
        state: ProvState::IdSigned,
        id_slot: Some(1),
        sequence: 1,
        bundle_id: Some(5),
        blob_count: 0,
        last_error: 0,
        table_crc: 0,
        boot_counter: 1,
    };
    let j2 = JournalRecord {
        state: ProvState::Done,
        id_slot: Some(1),
        sequence: 2,
        bundle_id: Some(5),
        blob_count: 2,
        last_error: 0,
        table_crc: tcrc,
        boot_counter: 1,
    };
    raw[data_off..data_off + 512].copy_from_slice(&j1.to_block());
    raw[data_off + 512..data_off + 1024].copy_from_slice(&j2.to_block());
    raw[bundle_off..bundle_off + 512].fill(0);
    fs::write(&img, &raw).unwrap();
    // Without the record key: what the device shows, and that the record
    // is sealed for the OEM.
    let j: serde_json::Value = serde_json::from_str(&ok(&["inspect", "--json", s(&img)])).unwrap();
    assert_eq!(j["state"], "done");
    assert_eq!(j["id_record"]["sealed"], "sealed for the OEM");
    assert!(j["id_record"].get("uid").is_none(), "{j}");
    let human = ok(&["inspect", s(&img)]);
    assert!(
        human.contains("sealed for the OEM") && human.contains("record key is needed"),
        "{human}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", "--json", "--record-key", rk, s(&img)])).unwrap();
    assert_eq!(j["state"], "done");
    assert_eq!(j["journal"]["copy"], 1);
    assert_eq!(j["id_record"]["uid"], "00000000000000000000000000000abc");
    assert_eq!(j["id_record"]["product"], "widget");
    assert_eq!(j["blob_table"][0]["name"], "wifi-key");
    assert_eq!(j["blob_table"][0]["crc_ok"], true);
    assert_eq!(j["blob_table"][1]["crc_ok"], false);
    assert_eq!(j["blob_table"][1]["secret_length"], 8);
    assert_eq!(j["blob_table"][0]["key_modifier"], "01".repeat(16));
    assert_eq!(j["blob_table"][0]["linux_trusted_key"], false);
    assert_eq!(
        j["blob_table"][1]["key_modifier"],
        hex::encode(b"SECURE_KEY")
    );
    assert_eq!(j["blob_table"][1]["linux_trusted_key"], true);
    assert_eq!(j["bundle"]["present"], false);
    let human = ok(&["inspect", s(&img)]);
    assert!(
        human.contains("state: done") && human.contains("bundle: none") && human.contains("BAD"),
        "{human}"
    );
    assert!(
        human.contains("km 5345435552455f4b4559 (SECURE_KEY) off "),
        "{human}"
    );
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "inspect",
        "--json",
        "--record-key",
        rk,
        "--mp-pubkey",
        &pk,
        s(&img),
    ]))
    .unwrap();
    assert_eq!(j["id_record"]["signature"], "ok");
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "inspect",
        "--json",
        "--record-key",
        rk,
        "--mp-pubkey",
        &pubhex(&key(0x52)),
        s(&img),
    ]))
    .unwrap();
    assert_eq!(
        j["id_record"]["signature"],
        "ID record signature verification failed"
    );
    // verify-id reads the record from the disk image.
    let out = ok(&["verify-id", "--mp-pubkey", &pk, "--record-key", rk, s(&img)]);
    assert!(out.contains("00000000000000000000000000000abc"));
    // Another record key: inspect shows the rest and exits 3; verify-id
    // refuses.
    let other = write_record_key(d.path(), "other.pem", &[0x4c; 32]);
    let (c, out, err) = run(&["inspect", "--record-key", &other, s(&img)]);
    assert_eq!(c, 3, "{err}");
    assert!(out.contains("state: done"), "{out}");
    assert!(
        err.contains("sealed for another record key or altered"),
        "{err}"
    );
    let (c, _, err) = run(&[
        "verify-id",
        "--mp-pubkey",
        &pk,
        "--record-key",
        &other,
        s(&img),
    ]);
    assert_eq!(c, 3, "{err}");
    // --mp-pubkey needs --record-key.
    assert_eq!(run(&["inspect", "--mp-pubkey", &pk, s(&img)]).0, 2);
    // A torn newer journal copy: the older copy wins.
    raw[data_off + 512 + 10] ^= 0xff;
    fs::write(&img, &raw).unwrap();
    let j: serde_json::Value = serde_json::from_str(&ok(&["inspect", "--json", s(&img)])).unwrap();
    assert_eq!(j["state"], "id-signed");
    assert_eq!(j["journal_copies"][1]["valid"], false);
    // Corrupt primary GPT: inspect falls back to the backup.
    raw[512 + 30] ^= 0xff;
    fs::write(&img, &raw).unwrap();
    let j: serde_json::Value = serde_json::from_str(&ok(&["inspect", "--json", s(&img)])).unwrap();
    assert_eq!(j["gpt"], "backup (primary damaged)");
    // Both GPTs bad.
    let n = raw.len();
    raw[n - 512 + 30] ^= 0xff;
    fs::write(&img, &raw).unwrap();
    let (c, _, err) = run(&["inspect", s(&img)]);
    assert_eq!(c, 5);
    assert!(err.contains("no valid GPT"), "{err}");
    let _ = BundlePartitionHeader::parse(&[0; 512]);
}

#[test]
fn image_refuses_bad_sizes_and_bundles() {
    let d = tmp();
    let img = p(d.path(), "disk.img");
    let (c, _, err) = run(&["image", "-o", s(&img), "--size", "48M"]);
    assert_eq!(c, 2);
    assert!(err.contains("power of two"), "{err}");
    let (c, _, err) = run(&["image", "-o", s(&img), "--size", "8M"]);
    assert_eq!(c, 2);
    assert!(err.contains("too small"), "{err}");
    assert_eq!(run(&["image", "-o", s(&img), "--size", "lots"]).0, 2);
    for tiny in ["0", "1", "1K", "512"] {
        let (c, _, err) = run(&["image", "-o", s(&img), "--size", tiny]);
        assert_eq!(c, 2, "{tiny}: {err}");
    }
    let junk = p(d.path(), "junk.bin");
    fs::write(&junk, b"not a bundle").unwrap();
    assert_eq!(run(&["image", "-o", s(&img), "--bundle", s(&junk)]).0, 5);
    // Default 64M, empty kernel/dtb placeholders, no bundle.
    ok(&["image", "-o", s(&img)]);
    let j: serde_json::Value = serde_json::from_str(&ok(&["inspect", "--json", s(&img)])).unwrap();
    assert_eq!(j["bundle"]["present"], false);
    assert_eq!(j["partitions"].as_array().unwrap().len(), 4);
}

/// `--emmc-sectors`: a sparse image of the whole eMMC that `inspect` reads,
/// and `--bundle-out` the `mfg-bundle` partition alone.
#[test]
fn image_for_the_emmc_is_sparse_and_bundle_out_is_the_partition() {
    let d = tmp();
    let pk = pubhex(&key(0x52));
    let b = seal_bundle(d.path(), &pk, "widget", 6);
    let img = p(d.path(), "disk.simg");
    let part = p(d.path(), "mfg-bundle.img");
    let n = "1000003";
    let out = ok(&[
        "image",
        "-o",
        s(&img),
        "--emmc-sectors",
        n,
        "--bundle",
        s(&b),
        "--bundle-out",
        s(&part),
    ]);
    assert!(out.contains("sparse, 1000003 sectors"), "{out}");
    let simg = fs::read(&img).unwrap();
    assert_eq!(simg[..4], 0xed26_ff3au32.to_le_bytes());
    assert!(simg.len() < 1 << 20, "{} bytes", simg.len());
    let j: serde_json::Value = serde_json::from_str(&ok(&["inspect", "--json", s(&img)])).unwrap();
    assert_eq!(j["bundle"]["present"], true);
    assert_eq!(j["bundle"]["bundle_id"], 6);
    let bundle = fs::read(&b).unwrap();
    let part = fs::read(&part).unwrap();
    assert_eq!(part.len() as u64, area::MFG_BUNDLE_BYTES);
    assert_eq!(&part[512..512 + bundle.len()], &bundle[..]);
    assert!(BundlePartitionHeader::parse(&part[..512]).is_ok());

    let refused = |args: &[&str], want: &str| {
        let (c, _, err) = run(args);
        assert_eq!(c, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    };
    let o = s(&img);
    refused(
        &["image", "-o", o, "--emmc-sectors", "18464"],
        "need at least 18465 sectors",
    );
    refused(
        &["image", "-o", o, "--emmc-sectors", "4294967296"],
        "more than a sparse image holds",
    );
    // Once a debug-build overflow panic (exit 101) in the byte offsets.
    refused(
        &["image", "-o", o, "--emmc-sectors", "18446744073709551615"],
        "more than a sparse image holds",
    );
    refused(
        &["image", "-o", o, "--emmc-sectors", n, "--size", "64M"],
        "cannot be used with",
    );
    refused(&["image", "-o", o, "--bundle-out", o], "--bundle");
    refused(
        &["image", "-o", o, "--emmc-sectors", "lots"],
        "invalid value",
    );
    // Refusals leave the image as it was.
    assert!(fs::read(&img).unwrap() == simg);
}

#[test]
fn bench_hook_reports_every_measurement() {
    let out = ok(&["bench", "--seconds", "0.05", "--records", "20", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    for k in [
        "verify_id_per_s",
        "open_sealed_per_s",
        "signature_verify_per_s",
        "ledger_register_per_s",
        "seal_1mib_ms",
    ] {
        assert!(j[k].as_f64().unwrap() > 0.0, "{k}: {out}");
    }
    assert_eq!(j["ledger_batch"], 20);
    assert!(j.get("openssl_ecdsap256_verify_per_s").is_some());
}

/// Runs the independent verifier (`fit/check/fit_check_sign.py`, Debian's
/// python3 with python3-libfdt) on `fit` with the key in `ctl`.
fn independent_fit_check(fit: &std::path::Path, ctl: &std::path::Path) -> Result<(), String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let py = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let o = std::process::Command::new(py)
        .arg(format!("{root}/fit/check/fit_check_sign.py"))
        .arg("-f")
        .arg(fit)
        .arg("-k")
        .arg(ctl)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    match o.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(text),
        _ => panic!(
            "independent verifier crashed: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

#[test]
fn image_with_boot_key_writes_a_signed_reproducible_fit() {
    let d = tmp();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let key = format!("{root}/keys/dev/dev-boot.pem");
    let ctl = std::path::PathBuf::from(format!("{root}/keys/dev/dev-boot.dtb"));
    let kernel = p(d.path(), "Image");
    let mut k = vec![0x11; 70_000];
    k[56..60].copy_from_slice(b"ARM\x64");
    fs::write(&kernel, &k).unwrap();
    let dtb = p(d.path(), "board.dtb");
    // A minimal valid DTB: header + empty root.
    let blob = dtb_empty();
    fs::write(&dtb, &blob).unwrap();
    let initrd = p(d.path(), "initrd");
    fs::write(&initrd, vec![0x1d; 7000]).unwrap();
    let build = |n: &str| {
        let img = p(d.path(), &format!("{n}.img"));
        let fit = p(d.path(), &format!("{n}.itb"));
        let out = bin()
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args([
                "image",
                "-o",
                s(&img),
                "--size",
                "64M",
                "--kernel",
                s(&kernel),
            ])
            .args(["--dtb", s(&dtb), "--initrd", s(&initrd), "--boot-key", &key])
            .args([
                "--bootargs",
                "console=ttymxc1,115200 quiet",
                "--fit-out",
                s(&fit),
            ])
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (img, fit, image_parts(&String::from_utf8_lossy(&out.stdout)))
    };
    let (img, fit, parts) = build("a");
    let (_, fit2, _) = build("b");
    assert_eq!(
        fs::read(&fit).unwrap(),
        fs::read(&fit2).unwrap(),
        "same inputs and SOURCE_DATE_EPOCH, same FIT (deterministic ECDSA)"
    );
    let names: Vec<_> = parts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["mfg-data", "mfg-bundle", "kernel", "dtb", "boot"]);
    // The FIT is in `boot`, and the raw partitions stay empty.
    let raw = fs::read(&img).unwrap();
    let fit_bytes = fs::read(&fit).unwrap();
    let at = parts[4]["first_lba"].as_u64().unwrap() as usize * 512;
    assert_eq!(&raw[at..at + fit_bytes.len()], &fit_bytes[..]);
    let kat = parts[2]["first_lba"].as_u64().unwrap() as usize * 512;
    assert!(raw[kat..kat + 4096].iter().all(|&b| b == 0));
    // The loader's verifier and the independent one both accept it.
    let ctl_bytes = fs::read(&ctl).unwrap();
    let ring = fit::Keyring::from_control_dtb(&ctl_bytes).unwrap();
    let any = [(0u64, u64::MAX)];
    let mem = fit::Memory {
        dram: &any,
        reserved: &[],
    };
    let v = fit::verify(&fit_bytes, fit_bytes.len(), &ring, &mem).unwrap();
    assert_eq!(v.kernel.data, &k[..]);
    assert_eq!(v.ramdisk.unwrap().data.len(), 7000);
    assert_eq!(v.bootargs, Some("console=ttymxc1,115200 quiet"));
    independent_fit_check(&fit, &ctl).unwrap();
    // One kernel byte changed: both refuse.
    let mut bad = fit_bytes.clone();
    let kpos = bad.windows(8).position(|w| w == &k[56..64]).unwrap();
    bad[kpos + 100] ^= 1;
    let badp = p(d.path(), "bad.itb");
    fs::write(&badp, &bad).unwrap();
    assert_eq!(
        fit::verify(&bad, bad.len(), &ring, &mem).unwrap_err(),
        fit::FitError::ImageChanged(fit::Kind::Kernel)
    );
    assert!(independent_fit_check(&badp, &ctl).is_err());
    // A key that is not P-256 SEC1 PEM is refused.
    let notkey = p(d.path(), "x.pem");
    fs::write(
        &notkey,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (c, _, err) = run(&[
        "image",
        "-o",
        s(&p(d.path(), "c.img")),
        "--kernel",
        s(&kernel),
        "--dtb",
        s(&dtb),
        "--boot-key",
        s(&notkey),
    ]);
    assert_ne!(c, 0);
    assert!(err.contains("not a P-256 SEC1 private key"), "{err}");
}

/// `/dts-v1/; / { };` as a blob.
fn dtb_empty() -> Vec<u8> {
    let mut s = Vec::new();
    for v in [1u32, 0, 2, 9] {
        s.extend_from_slice(&v.to_be_bytes());
    }
    let total = 40 + 16 + s.len();
    let mut b = Vec::new();
    for v in [
        0xd00d_feed_u32,
        total as u32,
        56,
        total as u32,
        40,
        17,
        16,
        0,
        0,
        s.len() as u32,
    ] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&s);
    b
}
