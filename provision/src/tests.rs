//! The flow on the host: the real CAAM driver on the `imx-emu` model, an
//! in-memory eMMC with a GPT, a console that records what it is told. Every
//! state transition, every refusal, and a power cut after every write.

use super::*;
use block::gpt::{NewPartition, write_table};
use block::{BlockDevice, MemDisk};
use caam::emulated::{Rig, rig};
use imx_emu::fusefile::{DEFAULT_FAMILY_SECRET, FuseFile};
use mfg_formats::area::{
    self, BLOB_TABLE_LBA, BLOCK, BlobEntry, BlobTable, BundlePartitionHeader, ID_SLOT_LBA,
    JOURNAL_LBA, JournalRecord, MFG_DATA_BYTES, ProvState,
};
use mfg_formats::bundle::{self, KeyModifier, SealParams, SecretSpec, SecretType};
use mfg_formats::identity::{self, IdRecord, SecurityState};
use mfg_formats::partitions::{MFG_BUNDLE, MFG_DATA};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use std::string::String;
use std::vec;
use std::vec::Vec;

const PRODUCT: &str = "imx8mp-demo";
/// What the loader locks into the MPMR at boot.
const MEASUREMENT: [u8; 32] = [0x5a; 32];
/// The OEM record key pair (the device holds the public half).
const RECORD_SECRET: [u8; 32] = [0x3c; 32];

fn record_key() -> &'static [u8; 64] {
    static KEY: std::sync::LazyLock<[u8; 64]> =
        std::sync::LazyLock::new(|| mfg_formats::sealed::public_key(&RECORD_SECRET).unwrap());
    &KEY
}

/// What the loader tells the flow.
fn config(production: bool) -> Config<'static> {
    Config {
        product: PRODUCT,
        loader_version: "9.9.9",
        production,
        record_key: record_key(),
    }
}

/// The eMMC over `img`, losing power after `cut_after` writes.
fn emmc(img: &mut [u8], cut_after: Option<u32>) -> Emmc<'_> {
    Emmc {
        disk: MemDisk::new(img, BLOCK),
        writes: 0,
        cut_after,
    }
}
/// Disk: 16 MiB; `mfg-data` 8 MiB at 1 MiB, `mfg-bundle` 1 MiB after it.
const DISK_BLOCKS: u64 = 32 * 1024;
const DATA_FIRST: u64 = 2048;
const BUNDLE_FIRST: u64 = DATA_FIRST + MFG_DATA_BYTES / BLOCK as u64;
const BUNDLE_BLOCKS: u64 = 2048;

const SECRETS: [(&str, &[u8]); 2] = [
    ("wifi-psk", b"correct horse battery staple"),
    ("cloud-token", b"tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
];

fn chip(uid: u8, open: bool) -> FuseFile {
    FuseFile {
        uid: [uid; 16],
        srk_hash: [0xaa; 32],
        otpmk: [uid ^ 0x77; 32],
        family_secret: DEFAULT_FAMILY_SECRET,
        open,
        options: Default::default(),
    }
}

struct TestFuses(FuseFile);

impl Fuses for TestFuses {
    fn unique_id(&self) -> [u8; 16] {
        self.0.uid
    }
    fn srk_hash(&self) -> [u8; 32] {
        self.0.srk_hash
    }
    fn is_closed(&self) -> bool {
        !self.0.open
    }
}

/// The eMMC: an image that survives power cycles, and a write budget after
/// which the power is gone (every later write is lost).
struct Emmc<'a> {
    disk: MemDisk<'a>,
    writes: u32,
    cut_after: Option<u32>,
}

impl BlockDevice for Emmc<'_> {
    type Error = block::RangeError;
    fn block_size(&self) -> usize {
        BLOCK
    }
    fn num_blocks(&self) -> u64 {
        self.disk.num_blocks()
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        self.disk.read_blocks(lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), Self::Error> {
        if self.cut_after.is_some_and(|k| self.writes >= k) {
            return Ok(()); // no power: nothing reaches the medium
        }
        self.writes += 1;
        self.disk.write_blocks(lba, buf)
    }
}

impl Storage for Emmc<'_> {
    fn ready(&mut self) -> Result<(), block::RangeError> {
        Ok(())
    }
}

#[derive(Default)]
struct Out(String);

impl core::fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.push_str(s);
        Ok(())
    }
}

impl Console for Out {}

/// Records what the flow tells its observer.
#[derive(Default)]
struct Log {
    steps: Vec<(Step, bool)>,
    written: u32,
    journal: Vec<(u64, u8, usize)>,
    refused: Vec<u16>,
}

impl Observer for Log {
    fn begin(&mut self, s: Step) {
        if s != Step::Io {
            self.steps.push((s, true));
        }
    }
    fn end(&mut self, s: Step) {
        if s != Step::Io {
            self.steps.push((s, false));
        }
    }
    fn written(&mut self, _: &mut dyn Console) {
        self.written += 1;
    }
    fn journal(&mut self, seq: u64, state: u8, copy: usize) {
        self.journal.push((seq, state, copy));
    }
    fn refused(&mut self, code: u16) {
        self.refused.push(code);
    }
}

/// A device: its fuses and its eMMC image, across power cycles.
struct Device {
    fuses: FuseFile,
    img: Vec<u8>,
}

/// What one boot did.
struct Boot {
    r: Result<Outcome, FlowError>,
    out: String,
    log: Log,
    writes: u32,
    scratch_clean: bool,
}

fn mp_pubkey(f: &FuseFile) -> [u8; 64] {
    let mut r = rig(f.clone());
    r.caam.init().unwrap();
    r.caam.mp_public_key().unwrap()
}

fn seal_for(pubkey: &[u8; 64], product: &str, bundle_id: u64) -> Vec<u8> {
    let specs: Vec<SecretSpec<'_>> = SECRETS
        .iter()
        .map(|(name, data)| SecretSpec {
            name,
            kind: SecretType::Raw,
            key_modifier: None,
            data,
        })
        .collect();
    seal_specs(pubkey, product, bundle_id, &specs)
}

fn seal_specs(
    pubkey: &[u8; 64],
    product: &str,
    bundle_id: u64,
    specs: &[SecretSpec<'_>],
) -> Vec<u8> {
    let mut out = vec![0u8; bundle::sealed_len(specs).unwrap()];
    let params = SealParams {
        product,
        bundle_id,
        label: bundle::DEFAULT_LABEL,
        salt: [7; 32],
        nonce: [9; 12],
    };
    let n = bundle::seal(&mut out, &params, specs, pubkey).unwrap();
    out.truncate(n);
    out
}

impl Device {
    fn blank(fuses: FuseFile) -> Self {
        let mut img = vec![0u8; DISK_BLOCKS as usize * BLOCK];
        let parts = [
            NewPartition {
                type_guid: MFG_DATA.type_guid.0,
                unique_guid: [1; 16],
                first_lba: DATA_FIRST,
                last_lba: BUNDLE_FIRST - 1,
                name: MFG_DATA.name,
            },
            NewPartition {
                type_guid: MFG_BUNDLE.type_guid.0,
                unique_guid: [2; 16],
                first_lba: BUNDLE_FIRST,
                last_lba: BUNDLE_FIRST + BUNDLE_BLOCKS - 1,
                name: MFG_BUNDLE.name,
            },
        ];
        write_table(&mut MemDisk::new(&mut img, BLOCK), &[3; 16], &parts).unwrap();
        Self { fuses, img }
    }

    /// A blank device with a bundle sealed for its own MP key.
    fn with_bundle(fuses: FuseFile) -> Self {
        let b = seal_for(&mp_pubkey(&fuses), PRODUCT, 7);
        let mut d = Self::blank(fuses);
        d.put_bundle(&b);
        d
    }

    fn put_bundle(&mut self, b: &[u8]) {
        let at = BUNDLE_FIRST as usize * BLOCK;
        let hdr = BundlePartitionHeader::for_bundle(b).unwrap().to_block();
        self.img[at..at + BLOCK].copy_from_slice(&hdr);
        let body = at + area::BUNDLE_OFFSET as usize;
        self.img[body..body + b.len()].copy_from_slice(b);
    }

    fn data_block(&self, lba: u64) -> &[u8] {
        let at = (DATA_FIRST + lba) as usize * BLOCK;
        &self.img[at..at + BLOCK]
    }

    fn journal(&self) -> Option<JournalRecord> {
        area::select_journal(
            self.data_block(JOURNAL_LBA[0]),
            self.data_block(JOURNAL_LBA[1]),
        )
        .map(|(r, _)| r)
    }

    /// The blob table's entries, as the eMMC holds them.
    fn blob_table(&self) -> Vec<BlobEntry> {
        let mut t = Vec::new();
        for i in 0..8 {
            t.extend_from_slice(self.data_block(BLOB_TABLE_LBA + i));
        }
        BlobTable::parse(&t).expect("blob table").iter().collect()
    }

    /// The bytes of the blob `e` names.
    fn blob(&self, e: &BlobEntry) -> &[u8] {
        let at = DATA_FIRST as usize * BLOCK + e.offset as usize;
        &self.img[at..at + e.length as usize]
    }

    fn state(&self) -> ProvState {
        self.journal().map_or(ProvState::Blank, |j| j.state)
    }

    fn bundle_present(&self) -> bool {
        let at = BUNDLE_FIRST as usize * BLOCK;
        BundlePartitionHeader::parse(&self.img[at..at + BLOCK]).is_ok()
    }

    fn id_record(&self) -> Option<IdRecord> {
        let slot = self.journal()?.id_slot?;
        IdRecord::open(
            self.data_block(ID_SLOT_LBA[usize::from(slot)]),
            &RECORD_SECRET,
        )
        .ok()
    }

    /// Powers on and runs the flow as the loader does at boot.
    fn boot_with(&mut self, ready: bool, production: bool, cut_after: Option<u32>) -> Boot {
        let mut r: Rig = rig(self.fuses.clone());
        if ready {
            // As the loader does at boot, before any command exists.
            r.caam.init().unwrap();
            r.caam.mpmr_write_and_lock(&MEASUREMENT).unwrap();
        }
        let fuses = TestFuses(self.fuses.clone());
        let mut emmc = emmc(&mut self.img, cut_after);
        let mut scratch = vec![0u8; SCRATCH_LEN];
        let mut out = Out::default();
        let mut log = Log::default();
        let cfg = config(production);
        let hw = Hardware::Available {
            caam: &mut r.caam,
            fuses: &fuses,
        };
        let res = run(&mut emmc, hw, &mut out, &mut scratch, &cfg, &mut log);
        Boot {
            r: res,
            out: out.0,
            log,
            writes: emmc.writes,
            scratch_clean: scratch.iter().all(|&b| b == 0),
        }
    }

    /// Runs the flow on a CAAM the test prepared.
    fn run_on(&mut self, r: &mut Rig, production: bool) -> Result<Outcome, FlowError> {
        let fuses = TestFuses(self.fuses.clone());
        let mut emmc = emmc(&mut self.img, None);
        let cfg = config(production);
        run(
            &mut emmc,
            Hardware::Available {
                caam: &mut r.caam,
                fuses: &fuses,
            },
            &mut Out::default(),
            &mut vec![0u8; SCRATCH_LEN],
            &cfg,
            &mut (),
        )
    }

    fn boot(&mut self) -> Boot {
        self.boot_with(true, false, None)
    }

    fn verify(&mut self, production: bool) -> (Result<usize, FlowError>, String) {
        let mut r = rig(self.fuses.clone());
        r.caam.init().unwrap();
        let fuses = TestFuses(self.fuses.clone());
        let mut emmc = emmc(&mut self.img, Some(0));
        let mut scratch = vec![0u8; SCRATCH_LEN];
        let mut out = Out::default();
        let hw = Hardware::Available {
            caam: &mut r.caam,
            fuses: &fuses,
        };
        let res = verify(&mut emmc, hw, &mut out, &mut scratch, production);
        for (_, data) in SECRETS {
            assert!(!contains(&scratch, data), "verify left a secret in scratch");
        }
        (res, out.0)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every secret decapsulates from the eMMC to its original bytes, on this
/// chip, per the table the journal vouches for.
fn assert_blobs_open(d: &mut Device) {
    let j = d.journal().expect("journal");
    let mut t = Vec::new();
    for i in 0..8 {
        t.extend_from_slice(d.data_block(BLOB_TABLE_LBA + i));
    }
    assert_eq!(BlobTable::parse(&t).expect("blob table").crc(), j.table_crc);
    let table = d.blob_table();
    assert_eq!(table.len(), SECRETS.len());
    let mut r = rig(d.fuses.clone());
    r.caam.init().unwrap();
    for (e, (name, data)) in table.iter().zip(SECRETS) {
        assert_eq!(e.name(), name);
        let mut plain = vec![0u8; e.secret_len()];
        r.caam
            .blob_decap_with_modifier(e.key_modifier.as_bytes(), d.blob(e), &mut plain)
            .unwrap();
        assert_eq!(plain, data);
    }
}

/// The stored ID record is signed by this chip's MP key over
/// SHA-256(MPMR || message), with the measurement in the MPMR.
fn assert_id_record_genuine(d: &Device) -> IdRecord {
    let rec = d.id_record().expect("ID record");
    let pk = mp_pubkey(&d.fuses);
    let mut sec1 = [4u8; 65];
    sec1[1..].copy_from_slice(&pk);
    let vk = VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let mut h = Sha256::new();
    h.update(rec.mpmr);
    h.update(rec.message.to_bytes());
    let digest: [u8; 32] = h.finalize().into();
    assert_eq!(digest, rec.mes_rep);
    let sig = Signature::from_scalars(rec.c, rec.d).unwrap();
    vk.verify_prehash(&digest, &sig)
        .expect("MP signature verifies");
    assert_eq!(rec.mpmr, MEASUREMENT);
    assert_eq!(rec.message.uid, d.fuses.uid);
    assert_eq!(rec.message.bundle_id, Some(7));
    rec
}

#[test]
fn blank_device_provisions_in_four_steps() {
    let mut d = Device::with_bundle(chip(1, false));
    let b = d.boot();
    assert_eq!(b.r.unwrap(), Outcome::Provisioned);
    let lines: Vec<&str> = b
        .out
        .split_inclusive('\n')
        .map(|l| l.trim_end_matches('\n'))
        .collect();
    assert_eq!(lines[0], "provision: state blank, bundle present\r");
    assert_eq!(lines[1], "provision: [1/4] sign-ID\r");
    assert!(lines[2].starts_with("mfgprot-id: "), "{}", lines[2]);
    assert_eq!(
        &lines[3..],
        [
            "provision: [2/4] decrypt-bundle\r",
            "provision:       2 secret(s) authenticated\r",
            "provision: [3/4] blob-encapsulate\r",
            "provision:       2 blob(s) written and verified\r",
            "provision: [4/4] consume the bundle\r",
            "provision: device provisioned\r",
        ]
    );
    assert_eq!(d.state(), ProvState::Done);
    assert!(!d.bundle_present());
    let rec = assert_id_record_genuine(&d);
    assert_eq!(rec.message.security_state, SecurityState::Closed);
    assert_eq!(rec.message.boot_counter, 1);
    assert_blobs_open(&mut d);
    // The printed record is the stored one, sealed.
    let printed = identity::sealed_from_console_line(lines[2].as_bytes()).unwrap();
    let slot = d.journal().unwrap().id_slot.unwrap();
    assert_eq!(
        identity::sealed_from_block(d.data_block(ID_SLOT_LBA[usize::from(slot)])).unwrap(),
        printed
    );
    assert_eq!(IdRecord::open(&printed, &RECORD_SECRET).unwrap(), rec);
    // It binds the product and the bundle as flashed.
    assert_eq!(rec.message.product_str(), PRODUCT);
    let digest: [u8; 32] = Sha256::digest(seal_for(&mp_pubkey(&d.fuses), PRODUCT, 7)).into();
    assert_eq!(rec.message.bundle_digest, digest);
    // Journal: id-signed, secrets-blobbed, done, alternating copies.
    let states: Vec<u8> = b.log.journal.iter().map(|j| j.1).collect();
    assert_eq!(
        states,
        [
            ProvState::IdSigned,
            ProvState::SecretsBlobbed,
            ProvState::Done
        ]
        .map(|s| s.code())
    );
    let copies: Vec<usize> = b.log.journal.iter().map(|j| j.2).collect();
    assert_eq!(copies, [0, 1, 0]);
    assert_eq!(b.log.written, b.writes);
    assert!(b.log.refused.is_empty());
    assert!(b.scratch_clean, "plaintext left in scratch RAM");
    // No secret and no bundle plaintext anywhere on the eMMC.
    for (_, data) in SECRETS {
        assert!(!contains(&d.img, data), "a secret is on the eMMC in clear");
    }
    // Steps in order, each closed.
    let begun: Vec<Step> = b.log.steps.iter().filter(|s| s.1).map(|s| s.0).collect();
    assert_eq!(
        begun,
        [
            Step::Run,
            Step::Decrypt,
            Step::Sign,
            Step::Seal,
            Step::Blob,
            Step::Consume
        ]
    );
    assert_eq!(b.log.steps.iter().filter(|s| !s.1).count(), begun.len());
}

#[test]
fn provisioned_device_boots_through_and_writes_nothing() {
    let mut d = Device::with_bundle(chip(2, false));
    d.boot().r.unwrap();
    let before = d.img.clone();
    let b = d.boot();
    assert_eq!(b.r.unwrap(), Outcome::AlreadyProvisioned);
    assert_eq!(b.out, "provision: state done, bundle absent\r\n");
    assert_eq!(b.writes, 0);
    assert!(d.img == before);
}

#[test]
fn blank_device_without_bundle_does_nothing() {
    let mut d = Device::blank(chip(3, false));
    let before = d.img.clone();
    let b = d.boot();
    assert_eq!(b.r.unwrap(), Outcome::NoBundle);
    assert_eq!(b.out, "provision: state blank, bundle absent\r\n");
    assert!(d.img == before);
}

/// A refused run: the error, the journal records it with the state
/// unchanged, and nothing else is written (no ID record).
fn assert_refused(d: &mut Device, b: Boot, code: u16, msg: &str) {
    let e = b.r.expect_err("refused");
    assert_eq!(e.code(), code, "{e}");
    assert!(std::format!("{e}").contains(msg), "{e}");
    assert_eq!(b.log.refused, [code]);
    let j = d.journal().expect("the refusal is journaled");
    assert_eq!(j.state, ProvState::Blank);
    assert_eq!(j.last_error, code);
    assert!(
        j.id_slot.is_none(),
        "an ID record was made for a refused run"
    );
    assert_eq!(b.writes, 1, "only the journal entry was written");
    assert!(
        d.bundle_present(),
        "a refused bundle stays for the OEM to look at"
    );
    assert!(b.scratch_clean);
}

#[test]
fn refuses_bundle_sealed_for_another_mp_key() {
    let other = FuseFile {
        family_secret: [0x42; 32],
        ..chip(9, false)
    };
    let mut d = Device::blank(chip(4, false));
    d.put_bundle(&seal_for(&mp_pubkey(&other), PRODUCT, 7));
    let b = d.boot();
    assert_refused(&mut d, b, area::error_code::BUNDLE_AUTH, "bundle refused");
}

#[test]
fn refuses_tampered_bundle() {
    let mut d = Device::blank(chip(5, false));
    let mut b = seal_for(&mp_pubkey(&d.fuses), PRODUCT, 7);
    let last = b.len() - 20;
    b[last] ^= 1;
    d.put_bundle(&b);
    let boot = d.boot();
    let code = boot.r.as_ref().unwrap_err().code();
    assert!(
        [
            area::error_code::BUNDLE_AUTH,
            area::error_code::BUNDLE_MALFORMED
        ]
        .contains(&code),
        "{code}"
    );
    assert_refused(&mut d, boot, code, "bundle refused");
}

#[test]
fn refuses_bundle_for_another_product() {
    let mut d = Device::blank(chip(6, false));
    d.put_bundle(&seal_for(&mp_pubkey(&d.fuses), "other-product", 7));
    let b = d.boot();
    let code = b.r.as_ref().unwrap_err().code();
    assert_refused(&mut d, b, code, "product");
}

#[test]
fn production_refuses_an_open_part() {
    let mut d = Device::with_bundle(chip(7, true));
    let b = d.boot_with(true, true, None);
    assert_refused(
        &mut d,
        b,
        area::error_code::OPEN_PART,
        "open (non-closed) part",
    );
}

#[test]
fn development_build_signs_an_open_part_as_open() {
    let mut d = Device::with_bundle(chip(8, true));
    d.boot().r.unwrap();
    let rec = d.id_record().unwrap();
    assert_eq!(rec.message.security_state, SecurityState::Open);
}

#[test]
fn refuses_without_an_instantiated_rng() {
    let mut d = Device::with_bundle(chip(10, false));
    let b = d.boot_with(false, false, None);
    assert_refused(&mut d, b, area::error_code::CAAM, "CAAM");
}

#[test]
fn refuses_without_security_hardware() {
    let mut d = Device::with_bundle(chip(11, false));
    let mut emmc = emmc(&mut d.img, None);
    let mut out = Out::default();
    let mut log = Log::default();
    let mut scratch = vec![0u8; SCRATCH_LEN];
    let cfg = config(false);
    let r = run(
        &mut emmc,
        Hardware::Unavailable("no fuse file loaded"),
        &mut out,
        &mut scratch,
        &cfg,
        &mut log,
    );
    let writes = emmc.writes;
    let e = r.unwrap_err();
    assert_eq!(
        std::format!("{e}"),
        "security hardware unavailable: no fuse file loaded"
    );
    assert_eq!(e.code(), area::error_code::FUSE_READ);
    assert_eq!(writes, 1);
    assert_eq!(d.journal().unwrap().last_error, area::error_code::FUSE_READ);
}

#[test]
fn refuses_a_disk_without_the_partitions() {
    let mut img = vec![0u8; DISK_BLOCKS as usize * BLOCK];
    let mut emmc = emmc(&mut img, None);
    let mut r = rig(chip(12, false));
    r.caam.init().unwrap();
    let fuses = TestFuses(chip(12, false));
    let cfg = config(false);
    let e = run(
        &mut emmc,
        Hardware::Available {
            caam: &mut r.caam,
            fuses: &fuses,
        },
        &mut Out::default(),
        &mut vec![0u8; SCRATCH_LEN],
        &cfg,
        &mut (),
    )
    .unwrap_err();
    assert!(matches!(e, FlowError::Gpt(_)), "{e}");
    assert!(!e.journal_worthy());
    assert_eq!(emmc.writes, 0);
}

#[test]
fn the_mpmr_locked_at_boot_is_what_the_record_carries() {
    // Locked by the loader (or an earlier stage) before the flow: the flow
    // signs with it as it is and never writes it.
    let mut d = Device::with_bundle(chip(13, false));
    let mut r = rig(d.fuses.clone());
    r.caam.init().unwrap();
    r.caam.mpmr_write_and_lock(&[0x11; 32]).unwrap();
    let res = d.run_on(&mut r, false);
    assert_eq!(res.unwrap(), Outcome::Provisioned);
    assert_eq!(d.id_record().unwrap().mpmr, [0x11; 32]);
}

#[test]
fn refuses_to_sign_with_an_unlocked_mpmr() {
    // Whoever could still write the MPMR could make the record claim any
    // loader: the flow refuses, and no identity is made.
    let mut d = Device::with_bundle(chip(14, false));
    let mut r = rig(d.fuses.clone());
    r.caam.init().unwrap();
    let e = d.run_on(&mut r, false).unwrap_err();
    assert!(matches!(e, FlowError::MpmrNotLocked), "{e}");
    assert_eq!(d.journal().unwrap().last_error, area::error_code::CAAM);
    assert!(d.id_record().is_none());
    assert!(
        !r.caam.info().mpmr_locked,
        "the flow locked the MPMR itself"
    );
}

/// Everything the device emits: its console output and its whole eMMC.
/// Neither holds the MP signature (r, s), its message representative or
/// the MP public key, in clear or as base64: nothing from which the MP
/// public key, and with it the bundle key, could be recovered.
#[test]
fn no_mp_signature_leaves_the_device_in_clear() {
    let mut d = Device::with_bundle(chip(15, false));
    let b = d.boot();
    b.r.unwrap();
    let rec = assert_id_record_genuine(&d);
    let pk = mp_pubkey(&d.fuses);
    let mut emitted = d.img.clone();
    emitted.extend_from_slice(b.out.as_bytes());
    for line in b.out.split("\r\n") {
        if let Some(t) = line.strip_prefix(identity::CONSOLE_PREFIX) {
            let mut raw = vec![0u8; t.len()];
            let n = mfg_formats::base64::decode(t.as_bytes(), &mut raw).unwrap();
            emitted.extend_from_slice(&raw[..n]);
        }
    }
    for (what, needle) in [
        ("signature r", &rec.c[..]),
        ("signature s", &rec.d[..]),
        ("message representative", &rec.mes_rep[..]),
        ("MP public key x", &pk[..32]),
        ("MP public key y", &pk[32..]),
    ] {
        assert!(!contains(&emitted, needle), "{what} emitted in clear");
    }
    // The identity message itself is not readable either.
    assert!(!contains(&emitted, &rec.message.to_bytes()[..40]));
}

#[test]
fn power_cut_after_every_write_resumes_to_exactly_one_provisioning() {
    let total = Device::with_bundle(chip(20, false)).boot().writes;
    // ID record, journal, 2 blobs, table, journal, bundle header, bundle
    // body, journal.
    assert!(total >= 9, "only {total} writes in a 2-secret flow");
    for k in 0..total {
        let mut d = Device::with_bundle(chip(20, false));
        let cut = d.boot_with(true, false, Some(k));
        assert_eq!(cut.writes, k);
        let state = d.state();
        // The bundle is never gone before the blobs are durable.
        if !d.bundle_present() {
            assert!(
                matches!(state, ProvState::SecretsBlobbed | ProvState::Done),
                "k={k}: bundle erased in state {}",
                state.as_str()
            );
        }
        let id_after_cut = d.id_record();
        // The next boots, with power, finish the job.
        let next = d.boot();
        match state {
            ProvState::Done => assert_eq!(next.r.unwrap(), Outcome::AlreadyProvisioned),
            _ => assert_eq!(
                next.r.unwrap(),
                Outcome::Provisioned,
                "k={k}:\n{}",
                next.out
            ),
        }
        assert_eq!(d.state(), ProvState::Done, "k={k}");
        assert!(!d.bundle_present(), "k={k}");
        assert_blobs_open(&mut d);
        let rec = assert_id_record_genuine(&d);
        // One identity: a record that survived the cut is the final one.
        if let Some(r) = id_after_cut {
            assert_eq!(r, rec, "k={k}: a second identity");
        }
        let printed = [&cut.out, &next.out]
            .iter()
            .map(|o| o.matches("mfgprot-id: ").count())
            .sum::<usize>();
        assert!(printed <= 2, "k={k}: {printed} ID lines");
        assert_eq!(d.boot().r.unwrap(), Outcome::AlreadyProvisioned);
    }
}

#[test]
fn status_and_verify_report_without_secrets() {
    let mut d = Device::with_bundle(chip(30, false));
    d.boot().r.unwrap();
    let mut out = Out::default();
    let mut emmc = emmc(&mut d.img, Some(0));
    status(&mut emmc, &mut out).unwrap();
    let s = out.0;
    assert!(s.starts_with("state        : done\r\n"), "{s}");
    assert!(
        s.contains("journal      : sequence 3, copy 0, boot counter 1\r\n"),
        "{s}"
    );
    assert!(s.contains("last error   : none\r\n"), "{s}");
    assert!(
        s.contains("ID record    : slot 0, sealed for the OEM, bundle 7, boot counter 1\r\n"),
        "{s}"
    );
    assert!(s.contains("blob table   : 2 blob(s), crc 0x"), "{s}");
    assert!(s.contains("wifi-psk"), "{s}");
    assert!(s.ends_with("bundle       : absent\r\n"), "{s}");
    let (r, v) = d.verify(true);
    assert_eq!(r.unwrap(), 0);
    assert_eq!(v.matches("  ok\r\n").count(), 2, "{v}");
    assert!(
        v.ends_with("provision verify: 2 of 2 blob(s) ok\r\n"),
        "{v}"
    );
    let (_, dev) = d.verify(false);
    assert_eq!(dev.matches("ok (secret crc32 0x").count(), 2, "{dev}");
    for (_, data) in SECRETS {
        assert!(!contains(s.as_bytes(), data) && !contains(v.as_bytes(), data));
    }
}

#[test]
fn verify_finds_a_corrupted_blob() {
    let mut d = Device::with_bundle(chip(31, false));
    d.boot().r.unwrap();
    let off = d.blob_table()[0].offset;
    d.img[DATA_FIRST as usize * BLOCK + off as usize + 3] ^= 0x80;
    let (r, v) = d.verify(true);
    assert_eq!(r.unwrap(), 1);
    assert!(
        v.contains("FAILED: blob CRC mismatch (corrupted on eMMC)"),
        "{v}"
    );
    assert!(
        v.ends_with("provision verify: 1 of 2 blob(s) ok\r\n"),
        "{v}"
    );
}

#[test]
fn summary_tells_linux_where_the_blobs_are() {
    let mut d = Device::with_bundle(chip(32, false));
    d.boot().r.unwrap();
    let mut emmc = emmc(&mut d.img, Some(0));
    let s = summary(&mut emmc, [0x32; 16]).unwrap();
    assert_eq!(
        s,
        Summary {
            state: ProvState::Done,
            partition_index: 1,
            table_offset: BLOB_TABLE_LBA * BLOCK as u64,
            blob_count: 2,
            uid: [0x32; 16],
        }
    );
}

#[test]
fn scrub_zeroes_exactly_its_range() {
    let mut b = [0xa5u8; 100];
    scrub(&mut b[10..90]);
    assert!(b[10..90].iter().all(|&x| x == 0));
    assert_eq!((b[9], b[90]), (0xa5, 0xa5));
}

/// Rewrites the GPT's CRCs (both copies) after an edit of the entries.
fn fix_gpt_crcs(img: &mut [u8]) {
    let total = img.len() / BLOCK;
    for (hdr_lba, arr_lba) in [(1, 2), (total - 1, total - 1 - 32)] {
        let arr = arr_lba * BLOCK;
        let ecrc = mfg_formats::crc32(&img[arr..arr + 128 * 128]);
        let h = hdr_lba * BLOCK;
        img[h + 88..h + 92].copy_from_slice(&ecrc.to_le_bytes());
        img[h + 16..h + 20].fill(0);
        let hcrc = mfg_formats::crc32(&img[h..h + 92]);
        img[h + 16..h + 20].copy_from_slice(&hcrc.to_le_bytes());
    }
}

#[test]
fn refuses_a_bundle_partition_overlapping_the_data_partition() {
    let mut d = Device::with_bundle(chip(40, false));
    // Entry 2 (mfg-bundle) now starts inside mfg-data, in both copies: a
    // consume would erase verified blobs.
    let total = d.img.len() / BLOCK;
    for arr_lba in [2, total - 1 - 32] {
        let e = arr_lba * BLOCK + 128 + 32;
        d.img[e..e + 8].copy_from_slice(&(BUNDLE_FIRST - 100).to_le_bytes());
    }
    fix_gpt_crcs(&mut d.img);
    let before = d.img.clone();
    let b = d.boot();
    let e = b.r.unwrap_err();
    assert_eq!(
        std::format!("{e}"),
        "'mfg-bundle' overlaps 'mfg-data' in the GPT"
    );
    assert_eq!(b.writes, 0);
    assert!(d.img == before, "nothing written");
}

/// A device whose power went right after the journal said secrets-blobbed.
fn cut_after_blobbing() -> Device {
    cut_after_blobbing_of(|| Device::with_bundle(chip(41, false)))
}

/// The device `make` builds, its power gone right after the journal said
/// secrets-blobbed.
fn cut_after_blobbing_of(make: impl Fn() -> Device) -> Device {
    let total = make().boot().writes;
    for k in 1..total {
        let mut d = make();
        d.boot_with(true, false, Some(k));
        if d.state() == ProvState::SecretsBlobbed && d.bundle_present() {
            return d;
        }
    }
    panic!("no cut point leaves secrets-blobbed with the bundle present");
}

fn first_blob_at(d: &Device) -> usize {
    DATA_FIRST as usize * BLOCK + d.blob_table()[0].offset as usize
}

#[test]
fn resume_over_damaged_blobs_redoes_them_from_the_bundle() {
    let mut d = cut_after_blobbing();
    let at = first_blob_at(&d);
    d.img[at + 5] ^= 0x01;
    let b = d.boot();
    assert_eq!(b.r.unwrap(), Outcome::Provisioned, "{}", b.out);
    assert!(
        b.out.contains(
            "do not match the journal (a blob's CRC differs from the table's); blobbing again"
        ),
        "{}",
        b.out
    );
    assert!(!b.out.contains("sign-ID"), "a second identity: {}", b.out);
    assert_eq!(d.state(), ProvState::Done);
    assert_blobs_open(&mut d);
    assert_id_record_genuine(&d);
    assert!(b.scratch_clean);
}

#[test]
fn resume_over_damaged_blobs_without_the_bundle_is_refused_not_finalised() {
    let mut d = cut_after_blobbing();
    let at = first_blob_at(&d);
    d.img[at + 5] ^= 0x01;
    let hdr = BUNDLE_FIRST as usize * BLOCK;
    d.img[hdr..hdr + BLOCK].fill(0);
    let b = d.boot();
    let e = b.r.unwrap_err();
    assert!(matches!(e, FlowError::BlobsInvalid(_)), "{e}");
    assert_eq!(e.code(), area::error_code::BLOB_VERIFY);
    let j = d.journal().unwrap();
    assert_eq!(
        j.state,
        ProvState::SecretsBlobbed,
        "finalised over damaged blobs"
    );
    assert_eq!(j.last_error, area::error_code::BLOB_VERIFY);
}

#[test]
fn resume_over_intact_blobs_only_consumes() {
    let mut d = cut_after_blobbing();
    let b = d.boot();
    assert_eq!(b.r.unwrap(), Outcome::Provisioned);
    assert!(!b.out.contains("blobbing again"), "{}", b.out);
    assert!(!b.out.contains("[3/4]"), "{}", b.out);
    assert!(b.out.contains("[4/4] consume the bundle"), "{}", b.out);
    assert!(b.scratch_clean);
}

#[test]
fn refuses_a_bundle_changed_on_the_emmc() {
    // A byte flipped in the partition: its header's CRC catches it before
    // any key is derived.
    let mut d = Device::with_bundle(chip(16, false));
    let at = BUNDLE_FIRST as usize * BLOCK + area::BUNDLE_OFFSET as usize + 200;
    d.img[at] ^= 0x01;
    let b = d.boot();
    assert_refused(
        &mut d,
        b,
        area::error_code::BUNDLE_MALFORMED,
        "bundle refused",
    );
}

#[test]
fn refuses_an_unsupported_bundle_version() {
    let mut d = Device::blank(chip(17, false));
    let mut b = seal_for(&mp_pubkey(&d.fuses), PRODUCT, 7);
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    d.put_bundle(&b);
    let boot = d.boot();
    assert_refused(
        &mut d,
        boot,
        area::error_code::UNSUPPORTED_VERSION,
        "bundle refused",
    );
}

#[test]
fn a_refused_device_provisions_once_given_a_good_bundle() {
    let mut d = Device::blank(chip(18, false));
    d.put_bundle(&seal_for(&mp_pubkey(&d.fuses), "other-product", 7));
    let b = d.boot();
    assert_eq!(b.r.unwrap_err().code(), area::error_code::WRONG_PRODUCT);
    d.put_bundle(&seal_for(&mp_pubkey(&d.fuses), PRODUCT, 7));
    assert_eq!(d.boot().r.unwrap(), Outcome::Provisioned);
    let j = d.journal().unwrap();
    assert_eq!((j.state, j.last_error), (ProvState::Done, 0));
    assert_blobs_open(&mut d);
}

#[test]
fn a_caam_owned_by_op_tee_is_refused_with_the_reason() {
    // Page 0 reads as zero (the secure world owns the CAAM): init fails,
    // and the flow says why instead of "RNG not instantiated".
    let mut f = chip(19, false);
    f.options.page0 = imx_emu::fusefile::Page0::ReadsZero;
    let mut d = Device::with_bundle(chip(19, false));
    d.fuses = f.clone();
    let mut r = rig(f);
    assert!(r.caam.init().is_err());
    let e = d.run_on(&mut r, false).unwrap_err();
    let msg = std::format!("{e}");
    assert!(msg.contains("is OP-TEE in the boot image?"), "{msg}");
    assert_eq!(d.journal().unwrap().last_error, area::error_code::CAAM);
    assert!(d.id_record().is_none());
}

/// A Linux trusted key's payload (docs/formats.md 3.3): 32 bytes, the
/// smallest trusted key (`MIN_KEY_SIZE`).
const DISK_KEY: [u8; 32] = [
    0x9c, 0x41, 0x07, 0xe2, 0x5d, 0x88, 0x13, 0xfa, 0x26, 0xb0, 0x7e, 0x39, 0xc4, 0x02, 0x6b, 0xd5,
    0x71, 0x1e, 0xa8, 0x4f, 0x93, 0x3c, 0xe7, 0x50, 0x0a, 0xbd, 0x64, 0x17, 0xf2, 0x85, 0x2b, 0xce,
];

/// A blank device whose bundle holds `wifi-psk` (derived key modifier) and
/// `disk-key`, a Linux trusted key (key modifier `SECURE_KEY`).
fn with_trusted_key(fuses: FuseFile) -> Device {
    let specs = [
        SecretSpec {
            name: SECRETS[0].0,
            kind: SecretType::Raw,
            key_modifier: None,
            data: SECRETS[0].1,
        },
        SecretSpec {
            name: "disk-key",
            kind: SecretType::Raw,
            key_modifier: Some(KeyModifier::LINUX_TRUSTED),
            data: &DISK_KEY,
        },
    ];
    let b = seal_specs(&mp_pubkey(&fuses), PRODUCT, 7, &specs);
    let mut d = Device::blank(fuses);
    d.put_bundle(&b);
    d
}

#[test]
fn a_linux_trusted_key_blob_opens_with_secure_key_and_nothing_else() {
    let mut d = with_trusted_key(chip(50, false));
    let b = d.boot();
    assert_eq!(b.r.unwrap(), Outcome::Provisioned, "{}", b.out);
    assert!(
        b.out.contains("2 blob(s) written and verified"),
        "{}",
        b.out
    );
    assert!(
        !contains(&d.img, &DISK_KEY),
        "the key is on the eMMC in clear"
    );
    let table = d.blob_table();
    let e = table[1];
    assert_eq!(e.name(), "disk-key");
    assert_eq!(e.key_modifier.as_bytes(), b"SECURE_KEY");
    assert!(e.key_modifier_given);
    assert_eq!(e.length as usize, DISK_KEY.len() + 48);
    let blob = d.blob(&e).to_vec();

    let mut r = rig(d.fuses.clone());
    r.caam.init().unwrap();
    // The 10 bytes open it, with the driver's descriptor and with Linux's
    // (blob_gen.c: the modifier as immediate KEY data).
    let mut plain = [0u8; 32];
    assert_eq!(
        r.caam
            .blob_decap_with_modifier(b"SECURE_KEY", &blob, &mut plain),
        Ok(32)
    );
    assert_eq!(plain, DISK_KEY);
    assert_eq!(r.decap_as_linux(b"SECURE_KEY", &blob).unwrap(), DISK_KEY);
    // Nothing else does: not the zero padding to 16 bytes (as a 16-byte
    // modifier), not a prefix or an extension, not other spellings, not
    // the modifier derived from the name, not the other secret's.
    let derived = KeyModifier::derived(b"disk-key");
    let others: [&[u8]; 7] = [
        b"SECURE_KEY\0\0\0\0\0\0",
        b"SECURE_KE",
        b"SECURE_KEY\0",
        b"secure_key",
        b"kernel:trusted",
        derived.as_bytes(),
        table[0].key_modifier.as_bytes(),
    ];
    for km in others {
        plain = [0xaa; 32];
        assert_eq!(
            r.caam.blob_decap_with_modifier(km, &blob, &mut plain),
            Err(caam::CaamError::BlobMacMismatch),
            "opened with {km:02x?}"
        );
        assert_eq!(plain, [0; 32], "output not zeroed after {km:02x?}");
        assert_eq!(
            r.decap_as_linux(km, &blob),
            Err(caam::CaamError::BlobMacMismatch),
            "Linux's descriptor opened it with {km:02x?}"
        );
    }
    // Another chip's CAAM does not open it with SECURE_KEY either.
    let mut other = rig(chip(51, false));
    other.caam.init().unwrap();
    assert_eq!(
        other.decap_as_linux(b"SECURE_KEY", &blob),
        Err(caam::CaamError::BlobMacMismatch)
    );

    // `provision verify` re-checks it with its own modifier.
    let (res, v) = d.verify(false);
    assert_eq!(res.unwrap(), 0, "{v}");
    assert!(
        v.ends_with("provision verify: 2 of 2 blob(s) ok\r\n"),
        "{v}"
    );
    assert!(
        v.contains(&std::format!(
            "disk-key                         ok (secret crc32 0x{:08x})",
            mfg_formats::crc32(&DISK_KEY)
        )),
        "{v}"
    );
}

#[test]
fn a_resumed_run_rechecks_a_linux_trusted_key_blob_with_its_modifier() {
    // Power lost right after secrets-blobbed: the next boot decapsulates
    // every blob before it consumes the bundle; with the 16-byte padding
    // instead of SECURE_KEY it would find the blob broken and blob again.
    let mut d = cut_after_blobbing_of(|| with_trusted_key(chip(52, false)));
    let table = d.blob_table();
    let b = d.boot();
    assert_eq!(b.r.unwrap(), Outcome::Provisioned, "{}", b.out);
    assert!(!b.out.contains("blobbing again"), "{}", b.out);
    assert!(!b.out.contains("[3/4]"), "{}", b.out);
    assert_eq!(d.blob_table(), table, "blobs rewritten");
    assert_eq!(d.state(), ProvState::Done);
}
