//! `mfgtool ledger` against the contract manufacturer: per-line results,
//! bundles the OEM sealed, quotas per product and lot, identical
//! resubmissions, concurrent stations, read-only readers, mistyped `--db`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use mfg_formats::identity::SecurityState;
use serde_json::Value;
use sha2::{Digest, Sha256};

struct Ledger {
    dir: tempfile::TempDir,
    db: PathBuf,
    pk: String,
    key: p256::ecdsa::SigningKey,
    /// The test record key file.
    rk: String,
}

impl Ledger {
    /// An initialised ledger for key 0x61 with bundle 7 (widget, lot L1)
    /// and the test loader measurement released.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = key(0x61);
        let pk = pubhex(&key);
        let db = dir.path().join("ledger.sqlite");
        ok(&[
            "ledger",
            "--db",
            s(&db),
            "init",
            "--mp-pubkey",
            &pk,
            "--srk-hash",
            &hex::encode(SRK),
        ]);
        release_test_loader(s(&db));
        let rk = rk(dir.path());
        let l = Self {
            dir,
            db,
            pk,
            key,
            rk,
        };
        l.bundle("widget", 7, "L1");
        l
    }
    fn db(&self) -> &str {
        s(&self.db)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Seals and registers a bundle; returns its file.
    fn bundle(&self, product: &str, id: u64, lot: &str) -> PathBuf {
        let b = seal_bundle(self.dir.path(), &self.pk, product, id);
        ok(&[
            "ledger",
            "--db",
            self.db(),
            "add-bundle",
            "--lot",
            lot,
            s(&b),
        ]);
        b
    }
    fn rec(&self, uid: u128, bundle: u64) -> mfg_formats::IdRecord {
        self.rec_with(uid, Some(bundle), 1)
    }
    /// A record as a device provisioning from `bundle` makes it: with the
    /// product and SHA-256 of that bundle as this ledger registered it.
    fn rec_with(&self, uid: u128, bundle: Option<u64>, boot: u32) -> mfg_formats::IdRecord {
        let mut m = message(uid, SRK, SecurityState::Closed, bundle, boot);
        if let Some((product, sha)) = bundle.and_then(|b| self.bundle_row(b)) {
            m.set_product(&product);
            m.bundle_digest = hex::decode(sha).unwrap().try_into().unwrap();
        }
        sign(&self.key, m)
    }
    fn bundle_row(&self, id: u64) -> Option<(String, String)> {
        let c = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        c.query_row(
            "SELECT product, sha256 FROM bundles WHERE bundle_id = ?1",
            [id as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok()
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let f = self.path(name);
        fs::write(&f, text).unwrap();
        f
    }
    /// `mfgtool ledger --db DB ARGS`, with `--record-key` after `register`.
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut a = Vec::new();
        for x in args {
            a.push(*x);
            if *x == "register" {
                a.extend(["--record-key", self.rk.as_str()]);
            }
        }
        a
    }
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut a = vec!["ledger", "--db", self.db()];
        a.extend(self.args(args));
        run(&a)
    }
    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["ledger", "--db", self.db(), "--json"];
        a.extend(self.args(args));
        let (c, out, err) = run(&a);
        assert!(c == 0 || c == 4, "{args:?}: exit {c}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
    fn devices(&self) -> Vec<Value> {
        self.json(&["list"]).as_array().unwrap().clone()
    }
}

fn uid(n: u128) -> String {
    format!("{n:032x}")
}

#[test]
fn register_reports_every_line_and_a_bad_line_never_aborts_the_batch() {
    let l = Ledger::new();
    let a = console_line(&l.rec(1, 7));
    let b = console_line(&l.rec(2, 7));
    let bad_sig = {
        let mut r = l.rec(3, 7);
        r.message.boot_counter = 9;
        r.mes_rep = r.digest();
        console_line(&r)
    };
    let text = format!(
        "boot noise\n{a}\nmfgprot-id: not-base64!!\n{}\n{b}\n{bad_sig}\nmfgprot-id: \n{}\n",
        &a[..a.len() - 10],
        console_line(&l.rec(4, 99)),
    );
    let f = l.write("batch.log", &text);
    let (c, out, _) = l.run(&["register", s(&f)]);
    assert_eq!(
        c, 4,
        "a refused or malformed line makes the exit code 4: {out}"
    );
    assert!(
        out.contains(&format!("accepted uid {}: registered as device #1", uid(1))),
        "{out}"
    );
    assert!(
        out.contains(&format!("accepted uid {}: registered as device #2", uid(2))),
        "{out}"
    );
    for n in [3, 4, 7] {
        assert!(
            out.contains(&format!("MALFORMED line {n} of ")),
            "line {n}: {out}"
        );
    }
    assert!(out.contains("signature verification failed"), "{out}");
    assert!(
        out.contains("bundle id 99 is not a bundle the OEM sealed"),
        "{out}"
    );
    assert!(
        out.contains(
            "batch: 2 registered, 0 already registered (same record), 2 refused, 3 malformed"
        ),
        "{out}"
    );
    assert_eq!(l.devices().len(), 2);

    // JSON: one result per record line, with its line number.
    let f2 = l.write(
        "batch2.log",
        &format!("{}\nmfgprot-id: AAAA\n", console_line(&l.rec(5, 7))),
    );
    let empty = l.write("empty.log", "no records here\n");
    let j = l.json(&["register", s(&f2), s(&empty)]);
    let rs = j.as_array().unwrap();
    assert_eq!(rs.len(), 3, "{j}");
    assert_eq!(rs[0]["result"], "registered");
    assert_eq!(rs[0]["line"], 1);
    assert_eq!(rs[0]["uid"], uid(5));
    assert_eq!(rs[0]["product"], "widget");
    assert_eq!(rs[1]["result"], "malformed");
    assert_eq!(rs[1]["line"], 2);
    assert!(
        rs[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("malformed line 2 of "),
        "{j}"
    );
    assert_eq!(rs[2]["result"], "malformed");
    assert!(
        rs[2]["reason"]
            .as_str()
            .unwrap()
            .contains("no ID record found")
    );
    // A clean batch exits 0; a batch with no record at all is an error that
    // changes nothing.
    let f3 = l.write("ok.log", &lines(&[l.rec(6, 7)]));
    assert_eq!(l.run(&["register", s(&f3)]).0, 0);
    let audit = l.json(&["report"])["audit_entries"].clone();
    let (c, _, err) = l.run(&["register", s(&empty)]);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("no ID record found"), "{err}");
    assert_eq!(l.json(&["report"])["audit_entries"], audit);
    let r = l.json(&["report"]);
    assert_eq!(r["devices"], 4);
    assert_eq!(r["refusals"]["malformed"], 5, "{r}");
}

#[test]
fn identical_resubmission_is_already_registered_and_another_record_is_a_clone() {
    let l = Ledger::new();
    let a = l.rec(1, 7);
    let f = l.write("a.log", &lines(std::slice::from_ref(&a)));
    ok(&[
        "ledger",
        "--db",
        l.db(),
        "register",
        "--record-key",
        &l.rk,
        s(&f),
    ]);
    // The station sends the same line again (retry, second log): exit 0.
    let (c, out, err) = l.run(&["register", s(&f)]);
    assert_eq!(c, 0, "{out}{err}");
    assert!(
        out.contains("already registered (same record) as device #1 (product widget, lot L1"),
        "{out}"
    );
    // The same record twice in one batch.
    let b = l.rec(2, 7);
    let f2 = l.write("b.log", &lines(&[b.clone(), b]));
    let j = l.json(&["register", s(&f2)]);
    assert_eq!(j[0]["result"], "registered");
    assert_eq!(j[1]["result"], "already-registered");
    assert_eq!(j[1]["accepted"], true);
    assert_eq!(j[1]["device_id"], j[0]["device_id"]);
    assert_eq!(l.devices().len(), 2);
    // Another record for a registered UID (another boot, or a forgery) is
    // still a clone or replay.
    let other = l.rec_with(1, Some(7), 2);
    let f3 = l.write("c.log", &lines(&[other]));
    let (c, out, _) = l.run(&["register", s(&f3)]);
    assert_eq!(c, 4);
    assert!(
        out.contains("already registered as device #1") && out.contains("clone or replay"),
        "{out}"
    );
    let r = l.json(&["report"]);
    assert_eq!(r["devices"], 2);
    assert_eq!(r["refusals"]["duplicate"], 1);
}

#[test]
fn records_are_accepted_only_for_bundles_the_oem_sealed_under_the_bundles_product() {
    let l = Ledger::new();
    // No bundle id in the record, or a bundle the ledger does not know.
    let none = l.rec_with(1, None, 1);
    let f = l.write("r.log", &lines(&[none, l.rec(2, 8)]));
    let (c, out, _) = l.run(&["register", "--product", "widget", s(&f)]);
    assert_eq!(c, 4);
    assert!(out.contains("the record names no bundle"), "{out}");
    assert!(
        out.contains("bundle id 8 is not a bundle the OEM sealed"),
        "{out}"
    );
    assert!(l.devices().is_empty());

    // seal --ledger registers id, product, lot and the SHA-256 of the file.
    let secret = l.write("s.bin", "GADGET-SECRET");
    let m = l.write(
        "m.toml",
        &format!(
            "[[secret]]\nname = \"g\"\nfile = \"{}\"\ntype = \"raw\"\n",
            secret.display()
        ),
    );
    let b8 = l.path("gadget.bin");
    let seal = |out: &Path, id: &str, pk: &str| {
        run(&[
            "seal",
            "--mp-pubkey",
            pk,
            "--secrets",
            s(&m),
            "--product",
            "gadget",
            "--bundle-id",
            id,
            "-o",
            s(out),
            "--ledger",
            l.db(),
            "--lot",
            "G1",
        ])
    };
    let (c, out, err) = seal(&b8, "8", &l.pk);
    assert_eq!(c, 0, "{err}");
    let sha = hex::encode(Sha256::digest(fs::read(&b8).unwrap()));
    assert!(out.contains(&sha), "{out}");
    let r = l.json(&["report"]);
    let bundles = r["bundles"].as_array().unwrap();
    assert_eq!(bundles.len(), 2);
    assert_eq!(bundles[1]["bundle_id"], 8);
    assert_eq!(bundles[1]["product"], "gadget");
    assert_eq!(bundles[1]["lot"], "G1");
    assert_eq!(bundles[1]["sha256"], sha);
    // Now the record of bundle 8 registers, under the bundle's product and
    // lot: the command line does not label devices.
    let f = l.write("r8.log", &lines(&[l.rec(2, 8)]));
    ok(&[
        "ledger",
        "--db",
        l.db(),
        "register",
        "--record-key",
        &l.rk,
        s(&f),
    ]);
    let d = l.devices();
    assert_eq!(
        (d[0]["product"].as_str(), d[0]["lot"].as_str()),
        (Some("gadget"), Some("G1"))
    );
    assert_eq!(d[0]["bundle_id"], 8);

    // A bundle id is registered once: the same file again changes nothing,
    // another bundle under that id is refused (nothing written by seal).
    let (c, out, _) = l.run(&["add-bundle", "--lot", "G1", s(&b8)]);
    assert_eq!(c, 0);
    assert!(out.contains("was already registered"), "{out}");
    let again = l.path("again.bin");
    let (c, _, err) = seal(&again, "8", &l.pk);
    assert_eq!(c, 4, "{err}");
    assert!(err.contains("bundle id 8 is already registered"), "{err}");
    assert!(!again.exists(), "seal wrote a bundle the ledger refused");
    let other = seal_bundle(l.dir.path(), &l.pk, "gadget", 8);
    let (c, _, err) = l.run(&["add-bundle", "--lot", "G1", s(&other)]);
    assert_eq!(c, 4);
    assert!(
        err.contains("already registered with another bundle"),
        "{err}"
    );
    let (c, _, err) = l.run(&["add-bundle", "--lot", "G2", s(&b8)]);
    assert_eq!(c, 4, "{err}");
    // A bundle sealed for another MP key, or altered, is not the OEM's.
    let foreign = seal_bundle(l.dir.path(), &pubhex(&key(0x62)), "widget", 9);
    let (c, _, err) = l.run(&["add-bundle", "--lot", "L1", s(&foreign)]);
    assert_eq!(c, 3);
    assert!(
        err.contains("not sealed for this ledger's MP public key"),
        "{err}"
    );
    let mut t = fs::read(&b8).unwrap();
    let n = t.len();
    t[n - 1] ^= 1;
    let tb = l.write("t.bin", "");
    fs::write(&tb, &t).unwrap();
    assert_eq!(l.run(&["add-bundle", "--lot", "G1", s(&tb)]).0, 3);
    let (c, _, err) = seal(&l.path("k.bin"), "10", &pubhex(&key(0x62)));
    assert_eq!(c, 2);
    assert!(err.contains("not the ledger's MP public key"), "{err}");
    assert!(!l.path("k.bin").exists());
    assert_eq!(l.run(&["add-bundle", "--lot", "bad lot", s(&b8)]).0, 2);
    assert_eq!(l.json(&["report"])["bundles"].as_array().unwrap().len(), 2);
    // --lot without --ledger, and --ledger without --lot, are usage errors.
    let (c, _, _) = run(&[
        "seal",
        "--mp-pubkey",
        &l.pk,
        "--secrets",
        s(&m),
        "--product",
        "g",
        "-o",
        s(&l.path("x.bin")),
        "--lot",
        "L1",
    ]);
    assert_eq!(c, 2);
}

/// Attack 10 of issue 13: the CM registers a captured record first under
/// another product; on v1 the genuine registration then was a "duplicate".
#[test]
fn captured_record_registered_first_under_another_product_does_not_block_the_genuine_one() {
    let l = Ledger::new();
    l.bundle("gadget", 8, "G1");
    let captured = l.rec(1, 7);
    let f = l.write("captured.log", &lines(std::slice::from_ref(&captured)));
    // The CM claims another product (or lot): refused, nothing stored.
    let (c, out, _) = l.run(&["register", "--product", "gadget", "--lot", "G1", s(&f)]);
    assert_eq!(c, 4, "{out}");
    assert!(
        out.contains("bundle id 7 is product widget, not gadget"),
        "{out}"
    );
    let (c, out, _) = l.run(&["register", "--lot", "G1", s(&f)]);
    assert_eq!(c, 4, "{out}");
    assert!(out.contains("bundle id 7 is lot L1, not G1"), "{out}");
    // Rewriting the record's bundle id to the other product's breaks the
    // signature.
    let mut forged = captured.clone();
    forged.message.bundle_id = Some(8);
    forged.mes_rep = forged.digest();
    let ff = l.write("forged.log", &lines(&[forged]));
    let (c, out, _) = l.run(&["register", s(&ff)]);
    assert_eq!(c, 4);
    assert!(out.contains("signature verification failed"), "{out}");
    assert!(l.devices().is_empty());
    // The genuine registration goes through under the right product and lot.
    let out = ok(&[
        "ledger",
        "--db",
        l.db(),
        "register",
        "--record-key",
        &l.rk,
        "--product",
        "widget",
        "--lot",
        "L1",
        s(&f),
    ]);
    assert!(
        out.contains("registered as device #1 (product widget, lot L1, bundle 7)"),
        "{out}"
    );

    // The CM registers a captured record first without any claim: it lands
    // under its bundle's product and lot, and the genuine registration is
    // "already registered (same record)", exit 0.
    let second = l.write("second.log", &lines(&[l.rec(2, 7)]));
    ok(&[
        "ledger",
        "--db",
        l.db(),
        "register",
        "--record-key",
        &l.rk,
        s(&second),
    ]);
    let (c, out, _) = l.run(&["register", "--product", "widget", "--lot", "L1", s(&second)]);
    assert_eq!(c, 0, "{out}");
    assert!(out.contains("already registered (same record)"), "{out}");
    let d = l.devices();
    assert_eq!(d.len(), 2);
    assert!(
        d.iter()
            .all(|x| x["product"] == "widget" && x["lot"] == "L1")
    );
}

#[test]
fn quotas_are_per_product_and_lot() {
    let l = Ledger::new();
    l.bundle("widget", 8, "L2");
    l.bundle("gadget", 9, "G1");
    ok(&[
        "ledger",
        "--db",
        l.db(),
        "quota",
        "--product",
        "widget",
        "--lot",
        "L1",
        "1",
    ]);
    ok(&[
        "ledger",
        "--db",
        l.db(),
        "quota",
        "--product",
        "gadget",
        "1",
    ]);
    let f = l.write(
        "q.log",
        &lines(&[
            l.rec(1, 7),
            l.rec(2, 7),
            l.rec(3, 8),
            l.rec(4, 9),
            l.rec(5, 9),
        ]),
    );
    let j = l.json(&["register", s(&f)]);
    let res: Vec<&str> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        res,
        [
            "registered",
            "refused",
            "registered",
            "registered",
            "refused"
        ],
        "{j}"
    );
    assert_eq!(
        j[1]["reason"],
        "over the quota of product widget lot L1 (1 devices already registered)"
    );
    assert_eq!(
        j[4]["reason"],
        "over the quota of product gadget (1 devices already registered)"
    );
    // Raising the lot's quota lets the refused device in.
    ok(&[
        "ledger",
        "--db",
        l.db(),
        "quota",
        "--product",
        "widget",
        "--lot",
        "L1",
        "2",
    ]);
    let f2 = l.write("q2.log", &lines(&[l.rec(2, 7)]));
    ok(&[
        "ledger",
        "--db",
        l.db(),
        "register",
        "--record-key",
        &l.rk,
        s(&f2),
    ]);
    let r = l.json(&["report"]);
    let q = r["quotas"].as_array().unwrap();
    assert_eq!(q.len(), 2, "{r}");
    assert_eq!(
        (q[0]["product"].as_str(), q[0]["lot"].as_str()),
        (Some("gadget"), None)
    );
    assert_eq!(
        (q[0]["quota"].as_i64(), q[0]["devices"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (
            q[1]["lot"].as_str(),
            q[1]["quota"].as_i64(),
            q[1]["devices"].as_i64()
        ),
        (Some("L1"), Some(2), Some(2))
    );
    let human = ok(&["ledger", "--db", l.db(), "report"]);
    assert!(
        human.contains("quota product widget lot L1: 2 of 2"),
        "{human}"
    );
    assert_eq!(l.run(&["quota", "--product", "no such", "1"]).0, 2);
    assert_eq!(l.run(&["quota", "--product", "w", "--lot", "", "1"]).0, 2);
}

/// Stations register at the same time: `BEGIN IMMEDIATE` and the busy
/// timeout make them queue. v1 failed one of two in 3 ms ("database is
/// locked").
#[test]
fn concurrent_registering_processes_all_succeed_without_duplicates() {
    let l = Ledger::new();
    let per = 120u128;
    let mut expected = 0;
    for (round, procs) in [(1u128, 2u128), (2, 8)] {
        // Process i: its own records, plus one record shared by processes 0
        // and 1 (the same line forwarded by two stations).
        let shared = l.rec(round << 64 | 0xffff, 7);
        let files: Vec<PathBuf> = (0..procs)
            .map(|i| {
                let mut recs: Vec<_> = (0..per)
                    .map(|n| l.rec(round << 64 | i << 32 | n, 7))
                    .collect();
                if i < 2 {
                    recs.insert(per as usize / 2, shared.clone());
                }
                l.write(&format!("r{round}-{i}.log"), &lines(&recs))
            })
            .collect();
        let children: Vec<_> = files
            .iter()
            .map(|f| {
                bin()
                    .args([
                        "ledger",
                        "--db",
                        l.db(),
                        "--json",
                        "register",
                        "--record-key",
                        &l.rk,
                        s(f),
                    ])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|ch| ch.wait_with_output().unwrap())
            .collect();
        let failed: Vec<String> = outputs
            .iter()
            .filter(|o| !o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .collect();
        assert!(failed.is_empty(), "round {round}: {failed:?}");
        let mut registered = 0;
        let mut same = 0;
        for o in outputs {
            let j: Value = serde_json::from_slice(&o.stdout).unwrap();
            for d in j.as_array().unwrap() {
                match d["result"].as_str().unwrap() {
                    "registered" => registered += 1,
                    "already-registered" => same += 1,
                    other => panic!("round {round}: {other}: {d}"),
                }
            }
        }
        assert_eq!(registered, procs * per + 1, "round {round}");
        assert_eq!(
            same, 1,
            "round {round}: the shared record is registered once"
        );
        expected += procs * per + 1;
        let d = l.devices();
        assert_eq!(d.len() as u128, expected);
        let mut uids: Vec<&str> = d.iter().map(|x| x["uid"].as_str().unwrap()).collect();
        uids.sort_unstable();
        uids.dedup();
        assert_eq!(uids.len() as u128, expected, "duplicate UIDs in the ledger");
    }
    let r = l.json(&["report"]);
    assert_eq!(r["devices"].as_u64().unwrap() as u128, expected);
    assert!(r["refusals"].as_object().unwrap().is_empty(), "{r}");
}

/// Runs `mfgtool ledger --db DB ARGS` behind `prefix` (e.g. setpriv).
fn run_as(prefix: &[&str], db: &Path, args: &[&str]) -> (i32, String, String) {
    let mut a: Vec<&str> = prefix.to_vec();
    a.push(env!("CARGO_BIN_EXE_mfgtool"));
    a.extend(["ledger", "--db", s(db)]);
    a.extend(args);
    let o = std::process::Command::new(a[0])
        .args(&a[1..])
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn check_readers(prefix: &[&str], db: &Path) {
    let (c, out, err) = run_as(prefix, db, &["--json", "list"]);
    assert_eq!(c, 0, "{prefix:?} list: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (c, out, err) = run_as(prefix, db, &["--json", "report"]);
    assert_eq!(c, 0, "{prefix:?} report: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["devices"], 2);
    let (c, out, err) = run_as(prefix, db, &["report"]);
    assert_eq!(c, 0, "{prefix:?} report: {err}");
    assert!(out.contains("devices registered: 2"), "{out}");
    let (c, out, err) = run_as(prefix, db, &["--json", "release", "--list"]);
    assert_eq!(c, 0, "{prefix:?} release --list: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["measurement"], hex::encode(MPMR));
}

fn snapshot(dir: &Path, db: &Path) -> (Vec<u8>, std::time::SystemTime, Vec<String>) {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    (
        fs::read(db).unwrap(),
        fs::metadata(db).unwrap().modified().unwrap(),
        names,
    )
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `list` and `report` on a ledger the user may only read. The tests run as
/// root, which ignores file modes: the file and its directory are made
/// read-only, the readers must leave the file (bytes, mtime) and the
/// directory (no `-journal`, `-wal`, `-shm`) untouched, and, when `setpriv`
/// is there, they also run as `nobody`, for whom the modes hold (a write
/// command as `nobody` failing is the control that they do).
#[test]
fn list_and_report_work_on_a_read_only_ledger_and_write_nothing() {
    let l = Ledger::new();
    let f = l.write("a.log", &lines(&[l.rec(1, 7), l.rec(2, 7)]));
    ok(&[
        "ledger",
        "--db",
        l.db(),
        "register",
        "--record-key",
        &l.rk,
        s(&f),
    ]);
    let dir = l.dir.path().join("ro");
    fs::create_dir(&dir).unwrap();
    let db = dir.join("ledger.sqlite");
    fs::copy(&l.db, &db).unwrap();
    let rec = l.write("b.log", &lines(&[l.rec(3, 7)]));
    use std::os::unix::fs::PermissionsExt;
    for p in [rec.as_path(), l.dir.path()] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::set_permissions(&db, fs::Permissions::from_mode(0o444)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    let before = snapshot(&dir, &db);
    std::thread::sleep(std::time::Duration::from_millis(20));
    check_readers(&[], &db);
    let nobody = [
        "/usr/bin/setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    // nobody must be able to run the binary (a target directory of mode
    // 0700 would not let it): then the modes really hold for the readers.
    let nobody_runs = is_root()
        && std::process::Command::new(nobody[0])
            .args(&nobody[1..])
            .arg(env!("CARGO_BIN_EXE_mfgtool"))
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !nobody_runs {
        eprintln!(
            "note: not root, no setpriv, or nobody cannot run mfgtool: readers run as this user only"
        );
    }
    if nobody_runs {
        check_readers(&nobody, &db);
        // Control: for nobody the modes hold, so a write is refused.
        let (c, _, err) = run_as(&nobody, &db, &["register", "--record-key", &l.rk, s(&rec)]);
        assert_ne!(c, 0, "nobody wrote to a read-only ledger");
        assert!(
            err.contains("readonly") || err.contains("read-only"),
            "{err}"
        );
    }
    assert_eq!(
        snapshot(&dir, &db),
        before,
        "a reader changed the ledger or its directory"
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn missing_database_is_an_error_for_every_subcommand_but_init() {
    let l = Ledger::new();
    let missing = l.path("mistyped.sqlite");
    let m = s(&missing);
    let rec = l.write("a.log", &lines(&[l.rec(1, 7)]));
    let bundle = seal_bundle(l.dir.path(), &l.pk, "widget", 11);
    let secret = l.write("s.bin", "X");
    let manifest = l.write(
        "m.toml",
        &format!(
            "[[secret]]\nname = \"x\"\nfile = \"{}\"\ntype = \"raw\"\n",
            secret.display()
        ),
    );
    let out = l.path("o.bin");
    let mpmr = hex::encode(MPMR);
    let cmds: Vec<Vec<&str>> = vec![
        vec![
            "ledger",
            "--db",
            m,
            "register",
            "--record-key",
            &l.rk,
            s(&rec),
        ],
        vec!["ledger", "--db", m, "list"],
        vec!["ledger", "--db", m, "report"],
        vec!["ledger", "--db", m, "--json", "report"],
        vec![
            "ledger",
            "--db",
            m,
            "allow",
            "--uid-range",
            "00000000000000000000000000000000-00000000000000000000000000000001",
        ],
        vec!["ledger", "--db", m, "add-bundle", "--lot", "L1", s(&bundle)],
        vec!["ledger", "--db", m, "quota", "--product", "widget", "3"],
        vec!["ledger", "--db", m, "release", "--measurement", &mpmr],
        vec!["ledger", "--db", m, "release", "--list"],
        vec![
            "seal",
            "--mp-pubkey",
            &l.pk,
            "--secrets",
            s(&manifest),
            "--product",
            "widget",
            "--bundle-id",
            "12",
            "-o",
            s(&out),
            "--ledger",
            m,
            "--lot",
            "L1",
        ],
    ];
    for a in &cmds {
        let (c, _, err) = run(a);
        assert_eq!(c, 2, "{a:?}: {err}");
        assert!(
            err.contains(&format!("ledger database {m} does not exist")),
            "{a:?}: {err}"
        );
        assert!(!missing.exists(), "{a:?} created the database");
    }
    assert!(!out.exists(), "seal wrote a bundle for a missing ledger");

    // init creates; init on any existing file refuses unless --existing, and
    // never re-initialises a ledger.
    let init = |db: &str, extra: &[&str]| {
        let mut a = vec![
            "ledger",
            "--db",
            db,
            "init",
            "--mp-pubkey",
            &l.pk,
            "--srk-hash",
        ];
        let srk = hex::encode(SRK);
        let mut a2: Vec<String> = a.drain(..).map(String::from).collect();
        a2.push(srk);
        a2.extend(extra.iter().map(|x| x.to_string()));
        let refs: Vec<&str> = a2.iter().map(String::as_str).collect();
        run(&refs)
    };
    let before = fs::read(&l.db).unwrap();
    let (c, _, err) = init(l.db(), &[]);
    assert_eq!(c, 2);
    assert!(err.contains("already exists"), "{err}");
    let (c, _, err) = init(l.db(), &["--existing"]);
    assert_eq!(c, 2);
    assert!(err.contains("is an initialised ledger"), "{err}");
    assert_eq!(
        fs::read(&l.db).unwrap(),
        before,
        "a refused init changed the ledger"
    );
    let empty = l.path("empty.sqlite");
    fs::write(&empty, b"").unwrap();
    assert_eq!(init(s(&empty), &[]).0, 2);
    assert_eq!(fs::metadata(&empty).unwrap().len(), 0);
    let (c, _, err) = init(s(&empty), &["--existing"]);
    assert_eq!(c, 0, "{err}");
    ok(&["ledger", "--db", s(&empty), "report"]);
    let (c, _, err) = init(m, &[]);
    assert_eq!(c, 0, "{err}");
    assert!(missing.exists());
    let other = l.path("other.sqlite");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let (c, _, err) = init(s(&other), &["--existing"]);
    assert_eq!(c, 2);
    assert!(err.contains("database of something else"), "{err}");
}

/// A ledger written by the first mfgtool (WAL, no `bundles`/`quotas`):
/// readers read it as it is; the first write switches it to the rollback
/// journal and adds the new tables, keeping its devices.
#[test]
fn first_version_ledger_is_upgraded_by_its_first_write() {
    let l = Ledger::new();
    let old = l.path("v1.sqlite");
    {
        let c = rusqlite::Connection::open(&old).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch(&format!(
            "CREATE TABLE policy (id INTEGER PRIMARY KEY CHECK (id = 1), mp_pubkey TEXT NOT NULL,
                srk_hash TEXT NOT NULL, security_state TEXT NOT NULL, quota INTEGER, created_at TEXT NOT NULL);
             CREATE TABLE uid_ranges (id INTEGER PRIMARY KEY, lo TEXT NOT NULL, hi TEXT NOT NULL, added_at TEXT NOT NULL);
             CREATE TABLE devices (id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, product TEXT NOT NULL,
                lot TEXT NOT NULL, bundle_id INTEGER, security_state TEXT NOT NULL, loader_version TEXT NOT NULL,
                boot_counter INTEGER NOT NULL, record BLOB NOT NULL, record_sha256 TEXT NOT NULL, registered_at TEXT NOT NULL);
             CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL, uid TEXT,
                product TEXT, lot TEXT, decision TEXT NOT NULL, reason_code TEXT NOT NULL, reason TEXT NOT NULL,
                record_sha256 TEXT, device_id INTEGER);
             INSERT INTO policy VALUES (1, '{}', '{}', 'closed', NULL, 'then');
             INSERT INTO devices VALUES (1, '{}', 'old', 'L0', 7, 'closed', '0.1.0', 1, x'00', 'x', 'then');",
            l.pk.to_lowercase(),
            hex::encode(SRK),
            uid(100)
        ))
        .unwrap();
    }
    let r: Value =
        serde_json::from_str(&ok(&["ledger", "--db", s(&old), "--json", "report"])).unwrap();
    assert_eq!(r["devices"], 1);
    assert_eq!(r["bundles"], serde_json::json!([]));
    let b = seal_bundle(l.dir.path(), &l.pk, "widget", 7);
    ok(&[
        "ledger",
        "--db",
        s(&old),
        "add-bundle",
        "--lot",
        "L1",
        s(&b),
    ]);
    // Of the bundle just sealed (not the one `Ledger::new` registered).
    let f = l.write(
        "a.log",
        &lines(&[record_with(
            &l.key,
            1,
            SRK,
            SecurityState::Closed,
            Some(7),
            1,
        )]),
    );
    // The v1 ledger has no released loaders: records are refused until
    // the OEM releases its loader's measurement.
    let (c, out, _) = run(&[
        "ledger",
        "--db",
        s(&old),
        "register",
        "--record-key",
        &l.rk,
        s(&f),
    ]);
    assert_eq!(c, 4, "{out}");
    assert!(out.contains("none released"), "{out}");
    release_test_loader(s(&old));
    ok(&[
        "ledger",
        "--db",
        s(&old),
        "register",
        "--record-key",
        &l.rk,
        s(&f),
    ]);
    let c = rusqlite::Connection::open(&old).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 3);
    let n: i64 = c
        .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

/// Principle 3 / attack 3 of issue 13: a record signed by anything but a
/// released production loader (a console `mfgprot sign` on a boot where
/// the CM set the MPMR, a development loader) carries another MPMR. v1
/// did not check the MPMR at all.
#[test]
fn a_record_whose_mpmr_is_not_a_released_loaders_is_refused_until_released() {
    let l = Ledger::new();
    let mut m = message(1, SRK, SecurityState::Closed, Some(7), 1);
    if let Some((p, sha)) = l.bundle_row(7) {
        m.set_product(&p);
        m.bundle_digest = hex::decode(sha).unwrap().try_into().unwrap();
    }
    let other_mpmr = [0x22; 32];
    let r = sign_with_mpmr(&l.key, m, other_mpmr);
    let f = l.write("r.log", &lines(std::slice::from_ref(&r)));
    let (c, out, _) = l.run(&["register", s(&f)]);
    assert_eq!(c, 4, "{out}");
    assert!(
        out.contains(&format!(
            "MPMR {} is not a released loader's measurement",
            hex::encode(other_mpmr)
        )),
        "{out}"
    );
    assert!(l.devices().is_empty());
    assert_eq!(l.json(&["report"])["refusals"]["loader"], 1);
    // Released by measurement: the same record is accepted.
    let out = ok(&[
        "ledger",
        "--db",
        l.db(),
        "release",
        "--measurement",
        &hex::encode(other_mpmr),
    ]);
    assert!(out.contains("released"), "{out}");
    ok(&[
        "ledger",
        "--db",
        l.db(),
        "register",
        "--record-key",
        &l.rk,
        s(&f),
    ]);
    let d = l.devices();
    assert_eq!(d.len(), 1);
    // list names the loader (MPMR) and bundle digest of each device.
    assert_eq!(d[0]["mpmr"], hex::encode(other_mpmr));
    assert_eq!(d[0]["bundle_digest"], l.bundle_row(7).unwrap().1);
    // --list (read-only) shows both; releasing again changes nothing.
    let list = l.json(&["release", "--list"]);
    let ms: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["measurement"].as_str().unwrap())
        .collect();
    assert_eq!(ms.len(), 2, "{list}");
    assert!(
        ms.contains(&hex::encode(other_mpmr).as_str()) && ms.contains(&hex::encode(MPMR).as_str())
    );
    let (c, out, _) = l.run(&["release", "--measurement", &hex::encode(other_mpmr)]);
    assert_eq!(c, 0);
    assert!(out.contains("was already released"), "{out}");
    assert_eq!(l.json(&["release", "--list"]).as_array().unwrap().len(), 2);
    // Bad input: changes nothing.
    assert_eq!(l.run(&["release", "--measurement", "1234"]).0, 2);
    assert_eq!(l.run(&["release"]).0, 2);
    assert_eq!(
        l.run(&["release", "--list", "--measurement", &hex::encode(MPMR)])
            .0,
        2
    );
    assert_eq!(l.json(&["release", "--list"]).as_array().unwrap().len(), 2);
}

/// `release --loader` computes what the loader locks into the MPMR:
/// SHA-256 from `__image_start` to `__rodata_end` of the image as loaded
/// (segments by address, gaps zero), from a synthetic loader ELF; a record
/// with that MPMR is then accepted, and one of a loader with one changed
/// code byte is not.
#[test]
fn release_loader_computes_the_measurement_the_loader_locks() {
    let l = Ledger::new();
    let base = 0x4020_0000u64;
    let code: Vec<u8> = (0..0x2345u32).map(|i| (i * 7) as u8).collect();
    let syms = [("__image_start", base), ("__rodata_end", base + 0x3000)];
    let elf = elf::synthetic_elf(base, &code, 0x3000, b".data bytes", &syms);
    let ef = l.path("loader.elf");
    fs::write(&ef, &elf).unwrap();
    // What the loader hashes: its memory from __image_start to
    // __rodata_end, i.e. the code, then zeros up to the page.
    let mut mem = code.clone();
    mem.resize(0x3000, 0);
    let expect: [u8; 32] = Sha256::digest(&mem).into();
    let j = l.json(&["release", "--loader", s(&ef)]);
    assert_eq!(j[0]["measurement"], hex::encode(expect), "{j}");
    let mut m = message(1, SRK, SecurityState::Closed, Some(7), 1);
    let (p, sha) = l.bundle_row(7).unwrap();
    m.set_product(&p);
    m.bundle_digest = hex::decode(sha).unwrap().try_into().unwrap();
    let good = sign_with_mpmr(&l.key, m.clone(), expect);
    let mut changed = code.clone();
    changed[0x100] ^= 1;
    changed.resize(0x3000, 0);
    let other: [u8; 32] = Sha256::digest(&changed).into();
    m.uid = 2u128.to_be_bytes();
    let bad = sign_with_mpmr(&l.key, m, other);
    let f = l.write("r.log", &lines(&[good, bad]));
    let j = l.json(&["register", s(&f)]);
    assert_eq!(j[0]["result"], "registered", "{j}");
    assert_eq!(j[1]["reason_code"], "loader", "{j}");
    // A raw Image is refused (it does not say where .rodata ends), and so
    // is an ELF without the symbols; nothing is released.
    let bin = l.path("loader.bin");
    fs::write(&bin, &mem).unwrap();
    let (c, _, err) = l.run(&["release", "--loader", s(&bin)]);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("not an ELF file"), "{err}");
    let nosym = l.path("nosym.elf");
    fs::write(
        &nosym,
        elf::synthetic_elf(base, &code, 0x3000, b"x", &[("__image_start", base)]),
    )
    .unwrap();
    let (c, _, err) = l.run(&[
        "release",
        "--loader",
        s(&nosym),
        "--measurement",
        &"ab".repeat(32),
    ]);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("__rodata_end"), "{err}");
    assert_eq!(l.json(&["release", "--list"]).as_array().unwrap().len(), 2);
    // The real loader, when a build left one (not required).
    let real = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/out/qemu/loader.elf"
    );
    if std::path::Path::new(real).exists() {
        let j = l.json(&["release", "--loader", real]);
        assert_eq!(j[0]["measurement"].as_str().unwrap().len(), 64);
    }
}

/// Attack 6 of issue 13: the identity binds the bundle's SHA-256 and
/// product. A record of a bundle the CM sealed itself under the OEM's
/// bundle id (another digest), of a product that is not its bundle's, or
/// with a digest of no registered bundle, is refused. v1 checked only the
/// bundle id.
#[test]
fn a_record_whose_bundle_digest_or_product_does_not_match_its_bundle_is_refused() {
    let l = Ledger::new();
    l.bundle("gadget", 8, "G1");
    let (p7, sha7) = l.bundle_row(7).unwrap();
    let (_, sha8) = l.bundle_row(8).unwrap();
    let with = |uid: u128, product: &str, digest: &str| {
        let mut m = message(uid, SRK, SecurityState::Closed, Some(7), 1);
        m.set_product(product);
        m.bundle_digest = hex::decode(digest).unwrap().try_into().unwrap();
        sign(&l.key, m)
    };
    let cm_sealed = hex::encode([0xcc; 32]);
    let f = l.write(
        "r.log",
        &lines(&[
            with(1, &p7, &cm_sealed),
            with(2, &p7, &sha8),
            with(3, "gadget", &sha7),
            with(4, &p7, &sha7),
        ]),
    );
    let j = l.json(&["register", s(&f)]);
    let codes: Vec<&str> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["bundle", "bundle", "bundle", "ok"], "{j}");
    assert!(
        j[0]["reason"]
            .as_str()
            .unwrap()
            .contains("matches no bundle the OEM sealed"),
        "{j}"
    );
    assert!(
        j[1]["reason"]
            .as_str()
            .unwrap()
            .contains("is bundle id 8's, not bundle id 7's"),
        "{j}"
    );
    assert!(
        j[2]["reason"]
            .as_str()
            .unwrap()
            .contains("the record's product gadget is not bundle id 7's product widget"),
        "{j}"
    );
    assert_eq!(l.devices().len(), 1);
}
