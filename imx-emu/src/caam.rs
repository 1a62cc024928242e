//! The emulated CAAM: controller page, three job rings, the descriptor
//! interpreter, Manufacturing Protection, blobs and the RNG.
//!
//! # What is faithful to silicon
//! - The register map of the i.MX8M CAAM (Era 9) as far as a driver uses it:
//!   MCFGR, SCFGR (MPCURVE, MPMRL lock, PRIBLOB, RDBENABLE), JRxDID, JRSTARTR,
//!   the MPMR with its byte-reversed readback, the TRNG block (program mode),
//!   RDSTA, CTPR, CSTA (MOO from the fuses), CCBVID (Era 9), CHAVID, CHANUM
//!   (3 job rings), SECVID (0x0A16, 4.1); job ring pages 1..3 with the
//!   controller page aliased at 0x600..0xFFF, the two-step JR reset, IRBAR /
//!   ORBAR (high word at the lower address, latched by the low-word write),
//!   byte-offset IRRIR/ORWIR, 8-byte `{ptr, status}` output entries, IRSAR,
//!   ORSFR, ORJRR, JRSTAR and JRINTR.
//! - Descriptor words and PDB layouts exactly as U-Boot, Linux and OP-TEE
//!   build them, and the job status word format (SSRC, DECO command index
//!   and error code, CCB CHA id and error id).
//! - MP: ECDSA-P256 over SHA-256(MPMR || message), c = r and d = s
//!   big-endian, the 32-byte message representative; X || Y public key;
//!   MPPRIVK (OP-TEE's descriptor) on a chip whose fuse file starts it with
//!   SCFGR.MPCURVE = 0, once per power cycle.
//! - The refusals silicon is documented or presumed to make: MPSIGN and
//!   blob encapsulation without an instantiated RNG, PRIBLOB only rising,
//!   TRNG reprogramming while a state handle is live, rings not started in
//!   JRSTARTR under virtualisation, and (fuse-file option) a controller page
//!   the secure world keeps. The list with status words is in
//!   `docs/caam.md`.
//! - Blobs: 32-byte encrypted blob key + AES-CCM ciphertext + 16-byte MAC,
//!   a fresh random blob key per blob, ICV error on any mismatch.
//!
//! # What is not (and cannot be)
//! - Blobs are **not bit-compatible** with silicon: the real BKEK derivation
//!   and blob-key encryption are not public. Here BKEK = HKDF-SHA256(OTPMK,
//!   key modifier length and bytes (1..=16), security state, PRIBLOB) and the blob key is wrapped with
//!   AES-256-ECB; CCM uses a 12-byte zero nonce (the blob key is fresh).
//!   Silicon uses a fixed test key instead of the OTPMK on non-secure parts;
//!   the model always uses the chip's OTPMK (mixed with the state), so open
//!   chips do not share blobs here.
//! - The MP key derivation is **not silicon's** (which is not public): the
//!   private key is HKDF(family secret, SRK hash, security state), so that
//!   closed chips of one OEM share a key and other OEMs or open parts differ.
//! - The RNG is a SHA-256 counter DRBG seeded from the fuse file (and an
//!   optional nonce), not a TRNG; TRNG settings are stored but not used.
//! - Only 32-bit pointers (MCFGR.PS = 0), no scatter/gather, no shared
//!   descriptors, no secure memory, no DECO direct access. Commands the
//!   model does not implement are rejected with the DECO "invalid command"
//!   status of their class rather than silently accepted.
//!
//! # Status words emitted
//! Format from Linux `drivers/crypto/caam/regs.h` / `error.c` (`docs/caam.md`):
//! - `0x0000_0000` success.
//! - `0x4000_ii_cc` DECO error, `ii` = word index of the failing command,
//!   `cc` one of: 0x04 invalid command type, 0x06 invalid KEY, 0x07 invalid
//!   LOAD, 0x09 invalid OPERATION, 0x0B invalid FIFO STORE, 0x0D invalid
//!   JUMP, 0x10 invalid SEQ IN/OUT PTR or sequence too short, 0x13 header
//!   error (ONE bit, ZRO bit, length, start index, shared header), 0x16 DMA
//!   error (a pointer outside guest RAM), 0x80 DNR, 0x81 undefined protocol,
//!   0x82 invalid PDB setting, 0xC1 undefined blob mode (codes from Linux
//!   `error.c` `desc_error_list`).
//! - `0x2000_ii_1A` CCB error, CHA AES (1), ICV check failed (0xA): blob MAC
//!   mismatch. `0x2000_ii_53` / `_54` CCB RNG (5) "instantiate" /
//!   "not instantiated" (Linux `rng_err_id_list`).
//! - `0x7000_0000` after a JUMP HALT (type 8), as Linux accepts for its RNG
//!   descriptors; `0x3000_00uu` after a JUMP HALT with user status `uu`.
//! - Ring-level errors (IRJAR overflow, ORJRR overflow, ring memory outside
//!   RAM) set JRINTR.JRE with ERR_TYPE (Linux regs.h `JRINT_ERR_TYPE_*`:
//!   3 bad input address, 4 bad output address, 8 remove overflow, 9 add
//!   overflow); the ring then stops until reset.
//!
//! Which exact index silicon reports for a CCB error, and whether silicon
//! rejects an EXT SEQ PTR with a non-zero 16-bit length field, are not
//! documented publicly; the model's choices are stated above.

use crate::crypto::{CcmStream, Drbg, ct_eq, hkdf, mp_signing_key, wrap_key};
use crate::fusefile::{Fault, FuseFile, LOCKED_MPMR, Page0};
use crate::trap::EmuError;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// The model's DMA view of guest memory.
pub trait BusMemory {
    /// Reads `buf.len()` bytes at bus address `addr`.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), BusError>;
    /// Writes `data` at bus address `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), BusError>;
}

/// A DMA access outside guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusError {
    /// Start of the refused range.
    pub addr: u64,
    /// Its length.
    pub len: usize,
}

impl core::fmt::Display for BusError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DMA outside guest RAM: {:#x}+{:#x}", self.addr, self.len)
    }
}

/// Job status words and their parts.
pub mod status {
    /// SSRC field shift.
    pub const SSRC_SHIFT: u32 = 28;
    /// SSRC: CCB error.
    pub const SSRC_CCB: u32 = 2;
    /// SSRC: jump halt with user status.
    pub const SSRC_JUMP_HALT_USER: u32 = 3;
    /// SSRC: DECO error.
    pub const SSRC_DECO: u32 = 4;
    /// SSRC: job ring error.
    pub const SSRC_JR: u32 = 6;
    /// SSRC: jump halt with condition codes.
    pub const SSRC_JUMP_HALT_CC: u32 = 7;

    /// DECO: invalid descriptor command.
    pub const DECO_INVALID_CMD: u8 = 0x04;
    /// DECO: invalid KEY command.
    pub const DECO_INVALID_KEY: u8 = 0x06;
    /// DECO: invalid LOAD command.
    pub const DECO_INVALID_LOAD: u8 = 0x07;
    /// DECO: invalid OPERATION command.
    pub const DECO_INVALID_OPERATION: u8 = 0x09;
    /// DECO: invalid FIFO STORE command.
    pub const DECO_INVALID_FIFO_STORE: u8 = 0x0B;
    /// DECO: invalid JUMP command.
    pub const DECO_INVALID_JUMP: u8 = 0x0D;
    /// DECO: invalid sequence command / sequence length too short.
    pub const DECO_INVALID_SEQUENCE: u8 = 0x10;
    /// DECO: header error (length, start index, ONE/ZRO bits).
    pub const DECO_HEADER: u8 = 0x13;
    /// DECO: DMA error.
    pub const DECO_DMA: u8 = 0x16;
    /// DECO: DNR (do not run).
    pub const DECO_DNR: u8 = 0x80;
    /// DECO: undefined protocol command.
    pub const DECO_UNDEFINED_PROTOCOL: u8 = 0x81;
    /// DECO: invalid setting in PDB.
    pub const DECO_PDB: u8 = 0x82;
    /// DECO: blob command, undefined mode.
    pub const DECO_BLOB_MODE: u8 = 0xC1;

    /// CCB CHA id: AES.
    pub const CHA_AES: u8 = 1;
    /// CCB CHA id: RNG.
    pub const CHA_RNG: u8 = 5;
    /// CCB error id: ICV check failed.
    pub const ERR_ICV: u8 = 0xA;
    /// CCB RNG error id: instantiate.
    pub const ERR_RNG_INSTANTIATE: u8 = 3;
    /// CCB RNG error id: not instantiated.
    pub const ERR_RNG_NOT_INSTANTIATED: u8 = 4;

    /// A DECO error status for command word `index`.
    pub const fn deco(index: u8, code: u8) -> u32 {
        (SSRC_DECO << SSRC_SHIFT) | ((index as u32) << 8) | code as u32
    }

    /// A CCB error status.
    pub const fn ccb(index: u8, cha: u8, err: u8) -> u32 {
        (SSRC_CCB << SSRC_SHIFT) | ((index as u32) << 8) | ((cha as u32) << 4) | err as u32
    }

    /// The status after a JUMP HALT (condition codes all clear).
    pub const HALT_CC: u32 = SSRC_JUMP_HALT_CC << SSRC_SHIFT;
}

// Controller-page offsets (`docs/caam.md`).
const MCFGR: u32 = 0x004;
const SCFGR: u32 = 0x00C;
const JRDID_FIRST: u32 = 0x010;
const JRDID_LAST: u32 = 0x024;
const JRSTARTR: u32 = 0x05C;
const MPMR_FIRST: u32 = 0x380;
const MPMR_LAST: u32 = 0x39C;
const RTMCTL: u32 = 0x600;
const TRNG_LAST: u32 = 0x63C;
const RDSTA: u32 = 0x6C0;
const CRNR_MS: u32 = 0xFA0;
const CRNR_LS: u32 = 0xFA4;
const CTPR_MS: u32 = 0xFA8;
const CTPR_LS: u32 = 0xFAC;
const FAR_MS: u32 = 0xFC0;
const FADR: u32 = 0xFCC;
const CSTA: u32 = 0xFD4;
const CCBVID: u32 = 0xFE4;
const CHAVID_MS: u32 = 0xFE8;
const CHAVID_LS: u32 = 0xFEC;
const CHANUM_MS: u32 = 0xFF0;
const CHANUM_LS: u32 = 0xFF4;
const SECVID_MS: u32 = 0xFF8;
const SECVID_LS: u32 = 0xFFC;

/// SCFGR.MPCURVE (31:28) value for P-256 (`docs/caam.md`).
pub const MPCURVE_P256: u32 = 3;
const SCFGR_MPMRL: u32 = 1 << 26;
const SCFGR_PRIBLOB: u32 = 0b11;
const SCFGR_VIRT_EN: u32 = 1 << 15;
const JRDID_MS_TZ_OWN: u32 = 1 << 15;
const CTPR_MS_VIRT_EN_INCL: u32 = 1;
const RTSDCTL: u32 = 0x610;
const MCFGR_PS: u32 = 1 << 16;
const MCFGR_SWRST: u32 = 1 << 31;
const MCFGR_DMA_RST: u32 = 1 << 28;
const RTMCTL_PRGM: u32 = 1 << 16;
const RDSTA_SKVN: u32 = 1 << 30;

// Job ring page offsets (`docs/caam.md`).
const IRBAR_HI: u32 = 0x00;
const IRBAR_LO: u32 = 0x04;
const IRSR: u32 = 0x0C;
const IRSAR: u32 = 0x14;
const IRJAR: u32 = 0x1C;
const ORBAR_HI: u32 = 0x20;
const ORBAR_LO: u32 = 0x24;
const ORSR: u32 = 0x2C;
const ORJRR: u32 = 0x34;
const ORSFR: u32 = 0x3C;
const JRSTAR: u32 = 0x44;
const JRINTR: u32 = 0x4C;
const JRCFGR_MS: u32 = 0x50;
const JRCFGR_LS: u32 = 0x54;
const IRRIR: u32 = 0x5C;
const ORWIR: u32 = 0x64;
const JRCR: u32 = 0x6C;

const JRINTR_JRI: u32 = 1 << 0;
const JRINTR_JRE: u32 = 1 << 1;
const JRINTR_HALT_DONE: u32 = 0b10 << 2;
const JRINTR_HALT_MASK: u32 = 0b11 << 2;
const ERR_TYPE_BAD_INPADDR: u32 = 3;
const ERR_TYPE_BAD_OUTADDR: u32 = 4;
const ERR_TYPE_REMOVE_OFL: u32 = 8;
const ERR_TYPE_ADD_OFL: u32 = 9;

const RING_SIZE_MASK: u32 = 0x3FF;
/// Longest job descriptor (the DECO descriptor buffer holds 64 words).
const MAX_DESC_WORDS: usize = 64;
/// Streaming chunk for payloads (keeps the model's stack small).
const CHUNK: usize = 256;

const BLOCK: &str = "CAAM";

#[derive(Default, Clone, Copy)]
struct JobRing {
    irba: u32,
    irba_hi: u32,
    orba: u32,
    orba_hi: u32,
    irs: u32,
    ors: u32,
    ir_read: u32,
    pending: u32,
    or_write: u32,
    or_full: u32,
    jrstar: u32,
    jrintr: u32,
    cfg_ms: u32,
    cfg_ls: u32,
    jrcr: u32,
    failed: bool,
}

/// The CAAM's state. Owned by [`crate::Emulator`].
pub(crate) struct CaamModel {
    mcfgr: u32,
    scfgr: u32,
    jrdid: [u32; 6],
    jrstartr: u32,
    mpmr: [u8; 32],
    trng: [u32; 16],
    rdsta: u32,
    rings: [JobRing; 3],
    drbg: Drbg,
    stalled: bool,
    /// Injected fault (test plan), if any.
    fault: Option<Fault>,
    /// Jobs taken from the input rings since power-on.
    jobs: u32,
    /// Blob decapsulations started since power-on.
    decaps: u32,
    /// How page 0 answers (fuse-file option).
    page0: Page0,
    /// SHA-256 of the MPPRIVK passphrase once MPPRIVK ran this power cycle.
    mpprivk: Option<[u8; 32]>,
    /// Instantiation fails while RTSDCTL.ENT_DLY is below this (0: never).
    rng_min_ent_dly: u32,
}

fn err_unimpl(offset: u32, write: bool) -> EmuError {
    EmuError::Unimplemented {
        block: BLOCK,
        offset,
        write,
    }
}

fn read_only(offset: u32) -> EmuError {
    EmuError::ReadOnly {
        block: BLOCK,
        offset,
    }
}

impl CaamModel {
    pub(crate) fn new(fuses: &FuseFile) -> Self {
        Self {
            mcfgr: 0,
            // The boot ROM has generated the MP key and set MPCURVE, unless
            // the fuse file says it left none.
            scfgr: if fuses.options.mp_curve_zero {
                0
            } else {
                MPCURVE_P256 << 28
            },
            jrdid: [0; 6],
            jrstartr: 0,
            mpmr: [0; 32],
            trng: [0; 16],
            rdsta: 0,
            rings: [JobRing::default(); 3],
            drbg: Drbg::new(&fuses.otpmk, &fuses.uid),
            stalled: false,
            fault: None,
            jobs: 0,
            decaps: 0,
            page0: fuses.options.page0,
            mpprivk: None,
            rng_min_ent_dly: 0,
        }
    }

    /// RNG instantiation fails with the CCB RNG "instantiate" error while
    /// the programmed entropy delay is below `ent_dly` (a TRNG that needs a
    /// longer delay than the first one tried).
    pub(crate) fn set_rng_min_entropy_delay(&mut self, ent_dly: u32) {
        self.rng_min_ent_dly = ent_dly;
    }

    /// RNG state handles in `mask` (bit 0: SH0, bit 1: SH1) are live at
    /// power-on, as if an earlier boot stage had instantiated them (SH0
    /// with the secure keys).
    pub(crate) fn preinstantiate_rng(&mut self, mask: u32) {
        self.rdsta |= mask & 3;
        if mask & 1 != 0 {
            self.rdsta |= RDSTA_SKVN;
        }
    }

    /// Arms a fault (call once, right after power-on). `MpmrLocked` takes
    /// effect at once: the MPMR holds [`LOCKED_MPMR`] and SCFGR.MPMRL is set,
    /// as if an earlier boot stage had locked it.
    pub(crate) fn set_fault(&mut self, fault: Option<Fault>) {
        self.fault = fault;
        if fault == Some(Fault::MpmrLocked) {
            self.mpmr = LOCKED_MPMR;
            self.scfgr |= SCFGR_MPMRL;
        }
    }

    pub(crate) fn reseed(&mut self, nonce: &[u8]) {
        self.drbg.reseed(nonce);
    }

    pub(crate) fn set_stalled(
        &mut self,
        stalled: bool,
        mem: &mut impl BusMemory,
        fuses: &FuseFile,
    ) {
        self.stalled = stalled;
        if !stalled {
            for r in 0..3 {
                self.process(r, mem, fuses);
            }
        }
    }

    /// A job ring page the secure world owns (JRnDID_MS.TZ_OWN, as U-Boot's
    /// SPL leaves the ring it used until TF-A releases it) refuses the
    /// loader's non-secure accesses.
    fn check_ring_owner(&self, page: u32, off: u32) -> Result<(), EmuError> {
        if (1..=3).contains(&page) && self.jrdid[2 * (page as usize - 1)] & JRDID_MS_TZ_OWN != 0 {
            return Err(EmuError::Unsupported {
                block: BLOCK,
                offset: off,
                what: "non-secure access to a job ring the secure world owns (JRnDID_MS.TZ_OWN)",
            });
        }
        Ok(())
    }

    /// A 32-bit read at `off` from the CAAM base.
    pub(crate) fn read(&mut self, off: u32, fuses: &FuseFile) -> Result<u32, EmuError> {
        let page = off >> 12;
        let in_page = off & 0xFFF;
        self.check_ring_owner(page, off)?;
        match page {
            0 => match self.page0 {
                Page0::Open => self.ctrl_read(in_page, fuses),
                Page0::ReadsZero => Ok(0),
                Page0::ReadsOnes => Ok(u32::MAX),
                Page0::Aborts => Err(EmuError::ControllerPageRefused { offset: off }),
            },
            1..=3 if in_page >= 0x600 => self.ctrl_read(in_page, fuses),
            1..=3 => self.jr_read(page as usize - 1, in_page, off),
            _ => Err(err_unimpl(off, false)),
        }
    }

    /// A 32-bit write at `off` from the CAAM base.
    pub(crate) fn write(
        &mut self,
        off: u32,
        v: u32,
        mem: &mut impl BusMemory,
        fuses: &FuseFile,
    ) -> Result<(), EmuError> {
        let page = off >> 12;
        let in_page = off & 0xFFF;
        self.check_ring_owner(page, off)?;
        match page {
            0 => match self.page0 {
                Page0::Open => self.ctrl_write(in_page, v),
                Page0::ReadsZero | Page0::ReadsOnes => Ok(()),
                Page0::Aborts => Err(EmuError::ControllerPageRefused { offset: off }),
            },
            1..=3 if in_page >= 0x600 => self.ctrl_write(in_page, v),
            1..=3 => self.jr_write(page as usize - 1, in_page, off, v, mem, fuses),
            _ => Err(err_unimpl(off, true)),
        }
    }

    fn ctrl_read(&self, off: u32, fuses: &FuseFile) -> Result<u32, EmuError> {
        Ok(match off {
            MCFGR => self.mcfgr,
            SCFGR => self.scfgr,
            JRDID_FIRST..=JRDID_LAST if off.is_multiple_of(4) => {
                self.jrdid[((off - JRDID_FIRST) / 4) as usize]
            }
            JRSTARTR => self.jrstartr,
            MPMR_FIRST..=MPMR_LAST => {
                let k = ((off - MPMR_FIRST) / 4) as usize;
                // Readback is byte-reversed relative to the write (`docs/caam.md`).
                u32::from_be_bytes([
                    self.mpmr[4 * k],
                    self.mpmr[4 * k + 1],
                    self.mpmr[4 * k + 2],
                    self.mpmr[4 * k + 3],
                ])
            }
            RTMCTL..=TRNG_LAST => self.trng[((off - RTMCTL) / 4) as usize],
            RDSTA => self.rdsta,
            CRNR_MS | CRNR_LS => 0,
            // RNG_I = 2 state handles; PS (64-bit pointers) not offered;
            // VIRT_EN_INCL: virtualisation exists, off unless SCFGR.VIRT_EN.
            CTPR_MS => (2 << 8) | CTPR_MS_VIRT_EN_INCL,
            // SPLIT_KEY | BLOB.
            CTPR_LS => (1 << 14) | (1 << 1),
            FAR_MS..=FADR => 0,
            CSTA => {
                let moo = match (self.fault, fuses.open) {
                    (Some(Fault::SecurityFail), _) => 3,
                    (_, true) => 0,
                    (_, false) => 1,
                };
                let trng_idle = if self.trng[0] & RTMCTL_PRGM == 0 {
                    1 << 2
                } else {
                    0
                };
                (moo << 8) | trng_idle | (1 << 1)
            }
            CCBVID => 9 << 24,
            CHAVID_MS => 0,
            // RNG VID 4, MD VID 0 (LP256), AES VID 4.
            CHAVID_LS => (4 << 16) | 4,
            // 3 job rings, 1 DECO.
            CHANUM_MS => (3 << 28) | (1 << 24),
            // 1 PKHA, 1 RNG, 1 MDHA, 1 AES.
            CHANUM_LS => (1 << 28) | (1 << 16) | (1 << 12) | 1,
            // IP ID 0x0A16, major 4, minor 1 ("device ID 0x0a16040100000000").
            SECVID_MS => 0x0A16_0401,
            SECVID_LS => 0,
            _ => return Err(err_unimpl(off, false)),
        })
    }

    fn ctrl_write(&mut self, off: u32, v: u32) -> Result<(), EmuError> {
        match off {
            MCFGR => {
                // MCFGR.PS is stored (a driver must refuse it); while it is
                // set the model runs no job (64-bit pointers and 12-byte
                // output entries are not modelled).
                if v & (MCFGR_SWRST | MCFGR_DMA_RST) != 0 {
                    return Err(EmuError::Unsupported {
                        block: BLOCK,
                        offset: off,
                        what: "software/DMA reset",
                    });
                }
                self.mcfgr = v;
            }
            SCFGR => {
                // MPCURVE is set by the boot ROM (or MPPRIVK) and read-only
                // to software; MPMRL and every PRIBLOB bit are sticky until
                // power-on (OP-TEE only ever raises PRIBLOB).
                let keep = self.scfgr & (0xF << 28 | SCFGR_MPMRL | SCFGR_PRIBLOB);
                self.scfgr = (v & !(0xF << 28)) | keep;
            }
            JRDID_FIRST..=JRDID_LAST if off.is_multiple_of(4) => {
                self.jrdid[((off - JRDID_FIRST) / 4) as usize] = v;
            }
            JRSTARTR => self.jrstartr = v,
            MPMR_FIRST..=MPMR_LAST => {
                // Writes after SCFGR.MPMRL is set have no effect, as on silicon.
                if self.scfgr & SCFGR_MPMRL == 0 {
                    let k = ((off - MPMR_FIRST) / 4) as usize;
                    self.mpmr[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            RTMCTL => {
                // U-Boot and Linux never reprogram the TRNG while a state
                // handle is live ("do not change the TRNG parameters"); the
                // model refuses it so a driver that does is caught.
                if v & RTMCTL_PRGM != 0 && self.trng[0] & RTMCTL_PRGM == 0 && self.rdsta & 3 != 0 {
                    return Err(EmuError::Unsupported {
                        block: BLOCK,
                        offset: off,
                        what: "TRNG program mode while an RNG state handle is instantiated",
                    });
                }
                self.trng[0] = v;
            }
            0x604..=TRNG_LAST => {
                if self.trng[0] & RTMCTL_PRGM == 0 {
                    return Err(EmuError::Unsupported {
                        block: BLOCK,
                        offset: off,
                        what: "TRNG register write outside program mode (RTMCTL.PRGM = 0)",
                    });
                }
                self.trng[((off - RTMCTL) / 4) as usize] = v;
            }
            RDSTA
            | CRNR_MS
            | CRNR_LS
            | CTPR_MS
            | CTPR_LS
            | FAR_MS..=FADR
            | CSTA
            | CCBVID
            | CHAVID_MS
            | CHAVID_LS
            | CHANUM_MS
            | CHANUM_LS
            | SECVID_MS
            | SECVID_LS => {
                return Err(read_only(off));
            }
            _ => return Err(err_unimpl(off, true)),
        }
        Ok(())
    }

    fn jr_read(&self, r: usize, off: u32, abs: u32) -> Result<u32, EmuError> {
        let jr = &self.rings[r];
        Ok(match off {
            IRBAR_HI => jr.irba_hi,
            IRBAR_LO => jr.irba,
            IRSR => jr.irs,
            IRSAR => jr.irs.saturating_sub(jr.pending),
            IRJAR => 0,
            ORBAR_HI => jr.orba_hi,
            ORBAR_LO => jr.orba,
            ORSR => jr.ors,
            ORJRR => 0,
            ORSFR => jr.or_full,
            JRSTAR => jr.jrstar,
            JRINTR => jr.jrintr,
            JRCFGR_MS => jr.cfg_ms,
            JRCFGR_LS => jr.cfg_ls,
            IRRIR => jr.ir_read * 4,
            ORWIR => jr.or_write * 8,
            JRCR => jr.jrcr,
            _ => return Err(err_unimpl(abs, false)),
        })
    }

    fn jr_write(
        &mut self,
        r: usize,
        off: u32,
        abs: u32,
        v: u32,
        mem: &mut impl BusMemory,
        fuses: &FuseFile,
    ) -> Result<(), EmuError> {
        let jr = &mut self.rings[r];
        let unsupported = |what| EmuError::Unsupported {
            block: BLOCK,
            offset: abs,
            what,
        };
        match off {
            IRBAR_HI | ORBAR_HI if v != 0 => {
                return Err(unsupported("ring base above 4 GiB (32-bit pointers only)"));
            }
            IRBAR_HI => jr.irba_hi = v,
            IRBAR_LO => jr.irba = v,
            ORBAR_HI => jr.orba_hi = v,
            ORBAR_LO => jr.orba = v,
            IRSR => jr.irs = v & RING_SIZE_MASK,
            ORSR => jr.ors = v & RING_SIZE_MASK,
            IRJAR => {
                if jr.failed {
                    return Ok(());
                }
                if jr.irs == 0 || jr.ors == 0 || v > jr.irs.saturating_sub(jr.pending) {
                    jr.jrintr |= JRINTR_JRE | (ERR_TYPE_ADD_OFL << 8);
                    jr.failed = true;
                    return Ok(());
                }
                jr.pending += v;
                self.process(r, mem, fuses);
            }
            ORJRR => {
                if v > jr.or_full {
                    jr.jrintr |= JRINTR_JRE | (ERR_TYPE_REMOVE_OFL << 8);
                    jr.failed = true;
                    return Ok(());
                }
                jr.or_full -= v;
                self.process(r, mem, fuses);
            }
            JRINTR => {
                // JRI and JRE are write-1-to-clear; writing HALT = 10b resumes.
                jr.jrintr &= !(v & (JRINTR_JRI | JRINTR_JRE));
                if v & JRINTR_HALT_MASK == JRINTR_HALT_DONE && jr.jrcr == 0 {
                    jr.jrintr &= !JRINTR_HALT_MASK;
                }
            }
            JRCFGR_MS => jr.cfg_ms = v,
            JRCFGR_LS => jr.cfg_ls = v,
            JRCR => match v {
                0 => {}
                1 if jr.jrcr == 0 => {
                    // Step 1: flush. No job is ever in flight in the model,
                    // so the halt completes at once.
                    jr.jrcr = 1;
                    jr.jrintr = (jr.jrintr & !JRINTR_HALT_MASK) | JRINTR_HALT_DONE;
                }
                1 => {
                    // Step 2: reset the ring state; base and size registers
                    // keep their values.
                    *jr = JobRing {
                        irba: jr.irba,
                        irba_hi: jr.irba_hi,
                        orba: jr.orba,
                        orba_hi: jr.orba_hi,
                        irs: jr.irs,
                        ors: jr.ors,
                        cfg_ms: jr.cfg_ms,
                        cfg_ls: jr.cfg_ls,
                        ..JobRing::default()
                    };
                }
                _ => return Err(unsupported("JRCR bits other than RESET")),
            },
            IRSAR | ORSFR | JRSTAR | IRRIR | ORWIR => return Err(read_only(abs)),
            _ => return Err(err_unimpl(abs, true)),
        }
        Ok(())
    }

    /// Runs the jobs waiting in ring `r` while the output ring has room.
    fn process(&mut self, r: usize, mem: &mut impl BusMemory, fuses: &FuseFile) {
        // With virtualisation on, a ring runs only once started in JRSTARTR.
        let started = self.scfgr & SCFGR_VIRT_EN == 0 || self.jrstartr & (1 << r) != 0;
        while !self.stalled && started && self.mcfgr & MCFGR_PS == 0 {
            let jr = self.rings[r];
            if jr.failed || jr.pending == 0 || jr.or_full >= jr.ors || jr.jrcr != 0 {
                return;
            }
            let mut entry = [0u8; 4];
            let in_addr = u64::from(jr.irba) + u64::from(jr.ir_read) * 4;
            if mem.read(in_addr, &mut entry).is_err() {
                let jr = &mut self.rings[r];
                jr.jrintr |= JRINTR_JRE | (ERR_TYPE_BAD_INPADDR << 8);
                jr.failed = true;
                return;
            }
            let desc = u32::from_le_bytes(entry);
            let n = self.jobs.saturating_add(1);
            let st = match self.fault {
                Some(Fault::JobTimeout(k)) if u32::from(k) == n => {
                    // The job stays in the input ring for good.
                    self.stalled = true;
                    return;
                }
                Some(Fault::DecoError(k)) if u32::from(k) == n => {
                    self.jobs = n;
                    status::deco(0, status::DECO_DMA)
                }
                _ => {
                    self.jobs = n;
                    self.run_job(desc, mem, fuses)
                }
            };
            let mut out = [0u8; 8];
            out[..4].copy_from_slice(&desc.to_le_bytes());
            out[4..].copy_from_slice(&st.to_le_bytes());
            let out_addr = u64::from(jr.orba) + u64::from(jr.or_write) * 8;
            let jr = &mut self.rings[r];
            if mem.write(out_addr, &out).is_err() {
                jr.jrintr |= JRINTR_JRE | (ERR_TYPE_BAD_OUTADDR << 8);
                jr.failed = true;
                return;
            }
            jr.ir_read = (jr.ir_read + 1) % jr.irs;
            jr.or_write = (jr.or_write + 1) % jr.ors;
            jr.pending -= 1;
            jr.or_full += 1;
            jr.jrstar = st;
            jr.jrintr |= JRINTR_JRI;
        }
    }

    /// Interprets the job descriptor at `addr` and returns its status word.
    fn run_job(&mut self, addr: u32, mem: &mut impl BusMemory, fuses: &FuseFile) -> u32 {
        let mut raw = [0u8; MAX_DESC_WORDS * 4];
        let base = u64::from(addr);
        if mem.read(base, &mut raw[..4]).is_err() {
            return status::deco(0, status::DECO_DMA);
        }
        let hdr = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let len = (hdr & 0x7F) as usize;
        let start = ((hdr >> 16) & 0x3F) as usize;
        if hdr >> 27 != 0x16 {
            return status::deco(0, status::DECO_HEADER);
        }
        if hdr & (1 << 23) == 0 || hdr & (1 << 15) != 0 || hdr & (1 << 12) != 0 {
            // ONE must be 1, ZRO must be 0; shared descriptors not modelled.
            return status::deco(0, status::DECO_HEADER);
        }
        // START = 0: no PDB, execution begins after the header.
        if len == 0 || len > MAX_DESC_WORDS || start > len {
            return status::deco(0, status::DECO_HEADER);
        }
        if hdr & (1 << 24) != 0 {
            return status::deco(0, status::DECO_DNR);
        }
        if mem.read(base + 4, &mut raw[4..len * 4]).is_err() {
            return status::deco(0, status::DECO_DMA);
        }
        let mut words = [0u32; MAX_DESC_WORDS];
        for (w, b) in words.iter_mut().zip(raw.chunks_exact(4)).take(len) {
            *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        let start = start.max(1);
        let mut job = Job {
            words: &words[..len],
            raw: &raw[..len * 4],
            pdb: &words[1..start],
            key_mod: None,
            seq_in: None,
            seq_out: None,
            rng_ready: false,
        };
        let st = self.execute(&mut job, start, mem, fuses);
        if let Some((k, _)) = job.key_mod.as_mut() {
            k.zeroize();
        }
        raw.zeroize();
        st
    }

    fn execute(
        &mut self,
        job: &mut Job<'_>,
        start: usize,
        mem: &mut impl BusMemory,
        fuses: &FuseFile,
    ) -> u32 {
        let len = job.words.len();
        let mut pc = start;
        while pc < len {
            let w = job.words[pc];
            let idx = u8::try_from(pc).unwrap_or(0xFF);
            let deco = |code| status::deco(idx, code);
            let arg = |n: usize| job.words.get(pc + n).copied();
            match w >> 27 {
                // KEY
                0x00 => {
                    let class = (w >> 25) & 3;
                    let klen = (w & 0x3FF) as usize;
                    let imm = w & (1 << 23) != 0;
                    // Anything but a plain class-2 key of 1..=16 bytes (the
                    // blob key modifier; Linux `CAAM_BLOB_KEYMOD_LENGTH`) is
                    // not modelled.
                    if class != 2 || !(1..=16).contains(&klen) || w & 0x01F7_FC00 & !(1 << 23) != 0
                    {
                        return deco(status::DECO_INVALID_KEY);
                    }
                    let mut km = [0u8; 16];
                    if imm {
                        // Immediate data is padded to whole words.
                        let at = (pc + 1) * 4;
                        let Some(src) = job.raw.get(at..at + klen) else {
                            return deco(status::DECO_INVALID_KEY);
                        };
                        km[..klen].copy_from_slice(src);
                        pc += 1 + klen.div_ceil(4);
                    } else {
                        let Some(p) = arg(1) else {
                            return deco(status::DECO_INVALID_KEY);
                        };
                        if mem.read(u64::from(p), &mut km[..klen]).is_err() {
                            return deco(status::DECO_DMA);
                        }
                        pc += 2;
                    }
                    job.key_mod = Some((km, klen));
                    continue;
                }
                // LOAD: only the immediate clear-written write UB/OP-TEE use.
                0x02 => {
                    let imm = w & (1 << 23) != 0;
                    let dst = (w >> 16) & 0x7F;
                    if !imm || dst != 0x08 || w & 0xFF != 4 || (w >> 8) & 0xFF != 0 {
                        return deco(status::DECO_INVALID_LOAD);
                    }
                    if arg(1).is_none() {
                        return deco(status::DECO_INVALID_LOAD);
                    }
                    // Clears the done/mode state: nothing further to model.
                    pc += 2;
                    continue;
                }
                // FIFO STORE of RNG data.
                0x0C => {
                    let ftype = (w >> 16) & 0x3F;
                    let ext = w & (1 << 22) != 0;
                    if ftype != 0x34 || w & (1 << 23) != 0 || (w >> 25) & 3 != 0 {
                        return deco(status::DECO_INVALID_FIFO_STORE);
                    }
                    let (ptr, n, adv) = if ext {
                        match (arg(1), arg(2)) {
                            (Some(p), Some(l)) if w & 0xFFFF == 0 => (p, l, 3),
                            _ => return deco(status::DECO_INVALID_FIFO_STORE),
                        }
                    } else {
                        match arg(1) {
                            Some(p) => (p, w & 0xFFFF, 2),
                            None => return deco(status::DECO_INVALID_FIFO_STORE),
                        }
                    };
                    if !job.rng_ready {
                        return deco(status::DECO_INVALID_FIFO_STORE);
                    }
                    if let Err(code) = self.rng_store(mem, ptr, n) {
                        return deco(code);
                    }
                    pc += adv;
                    continue;
                }
                // OPERATION
                0x10 => {
                    let st = self.operation(job, w, idx, mem, fuses);
                    if st != 0 {
                        return st;
                    }
                    pc += 1;
                    continue;
                }
                // JUMP
                0x14 => {
                    let jtype = (w >> 20) & 0xF;
                    let cond = (w >> 8) & 0xFF;
                    let jsl = w & (1 << 24) != 0;
                    if cond != 0 || jsl || (w >> 16) & 3 != 0 {
                        return deco(status::DECO_INVALID_JUMP);
                    }
                    match jtype {
                        0 => {
                            let off = i64::from((w & 0xFF) as u8 as i8);
                            let target = pc as i64 + off;
                            if off == 0 || target < start as i64 || target > len as i64 {
                                return deco(status::DECO_INVALID_JUMP);
                            }
                            pc = usize::try_from(target).unwrap_or(len);
                        }
                        8 => return status::HALT_CC,
                        0xC => {
                            return (status::SSRC_JUMP_HALT_USER << status::SSRC_SHIFT)
                                | (w & 0xFF);
                        }
                        _ => return deco(status::DECO_INVALID_JUMP),
                    }
                    continue;
                }
                // SEQ IN PTR / SEQ OUT PTR
                0x1E | 0x1F => {
                    let is_in = w >> 27 == 0x1E;
                    // Supported flags: EXT (b22) only.
                    let other = if is_in { 0x07B0_0000 } else { 0x01B0_0000 };
                    if w & other != 0 || (w >> 25) & 3 != 0 && !is_in {
                        return deco(status::DECO_INVALID_SEQUENCE);
                    }
                    let ext = w & (1 << 22) != 0;
                    let (ptr, n, adv) = if ext {
                        match (arg(1), arg(2)) {
                            (Some(p), Some(l)) if w & 0xFFFF == 0 => (p, l, 3),
                            _ => return deco(status::DECO_INVALID_SEQUENCE),
                        }
                    } else {
                        match arg(1) {
                            Some(p) => (p, w & 0xFFFF, 2),
                            None => return deco(status::DECO_INVALID_SEQUENCE),
                        }
                    };
                    if is_in {
                        job.seq_in = Some((ptr, n));
                    } else {
                        job.seq_out = Some((ptr, n));
                    }
                    pc += adv;
                    continue;
                }
                0x16 | 0x17 => return deco(status::DECO_HEADER),
                _ => return deco(status::DECO_INVALID_CMD),
            }
        }
        0
    }

    fn rng_store(&mut self, mem: &mut impl BusMemory, ptr: u32, n: u32) -> Result<(), u8> {
        let mut buf = [0u8; 64];
        let mut done = 0u32;
        while done < n {
            let k = (n - done).min(64) as usize;
            self.drbg.fill(&mut buf[..k]);
            let r = mem.write(u64::from(ptr) + u64::from(done), &buf[..k]);
            buf.zeroize();
            r.map_err(|_| status::DECO_DMA)?;
            done += k as u32;
        }
        Ok(())
    }

    fn operation(
        &mut self,
        job: &mut Job<'_>,
        w: u32,
        idx: u8,
        mem: &mut impl BusMemory,
        fuses: &FuseFile,
    ) -> u32 {
        let deco = |code| status::deco(idx, code);
        let optype = (w >> 24) & 7;
        match optype {
            // Class-1 algorithm: only the RNG.
            2 => {
                if (w >> 16) & 0xFF != 0x50 {
                    return deco(status::DECO_INVALID_OPERATION);
                }
                self.rng_op(job, w, idx)
            }
            0 | 6 | 7 => {
                let protid = (w >> 16) & 0xFF;
                let info = w & 0xFFFF;
                match (optype, protid) {
                    (6, 0x14) => self.mp_pubkey(job, info, idx, mem, fuses),
                    (6, 0x15) => self.mp_sign(job, info, idx, mem, fuses),
                    (7, 0x14) => self.mp_privkey_gen(job, info, idx, mem),
                    (7, 0x0D) | (6, 0x0D) => self.blob(job, optype == 7, info, idx, mem, fuses),
                    _ => deco(status::DECO_UNDEFINED_PROTOCOL),
                }
            }
            _ => deco(status::DECO_INVALID_OPERATION),
        }
    }

    fn rng_op(&mut self, job: &mut Job<'_>, w: u32, idx: u8) -> u32 {
        let aai = (w >> 4) & 0x1FF;
        let as_ = (w >> 2) & 3;
        let pr = w & 2 != 0;
        let sh = (aai & 0xF) as usize;
        let sk = aai & 0x100 != 0;
        if sh > 1 || aai & !0x10F != 0 || w & 1 != 0 {
            return status::deco(idx, status::DECO_INVALID_OPERATION);
        }
        let if_bit = 1u32 << sh;
        let pr_bit = 1u32 << (4 + sh);
        match as_ {
            // Generate (or secure-key generation with AAI.SK).
            0 => {
                if self.rdsta & if_bit == 0 {
                    return status::ccb(idx, status::CHA_RNG, status::ERR_RNG_NOT_INSTANTIATED);
                }
                if sk {
                    // JDKEK/TDKEK/TDSK: the model has no use for them beyond
                    // reporting that they exist.
                    self.rdsta |= RDSTA_SKVN;
                }
                job.rng_ready = true;
                0
            }
            // Instantiate.
            1 => {
                if sk {
                    return status::deco(idx, status::DECO_INVALID_OPERATION);
                }
                let ent_dly = self.trng[((RTSDCTL - RTMCTL) / 4) as usize] >> 16;
                if self.rdsta & if_bit != 0
                    || self.fault == Some(Fault::RngNotInstantiable)
                    || ent_dly < self.rng_min_ent_dly
                {
                    return status::ccb(idx, status::CHA_RNG, status::ERR_RNG_INSTANTIATE);
                }
                self.rdsta |= if_bit;
                if pr {
                    self.rdsta |= pr_bit;
                }
                0
            }
            // Uninstantiate (INITFINAL).
            3 => {
                if self.rdsta & if_bit == 0 {
                    return status::ccb(idx, status::CHA_RNG, status::ERR_RNG_NOT_INSTANTIATED);
                }
                self.rdsta &= !(if_bit | pr_bit);
                0
            }
            _ => status::deco(idx, status::DECO_INVALID_OPERATION),
        }
    }

    fn check_curve(&self, csel_word: u32, idx: u8) -> Result<(), u32> {
        // CSEL at 20:17; bit 31..28 are SGT flags (not modelled); nothing else.
        let csel = (csel_word >> 17) & 0xF;
        if csel_word & !(0xF << 17) != 0 || csel != MPCURVE_P256 || self.scfgr >> 28 != csel {
            return Err(status::deco(idx, status::DECO_PDB));
        }
        Ok(())
    }

    fn mp_pubkey(
        &mut self,
        job: &mut Job<'_>,
        info: u32,
        idx: u8,
        mem: &mut impl BusMemory,
        fuses: &FuseFile,
    ) -> u32 {
        // PDB {csel, ptr} (U-Boot) or {csel, ptr, length} (OP-TEE).
        let pdb = job.pdb;
        if info != 0 || !(pdb.len() == 2 || pdb.len() == 3) {
            return status::deco(idx, status::DECO_PDB);
        }
        if let Err(s) = self.check_curve(pdb[0], idx) {
            return s;
        }
        if pdb.len() == 3 && pdb[2] < 64 {
            return status::deco(idx, status::DECO_PDB);
        }
        let key = self.mp_key(fuses);
        let point = key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        if mem.write(u64::from(pdb[1]), &bytes[1..65]).is_err() {
            return status::deco(idx, status::DECO_DMA);
        }
        0
    }

    fn mp_sign(
        &mut self,
        job: &mut Job<'_>,
        info: u32,
        idx: u8,
        mem: &mut impl BusMemory,
        fuses: &FuseFile,
    ) -> u32 {
        // PDB {csel, msg, mes_rep, c, d, msg_len}.
        let pdb = job.pdb;
        if info != 0 || pdb.len() != 6 {
            return status::deco(idx, status::DECO_PDB);
        }
        if let Err(s) = self.check_curve(pdb[0], idx) {
            return s;
        }
        let (msg, hash_out, c_out, d_out, msg_len) = (pdb[1], pdb[2], pdb[3], pdb[4], pdb[5]);
        // Model's choice (silicon's answer is not public): an empty message
        // is refused as an invalid PDB setting.
        if msg_len == 0 {
            return status::deco(idx, status::DECO_PDB);
        }
        // ECDSA needs a fresh per-signature secret from the RNG.
        if self.rdsta & 1 == 0 {
            return status::ccb(idx, status::CHA_RNG, status::ERR_RNG_NOT_INSTANTIATED);
        }
        let mut h = Sha256::new();
        h.update(self.mpmr);
        let mut buf = [0u8; CHUNK];
        let mut done = 0u32;
        while done < msg_len {
            let k = (msg_len - done).min(CHUNK as u32) as usize;
            if mem
                .read(u64::from(msg) + u64::from(done), &mut buf[..k])
                .is_err()
            {
                return status::deco(idx, status::DECO_DMA);
            }
            h.update(&buf[..k]);
            done += k as u32;
        }
        let digest: [u8; 32] = h.finalize().into();
        let key = self.mp_key(fuses);
        let Ok(sig) = PrehashSigner::<p256::ecdsa::Signature>::sign_prehash(&key, &digest) else {
            return status::deco(idx, status::DECO_PDB);
        };
        let sb = sig.to_bytes();
        for (addr, data) in [
            (hash_out, &digest[..]),
            (c_out, &sb[..32]),
            (d_out, &sb[32..]),
        ] {
            if mem.write(u64::from(addr), data).is_err() {
                return status::deco(idx, status::DECO_DMA);
            }
        }
        0
    }

    /// The MP key: the boot ROM's, or the one MPPRIVK generated.
    fn mp_key(&self, fuses: &FuseFile) -> p256::ecdsa::SigningKey {
        mp_signing_key(
            &fuses.family_secret,
            &fuses.srk_hash,
            !fuses.open,
            self.mpprivk.as_ref(),
        )
    }

    fn mp_privkey_gen(
        &mut self,
        job: &mut Job<'_>,
        info: u32,
        idx: u8,
        mem: &mut impl BusMemory,
    ) -> u32 {
        // PDB {csel, passphrase ptr, passphrase len} (OP-TEE `do_mppriv_gen`).
        let pdb = job.pdb;
        if info != 0 || pdb.len() != 3 {
            return status::deco(idx, status::DECO_PDB);
        }
        // Once per power cycle: with a key present (MPCURVE set by the ROM
        // or by an earlier MPPRIVK) the operation is refused.
        if self.scfgr >> 28 != 0 {
            return status::deco(idx, status::DECO_INVALID_OPERATION);
        }
        let csel = (pdb[0] >> 17) & 0xF;
        let (ptr, len) = (pdb[1], pdb[2]);
        if pdb[0] & !(0xF << 17) != 0 || csel != MPCURVE_P256 || len == 0 || len > 1024 {
            return status::deco(idx, status::DECO_PDB);
        }
        let mut h = Sha256::new();
        let mut buf = [0u8; CHUNK];
        let mut done = 0u32;
        while done < len {
            let k = (len - done).min(CHUNK as u32) as usize;
            if mem
                .read(u64::from(ptr) + u64::from(done), &mut buf[..k])
                .is_err()
            {
                return status::deco(idx, status::DECO_DMA);
            }
            h.update(&buf[..k]);
            done += k as u32;
        }
        self.mpprivk = Some(h.finalize().into());
        self.scfgr |= csel << 28;
        0
    }

    /// The blob KEK from the OTPMK, the key modifier (its length included:
    /// the key register holds the size, so "SECURE_KEY" is not its padding
    /// to 16 bytes), the security state and PRIBLOB.
    fn bkek(&self, fuses: &FuseFile, key_mod: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut k = Zeroizing::new([0u8; 32]);
        let state = [u8::from(!fuses.open), (self.scfgr & 3) as u8];
        let len = [u8::try_from(key_mod.len()).unwrap_or(0)];
        hkdf(
            b"imx-emu blob KEK v2",
            &fuses.otpmk,
            &[&len, key_mod, &state],
            &mut *k,
        );
        k
    }

    fn blob(
        &mut self,
        job: &mut Job<'_>,
        encap: bool,
        info: u32,
        idx: u8,
        mem: &mut impl BusMemory,
        fuses: &FuseFile,
    ) -> u32 {
        let deco = |code| status::deco(idx, code);
        if info != 0 {
            // Black, secure-memory, master-key-verification and test blobs
            // are not modelled.
            return deco(status::DECO_BLOB_MODE);
        }
        if !job.pdb.is_empty() {
            return deco(status::DECO_PDB);
        }
        let Some(key_mod) = job.key_mod else {
            return deco(status::DECO_INVALID_OPERATION);
        };
        let (Some((in_ptr, in_len)), Some((out_ptr, out_len))) = (job.seq_in, job.seq_out) else {
            return deco(status::DECO_INVALID_SEQUENCE);
        };
        let (in_ptr, out_ptr) = (u64::from(in_ptr), u64::from(out_ptr));
        let kek = self.bkek(fuses, &key_mod.0[..key_mod.1]);
        let nonce = [0u8; 12];
        let mut buf = Zeroizing::new([0u8; CHUNK]);
        if encap {
            // The blob key comes from the RNG.
            if self.rdsta & 1 == 0 {
                return status::ccb(idx, status::CHA_RNG, status::ERR_RNG_NOT_INSTANTIATED);
            }
            let Some(need) = in_len.checked_add(48) else {
                return deco(status::DECO_INVALID_SEQUENCE);
            };
            if out_len < need {
                return deco(status::DECO_INVALID_SEQUENCE);
            }
            let mut bk = Zeroizing::new([0u8; 32]);
            self.drbg.fill(&mut *bk);
            let mut ccm = CcmStream::new(&bk, &nonce, in_len);
            // Pass 1: MAC over the plaintext.
            let mut done = 0u32;
            while done < in_len {
                let k = (in_len - done).min(CHUNK as u32) as usize;
                if mem.read(in_ptr + u64::from(done), &mut buf[..k]).is_err() {
                    return deco(status::DECO_DMA);
                }
                ccm.mac_update(&buf[..k]);
                done += k as u32;
            }
            let tag = ccm.tag();
            // Pass 2: encrypt into the output after the wrapped key.
            let mut done = 0u32;
            while done < in_len {
                let k = (in_len - done).min(CHUNK as u32) as usize;
                if mem.read(in_ptr + u64::from(done), &mut buf[..k]).is_err() {
                    return deco(status::DECO_DMA);
                }
                ccm.ctr_apply(&mut buf[..k]);
                if mem
                    .write(out_ptr + 32 + u64::from(done), &buf[..k])
                    .is_err()
                {
                    return deco(status::DECO_DMA);
                }
                done += k as u32;
            }
            let mut wrapped = *bk;
            wrap_key(&kek, &mut wrapped, true);
            let tail = out_ptr + 32 + u64::from(in_len);
            if mem.write(out_ptr, &wrapped).is_err() || mem.write(tail, &tag).is_err() {
                return deco(status::DECO_DMA);
            }
            0
        } else {
            if in_len < 48 {
                return deco(status::DECO_INVALID_SEQUENCE);
            }
            let plain_len = in_len - 48;
            if out_len < plain_len {
                return deco(status::DECO_INVALID_SEQUENCE);
            }
            let mut bk = Zeroizing::new([0u8; 32]);
            let mut tag = [0u8; 16];
            if mem.read(in_ptr, &mut *bk).is_err()
                || mem
                    .read(in_ptr + 32 + u64::from(plain_len), &mut tag)
                    .is_err()
            {
                return deco(status::DECO_DMA);
            }
            wrap_key(&kek, &mut bk, false);
            self.decaps = self.decaps.saturating_add(1);
            let forced_icv =
                matches!(self.fault, Some(Fault::IcvFailure(k)) if u32::from(k) == self.decaps);
            let mut ccm = CcmStream::new(&bk, &nonce, plain_len);
            // Pass 1: decrypt and MAC without releasing any plaintext.
            let mut done = 0u32;
            while done < plain_len {
                let k = (plain_len - done).min(CHUNK as u32) as usize;
                if mem
                    .read(in_ptr + 32 + u64::from(done), &mut buf[..k])
                    .is_err()
                {
                    return deco(status::DECO_DMA);
                }
                ccm.ctr_apply(&mut buf[..k]);
                ccm.mac_update(&buf[..k]);
                done += k as u32;
            }
            if !ct_eq(&ccm.tag(), &tag) || forced_icv {
                return status::ccb(idx, status::CHA_AES, status::ERR_ICV);
            }
            // Pass 2: decrypt again into the output.
            ccm.ctr_restart();
            let mut done = 0u32;
            while done < plain_len {
                let k = (plain_len - done).min(CHUNK as u32) as usize;
                if mem
                    .read(in_ptr + 32 + u64::from(done), &mut buf[..k])
                    .is_err()
                {
                    return deco(status::DECO_DMA);
                }
                ccm.ctr_apply(&mut buf[..k]);
                if mem.write(out_ptr + u64::from(done), &buf[..k]).is_err() {
                    return deco(status::DECO_DMA);
                }
                done += k as u32;
            }
            0
        }
    }
}

struct Job<'a> {
    words: &'a [u32],
    raw: &'a [u8],
    pdb: &'a [u32],
    key_mod: Option<([u8; 16], usize)>,
    seq_in: Option<(u32, u32)>,
    seq_out: Option<(u32, u32)>,
    rng_ready: bool,
}
