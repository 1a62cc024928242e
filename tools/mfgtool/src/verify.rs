//! `mfgtool verify-id`: ID records from the console line, raw bytes or a
//! disk image's `mfg-data` partition, verified with the MP public key.

use std::path::Path;

use mfg_formats::area::{self, BLOCK};
use mfg_formats::identity::{self, IdRecord};
use mfg_formats::partitions;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

use crate::error::{Fail, Result, exit, read_file};
use crate::gpt;

/// Signs `message` the way the CAAM's MP sign does (SHA-256 over
/// MPMR || message, r = c, s = d) with a host key: the records of the
/// worked examples and the verify benchmark.
pub fn sign_record(
    key: &p256::ecdsa::SigningKey,
    message: identity::IdentityMessage,
    mpmr: [u8; 32],
) -> IdRecord {
    use p256::ecdsa::{Signature, signature::Signer};
    let mut r = IdRecord {
        message,
        mpmr,
        mes_rep: [0; 32],
        c: [0; 32],
        d: [0; 32],
    };
    r.mes_rep = r.digest();
    let sig: Signature = key.sign(&r.signed_bytes());
    let b = sig.to_bytes();
    r.c.copy_from_slice(&b[..32]);
    r.d.copy_from_slice(&b[32..]);
    r
}

/// A P-256 verifier for one MP public key.
pub struct Verifier {
    key: UnparsedPublicKey<[u8; 65]>,
}

impl Verifier {
    pub fn new(mp_pubkey: &[u8; 64]) -> Self {
        let mut k = [0u8; 65];
        k[0] = 4;
        k[1..].copy_from_slice(mp_pubkey);
        Self {
            key: UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, k),
        }
    }

    /// Checks the message representative and the signature
    /// (ECDSA P-256, SHA-256 over MPMR || message, r = c, s = d).
    pub fn verify(&self, r: &IdRecord) -> Result<()> {
        if r.mes_rep != r.digest() {
            return Err(Fail::new(
                exit::AUTH,
                "ID record: message representative does not match SHA-256(MPMR || message)",
            ));
        }
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r.c);
        sig[32..].copy_from_slice(&r.d);
        self.key
            .verify(&r.signed_bytes(), &sig)
            .map_err(|_| Fail::new(exit::AUTH, "ID record signature verification failed"))
    }
}

/// Parses every record in `data`: one or more `mfgprot-id:` lines (any other
/// lines, e.g. a whole console log, are skipped), or one raw record.
pub fn parse_records(data: &[u8]) -> Result<Vec<IdRecord>> {
    if data.starts_with(&identity::RECORD_MAGIC) {
        return Ok(vec![IdRecord::parse(data)?]);
    }
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(pos) = line.find(identity::CONSOLE_PREFIX) {
            out.push(IdRecord::from_console_line(&line.as_bytes()[pos..])?);
        }
    }
    if out.is_empty() {
        return Err(Fail::format(
            "no ID record found (expected an 'mfgprot-id: <base64>' line or a raw record)",
        ));
    }
    Ok(out)
}

/// Reads the current ID record from a disk image's `mfg-data` partition.
pub fn record_from_disk(path: &Path) -> Result<IdRecord> {
    let disk = gpt::Disk::open(path)?;
    let part = disk.find(partitions::MFG_DATA.name)?;
    let j0 = disk.read(&part, area::JOURNAL_LBA[0] * BLOCK as u64, BLOCK)?;
    let j1 = disk.read(&part, area::JOURNAL_LBA[1] * BLOCK as u64, BLOCK)?;
    let (j, _) = area::select_journal(&j0, &j1)
        .ok_or_else(|| Fail::format("mfg-data: no valid journal (device not provisioned)"))?;
    let slot = j
        .id_slot
        .ok_or_else(|| Fail::format("mfg-data: journal state 'blank' has no ID record"))?;
    let b = disk.read(
        &part,
        area::ID_SLOT_LBA[usize::from(slot)] * BLOCK as u64,
        BLOCK,
    )?;
    Ok(IdRecord::parse(&b)?)
}

/// Loads records from a file: a disk image (GPT signature at LBA 1), a raw
/// record or console text.
pub fn load_records(path: &Path) -> Result<Vec<IdRecord>> {
    if gpt::looks_like_disk(path) {
        return Ok(vec![record_from_disk(path)?]);
    }
    parse_records(&read_file(path)?)
}

/// One record, or one input that should have been a record, from a
/// `ledger register` input file.
pub struct Input {
    /// The file it came from.
    pub source: String,
    /// Its line (1-based) in a text file; `None` for a raw record or a disk image.
    pub line: Option<usize>,
    /// The parsed record, or why it does not parse.
    pub record: std::result::Result<IdRecord, String>,
}

/// Reads every record candidate of one input file without stopping at a bad
/// one: each `mfgprot-id:` line of a text file (other lines are skipped), the
/// raw record of a record file, the current record of a disk image. A file
/// that cannot be read is an error; a record that does not parse is an
/// `Input` with the reason. An empty result means the file holds no record.
pub fn scan_inputs(path: &Path) -> Result<Vec<Input>> {
    let source = path.display().to_string();
    let one = |record: std::result::Result<IdRecord, String>| {
        vec![Input {
            source: source.clone(),
            line: None,
            record,
        }]
    };
    if gpt::looks_like_disk(path) {
        return Ok(one(record_from_disk(path).map_err(|e| e.msg)));
    }
    let data = read_file(path)?;
    if data.starts_with(&identity::RECORD_MAGIC) {
        return Ok(one(IdRecord::parse(&data).map_err(|e| e.to_string())));
    }
    let text = String::from_utf8_lossy(&data);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(pos) = line.find(identity::CONSOLE_PREFIX) {
            out.push(Input {
                source: source.clone(),
                line: Some(i + 1),
                record: IdRecord::from_console_line(&line.as_bytes()[pos..])
                    .map_err(|e| e.to_string()),
            });
        }
    }
    Ok(out)
}

/// JSON/human view of an identity.
pub fn describe(r: &IdRecord) -> serde_json::Value {
    let m = &r.message;
    serde_json::json!({
        "soc": if m.soc == identity::SOC_IMX8MP { "i.MX8MP".to_string() } else { format!("{:#06x}", m.soc) },
        "uid": hex::encode(m.uid),
        "srk_hash": hex::encode(m.srk_hash),
        "security_state": m.security_state.as_str(),
        "loader_version": m.loader_version_str(),
        "bundle_id": m.bundle_id,
        "boot_counter": m.boot_counter,
        "station_nonce": m.station_nonce.map(hex::encode),
        "mpmr": hex::encode(r.mpmr),
        "message_representative": hex::encode(r.mes_rep),
        "signature_c": hex::encode(r.c),
        "signature_d": hex::encode(r.d),
    })
}

/// Prints the identity in `key: value` lines.
pub fn print_human(r: &IdRecord) {
    if let serde_json::Value::Object(map) = describe(r) {
        for (k, v) in map {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => "none".into(),
                other => other.to_string(),
            };
            println!("{k:<24}{v}");
        }
    }
}
