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

/// `openssl speed` rates on one core: (ECDSA P-256 verify/s, ECDH P-256 op/s).
fn openssl_rates(seconds: f64) -> (Option<f64>, Option<f64>) {
    let secs = format!("{}", seconds.ceil().max(1.0) as u64);
    let Ok(out) = std::process::Command::new("openssl")
        .args(["speed", "-seconds", &secs, "ecdsap256", "ecdhp256"])
        .output()
    else {
        return (None, None);
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  46000.0  15000.0"
    // " 256 bits ecdh (nistp256)   0.0001s  19637.2"
    let last = |what: &str| {
        text.lines()
            .find(|l| l.contains(what) && l.contains('s'))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
    };
    (last("ecdsa (nistp256)"), last("ecdh (nistp256)"))
}

/// Rate of `f` over `items` for about `seconds`.
fn rate<T>(seconds: f64, items: &[T], mut f: impl FnMut(&T) -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs_f64(seconds) || n == 0 {
        for x in items {
            f(x)?;
            n += 1;
        }
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
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
    let verify_rate = rate(seconds, &sealed, |b| {
        v.verify(&crate::recordkey::open_record(&rk, b)?)
    })?;
    let open_rate = rate(seconds / 2.0, &sealed, |b| {
        crate::recordkey::open_record(&rk, b).map(|_| ())
    })?;
    let sig_rate = rate(seconds / 2.0, &recs, |r| v.verify(r))?;
    let (openssl, openssl_ecdh) = openssl_rates(seconds);
    // The same work in openssl: one ECDH and one ECDSA verify per record.
    let openssl_same = match (openssl, openssl_ecdh) {
        (Some(v), Some(e)) => Some(1.0 / (1.0 / v + 1.0 / e)),
        _ => None,
    };

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
    let sealed_batches: Vec<Vec<[u8; mfg_formats::identity::SEALED_LEN]>> = batches
        .iter()
        .map(|b| {
            b.iter()
                .enumerate()
                .map(|(i, r)| r.seal(&rk_public(&rk), &ephemeral(i as u64 + 7)))
                .collect::<std::result::Result<_, _>>()
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(Fail::from)?;
    let mut c = crate::ledger::open_db(&db, crate::ledger::Access::Create { existing: false })?;
    crate::ledger::init(&mut c, &pk, &srk, None, false)?;
    crate::ledger::add_bundle(&mut c, &bundle, "lot-1")?;
    crate::ledger::release(&mut c, &[0; 32], "bench")?;
    let t = Instant::now();
    let mut accepted = 0;
    for b in &sealed_batches {
        // As `register` does: open every record, then verify and register.
        let inputs: Vec<crate::verify::Input> = b
            .iter()
            .map(|s| crate::verify::Input {
                source: "bench".into(),
                line: None,
                record: crate::recordkey::open_record(&rk, s)
                    .map_err(|e| crate::verify::Bad::Malformed(e.msg)),
            })
            .collect();
        accepted += crate::ledger::register(&mut c, &inputs, &crate::ledger::Expect::default())?
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

    let ratio = openssl_same.map(|o| verify_rate / o);
    let v = json!({
        "verify_id_per_s": verify_rate.round(),
        "open_sealed_per_s": open_rate.round(),
        "signature_verify_per_s": sig_rate.round(),
        "openssl_ecdsap256_verify_per_s": openssl,
        "openssl_ecdhp256_per_s": openssl_ecdh,
        "openssl_ecdh_plus_verify_per_s": openssl_same.map(f64::round),
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
        println!("{:<40}{:>12.0}", "  open sealed record/s", open_rate);
        println!("{:<40}{:>12.0}", "  signature verify/s", sig_rate);
        let na = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.0}"));
        println!(
            "{:<40}{:>12}",
            "openssl speed ecdsap256 verify/s",
            na(openssl)
        );
        println!(
            "{:<40}{:>12}",
            "openssl speed ecdhp256 op/s",
            na(openssl_ecdh)
        );
        println!(
            "{:<40}{:>12}",
            "openssl ECDH + verify per record/s",
            na(openssl_same)
        );
        if let Some(r) = ratio {
            println!("{:<40}{:>12.2}", "ratio (goal >= 0.50)", r);
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
