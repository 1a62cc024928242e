//! `mfgtool bench` (hidden): verify-id (open the sealed record, verify the
//! signature) and ledger register throughput on one core against `openssl
//! speed ecdsap256`, and sealing a 1 MiB bundle.

use std::time::{Duration, Instant};

use mfg_formats::identity::{IdRecord, IdentityMessage, SOC_IMX8MP, SecurityState};
use p256::ecdsa::SigningKey;
use serde_json::json;
use sha2::Digest;

use crate::error::{Fail, Result};

/// A fixed test key (the bench never touches a real MP key).
pub fn test_key() -> SigningKey {
    SigningKey::from_slice(&[0x3c; 32]).unwrap_or_else(|_| unreachable!("constant scalar is valid"))
}

/// The 64-byte X||Y of a signing key.
pub fn pubkey_of(k: &SigningKey) -> [u8; 64] {
    let p = k.verifying_key().to_sec1_point(false);
    let mut o = [0u8; 64];
    o.copy_from_slice(&p.as_bytes()[1..65]);
    o
}

/// A fixed test record key scalar (`5e` x 32; never a real key).
pub const TEST_RECORD_SECRET: [u8; 32] = [0x5e; 32];

/// The test record key as the tool holds one.
pub fn test_record_key() -> crate::recordkey::FileRecordKey {
    crate::recordkey::FileRecordKey::from_secret(TEST_RECORD_SECRET)
        .unwrap_or_else(|_| unreachable!("constant scalar is valid"))
}

/// A signed record for UID `i` (as the device would make it), of bundle 1
/// (product `bench`, SHA-256 `bundle_digest`), MPMR zero.
pub fn signed_record(k: &SigningKey, i: u64, srk: [u8; 32], bundle_digest: [u8; 32]) -> IdRecord {
    let mut uid = [0u8; 16];
    uid[8..].copy_from_slice(&i.to_be_bytes());
    let mut m = IdentityMessage {
        soc: SOC_IMX8MP,
        uid,
        srk_hash: srk,
        security_state: SecurityState::Closed,
        boot_counter: 1,
        loader_version: [0; 16],
        product: [0; 32],
        bundle_id: Some(1),
        bundle_digest,
        station_nonce: None,
    };
    m.set_loader_version("0.1.0");
    m.set_product("bench");
    crate::verify::sign_record(k, m, [0; 32])
}

fn rk_public(k: &crate::recordkey::FileRecordKey) -> [u8; 64] {
    use crate::recordkey::RecordKey;
    k.public()
}

/// A valid ephemeral scalar for record `i` (bench and examples only; the
/// device draws it from the CAAM RNG).
pub fn ephemeral(i: u64) -> [u8; 32] {
    let mut e: [u8; 32] = sha2::Sha256::digest(i.to_le_bytes()).into();
    e[0] &= 0x7f; // below the group order
    e
}

fn openssl_verify_rate(seconds: f64) -> Option<f64> {
    let secs = format!("{}", seconds.ceil().max(1.0) as u64);
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", &secs, "ecdsap256"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  46000.0  15000.0"
    let line = text
        .lines()
        .find(|l| l.contains("ecdsa (nistp256)") && l.contains('s'))?;
    line.split_whitespace().last()?.parse().ok()
}

/// Runs every measurement and prints a table (or JSON).
pub fn run(seconds: f64, per_batch: u64, json_out: bool) -> Result<()> {
    let per_batch = per_batch.max(1);
    let key = test_key();
    let pk = pubkey_of(&key);
    let srk = [0x5a; 32];
    let one = [crate::seal::Loaded {
        name: "s".into(),
        kind: mfg_formats::SecretType::Opaque,
        key_modifier: None,
        data: zeroize::Zeroizing::new(vec![1; 16]),
    }];
    let bundle = crate::seal::seal_secrets(&one, "bench", 1, &pk)?;
    let digest: [u8; 32] = sha2::Sha256::digest(&bundle).into();
    let recs: Vec<IdRecord> = (0..per_batch)
        .map(|i| signed_record(&key, i, srk, digest))
        .collect();
    let v = crate::verify::Verifier::new(&pk);
    let rk = test_record_key();
    // verify-id: open the sealed record (ECDH, HKDF, AES-GCM), parse,
    // digest, signature check; one core.
    let sealed: Vec<_> = recs
        .iter()
        .enumerate()
        .map(|(i, r)| r.seal(&rk_public(&rk), &ephemeral(i as u64)))
        .collect::<std::result::Result<_, _>>()
        .map_err(Fail::from)?;
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs_f64(seconds) {
        for b in &sealed {
            let r = crate::recordkey::open_record(&rk, b)?;
            v.verify(&r)?;
            n += 1;
        }
    }
    let verify_rate = n as f64 / t.elapsed().as_secs_f64();
    let openssl = openssl_verify_rate(seconds);

    // ledger register: 10 batches of `per_batch` fresh records, each batch one
    // durable transaction (WAL, synchronous=FULL).
    let dir = std::env::temp_dir().join(format!("mfgtool-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Fail::io("bench dir", e))?;
    let db = dir.join("ledger.sqlite");
    let _ = std::fs::remove_file(&db);
    let batches: Vec<Vec<IdRecord>> = (0..10u64)
        .map(|b| {
            (0..per_batch)
                .map(|i| signed_record(&key, 1_000_000 + b * per_batch + i, srk, digest))
                .collect()
        })
        .collect();
    let inputs: Vec<Vec<crate::verify::Input>> = batches
        .into_iter()
        .map(|b| {
            b.into_iter()
                .map(|r| crate::verify::Input {
                    source: "bench".into(),
                    line: None,
                    record: Ok(r),
                })
                .collect()
        })
        .collect();
    let mut c = crate::ledger::open_db(&db, crate::ledger::Access::Create { existing: false })?;
    crate::ledger::init(&mut c, &pk, &srk, None, false)?;
    crate::ledger::add_bundle(&mut c, &bundle, "lot-1")?;
    crate::ledger::release(&mut c, &[0; 32], "bench")?;
    let t = Instant::now();
    let mut accepted = 0;
    for b in &inputs {
        accepted += crate::ledger::register(&mut c, b, &crate::ledger::Expect::default())?
            .iter()
            .filter(|d| d.accepted)
            .count();
    }
    let ledger_rate = accepted as f64 / t.elapsed().as_secs_f64();
    drop(c);
    let _ = std::fs::remove_dir_all(&dir);
    if accepted as u64 != 10 * per_batch {
        return Err(Fail::new(
            1,
            format!(
                "bench: only {accepted} of {} records accepted",
                10 * per_batch
            ),
        ));
    }

    // seal: 16 secrets of 64 KiB = 1 MiB.
    let data: Vec<zeroize::Zeroizing<Vec<u8>>> = (0..16)
        .map(|i| zeroize::Zeroizing::new(vec![i as u8; 65536]))
        .collect();
    let loaded: Vec<crate::seal::Loaded> = data
        .iter()
        .enumerate()
        .map(|(i, d)| crate::seal::Loaded {
            name: format!("s{i}"),
            kind: mfg_formats::SecretType::Opaque,
            key_modifier: None,
            data: d.clone(),
        })
        .collect();
    let t = Instant::now();
    let mut seals = 0u32;
    while t.elapsed() < Duration::from_secs_f64(seconds / 4.0) || seals == 0 {
        crate::seal::seal_secrets(&loaded, "bench", 1, &pk)?;
        seals += 1;
    }
    let seal_ms = t.elapsed().as_secs_f64() * 1000.0 / f64::from(seals);

    let ratio = openssl.map(|o| verify_rate / o);
    let v = json!({
        "verify_id_per_s": verify_rate.round(),
        "openssl_ecdsap256_verify_per_s": openssl,
        "verify_ratio_vs_openssl": ratio.map(|r| (r * 1000.0).round() / 1000.0),
        "ledger_register_per_s": ledger_rate.round(),
        "ledger_batch": per_batch,
        "seal_1mib_ms": (seal_ms * 100.0).round() / 100.0,
    });
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!(
            "{:<40}{:>12.0}",
            "verify-id records/s (1 core)", verify_rate
        );
        match openssl {
            Some(o) => {
                println!("{:<40}{:>12.0}", "openssl speed ecdsap256 verify/s", o);
                println!("{:<40}{:>12.2}", "ratio (goal >= 0.50)", verify_rate / o);
            }
            None => println!("{:<40}{:>12}", "openssl speed ecdsap256 verify/s", "n/a"),
        }
        println!(
            "{:<40}{:>12.0}",
            format!("ledger register records/s (batch {per_batch})"),
            ledger_rate
        );
        println!("{:<40}{:>12.2}", "seal 1 MiB bundle (ms)", seal_ms);
    }
    Ok(())
}
