//! Host-side readers of a provisioned disk image, shared by the flow and
//! fault tests: the journal, the bundle partition, the ID record, and the
//! bundle key derived independently of the loader.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use mfg_formats::area::{self, BundlePartitionHeader, JournalRecord};
use qemu_tests::mfg::partition;
use std::path::Path;

/// A path as `&str` for command lines.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The current journal record of the image's `mfg-data`, if any.
pub fn journal(d: &[u8]) -> Option<JournalRecord> {
    let r = partition(d, "mfg-data").expect("mfg-data");
    let b = &d[r.start..r.start + 2 * area::BLOCK];
    area::select_journal(&b[..area::BLOCK], &b[area::BLOCK..]).map(|(j, _)| j)
}

/// Whether `mfg-bundle` still holds a bundle.
pub fn bundle_present(d: &[u8]) -> bool {
    let r = partition(d, "mfg-bundle").expect("mfg-bundle");
    BundlePartitionHeader::parse(&d[r.start..r.start + area::BLOCK]).is_ok()
}

/// The sealed ID record the journal points at, as stored (and printed).
pub fn disk_id_record(d: &[u8]) -> Vec<u8> {
    let j = journal(d).expect("journal");
    let slot = j.id_slot.expect("ID slot");
    let r = partition(d, "mfg-data").expect("mfg-data");
    let at = r.start + area::ID_SLOT_LBA[usize::from(slot)] as usize * area::BLOCK;
    d[at..at + mfg_formats::identity::SEALED_LEN].to_vec()
}

/// The development record key the loader under test seals to, and the
/// path of its PEM file (for `mfgtool --record-key`).
pub fn record_key() -> ([u8; 32], std::path::PathBuf) {
    use p256::pkcs8::DecodePrivateKey;
    let path = qemu_tests::dev_keys_dir().join("record.pem");
    let pem = std::fs::read_to_string(&path).expect("dev record key (cargo xtask build makes it)");
    let k = p256::SecretKey::from_pkcs8_pem(&pem).expect("PKCS#8 P-256 key");
    (k.to_bytes().into(), path)
}

/// Opens a sealed ID record with the development record key.
pub fn open_record(sealed: &[u8]) -> mfg_formats::identity::IdRecord {
    mfg_formats::identity::IdRecord::open(sealed, &record_key().0)
        .expect("sealed to the dev record key")
}

/// The bundle key, derived on the host exactly as docs/formats.md 1.2 says.
pub fn bundle_key(pubkey: &[u8; 64], bundle: &[u8]) -> [u8; 32] {
    let field = |b: &[u8]| -> Vec<u8> { b.iter().copied().take_while(|&c| c != 0).collect() };
    let product = field(&bundle[16..48]);
    let label = field(&bundle[88..112]);
    let mut info = label;
    info.extend_from_slice(&product);
    info.extend_from_slice(&1u16.to_le_bytes());
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(&bundle[56..88]), pubkey);
    let mut key = [0u8; 32];
    hk.expand(&info, &mut key).expect("32-byte HKDF output");
    key
}
