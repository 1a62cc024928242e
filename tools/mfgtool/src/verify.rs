//! `mfgtool verify-id`: sealed ID records from the console line, a raw
//! sealed record or a disk image's `mfg-data` partition, opened with the
//! OEM record key and verified with the MP public key.

use std::path::Path;

use mfg_formats::area::{self, BLOCK};
use mfg_formats::identity::{self, IdRecord, SEALED_LEN};
use mfg_formats::{partitions, sealed};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

use crate::error::{Fail, Result, exit, read_file};
use crate::gpt;
use crate::recordkey::{RecordKey, open_record};

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

/// Why an input is not a usable record.
#[derive(Debug, Clone)]
pub enum Bad {
    /// Not a sealed ID record at all (bad base64, header, length; a
    /// plaintext record; an opened record that does not parse).
    Malformed(String),
    /// A well-formed sealed record that does not open with the record key.
    Sealed(String),
}

impl Bad {
    fn from_fail(f: Fail) -> Self {
        if f.code == exit::AUTH {
            Self::Sealed(f.msg)
        } else {
            Self::Malformed(f.msg)
        }
    }
}

const PLAINTEXT: &str = "a plaintext ID record: devices store and print only records sealed to the OEM record key (MFSR)";

/// Every sealed record candidate of a file that is not a disk image: one
/// or more `mfgprot-id:` lines (any other lines, e.g. a whole console log,
/// are skipped; each with its 1-based line number), or one raw sealed
/// record. A plaintext record (magic MFIR) is refused: the device never
/// emits one.
fn sealed_candidates(data: &[u8]) -> Vec<(Option<usize>, Result<[u8; SEALED_LEN]>)> {
    if data.starts_with(&sealed::MAGIC) {
        let r = identity::sealed_from_block(data).and_then(|s| {
            if data.len() == SEALED_LEN {
                Ok(s)
            } else {
                Err(mfg_formats::FormatError::BadLength {
                    what: "sealed ID record file",
                })
            }
        });
        return vec![(None, r.map_err(Fail::from))];
    }
    if data.starts_with(&identity::RECORD_MAGIC) {
        return vec![(None, Err(Fail::format(PLAINTEXT)))];
    }
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(pos) = line.find(identity::CONSOLE_PREFIX) {
            out.push((
                Some(i + 1),
                identity::sealed_from_console_line(&line.as_bytes()[pos..]).map_err(|e| {
                    Fail::format(format!(
                        "{e} (an 'mfgprot-id:' line carries a sealed record in base64)"
                    ))
                }),
            ));
        }
    }
    out
}

/// Opens every record in `data` (console text or a raw sealed record); the
/// first that is malformed or does not open is the error.
pub fn parse_records(data: &[u8], key: &dyn RecordKey) -> Result<Vec<IdRecord>> {
    let c = sealed_candidates(data);
    if c.is_empty() {
        return Err(Fail::format(
            "no ID record found (expected an 'mfgprot-id: <base64>' line or a raw sealed record)",
        ));
    }
    c.into_iter().map(|(_, s)| open_record(key, &s?)).collect()
}

/// The sealed record in the current ID slot of a disk image's `mfg-data`.
pub fn sealed_from_disk(path: &Path) -> Result<[u8; SEALED_LEN]> {
    let disk = gpt::DiskImage::open(path)?;
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
    if b.starts_with(&identity::RECORD_MAGIC) {
        return Err(Fail::format(format!(
            "mfg-data ID slot {slot}: {PLAINTEXT}"
        )));
    }
    identity::sealed_from_block(&b)
        .map_err(|e| Fail::format(format!("mfg-data ID slot {slot}: {e}")))
}

/// Opens the current ID record of a disk image's `mfg-data` partition.
pub fn record_from_disk(path: &Path, key: &dyn RecordKey) -> Result<IdRecord> {
    open_record(key, &sealed_from_disk(path)?)
}

/// Loads and opens records from a file: a disk image (GPT signature at LBA
/// 1), a raw sealed record or console text.
pub fn load_records(path: &Path, key: &dyn RecordKey) -> Result<Vec<IdRecord>> {
    if gpt::looks_like_disk(path) {
        return Ok(vec![record_from_disk(path, key)?]);
    }
    parse_records(&read_file(path)?, key)
}

/// One record, or one input that should have been a record, from a
/// `ledger register` input file.
pub struct Input {
    /// The file it came from.
    pub source: String,
    /// Its line (1-based) in a text file; `None` for a raw record or a disk image.
    pub line: Option<usize>,
    /// The opened record, or why there is none.
    pub record: std::result::Result<IdRecord, Bad>,
}

/// Reads and opens every record candidate of one input file without
/// stopping at a bad one: each `mfgprot-id:` line of a text file (other
/// lines are skipped), the raw sealed record of a record file, the current
/// record of a disk image. A file that cannot be read is an error; a record
/// that is malformed or does not open is an `Input` with the reason. An
/// empty result means the file holds no record.
pub fn scan_inputs(path: &Path, key: &dyn RecordKey) -> Result<Vec<Input>> {
    let source = path.display().to_string();
    let cands = if gpt::looks_like_disk(path) {
        vec![(None, sealed_from_disk(path))]
    } else {
        sealed_candidates(&read_file(path)?)
    };
    Ok(cands
        .into_iter()
        .map(|(line, s)| Input {
            source: source.clone(),
            line,
            record: s.and_then(|s| open_record(key, &s)).map_err(Bad::from_fail),
        })
        .collect())
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
        "product": m.product_str(),
        "bundle_id": m.bundle_id,
        "bundle_digest": m.bundle_id.map(|_| hex::encode(m.bundle_digest)),
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
