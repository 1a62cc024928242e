//! The provisioning flow: sign-ID, decrypt-bundle, blob-encapsulate, consume.
//!
//! Data path: console (`provision`) or boot -> this module -> drivers
//! (`caam`, `usdhc`, `ocotp`) -> hardware or the emulated CAAM. Formats come
//! from `mfg-formats`: the journal is the only source of truth, kept as two
//! alternating copies in `mfg-data`. Every step writes its new data first,
//! reads it back, and only then writes the next journal record, so a power
//! cut at any instant leaves the previous or the next state:
//!
//! | journal | durable on eMMC | next boot does |
//! |---|---|---|
//! | blank | nothing | sign-ID, then the rest |
//! | id-signed | ID record | decrypt, blob, consume |
//! | secrets-blobbed | ID record, verified blobs and table | consume the bundle |
//! | done | all of it, bundle erased | nothing (boots straight through) |
//!
//! The bundle is authenticated and decrypted before sign-ID, so a refused
//! bundle leaves nothing on the eMMC but the journal entry of the refusal.
//! The bundle is erased only in the last step, after the blobs were read
//! back from the eMMC and decapsulated to the original secrets.

mod disk;
mod error;

pub use disk::{Disk, Layout};
pub use error::FlowError;

use crate::arch::{cycles, exception, layout};
use crate::machine::{Machine, RamRange, outln};
use crate::scrub::scrub;
use core::fmt::Write;
use mfg_formats::area::{
    self, BLOB_TABLE_LBA, BLOCK, BlobEntry, BlobPlanner, BlobTable, BundlePartitionHeader,
    ID_SLOT_LBA, JOURNAL_LBA, JournalRecord, ProvState, TABLE_MAX_LEN,
};
use mfg_formats::bundle::{self, MAX_BUNDLE_LEN, MAX_SECRET_LEN, MAX_SECRETS};
use mfg_formats::identity::{self, IdRecord, IdentityMessage, SecurityState};
use sha2::{Digest, Sha256};

/// The product this loader provisions; bundles for another are refused.
pub const PRODUCT: &str = match option_env!("MFG_PRODUCT") {
    Some(p) => p,
    None => "imx8mp-demo",
};

/// DRAM the flow uses for the bundle and blob buffers (outside the loader
/// image, below where QEMU puts a DTB), zeroized after every run.
const SCRATCH: u64 = board::soc::DRAM_BASE + 0x0100_0000;
const SCRATCH_LEN: u64 = 0x0080_0000;
/// Offsets inside the scratch area.
const BUNDLE_AT: usize = 0;
const BLOB_AT: usize = 0x0050_0000;
const BACK_AT: usize = 0x0060_0000;
const BLOB_BUF: usize = (MAX_SECRET_LEN + area::BLOB_OVERHEAD).next_multiple_of(BLOCK);

/// How a run ended (errors aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Already provisioned: nothing done, nothing written.
    AlreadyProvisioned,
    /// Blank device and no bundle: nothing to do.
    NoBundle,
    /// The flow ran (or resumed) and the device is now provisioned.
    Provisioned,
}

/// Per-run counters for the bench: cycles of each step, of eMMC I/O and of
/// the emulated CAAM (QEMU) inside them.
#[derive(Default, Clone, Copy)]
struct Meter {
    sign: u64,
    decrypt: u64,
    blob: u64,
    consume: u64,
    /// Emulated-CAAM cycles inside sign, decrypt and blob.
    sign_emu: u64,
    decrypt_emu: u64,
    blob_emu: u64,
    /// Cycles of the loader measurement (SHA-256 of the image) in sign.
    measure: u64,
    /// Scratch bytes that held the bundle, and the largest blob.
    bundle_bytes: usize,
    blob_bytes: usize,
}

/// The current journal record and which copy holds it.
pub struct Journal {
    /// The record (blank when neither copy is valid).
    pub rec: JournalRecord,
    /// The copy holding it.
    pub copy: Option<usize>,
}

/// Reads the journal.
pub fn read_journal(d: &mut Disk<'_>, l: &Layout) -> Result<Journal, FlowError> {
    let mut c0 = [0u8; BLOCK];
    let mut c1 = [0u8; BLOCK];
    d.read(l.data, JOURNAL_LBA[0], &mut c0)?;
    d.read(l.data, JOURNAL_LBA[1], &mut c1)?;
    Ok(match area::select_journal(&c0, &c1) {
        Some((rec, copy)) => Journal {
            rec,
            copy: Some(copy),
        },
        None => Journal {
            rec: JournalRecord::BLANK,
            copy: None,
        },
    })
}

/// Writes `next` into the copy that does not hold the current record, reads
/// it back, and makes it current.
fn write_journal(
    d: &mut Disk<'_>,
    l: &Layout,
    j: &mut Journal,
    next: JournalRecord,
) -> Result<(), FlowError> {
    let copy = area::next_journal_copy(j.copy);
    d.write_verified(l.data, JOURNAL_LBA[copy], &next.to_block(), "journal")?;
    j.rec = next;
    j.copy = Some(copy);
    defmt::info!(
        "flow: journal seq {=u64} state {=u8} -> copy {=usize}",
        next.sequence,
        next.state.code(),
        copy
    );
    Ok(())
}

/// The bundle partition's header, or `None` when the partition holds no
/// bundle (erased or never written).
pub fn bundle_header(
    d: &mut Disk<'_>,
    l: &Layout,
) -> Result<Option<BundlePartitionHeader>, FlowError> {
    let mut b = [0u8; BLOCK];
    d.read(l.bundle, 0, &mut b)?;
    Ok(BundlePartitionHeader::parse(&b).ok())
}

/// The scratch DRAM area.
fn scratch(m: &Machine) -> Result<&'static mut [u8], FlowError> {
    let r: RamRange = m
        .ram(SCRATCH, SCRATCH_LEN)
        .map_err(|_| FlowError::Partition("no scratch RAM"))?;
    // SAFETY: a checked RAM range outside the loader, used only by the flow,
    // one run at a time; nothing else refers to it.
    Ok(unsafe { r.slice_mut() })
}

/// SHA-256 of the running loader's code and read-only data: written into
/// the MPMR, so every signature attests which loader produced it.
pub fn measurement() -> [u8; 32] {
    let start = layout::image_start();
    let len = (layout::rodata_end() - start) as usize;
    // SAFETY: .text and .rodata are mapped read-only and never written.
    let image = unsafe { core::slice::from_raw_parts(start as *const u8, len) };
    Sha256::digest(image).into()
}

/// Runs (or resumes) the flow. Prints progress; on a refusal, records it in
/// the journal (state unchanged) and returns the error.
pub fn run(
    m: &mut Machine,
    writes: &mut u32,
    cut_after: Option<u32>,
) -> Result<Outcome, FlowError> {
    let start = cycles();
    let emu0 = exception::emulation_cycles();
    let retries0 = m.mmc.retries();
    let l = Layout::find(&mut m.mmc)?;
    let mut d = Disk {
        m,
        writes,
        cut_after,
        io_cycles: 0,
    };
    let mut j = read_journal(&mut d, &l)?;
    let hdr = bundle_header(&mut d, &l)?;
    outln!(
        d.m,
        "provision: state {}, bundle {}",
        j.rec.state.as_str(),
        if hdr.is_some() { "present" } else { "absent" }
    );
    if j.rec.state == ProvState::Done {
        return Ok(Outcome::AlreadyProvisioned);
    }
    if j.rec.state == ProvState::Blank && hdr.is_none() {
        return Ok(Outcome::NoBundle);
    }
    let mut meter = Meter::default();
    let r = steps(&mut d, &l, &mut j, hdr, &mut meter);
    // Scrub what the run used of the scratch RAM (plaintext bundle, blobs).
    let scrubbed = scratch(d.m).map(|s| {
        scrub(&mut s[..meter.bundle_bytes]);
        scrub(&mut s[BLOB_AT..BLOB_AT + meter.blob_bytes]);
        scrub(&mut s[BACK_AT..BACK_AT + meter.blob_bytes]);
    });
    if let Err(e) = &r {
        defmt::error!("flow: refused, code {=u16}", e.code());
        if e.journal_worthy() {
            let mut next = j.rec.successor();
            next.last_error = e.code();
            if let Err(je) = write_journal(&mut d, &l, &mut j, next) {
                outln!(
                    d.m,
                    "provision: could not record the refusal in the journal: {je}"
                );
            }
        }
    }
    defmt::info!(
        "bench flow sign={=u64} decrypt={=u64} blob={=u64} consume={=u64} emmc={=u64} emu={=u64} total={=u64}",
        meter.sign,
        meter.decrypt,
        meter.blob,
        meter.consume,
        d.io_cycles,
        exception::emulation_cycles() - emu0,
        cycles() - start
    );
    defmt::info!(
        "bench flowemu sign={=u64} decrypt={=u64} blob={=u64} measure={=u64}",
        meter.sign_emu,
        meter.decrypt_emu,
        meter.blob_emu,
        meter.measure
    );
    let retried = d.m.mmc.retries() - retries0;
    if retried > 0 {
        // A flaky card is worth a look, also when the retry succeeded.
        outln!(
            d.m,
            "provision: eMMC: {retried} transfer(s) retried after an error"
        );
    }
    scrubbed?;
    r
}

fn steps(
    d: &mut Disk<'_>,
    l: &Layout,
    j: &mut Journal,
    hdr: Option<BundlePartitionHeader>,
    meter: &mut Meter,
) -> Result<Outcome, FlowError> {
    if let Some(e) = board_error() {
        return Err(FlowError::NoSecurityHw(e));
    }
    // Any build: a CAAM in fail state has lost its keys (facts: MOO = 3),
    // and without an instantiated RNG its blobs would have no fresh keys
    // (the CAAM init failure is on the console already; record it).
    if let Some(info) = d.m.caam.as_ref().map(|c| c.info()) {
        if info.security == caam::SecurityState::Fail {
            return Err(FlowError::SecurityFail);
        }
        if !info.rng_sh0 {
            return Err(FlowError::Caam(caam::CaamError::RngNotInstantiated));
        }
    }
    if cfg!(feature = "production") && !closed(d.m)? {
        return Err(FlowError::OpenPart);
    }
    if matches!(j.rec.state, ProvState::Blank | ProvState::IdSigned) {
        let hdr = hdr.ok_or(FlowError::Partition(
            "the bundle is gone but the blobs were never written",
        ))?;
        // Authenticate and decrypt first: a refused bundle (another OEM's
        // key, tampered, another product) then leaves nothing on the eMMC
        // but the journal entry of the refusal, not a fresh ID record.
        let (bundle_area, blob_area) = scratch(d.m)?.split_at_mut(BLOB_AT);
        let (t, e) = (cycles(), exception::emulation_cycles());
        let view = decrypt(d, l, &hdr, bundle_area, meter)?;
        let decrypt_cycles = cycles() - t;
        meter.decrypt_emu = exception::emulation_cycles() - e;
        if j.rec.state == ProvState::Blank {
            let (t, e) = (cycles(), exception::emulation_cycles());
            outln!(d.m, "provision: [1/4] sign-ID");
            let rec = sign_id(d, l, j, view.header().bundle_id, meter)?;
            print_id_line(d.m, &rec);
            meter.sign = cycles() - t;
            meter.sign_emu = exception::emulation_cycles() - e;
        }
        outln!(d.m, "provision: [2/4] decrypt-bundle");
        outln!(
            d.m,
            "provision:       {} secret(s) authenticated",
            view.len()
        );
        meter.decrypt = decrypt_cycles;
        blob(d, l, j, &view, blob_area, meter)?;
    }
    if j.rec.state == ProvState::SecretsBlobbed {
        let t = cycles();
        outln!(d.m, "provision: [4/4] consume the bundle");
        consume(d, l, hdr)?;
        let mut next = j.rec.successor();
        next.state = ProvState::Done;
        write_journal(d, l, j, next)?;
        meter.consume = cycles() - t;
    }
    outln!(d.m, "provision: device provisioned");
    Ok(Outcome::Provisioned)
}

fn board_error() -> Option<&'static str> {
    use board::{Current, Platform};
    Current::security_hw_error()
}

/// Closed per both the fuses and the CAAM's mode of operation.
fn closed(m: &mut Machine) -> Result<bool, FlowError> {
    let fuse_closed = m.ocotp.as_ref().ok_or(FlowError::Fuses)?.is_closed();
    let caam = m.caam.as_ref().ok_or(FlowError::NoSecurityHw("no CAAM"))?;
    let moo = caam.info().security;
    Ok(fuse_closed
        && matches!(
            moo,
            caam::SecurityState::Secure | caam::SecurityState::Trusted
        ))
}

/// Step 1: the identity message, signed by the CAAM's MP key, stored in the
/// free ID slot, then the journal.
fn sign_id(
    d: &mut Disk<'_>,
    l: &Layout,
    j: &mut Journal,
    bundle_id: u64,
    meter: &mut Meter,
) -> Result<IdRecord, FlowError> {
    let ocotp = d.m.ocotp.as_ref().ok_or(FlowError::Fuses)?;
    let (uid, srk_hash) = (ocotp.unique_id(), ocotp.srk_hash());
    let security_state = match d.m.caam.as_ref().map(|c| c.info().security) {
        Some(caam::SecurityState::Secure | caam::SecurityState::Trusted) if ocotp.is_closed() => {
            SecurityState::Closed
        }
        Some(caam::SecurityState::Fail) => SecurityState::Fail,
        _ => SecurityState::Open,
    };
    let mut message = IdentityMessage {
        soc: identity::SOC_IMX8MP,
        uid,
        srk_hash,
        security_state,
        boot_counter: j.rec.boot_counter.wrapping_add(1),
        loader_version: [0; identity::LOADER_VERSION_LEN],
        bundle_id: Some(bundle_id),
        station_nonce: None,
    };
    message.set_loader_version(crate::VERSION);
    let caam =
        d.m.caam
            .as_mut()
            .ok_or(FlowError::NoSecurityHw("no CAAM"))?;
    let mpmr = if caam.info().mpmr_locked {
        caam.mpmr_read()
    } else {
        let t = cycles();
        let v = measurement();
        meter.measure = cycles() - t;
        caam.mpmr_write_and_lock(&v)?;
        v
    };
    let sig = caam.mp_sign(&message.to_bytes())?;
    let rec = IdRecord {
        message,
        mpmr,
        mes_rep: sig.mes_rep,
        c: sig.c,
        d: sig.d,
    };
    let slot = match j.rec.id_slot {
        Some(0) => 1,
        _ => 0,
    };
    d.write_verified(
        l.data,
        ID_SLOT_LBA[usize::from(slot)],
        &rec.to_block(),
        "ID record",
    )?;
    let mut next = j.rec.successor();
    next.state = ProvState::IdSigned;
    next.id_slot = Some(slot);
    next.bundle_id = Some(bundle_id);
    next.boot_counter = rec.message.boot_counter;
    write_journal(d, l, j, next)?;
    Ok(rec)
}

/// The ID record as one console line, for a station on the serial line.
fn print_id_line(m: &mut Machine, rec: &IdRecord) {
    let mut line = [0u8; identity::CONSOLE_LINE_LEN];
    if let Ok(n) = rec.console_line(&mut line) {
        m.console.write_bytes(&line[..n]);
        outln!(m);
    }
}

/// Step 2: reads the bundle into scratch RAM, authenticates and decrypts it
/// in place (the view zeroizes the plaintext when dropped).
fn decrypt<'a>(
    d: &mut Disk<'_>,
    l: &Layout,
    hdr: &BundlePartitionHeader,
    bundle_area: &'a mut [u8],
    meter: &mut Meter,
) -> Result<bundle::BundleView<'a>, FlowError> {
    let len = hdr.bundle_len as usize;
    if len > MAX_BUNDLE_LEN || len == 0 {
        return Err(FlowError::Bundle(mfg_formats::FormatError::BadLength {
            what: "bundle",
        }));
    }
    let padded = len.next_multiple_of(BLOCK);
    meter.bundle_bytes = padded;
    let bundle_buf = &mut bundle_area[BUNDLE_AT..BUNDLE_AT + padded];
    d.read(l.bundle, area::BUNDLE_OFFSET / BLOCK as u64, bundle_buf)?;
    let sealed = &mut bundle_buf[..len];
    hdr.check(sealed).map_err(FlowError::Bundle)?;
    let caam =
        d.m.caam
            .as_mut()
            .ok_or(FlowError::NoSecurityHw("no CAAM"))?;
    let mut pubkey = caam.mp_public_key()?;
    let opened = bundle::open_for_product(sealed, &pubkey, PRODUCT);
    scrub(&mut pubkey);
    opened.map_err(FlowError::Bundle)
}

/// Step 3: make a blob of each secret, write blobs and table, read
/// everything back and decapsulate it, then the journal.
fn blob(
    d: &mut Disk<'_>,
    l: &Layout,
    j: &mut Journal,
    view: &bundle::BundleView<'_>,
    blob_area: &mut [u8],
    meter: &mut Meter,
) -> Result<(), FlowError> {
    let (blob_buf, rest) = blob_area.split_at_mut(BACK_AT - BLOB_AT);
    // The read-back blob, then room for its decapsulated secret.
    let back_buf = &mut rest[..BLOB_BUF + MAX_SECRET_LEN];
    let blob_buf = &mut blob_buf[..BLOB_BUF];
    let (t, e) = (cycles(), exception::emulation_cycles());
    outln!(d.m, "provision: [3/4] blob-encapsulate");
    let mut planner = BlobPlanner::new();
    let mut entries: heapless::Vec<BlobEntry, MAX_SECRETS> = heapless::Vec::new();
    for s in view.secrets() {
        let (off, blen) = planner.place(s.data.len()).map_err(FlowError::Area)?;
        meter.blob_bytes = meter
            .blob_bytes
            .max((blen as usize).next_multiple_of(BLOCK) + s.data.len());
        let caam =
            d.m.caam
                .as_mut()
                .ok_or(FlowError::NoSecurityHw("no CAAM"))?;
        let n = caam.blob_encap(&s.key_modifier, s.data, blob_buf)?;
        if n != blen as usize {
            return Err(FlowError::BlobVerify(name_of(s.name)));
        }
        blob_buf[n..n.next_multiple_of(BLOCK)].fill(0);
        let crc = mfg_formats::crc32(&blob_buf[..n]);
        d.write(
            l.data,
            u64::from(off) / BLOCK as u64,
            &blob_buf[..n.next_multiple_of(BLOCK)],
        )?;
        let e = BlobEntry::new(
            s.name,
            s.kind,
            s.key_modifier,
            s.key_modifier_given,
            off,
            blen,
            crc,
        )
        .map_err(FlowError::Area)?;
        entries.push(e).map_err(|_| {
            FlowError::Area(mfg_formats::FormatError::BadLength { what: "blob count" })
        })?;
    }
    let mut table = [0u8; TABLE_MAX_LEN.next_multiple_of(BLOCK)];
    let (tlen, table_crc) =
        area::write_blob_table(&mut table, &entries).map_err(FlowError::Area)?;
    d.write_verified(
        l.data,
        BLOB_TABLE_LBA,
        &table[..tlen.next_multiple_of(BLOCK)],
        "blob table",
    )?;

    // Read every blob back from the eMMC and decapsulate it: only blobs that
    // give back the original secret let the flow go on.
    for (e, s) in entries.iter().zip(view.secrets()) {
        let n = e.length as usize;
        let padded = n.next_multiple_of(BLOCK);
        d.read(
            l.data,
            u64::from(e.offset) / BLOCK as u64,
            &mut back_buf[..padded],
        )?;
        if mfg_formats::crc32(&back_buf[..n]) != e.crc {
            return Err(FlowError::ReadBack("blob"));
        }
        let caam =
            d.m.caam
                .as_mut()
                .ok_or(FlowError::NoSecurityHw("no CAAM"))?;
        let (blob, out) = back_buf.split_at_mut(padded);
        let ok = caam
            .blob_decap(&e.key_modifier, &blob[..n], &mut out[..s.data.len()])
            .is_ok()
            && out[..s.data.len()] == *s.data;
        scrub(&mut out[..s.data.len()]);
        if !ok {
            return Err(FlowError::BlobVerify(name_of(s.name)));
        }
    }
    outln!(
        d.m,
        "provision:       {} blob(s) written and verified",
        entries.len()
    );
    let mut next = j.rec.successor();
    next.state = ProvState::SecretsBlobbed;
    next.blob_count = entries.len() as u16;
    next.table_crc = table_crc;
    write_journal(d, l, j, next)?;
    meter.blob = cycles() - t;
    meter.blob_emu = exception::emulation_cycles() - e;
    Ok(())
}

fn name_of(s: &str) -> heapless::String<32> {
    let mut n = heapless::String::new();
    let _ = n.push_str(&s[..s.len().min(32)]);
    n
}

/// Step 4: overwrite the sealed bundle (header first, so a cut in the
/// middle already reads as "no bundle") and check it is gone.
fn consume(
    d: &mut Disk<'_>,
    l: &Layout,
    hdr: Option<BundlePartitionHeader>,
) -> Result<(), FlowError> {
    let zero = [0u8; BLOCK * 16];
    d.write(l.bundle, 0, &zero[..BLOCK])?;
    if let Some(h) = hdr {
        let blocks = (h.bundle_len as u64)
            .div_ceil(BLOCK as u64)
            .min(l.bundle.blocks - 1);
        let mut lba = 1;
        while lba <= blocks {
            let n = (blocks + 1 - lba).min(16);
            d.write(l.bundle, lba, &zero[..n as usize * BLOCK])?;
            lba += n;
        }
    }
    if bundle_header(d, l)?.is_some() {
        return Err(FlowError::ReadBack("erased bundle header"));
    }
    Ok(())
}

/// What Linux is told about provisioning in `/chosen` (no secrets).
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Journal state.
    pub state: ProvState,
    /// GPT partition index (1-based) of `mfg-data`.
    pub partition_index: u32,
    /// Byte offset of the blob table inside `mfg-data`.
    pub table_offset: u64,
    /// Number of blobs.
    pub blob_count: u16,
    /// The device UID.
    pub uid: [u8; 16],
}

/// Reads the provisioning state for the Linux handoff; `None` without an
/// `mfg-data` partition.
pub fn summary(m: &mut Machine) -> Option<Summary> {
    let l = Layout::find(&mut m.mmc).ok()?;
    let uid = m.ocotp.as_ref().map_or([0; 16], |o| o.unique_id());
    let mut writes = 0;
    let mut d = Disk {
        m,
        writes: &mut writes,
        cut_after: None,
        io_cycles: 0,
    };
    let j = read_journal(&mut d, &l).ok()?;
    Some(Summary {
        state: j.rec.state,
        partition_index: l.data_index,
        table_offset: BLOB_TABLE_LBA * BLOCK as u64,
        blob_count: j.rec.blob_count,
        uid,
    })
}

/// `provision status`: state, ID record, blob table, bundle presence.
pub fn status(m: &mut Machine) -> Result<(), FlowError> {
    let l = Layout::find(&mut m.mmc)?;
    let mut writes = 0;
    let mut d = Disk {
        m,
        writes: &mut writes,
        cut_after: None,
        io_cycles: 0,
    };
    let j = read_journal(&mut d, &l)?;
    let hdr = bundle_header(&mut d, &l)?;
    let r = j.rec;
    outln!(d.m, "state        : {}", r.state.as_str());
    match j.copy {
        Some(c) => outln!(
            d.m,
            "journal      : sequence {}, copy {}, boot counter {}",
            r.sequence,
            c,
            r.boot_counter
        ),
        None => outln!(d.m, "journal      : blank"),
    }
    outln!(
        d.m,
        "last error   : {}",
        area::error_code::name(r.last_error)
    );
    if let Some(slot) = r.id_slot {
        let mut b = [0u8; BLOCK];
        d.read(l.data, ID_SLOT_LBA[usize::from(slot)], &mut b)?;
        match IdRecord::parse(&b) {
            Ok(rec) => {
                let _ = write!(d.m, "ID record    : slot {}, uid ", slot);
                for x in rec.message.uid {
                    let _ = write!(d.m, "{x:02x}");
                }
                outln!(
                    d.m,
                    ", bundle {}, security {}, boot counter {}",
                    rec.message.bundle_id.unwrap_or(0),
                    rec.message.security_state.as_str(),
                    rec.message.boot_counter
                );
            }
            Err(e) => outln!(d.m, "ID record    : slot {} unreadable: {}", slot, e),
        }
    }
    if r.blob_count > 0 {
        let mut t = [0u8; TABLE_MAX_LEN.next_multiple_of(BLOCK)];
        d.read(l.data, BLOB_TABLE_LBA, &mut t)?;
        match BlobTable::parse(&t) {
            Ok(table) => {
                outln!(
                    d.m,
                    "blob table   : {} blob(s), crc 0x{:08x}",
                    table.len(),
                    table.crc()
                );
                for (i, e) in table.iter().enumerate() {
                    outln!(
                        d.m,
                        "  {:2} {:<32} {:<6} {:6} bytes at 0x{:06x}",
                        i,
                        e.name(),
                        e.kind.as_str(),
                        e.secret_len(),
                        e.offset
                    );
                }
            }
            Err(e) => outln!(d.m, "blob table   : unreadable: {}", e),
        }
    }
    match hdr {
        Some(h) => outln!(d.m, "bundle       : present ({} bytes)", h.bundle_len),
        None => outln!(d.m, "bundle       : absent"),
    }
    Ok(())
}

/// `provision verify`: decapsulates every blob; reports, never prints a
/// secret. Returns the number of failed blobs.
pub fn verify(m: &mut Machine) -> Result<usize, FlowError> {
    if let Some(e) = board_error() {
        return Err(FlowError::NoSecurityHw(e));
    }
    let l = Layout::find(&mut m.mmc)?;
    let mut writes = 0;
    let mut d = Disk {
        m,
        writes: &mut writes,
        cut_after: None,
        io_cycles: 0,
    };
    let j = read_journal(&mut d, &l)?;
    if j.rec.blob_count == 0 {
        outln!(
            d.m,
            "provision verify: no blobs (state {})",
            j.rec.state.as_str()
        );
        return Ok(0);
    }
    let mut t = [0u8; TABLE_MAX_LEN.next_multiple_of(BLOCK)];
    d.read(l.data, BLOB_TABLE_LBA, &mut t)?;
    let table = BlobTable::parse(&t).map_err(FlowError::Area)?;
    if table.crc() != j.rec.table_crc {
        return Err(FlowError::ReadBack(
            "blob table (CRC differs from the journal's)",
        ));
    }
    let scratch = scratch(d.m)?;
    let (blob, out) = scratch[BLOB_AT..].split_at_mut(BLOB_BUF);
    let mut failed = 0;
    for (i, e) in table.iter().enumerate() {
        let n = e.length as usize;
        d.read(
            l.data,
            u64::from(e.offset) / BLOCK as u64,
            &mut blob[..n.next_multiple_of(BLOCK)],
        )?;
        let _ = write!(d.m, "  {:2} {:<32} ", i, e.name());
        if mfg_formats::crc32(&blob[..n]) != e.crc {
            failed += 1;
            outln!(d.m, "FAILED: blob CRC mismatch (corrupted on eMMC)");
            continue;
        }
        let caam =
            d.m.caam
                .as_mut()
                .ok_or(FlowError::NoSecurityHw("no CAAM"))?;
        let plain = &mut out[..e.secret_len()];
        match caam.blob_decap(&e.key_modifier, &blob[..n], plain) {
            Ok(_) => {
                let crc = mfg_formats::crc32(plain);
                scrub(plain);
                if cfg!(feature = "production") {
                    outln!(d.m, "ok");
                } else {
                    outln!(d.m, "ok (secret crc32 0x{:08x})", crc);
                }
            }
            Err(err) => {
                scrub(plain);
                failed += 1;
                outln!(d.m, "FAILED: {}", err);
            }
        }
    }
    outln!(
        d.m,
        "provision verify: {} of {} blob(s) ok",
        table.len() - failed,
        table.len()
    );
    Ok(failed)
}
