//! The flow itself: one run (or resumption) from the journal's state to
//! `done`.

use crate::disk::{Disk, Extent, Layout};
use crate::error::FlowError;
use crate::hw::{Config, Console, Fuses, Hardware, Observer, SecurityHw, Step, Storage};
use crate::{outln, scrub};
use mfg_formats::FormatError;
use mfg_formats::area::{
    self, BLOB_TABLE_LBA, BLOCK, BlobEntry, BlobPlanner, BundlePartitionHeader, ID_SLOT_LBA,
    JOURNAL_LBA, JournalRecord, ProvState, TABLE_MAX_LEN,
};
use mfg_formats::bundle::{self, MAX_BUNDLE_LEN, MAX_SECRET_LEN, MAX_SECRETS};
use mfg_formats::identity::{self, IdRecord, IdentityMessage, SEALED_LEN, SecurityState};
use sha2::{Digest, Sha256};

/// Offsets inside the scratch area: the bundle, a blob, a read-back blob
/// followed by its decapsulated secret.
const BUNDLE_AT: usize = 0;
pub(crate) const BLOB_AT: usize = 0x0050_0000;
const BACK_AT: usize = 0x0060_0000;
pub(crate) const BLOB_BUF: usize = (MAX_SECRET_LEN + area::BLOB_OVERHEAD).next_multiple_of(BLOCK);
/// Bytes of scratch RAM a run needs.
pub const SCRATCH_LEN: usize = BACK_AT + BLOB_BUF + MAX_SECRET_LEN;
const _: () = assert!(MAX_BUNDLE_LEN.next_multiple_of(BLOCK) <= BLOB_AT);
const _: () = assert!(BLOB_AT + BLOB_BUF <= BACK_AT);
// The format plans blobs with the size the CAAM makes them.
const _: () = assert!(area::BLOB_OVERHEAD == caam::BLOB_OVERHEAD);

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

/// The current journal record and which copy holds it.
pub(crate) struct Journal {
    /// The record (blank when neither copy is valid).
    pub rec: JournalRecord,
    /// The copy holding it.
    pub copy: Option<usize>,
}

/// Reads the journal.
pub(crate) fn read_journal<S: Storage>(
    d: &mut Disk<'_, S>,
    l: &Layout,
) -> Result<Journal, FlowError> {
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

/// The bundle partition's header, or `None` when the partition holds no
/// bundle (erased or never written).
pub(crate) fn bundle_header<S: Storage>(
    d: &mut Disk<'_, S>,
    l: &Layout,
) -> Result<Option<BundlePartitionHeader>, FlowError> {
    let mut b = [0u8; BLOCK];
    d.read(l.bundle, 0, &mut b)?;
    Ok(BundlePartitionHeader::parse(&b).ok())
}

/// Runs (or resumes) the flow. Prints progress on `out`; on a refusal,
/// records it in the journal (state unchanged) and returns the error.
/// `scratch` (at least [`SCRATCH_LEN`] bytes) holds the plaintext bundle and
/// the blobs while the run lasts; what the run used of it is zeroed before
/// it returns.
pub fn run<S: Storage>(
    dev: &mut S,
    hw: Hardware<'_>,
    out: &mut dyn Console,
    scratch: &mut [u8],
    cfg: &Config<'_>,
    obs: &mut dyn Observer,
) -> Result<Outcome, FlowError> {
    obs.begin(Step::Run);
    let retries0 = dev.retries();
    let r = run_inner(dev, hw, out, scratch, cfg, obs);
    obs.end(Step::Run);
    let retried = dev.retries() - retries0;
    if retried > 0 {
        // A flaky card is worth a look, also when the retry succeeded.
        outln!(
            out,
            "provision: eMMC: {retried} transfer(s) retried after an error"
        );
    }
    r
}

fn run_inner<S: Storage>(
    dev: &mut S,
    hw: Hardware<'_>,
    out: &mut dyn Console,
    scratch: &mut [u8],
    cfg: &Config<'_>,
    obs: &mut dyn Observer,
) -> Result<Outcome, FlowError> {
    let l = Layout::find(dev)?;
    let mut d = Disk { dev, obs };
    let j = read_journal(&mut d, &l)?;
    let hdr = bundle_header(&mut d, &l)?;
    outln!(
        out,
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
    if scratch.len() < SCRATCH_LEN {
        return Err(FlowError::Partition("no scratch RAM"));
    }
    let mut f = Flow {
        d,
        out,
        hw,
        cfg,
        l,
        j,
        bundle_bytes: 0,
        blob_bytes: 0,
        bundle_digest: [0; 32],
    };
    let r = f.steps(hdr, scratch);
    // Scrub what the run used of the scratch RAM (plaintext bundle, blobs).
    scrub(&mut scratch[..f.bundle_bytes]);
    scrub(&mut scratch[BLOB_AT..BLOB_AT + f.blob_bytes]);
    scrub(&mut scratch[BACK_AT..BACK_AT + f.blob_bytes]);
    if let Err(e) = &r {
        f.d.obs.refused(e.code());
        if e.journal_worthy() {
            let mut next = f.j.rec.successor();
            next.last_error = e.code();
            if let Err(je) = f.write_journal(next) {
                outln!(
                    f.out,
                    "provision: could not record the refusal in the journal: {je}"
                );
            }
        }
    }
    r
}

/// One run's state.
struct Flow<'a, 'h, 'c, S: Storage> {
    d: Disk<'a, S>,
    out: &'a mut dyn Console,
    hw: Hardware<'h>,
    cfg: &'a Config<'c>,
    l: Layout,
    j: Journal,
    /// Scratch bytes that held the bundle, and the largest blob.
    bundle_bytes: usize,
    blob_bytes: usize,
    /// SHA-256 of the sealed bundle, as the identity binds it.
    bundle_digest: [u8; 32],
}

impl<S: Storage> Flow<'_, '_, '_, S> {
    fn caam(&mut self) -> Result<&mut dyn SecurityHw, FlowError> {
        match &mut self.hw {
            Hardware::Available { caam, .. } => Ok(&mut **caam),
            Hardware::Unavailable(e) => Err(FlowError::NoSecurityHw(e)),
        }
    }

    fn fuses(&self) -> Result<&dyn Fuses, FlowError> {
        match &self.hw {
            Hardware::Available { fuses, .. } => Ok(*fuses),
            Hardware::Unavailable(e) => Err(FlowError::NoSecurityHw(e)),
        }
    }

    fn write(&mut self, p: Extent, lba: u64, buf: &[u8]) -> Result<(), FlowError> {
        self.d.write(self.out, p, lba, buf)
    }

    fn write_verified(
        &mut self,
        p: Extent,
        lba: u64,
        buf: &[u8],
        what: &'static str,
    ) -> Result<(), FlowError> {
        self.d.write_verified(self.out, p, lba, buf, what)
    }

    /// Writes `next` into the copy that does not hold the current record,
    /// reads it back, and makes it current.
    fn write_journal(&mut self, next: JournalRecord) -> Result<(), FlowError> {
        let copy = area::next_journal_copy(self.j.copy);
        let data = self.l.data;
        self.write_verified(data, JOURNAL_LBA[copy], &next.to_block(), "journal")?;
        self.j.rec = next;
        self.j.copy = Some(copy);
        self.d.obs.journal(next.sequence, next.state.code(), copy);
        Ok(())
    }

    fn steps(
        &mut self,
        hdr: Option<BundlePartitionHeader>,
        scratch: &mut [u8],
    ) -> Result<Outcome, FlowError> {
        // Any build: a CAAM in fail state has lost its keys (CSTA.MOO = 3),
        // and without an instantiated RNG its blobs would have no fresh keys
        // (the CAAM init failure is on the console already; record it).
        if let Some(e) = self.caam()?.init_error() {
            return Err(FlowError::Caam(e));
        }
        let info = self.caam()?.info();
        if info.security == caam::ModeOfOperation::Fail {
            return Err(FlowError::SecurityFail);
        }
        if !info.rng_sh0 {
            return Err(FlowError::Caam(caam::CaamError::RngNotInstantiated));
        }
        if self.cfg.production && !self.closed()? {
            return Err(FlowError::OpenPart);
        }
        let mut state = self.j.rec.state;
        if state == ProvState::SecretsBlobbed
            && let Err(why) = self.check_blobs(scratch)?
        {
            // Never finalise over blobs that do not open: redo them from
            // the bundle if it is still there, else refuse.
            if hdr.is_none() {
                return Err(FlowError::BlobsInvalid(why));
            }
            outln!(
                self.out,
                "provision: the blobs on the eMMC do not match the journal ({}); blobbing again",
                why
            );
            state = ProvState::IdSigned;
        }
        if matches!(state, ProvState::Blank | ProvState::IdSigned) {
            let hdr = hdr.ok_or(FlowError::Partition(
                "the bundle is gone but the blobs were never written",
            ))?;
            // Authenticate and decrypt first: a refused bundle (another
            // OEM's key, tampered, another product) then leaves nothing on
            // the eMMC but the journal entry of the refusal, not a fresh ID
            // record.
            let (bundle_area, blob_area) = scratch.split_at_mut(BLOB_AT);
            self.d.obs.begin(Step::Decrypt);
            let view = self.decrypt(&hdr, bundle_area);
            self.d.obs.end(Step::Decrypt);
            let view = view?;
            if state == ProvState::Blank {
                self.d.obs.begin(Step::Sign);
                outln!(self.out, "provision: [1/4] sign-ID");
                let sealed = self.sign_id(view.header().bundle_id);
                if let Ok(sealed) = &sealed {
                    self.print_id_line(sealed);
                }
                self.d.obs.end(Step::Sign);
                sealed?;
            }
            outln!(self.out, "provision: [2/4] decrypt-bundle");
            outln!(
                self.out,
                "provision:       {} secret(s) authenticated",
                view.len()
            );
            self.d.obs.begin(Step::Blob);
            let r = self.blob(&view, blob_area);
            self.d.obs.end(Step::Blob);
            r?;
        }
        if self.j.rec.state == ProvState::SecretsBlobbed {
            self.d.obs.begin(Step::Consume);
            let r = self.consume_and_finish(hdr);
            self.d.obs.end(Step::Consume);
            r?;
        }
        outln!(self.out, "provision: device provisioned");
        Ok(Outcome::Provisioned)
    }

    /// Whether the blob table and blobs on the eMMC are the ones the
    /// journal vouches for: table CRC and count as journaled, each blob's
    /// CRC as in the table, and each decapsulates on this chip. The inner
    /// error says what does not match.
    fn check_blobs(&mut self, scratch: &mut [u8]) -> Result<Result<(), &'static str>, FlowError> {
        let mut t = [0u8; TABLE_MAX_LEN.next_multiple_of(BLOCK)];
        self.d.read(self.l.data, BLOB_TABLE_LBA, &mut t)?;
        let Ok(table) = area::BlobTable::parse(&t) else {
            return Ok(Err("blob table unreadable"));
        };
        if table.crc() != self.j.rec.table_crc || table.len() != usize::from(self.j.rec.blob_count)
        {
            return Ok(Err("blob table differs from the journal's"));
        }
        let (blob, plain_buf) = scratch[BLOB_AT..].split_at_mut(BLOB_BUF);
        for e in table.iter() {
            let n = e.length as usize;
            self.blob_bytes = self.blob_bytes.max(BLOB_BUF + MAX_SECRET_LEN);
            self.d.read(
                self.l.data,
                u64::from(e.offset) / BLOCK as u64,
                &mut blob[..n.next_multiple_of(BLOCK)],
            )?;
            if mfg_formats::crc32(&blob[..n]) != e.crc {
                return Ok(Err("a blob's CRC differs from the table's"));
            }
            let plain = &mut plain_buf[..e.secret_len()];
            let opened = self
                .caam()?
                .blob_decap(e.key_modifier.as_bytes(), &blob[..n], plain);
            scrub(plain);
            if opened.is_err() {
                return Ok(Err("a blob does not decapsulate on this chip"));
            }
        }
        Ok(Ok(()))
    }

    /// Closed per both the fuses and the CAAM's mode of operation.
    fn closed(&mut self) -> Result<bool, FlowError> {
        let fuse_closed = self.fuses()?.is_closed();
        let moo = self.caam()?.info().security;
        Ok(fuse_closed
            && matches!(
                moo,
                caam::ModeOfOperation::Secure | caam::ModeOfOperation::Trusted
            ))
    }

    /// Step 1: the identity message, signed by the CAAM's MP key, sealed to
    /// the OEM record key, stored in the free ID slot, then the journal.
    /// Returns the sealed record (the only form that leaves the device).
    fn sign_id(&mut self, bundle_id: u64) -> Result<[u8; SEALED_LEN], FlowError> {
        let fuses = self.fuses()?;
        let (uid, srk_hash, fuse_closed) = (fuses.unique_id(), fuses.srk_hash(), fuses.is_closed());
        let security_state = match self.caam()?.info().security {
            caam::ModeOfOperation::Secure | caam::ModeOfOperation::Trusted if fuse_closed => {
                SecurityState::Closed
            }
            caam::ModeOfOperation::Fail => SecurityState::Fail,
            _ => SecurityState::Open,
        };
        let mut message = IdentityMessage {
            soc: identity::SOC_IMX8MP,
            uid,
            srk_hash,
            security_state,
            boot_counter: self.j.rec.boot_counter.wrapping_add(1),
            loader_version: [0; identity::LOADER_VERSION_LEN],
            product: [0; identity::PRODUCT_LEN],
            bundle_id: Some(bundle_id),
            bundle_digest: self.bundle_digest,
            station_nonce: None,
        };
        message.set_loader_version(self.cfg.loader_version);
        message.set_product(self.cfg.product);
        // The MPMR says which loader signs: locked at boot, before any
        // command existed; never written here.
        if !self.caam()?.info().mpmr_locked {
            return Err(FlowError::MpmrNotLocked);
        }
        let mpmr = self.caam()?.mpmr_read();
        let sig = self.caam()?.mp_sign(&message.to_bytes())?;
        let rec = IdRecord {
            message,
            mpmr,
            mes_rep: sig.mes_rep,
            c: sig.c,
            d: sig.d,
        };
        self.d.obs.begin(Step::Seal);
        let sealed = self.seal(&rec);
        self.d.obs.end(Step::Seal);
        let sealed = sealed?;
        let slot = match self.j.rec.id_slot {
            Some(0) => 1,
            _ => 0,
        };
        let data = self.l.data;
        self.write_verified(
            data,
            ID_SLOT_LBA[usize::from(slot)],
            &identity::sealed_block(&sealed),
            "ID record",
        )?;
        let mut next = self.j.rec.successor();
        next.state = ProvState::IdSigned;
        next.id_slot = Some(slot);
        next.bundle_id = Some(bundle_id);
        next.boot_counter = rec.message.boot_counter;
        self.write_journal(next)?;
        Ok(sealed)
    }

    /// The record sealed to the OEM record key, with an ephemeral key from
    /// the CAAM's DRBG (drawn again in the rare case it is not a scalar).
    fn seal(&mut self, rec: &IdRecord) -> Result<[u8; SEALED_LEN], FlowError> {
        let mut eph = [0u8; 32];
        let mut r = Err(FlowError::Area(FormatError::BadField {
            what: "ephemeral secret",
        }));
        for _ in 0..4 {
            self.caam()?.rng_fill(&mut eph)?;
            r = rec.seal(self.cfg.record_key, &eph).map_err(FlowError::Area);
            if !matches!(r, Err(FlowError::Area(FormatError::BadField { .. }))) {
                break;
            }
        }
        scrub(&mut eph);
        r
    }

    /// The sealed record as one console line, for a station on the serial
    /// line.
    fn print_id_line(&mut self, sealed: &[u8; SEALED_LEN]) {
        let mut line = [0u8; identity::CONSOLE_LINE_LEN];
        if let Ok(n) = identity::console_line(sealed, &mut line)
            && let Ok(s) = core::str::from_utf8(&line[..n])
        {
            let _ = self.out.write_str(s);
            outln!(self.out);
        }
    }

    /// Step 2: reads the bundle into scratch RAM, authenticates and decrypts
    /// it in place (the view zeroizes the plaintext when dropped).
    fn decrypt<'b>(
        &mut self,
        hdr: &BundlePartitionHeader,
        bundle_area: &'b mut [u8],
    ) -> Result<bundle::BundleView<'b>, FlowError> {
        let len = hdr.bundle_len as usize;
        if len > MAX_BUNDLE_LEN || len == 0 {
            return Err(FlowError::Bundle(FormatError::BadLength { what: "bundle" }));
        }
        let padded = len.next_multiple_of(BLOCK);
        self.bundle_bytes = padded;
        let bundle_buf = &mut bundle_area[BUNDLE_AT..BUNDLE_AT + padded];
        self.d.read(
            self.l.bundle,
            area::BUNDLE_OFFSET / BLOCK as u64,
            bundle_buf,
        )?;
        let sealed = &mut bundle_buf[..len];
        hdr.check(sealed).map_err(FlowError::Bundle)?;
        self.bundle_digest = Sha256::digest(&*sealed).into();
        let mut pubkey = self.caam()?.mp_public_key()?;
        let opened = bundle::open_for_product(sealed, &pubkey, self.cfg.product);
        scrub(&mut pubkey);
        opened.map_err(FlowError::Bundle)
    }

    /// Step 3: make a blob of each secret, write blobs and table, read
    /// everything back and decapsulate it, then the journal.
    fn blob(
        &mut self,
        view: &bundle::BundleView<'_>,
        blob_area: &mut [u8],
    ) -> Result<(), FlowError> {
        let (blob_buf, rest) = blob_area.split_at_mut(BACK_AT - BLOB_AT);
        // The read-back blob, then room for its decapsulated secret.
        let back_buf = &mut rest[..BLOB_BUF + MAX_SECRET_LEN];
        let blob_buf = &mut blob_buf[..BLOB_BUF];
        let data = self.l.data;
        outln!(self.out, "provision: [3/4] blob-encapsulate");
        let mut planner = BlobPlanner::new();
        let mut entries: heapless::Vec<BlobEntry, MAX_SECRETS> = heapless::Vec::new();
        for s in view.secrets() {
            let (off, blen) = planner.place(s.data.len()).map_err(FlowError::Area)?;
            self.blob_bytes = self
                .blob_bytes
                .max((blen as usize).next_multiple_of(BLOCK) + s.data.len());
            let n = self
                .caam()?
                .blob_encap(s.key_modifier.as_bytes(), s.data, blob_buf)?;
            if n != blen as usize {
                return Err(FlowError::BlobVerify(name_of(s.name)));
            }
            blob_buf[n..n.next_multiple_of(BLOCK)].fill(0);
            let crc = mfg_formats::crc32(&blob_buf[..n]);
            self.write(
                data,
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
            entries
                .push(e)
                .map_err(|_| FlowError::Area(FormatError::BadLength { what: "blob count" }))?;
        }
        let mut table = [0u8; TABLE_MAX_LEN.next_multiple_of(BLOCK)];
        let (tlen, table_crc) =
            area::write_blob_table(&mut table, &entries).map_err(FlowError::Area)?;
        self.write_verified(
            data,
            BLOB_TABLE_LBA,
            &table[..tlen.next_multiple_of(BLOCK)],
            "blob table",
        )?;

        // Read every blob back from the eMMC and decapsulate it: only blobs
        // that give back the original secret let the flow go on.
        for (e, s) in entries.iter().zip(view.secrets()) {
            let n = e.length as usize;
            let padded = n.next_multiple_of(BLOCK);
            self.d.read(
                data,
                u64::from(e.offset) / BLOCK as u64,
                &mut back_buf[..padded],
            )?;
            if mfg_formats::crc32(&back_buf[..n]) != e.crc {
                return Err(FlowError::ReadBack("blob"));
            }
            let (blob, plain) = back_buf.split_at_mut(padded);
            let plain = &mut plain[..s.data.len()];
            let ok = self
                .caam()?
                .blob_decap(e.key_modifier.as_bytes(), &blob[..n], plain)
                .is_ok()
                && *plain == *s.data;
            scrub(plain);
            if !ok {
                return Err(FlowError::BlobVerify(name_of(s.name)));
            }
        }
        outln!(
            self.out,
            "provision:       {} blob(s) written and verified",
            entries.len()
        );
        let mut next = self.j.rec.successor();
        next.state = ProvState::SecretsBlobbed;
        next.blob_count = entries.len() as u16;
        next.table_crc = table_crc;
        self.write_journal(next)
    }

    /// Step 4: erase the bundle, then the journal says `done`.
    fn consume_and_finish(&mut self, hdr: Option<BundlePartitionHeader>) -> Result<(), FlowError> {
        outln!(self.out, "provision: [4/4] consume the bundle");
        self.consume(hdr)?;
        let mut next = self.j.rec.successor();
        next.state = ProvState::Done;
        self.write_journal(next)
    }

    /// Overwrites the sealed bundle (header first, so a cut in the middle
    /// already reads as "no bundle") and checks it is gone.
    fn consume(&mut self, hdr: Option<BundlePartitionHeader>) -> Result<(), FlowError> {
        let zero = [0u8; BLOCK * 16];
        let bundle = self.l.bundle;
        self.write(bundle, 0, &zero[..BLOCK])?;
        if let Some(h) = hdr {
            let blocks = (h.bundle_len as u64)
                .div_ceil(BLOCK as u64)
                .min(bundle.blocks - 1);
            let mut lba = 1;
            while lba <= blocks {
                let n = (blocks + 1 - lba).min(16);
                self.write(bundle, lba, &zero[..n as usize * BLOCK])?;
                lba += n;
            }
        }
        if bundle_header(&mut self.d, &self.l)?.is_some() {
            return Err(FlowError::ReadBack("erased bundle header"));
        }
        Ok(())
    }
}

fn name_of(s: &str) -> heapless::String<32> {
    let mut n = heapless::String::new();
    let _ = n.push_str(&s[..s.len().min(32)]);
    n
}
