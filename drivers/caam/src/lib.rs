//! i.MX8M CAAM driver: job ring, RNG, Manufacturing Protection, blobs.
//!
//! The driver owns one job ring (JR1 by default on i.MX8M: JR0 is kept for
//! HAB and OP-TEE takes JR2) and the controller page. It is generic over the
//! platform contract of the `hal` crate, so the same code runs on silicon, on
//! QEMU (where the board traps the CAAM pages into `imx-emu`), and in host
//! tests.
//!
//! DMA: the CAAM uses 32-bit pointers on i.MX8M and is not cache-coherent.
//! Every buffer the CAAM touches lives in a [`DmaMem`] the board places in
//! `.bss` below 4 GiB; caller buffers are copied through its bounce buffers
//! with clean-before / invalidate-after, and bounce copies of plaintext are
//! zeroized (and the zeros cleaned to RAM) after use.
//!
//! Usage: [`Caam::new`], then [`Caam::init`] once, then the operations.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod desc;
#[cfg(any(test, feature = "emulated"))]
pub mod emulated;
mod error;
pub mod regs;

pub use error::{CaamError, deco_error_name};

use core::mem::offset_of;
use hal::{Clock, Dma, RegisterIo};
use regs::{
    CHAVID_LS, CSTA, CTPR_MS, CtrlRegs, JRCFGR_LS, JRCR, JRINTR, JrRegs, MCFGR, RDSTA, RTMCTL,
    RTSDCTL, SCFGR,
};
use zeroize::Zeroize;

/// Entries in each ring (U-Boot's `JR_SIZE`). Only one job is in flight.
pub const RING_ENTRIES: usize = 4;
/// Largest blob payload (plaintext) in bytes.
pub const MAX_BLOB_PAYLOAD: usize = 64 * 1024;
/// Bytes a blob adds to its payload.
pub const BLOB_OVERHEAD: usize = desc::BLOB_OVERHEAD as usize;
/// Largest message `mp_sign` accepts (OP-TEE's `MP_SIGN_MAX_MSG_SIZE`).
pub const MAX_MP_MESSAGE: usize = 4096;
/// Size of each bounce buffer (≥ 64 KiB + 48, a whole number of lines).
pub const BOUNCE_LEN: usize = MAX_BLOB_PAYLOAD + 64;
/// Job completion timeout.
pub const JOB_TIMEOUT_US: u64 = 1_000_000;
/// Job ring reset step timeout.
pub const RESET_TIMEOUT_US: u64 = 100_000;
/// First TRNG entropy delay (U-Boot/Linux `RTSDCTL_ENT_DLY_MIN`).
pub const ENT_DLY_MIN: u32 = 3200;
/// Entropy delay step between instantiation attempts (U-Boot/Linux).
pub const ENT_DLY_STEP: u32 = 400;
/// Entropy delay bound (`RTSDCTL_ENT_DLY_MAX`): no attempt at or above it.
pub const ENT_DLY_MAX: u32 = 12800;
/// SECVID_MS.IPID of the i.MX8M CAAM.
pub const CAAM_IP_ID: u32 = 0x0A16;
/// SECVID_MS in a job ring page (the controller page's alias at 0xFF8).
const JR_ALIAS_SECVID_MS: usize = 0xFF8;
/// RDSTA.IF0 | RDSTA.IF1.
const RDSTA_HANDLES: u32 = 0b11;
/// JRnDID_MS.TZ_OWN (U-Boot `jr.h` `JRDID_MS_TZ_OWN`).
const JRDID_MS_TZ_OWN: u32 = 1 << 15;

/// Why an instantiation round did not finish.
enum Retry {
    /// A handle is still not live: try again with another entropy delay.
    Again { handle: u8 },
    /// The ring failed: stop.
    Fatal(CaamError),
}

/// A cache-line aligned, cache-line padded piece of [`DmaMem`].
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Line<T>(T);

/// Every buffer the CAAM reads or writes. The board places one in `.bss`
/// (below 4 GiB) and hands `&'static mut` to [`Caam::new`]. Each part is on
/// its own cache lines so that cache maintenance never touches other data.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct DmaMem {
    input_ring: Line<[u32; RING_ENTRIES]>,
    output_ring: Line<[u32; 2 * RING_ENTRIES]>,
    desc: Line<[u32; 16]>,
    key_mod: Line<[u8; 16]>,
    small_out: Line<[u8; 128]>,
    bounce_in: Line<[u8; BOUNCE_LEN]>,
    bounce_out: Line<[u8; BOUNCE_LEN]>,
}

impl DmaMem {
    /// All-zero buffers (a `.bss`-friendly constant).
    pub const fn new() -> Self {
        Self {
            input_ring: Line([0; RING_ENTRIES]),
            output_ring: Line([0; 2 * RING_ENTRIES]),
            desc: Line([0; 16]),
            key_mod: Line([0; 16]),
            small_out: Line([0; 128]),
            bounce_in: Line([0; BOUNCE_LEN]),
            bounce_out: Line([0; BOUNCE_LEN]),
        }
    }
}

impl Default for DmaMem {
    fn default() -> Self {
        Self::new()
    }
}

/// CAAM mode of operation (CSTA.MOO), i.e. the chip's security state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeOfOperation {
    /// Open part (or failed secure boot): the CAAM uses test keys.
    NonSecure,
    /// Closed part, secure boot passed.
    Secure,
    /// Trusted.
    Trusted,
    /// Fail state.
    Fail,
}

impl core::fmt::Display for ModeOfOperation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NonSecure => "non-secure",
            Self::Secure => "secure",
            Self::Trusted => "trusted",
            Self::Fail => "fail",
        })
    }
}

/// What `caam info` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaamInfo {
    /// CAAM era (CCBVID.ERA), 9 on i.MX8M.
    pub era: u8,
    /// IP id (SECVID_MS.IPID), 0x0A16.
    pub ip_id: u16,
    /// Major revision (SECVID_MS.MAJ_REV).
    pub major_rev: u8,
    /// Number of job rings (CHANUM_MS.JRNUM).
    pub job_rings: u8,
    /// The job ring this driver uses.
    pub ring: u8,
    /// Whether `init()` completed and the ring is usable.
    pub initialised: bool,
    /// Raw RDSTA.
    pub rdsta: u32,
    /// RNG state handle 0 instantiated.
    pub rng_sh0: bool,
    /// RNG state handle 1 instantiated.
    pub rng_sh1: bool,
    /// JDKEK/TDKEK/TDSK generated.
    pub secure_keys: bool,
    /// CSTA.MOO.
    pub security: ModeOfOperation,
    /// SCFGR.MPCURVE (3 = P-256, 0 = no MP key).
    pub mp_curve: u8,
    /// SCFGR.MPMRL.
    pub mpmr_locked: bool,
}

/// An MP signature as U-Boot prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpSignature {
    /// Message representative: SHA-256(MPMR || message).
    pub mes_rep: [u8; 32],
    /// ECDSA r, big-endian.
    pub c: [u8; 32],
    /// ECDSA s, big-endian.
    pub d: [u8; 32],
}

/// The CAAM driver over one job ring.
pub struct Caam<R: RegisterIo, D: Dma, C: Clock> {
    ctrl: R,
    jr: R,
    jr_index: u8,
    dma: D,
    clock: C,
    mem: &'static mut DmaMem,
    ready: bool,
    /// Why the last `init` failed, if it did.
    init_error: Option<CaamError>,
    head: usize,
    tail: usize,
    /// MPPRIVK ran this power cycle (OP-TEE runs it at most once too).
    mp_key_generated: bool,
}

macro_rules! cregs {
    ($f:ident) => {
        offset_of!(CtrlRegs, $f)
    };
}

macro_rules! jregs {
    ($f:ident) => {
        offset_of!(JrRegs, $f)
    };
}

impl<R: RegisterIo, D: Dma, C: Clock> Caam<R, D, C> {
    /// A driver over the controller page `ctrl` and job ring page `jr`
    /// (ring number `jr_index`, for reporting), DMA through `dma`, timeouts
    /// from `clock`, buffers in `mem`. Touches no register.
    pub fn new(ctrl: R, jr: R, jr_index: u8, dma: D, clock: C, mem: &'static mut DmaMem) -> Self {
        Self {
            ctrl,
            jr,
            jr_index,
            dma,
            clock,
            mem,
            ready: false,
            init_error: None,
            head: 0,
            tail: 0,
            mp_key_generated: false,
        }
    }

    fn bus32(&self, ptr: *const u8, len: usize) -> Result<u32, CaamError> {
        let a = self
            .dma
            .bus_addr(ptr, len)
            .ok_or(CaamError::DmaUnreachable)?;
        let end = a.checked_add(len as u64).ok_or(CaamError::DmaUnreachable)?;
        if end > 1 << 32 {
            return Err(CaamError::DmaUnreachable);
        }
        u32::try_from(a).map_err(|_| CaamError::DmaUnreachable)
    }

    fn wait(
        &self,
        us: u64,
        what: &'static str,
        mut f: impl FnMut(&R) -> bool,
    ) -> Result<(), CaamError> {
        let d = self.clock.deadline_us(us);
        d.poll(&self.clock, || f(&self.jr).then_some(()))
            .ok_or(CaamError::Timeout { what })
    }

    /// Brings the CAAM up as U-Boot's `sec_init` / `jr_init` / `rng_init`
    /// do (sources in `docs/caam.md`):
    ///
    /// 1. checks that the controller page answers (SECVID_MS through page 0
    ///    against its alias in the job ring page): when OP-TEE owns the
    ///    CAAM, page 0 is the secure world's and nothing below can work;
    /// 2. refuses a job ring the secure world still owns (JRnDID_MS.TZ_OWN),
    ///    then reads MCFGR and refuses 64-bit pointers (MCFGR.PS);
    /// 3. starts the ring in JRSTARTR when virtualisation is enabled
    ///    (U-Boot `start_jr`);
    /// 4. resets the job ring (two steps), sets up the rings with 32-bit
    ///    pointers and masks the ring interrupt;
    /// 5. instantiates RNG state handles 0 and 1 (those not live yet),
    ///    programming the TRNG first only when neither handle is live, and
    ///    retrying with the entropy delay raised by 400 from 3200 while it
    ///    stays below 12800 (at most 24 rounds, also when a live handle
    ///    keeps the TRNG as it is); then sets SCFGR.RDBENABLE.
    pub fn init(&mut self) -> Result<(), CaamError> {
        let r = self.bring_up();
        self.init_error = r.err();
        r
    }

    /// Why the last [`init`](Self::init) failed (`None` after a success or
    /// before any): what a caller that finds the CAAM unusable reports.
    pub fn init_error(&self) -> Option<CaamError> {
        self.init_error
    }

    fn bring_up(&mut self) -> Result<(), CaamError> {
        self.ready = false;
        self.check_controller_page()?;
        self.check_ring_owner()?;
        let mcfgr = self.ctrl.read(cregs!(mcfgr));
        if MCFGR::PS.read(mcfgr) != 0 {
            return Err(CaamError::LongPointers { mcfgr });
        }
        self.start_ring();
        let jrcr = jregs!(jrcr);
        let jrintr = jregs!(jrintr);
        self.jr.write(jrcr, JRCR::RESET::SET.value);
        self.wait(RESET_TIMEOUT_US, "job ring flush", |jr| {
            JRINTR::HALT.read(jr.read(jrintr)) == 2
        })?;
        self.jr.write(jrcr, JRCR::RESET::SET.value);
        self.wait(RESET_TIMEOUT_US, "job ring reset", |jr| {
            JRCR::RESET.read(jr.read(jrcr)) == 0
        })?;

        self.mem.input_ring.0 = [0; RING_ENTRIES];
        self.mem.output_ring.0 = [0; 2 * RING_ENTRIES];
        let ir_ptr = self.mem.input_ring.0.as_ptr().cast::<u8>();
        let or_ptr = self.mem.output_ring.0.as_mut_ptr().cast::<u8>();
        let ir = self.bus32(ir_ptr, size_of_val(&self.mem.input_ring.0))?;
        let or = self.bus32(or_ptr, size_of_val(&self.mem.output_ring.0))?;
        self.dma.clean(ir_ptr, size_of_val(&self.mem.input_ring.0));
        self.dma.clean(or_ptr, size_of_val(&self.mem.output_ring.0));
        // The high word first: the write to the low word latches the pair.
        self.jr.write(jregs!(irbar_hi), 0);
        self.jr.write(jregs!(irbar_lo), ir);
        self.jr.write(jregs!(orbar_hi), 0);
        self.jr.write(jregs!(orbar_lo), or);
        let entries = RING_ENTRIES as u32;
        self.jr.write(jregs!(orsr), entries);
        self.jr.write(jregs!(irsr), entries);
        self.jr
            .modify(jregs!(jrcfgr_ls), 0, JRCFGR_LS::IMSK::SET.value);
        self.head = 0;
        self.tail = 0;
        self.ready = true;
        self.rng_init()
    }

    /// SECVID_MS through page 0 and through the job ring page's alias
    /// (JR page + 0xFF8 mirrors controller 0xFF8).
    fn check_controller_page(&self) -> Result<(), CaamError> {
        let is_caam = |v: u32| regs::SECVID_MS::IPID.read(v) == CAAM_IP_ID;
        let secvid = self.ctrl.read(cregs!(secvid_ms));
        if is_caam(secvid) {
            return Ok(());
        }
        if is_caam(self.jr.read(JR_ALIAS_SECVID_MS)) {
            Err(CaamError::ControllerPageRefused { secvid })
        } else {
            Err(CaamError::NoCaam { secvid })
        }
    }

    /// JRnDID_MS of the driver's ring: with TZ_OWN set the ring belongs to
    /// the secure world (U-Boot's SPL sets 0x8011 on i.MX8M for the ring it
    /// uses; TF-A's `imx8m_caam_init` gives the rings back to the
    /// non-secure world with 0x1), and the loader cannot use it.
    fn check_ring_owner(&self) -> Result<(), CaamError> {
        let did = self
            .ctrl
            .read(cregs!(jrdid) + 8 * usize::from(self.jr_index));
        if did & JRDID_MS_TZ_OWN != 0 {
            return Err(CaamError::RingOwnedBySecureWorld {
                ring: self.jr_index,
                jrdid_ms: did,
            });
        }
        Ok(())
    }

    /// U-Boot `start_jr`: with virtualisation (CTPR_MS.VIRT_EN_INCL and
    /// either VIRT_EN_POR or SCFGR.VIRT_EN, or VIRT_EN_POR alone) a job
    /// ring runs only once started in JRSTARTR (bit n = ring n).
    fn start_ring(&self) {
        let ctpr = self.ctrl.read(cregs!(ctpr_ms));
        let por = CTPR_MS::VIRT_EN_POR.read(ctpr) != 0;
        let virt = if CTPR_MS::VIRT_EN_INCL.read(ctpr) != 0 {
            por || SCFGR::VIRT_EN.read(self.ctrl.read(cregs!(scfgr))) != 0
        } else {
            por
        };
        if virt {
            self.ctrl
                .modify(cregs!(jrstartr), 0, 1 << u32::from(self.jr_index));
        }
    }

    /// U-Boot `rng_init` / `instantiate_rng`.
    fn rng_init(&mut self) -> Result<(), CaamError> {
        let live = |c: &Self| c.ctrl.read(cregs!(rdsta)) & RDSTA_HANDLES;
        if live(self) == RDSTA_HANDLES {
            return Ok(());
        }
        let mut ent_delay = ENT_DLY_MIN;
        let mut last_delay = 0;
        loop {
            if live(self) == 0 {
                self.kick_trng(ent_delay);
                last_delay = ent_delay;
            }
            // Unlike U-Boot, the delay also advances when the TRNG was left
            // alone (a handle live): U-Boot's loop would never end if the
            // remaining handle kept failing then.
            ent_delay += ENT_DLY_STEP;
            match self.instantiate_handles() {
                Ok(()) => break,
                Err(Retry::Fatal(e)) => return Err(e),
                Err(Retry::Again { handle }) => {
                    if ent_delay >= ENT_DLY_MAX {
                        return Err(CaamError::RngInstantiateFailed {
                            handle,
                            ent_delay: last_delay,
                        });
                    }
                }
            }
        }
        self.ctrl
            .modify(cregs!(scfgr), 0, SCFGR::RDBENABLE::SET.value);
        Ok(())
    }

    /// Instantiates state handles 0 and 1 that RDSTA does not show live.
    fn instantiate_handles(&mut self) -> Result<(), Retry> {
        for handle in 0..2u8 {
            let bit = 1 << handle;
            let rdsta = self.ctrl.read(cregs!(rdsta));
            if rdsta & bit != 0 {
                continue;
            }
            let r = if handle == 0 {
                let (words, n) = desc::rng_instantiate_sh0(RDSTA::SKVN.read(rdsta) == 0);
                self.run_job(&words[..n])
            } else {
                self.run_job(&desc::rng_instantiate_sh1())
            };
            match r {
                // A job status: the TRNG settings may be at fault, retry.
                Ok(())
                | Err(CaamError::Ccb { .. })
                | Err(CaamError::Deco { .. })
                | Err(CaamError::Status { .. }) => {}
                Err(e) => return Err(Retry::Fatal(e)),
            }
            if self.ctrl.read(cregs!(rdsta)) & bit == 0 {
                return Err(Retry::Again { handle });
            }
        }
        Ok(())
    }

    /// TRNG programming as U-Boot `kick_trng` plus the newer Linux/OP-TEE
    /// statistical limits (`docs/caam.md`, RNG).
    fn kick_trng(&self, ent_delay: u32) {
        let c = &self.ctrl;
        c.modify(cregs!(rtmctl), 0, RTMCTL::PRGM::SET.value);
        c.write(
            cregs!(rtsdctl),
            (RTSDCTL::ENT_DLY.val(ent_delay) + RTSDCTL::SAMP_SIZE.val(512)).value,
        );
        c.write(cregs!(rtfrqmin), ent_delay >> 2);
        c.write(cregs!(rtfrqmax), 1 << 20);
        c.write(cregs!(rtscmisc), (2 << 16) | 32);
        c.write(cregs!(rtpkrrng), 570);
        c.write(cregs!(rtpkrmax), 1600);
        c.write(cregs!(rtscml), (122 << 16) | 317);
        let scr = [
            (80 << 16) | 107,
            (57 << 16) | 62,
            (39 << 16) | 39,
            (27 << 16) | 26,
            (19 << 16) | 18,
            (18 << 16) | 17,
        ];
        for (i, v) in scr.into_iter().enumerate() {
            c.write(cregs!(rtscrl) + 4 * i, v);
        }
        c.modify(
            cregs!(rtmctl),
            RTMCTL::SAMP_MODE.mask << RTMCTL::SAMP_MODE.shift,
            RTMCTL::SAMP_MODE.val(1).value,
        );
        c.modify(cregs!(rtmctl), RTMCTL::PRGM::SET.value, 0);
    }

    /// Enqueues the descriptor `words`, waits for it, and decodes its status.
    fn run_job(&mut self, words: &[u32]) -> Result<(), CaamError> {
        if !self.ready {
            return Err(CaamError::NotInitialised);
        }
        let n = words.len();
        for (d, w) in self.mem.desc.0.iter_mut().zip(words) {
            *d = w.to_le();
        }
        let desc_ptr = self.mem.desc.0.as_ptr().cast::<u8>();
        let desc_bus = self.bus32(desc_ptr, n * 4)?;
        self.dma.clean(desc_ptr, n * 4);
        self.mem.input_ring.0[self.head] = desc_bus.to_le();
        let ir_ptr = self.mem.input_ring.0.as_ptr().cast::<u8>();
        self.dma.clean(ir_ptr, size_of_val(&self.mem.input_ring.0));
        let or_ptr = self.mem.output_ring.0.as_mut_ptr().cast::<u8>();
        let or_len = size_of_val(&self.mem.output_ring.0);
        self.dma.invalidate(or_ptr, or_len);

        self.jr.write(jregs!(irjar), 1);
        self.head = (self.head + 1) % RING_ENTRIES;

        let d = self.clock.deadline_us(JOB_TIMEOUT_US);
        let (orsfr, jrintr) = (jregs!(orsfr), jregs!(jrintr));
        let outcome = d.poll(&self.clock, || {
            let i = self.jr.read(jrintr);
            if JRINTR::JRE.read(i) != 0 {
                return Some(Err(CaamError::RingError { jrintr: i }));
            }
            (self.jr.read(orsfr) != 0).then_some(Ok(()))
        });
        match outcome {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                self.ready = false;
                return Err(e);
            }
            None => {
                // The job may still complete later; only a re-init makes the
                // ring consistent again.
                self.ready = false;
                return Err(CaamError::Timeout {
                    what: "job completion",
                });
            }
        }
        self.dma.invalidate(or_ptr, or_len);
        let ptr = u32::from_le(self.mem.output_ring.0[2 * self.tail]);
        let status = u32::from_le(self.mem.output_ring.0[2 * self.tail + 1]);
        self.jr.write(jregs!(orjrr), 1);
        self.tail = (self.tail + 1) % RING_ENTRIES;
        if ptr != desc_bus {
            self.ready = false;
            return Err(CaamError::DescriptorMismatch {
                expected: desc_bus,
                got: ptr,
            });
        }
        CaamError::check_status(status)
    }

    /// Version, ring, RNG and security state.
    pub fn info(&self) -> CaamInfo {
        let c = &self.ctrl;
        let secvid = c.read(cregs!(secvid_ms));
        let rdsta = c.read(cregs!(rdsta));
        let scfgr = c.read(cregs!(scfgr));
        let byte = |v: u32| u8::try_from(v & 0xFF).unwrap_or(0);
        CaamInfo {
            era: byte(regs::CCBVID::ERA.read(c.read(cregs!(ccbvid)))),
            ip_id: u16::try_from(regs::SECVID_MS::IPID.read(secvid)).unwrap_or(0),
            major_rev: byte(regs::SECVID_MS::MAJ_REV.read(secvid)),
            job_rings: byte(regs::CHANUM_MS::JRNUM.read(c.read(cregs!(chanum_ms)))),
            ring: self.jr_index,
            initialised: self.ready,
            rdsta,
            rng_sh0: RDSTA::IF0.read(rdsta) != 0,
            rng_sh1: RDSTA::IF1.read(rdsta) != 0,
            secure_keys: RDSTA::SKVN.read(rdsta) != 0,
            security: match CSTA::MOO.read(c.read(cregs!(csta))) {
                0 => ModeOfOperation::NonSecure,
                1 => ModeOfOperation::Secure,
                2 => ModeOfOperation::Trusted,
                _ => ModeOfOperation::Fail,
            },
            mp_curve: byte(SCFGR::MPCURVE.read(scfgr)),
            mpmr_locked: SCFGR::MPMRL.read(scfgr) != 0,
        }
    }

    /// Fills `out` with random bytes from the CAAM RNG.
    pub fn rng_fill(&mut self, out: &mut [u8]) -> Result<(), CaamError> {
        let cap = self.mem.small_out.0.len();
        for chunk in out.chunks_mut(cap) {
            let ptr = self.mem.small_out.0.as_mut_ptr().cast_const();
            let bus = self.bus32(ptr, chunk.len())?;
            self.dma.invalidate(ptr, cap);
            // `chunk.len()` ≤ 128.
            let len = u16::try_from(chunk.len()).unwrap_or(0);
            let r = self.run_job(&desc::rng_generate(bus, len));
            self.dma.invalidate(ptr, cap);
            if r.is_ok() {
                chunk.copy_from_slice(&self.mem.small_out.0[..chunk.len()]);
            }
            self.scrub_small_out();
            r?;
        }
        Ok(())
    }

    fn scrub_small_out(&mut self) {
        self.mem.small_out.0.zeroize();
        let ptr = self.mem.small_out.0.as_ptr().cast::<u8>();
        self.dma.clean(ptr, self.mem.small_out.0.len());
    }

    /// Makes sure the CAAM holds an MP private key for P-256, as OP-TEE's
    /// `caam_mp_init` does: MPCURVE = 3 means the boot ROM (or an earlier
    /// MPPRIVK this power cycle) left one; MPCURVE = 0 on an open part means
    /// none, so this generates it with MPPRIVK (OP-TEE's descriptor,
    /// curve and passphrase); MPCURVE = 0 on a closed part is refused, as
    /// OP-TEE refuses it.
    fn ensure_mp_key(&mut self) -> Result<(), CaamError> {
        if !self.ready {
            return Err(CaamError::NotInitialised);
        }
        if self.mp_key_generated {
            return Ok(());
        }
        let curve = SCFGR::MPCURVE.read(self.ctrl.read(cregs!(scfgr)));
        match curve {
            3 => Ok(()),
            0 => {
                if self.info().security != ModeOfOperation::NonSecure {
                    return Err(CaamError::MpNoKeyOnClosedPart);
                }
                // OP-TEE picks P-256 only when the MDHA is LP256 (SHA-256
                // is the longest hash); otherwise P-521, which this
                // driver does not implement.
                if CHAVID_LS::MDVID.read(self.ctrl.read(cregs!(chavid_ls))) != 0 {
                    return Err(CaamError::MpUnsupported { curve: 0 });
                }
                self.mp_privkey_gen()?;
                self.mp_key_generated = true;
                Ok(())
            }
            _ => Err(CaamError::MpUnsupported {
                curve: u8::try_from(curve).unwrap_or(0xF),
            }),
        }
    }

    fn mp_privkey_gen(&mut self) -> Result<(), CaamError> {
        let n = desc::MP_PASSPHRASE.len();
        self.mem.small_out.0[..n].copy_from_slice(desc::MP_PASSPHRASE);
        let ptr = self.mem.small_out.0.as_ptr();
        let bus = self.bus32(ptr, n)?;
        self.dma.clean(ptr, n);
        let len = u32::try_from(n).unwrap_or(0);
        let r = self.run_job(&desc::mp_privkey_gen(bus, len));
        self.scrub_small_out();
        r
    }

    /// The MP public key, X || Y big-endian (64 bytes).
    pub fn mp_public_key(&mut self) -> Result<[u8; 64], CaamError> {
        self.ensure_mp_key()?;
        let ptr = self.mem.small_out.0.as_mut_ptr().cast_const();
        let bus = self.bus32(ptr, 64)?;
        self.dma.invalidate(ptr, 128);
        self.run_job(&desc::mp_pubkey(bus))?;
        self.dma.invalidate(ptr, 128);
        let mut k = [0u8; 64];
        k.copy_from_slice(&self.mem.small_out.0[..64]);
        Ok(k)
    }

    /// Writes the 32-byte MPMR and locks it (SCFGR.MPMRL) until power-on.
    pub fn mpmr_write_and_lock(&mut self, data: &[u8; 32]) -> Result<(), CaamError> {
        if SCFGR::MPMRL.read(self.ctrl.read(cregs!(scfgr))) != 0 {
            return Err(CaamError::MpmrLocked);
        }
        for (k, w) in data.chunks_exact(4).enumerate() {
            let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            self.ctrl.write(cregs!(mpmr) + 4 * k, v);
        }
        self.ctrl.modify(cregs!(scfgr), 0, SCFGR::MPMRL::SET.value);
        Ok(())
    }

    /// Reads the MPMR back in the order it was written (the hardware
    /// returns each word byte-reversed; `docs/caam.md`).
    pub fn mpmr_read(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (k, o) in out.chunks_exact_mut(4).enumerate() {
            o.copy_from_slice(&self.ctrl.read(cregs!(mpmr) + 4 * k).to_be_bytes());
        }
        out
    }

    /// Signs `msg` (1..=4096 bytes) with the MP private key: ECDSA-P256 over
    /// SHA-256(MPMR || msg).
    pub fn mp_sign(&mut self, msg: &[u8]) -> Result<MpSignature, CaamError> {
        if msg.is_empty() {
            return Err(CaamError::EmptyMessage);
        }
        if msg.len() > MAX_MP_MESSAGE {
            return Err(CaamError::MessageTooLong { len: msg.len() });
        }
        self.ensure_mp_key()?;
        self.mem.bounce_in.0[..msg.len()].copy_from_slice(msg);
        let in_ptr = self.mem.bounce_in.0.as_ptr();
        let out_ptr = self.mem.small_out.0.as_mut_ptr().cast_const();
        let msg_bus = self.bus32(in_ptr, msg.len())?;
        let out_bus = self.bus32(out_ptr, 96)?;
        self.dma.clean(in_ptr, msg.len());
        self.dma.invalidate(out_ptr, 128);
        let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
        self.run_job(&desc::mp_sign(
            msg_bus,
            len,
            out_bus,
            out_bus + 32,
            out_bus + 64,
        ))?;
        self.dma.invalidate(out_ptr, 128);
        let o = &self.mem.small_out.0;
        let mut s = MpSignature {
            mes_rep: [0; 32],
            c: [0; 32],
            d: [0; 32],
        };
        s.mes_rep.copy_from_slice(&o[..32]);
        s.c.copy_from_slice(&o[32..64]);
        s.d.copy_from_slice(&o[64..96]);
        Ok(s)
    }

    /// Places the key modifier for a blob job; returns its bus address and
    /// length. 1..=16 bytes (Linux `blob_gen.c` refuses more than
    /// `CAAM_BLOB_KEYMOD_LENGTH`; an empty one is refused here).
    fn load_key_mod(&mut self, key_mod: &[u8]) -> Result<(u32, u32), CaamError> {
        let n = key_mod.len();
        if n == 0 || n > desc::MAX_KEY_MOD {
            return Err(CaamError::BadKeyModifier { len: n });
        }
        self.mem.key_mod.0 = [0; 16];
        self.mem.key_mod.0[..n].copy_from_slice(key_mod);
        let ptr = self.mem.key_mod.0.as_ptr();
        let bus = self.bus32(ptr, 16)?;
        self.dma.clean(ptr, 16);
        Ok((bus, u32::try_from(n).unwrap_or(16)))
    }

    fn scrub_bounce(&mut self, input: bool, len: usize) {
        let buf = if input {
            &mut self.mem.bounce_in.0
        } else {
            &mut self.mem.bounce_out.0
        };
        buf[..len].zeroize();
        let ptr = buf.as_ptr();
        self.dma.clean(ptr, len);
    }

    /// Encapsulates `plain` (≤ 64 KiB) as a blob under `key_modifier` into
    /// `out` (≥ `plain.len() + 48` bytes). Returns the blob length.
    pub fn blob_encap(
        &mut self,
        key_modifier: &[u8; 16],
        plain: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CaamError> {
        self.blob_encap_with_modifier(key_modifier, plain, out)
    }

    /// [`Caam::blob_encap`] with a key modifier of 1..=16 bytes (Linux's
    /// trusted keys use the 10 bytes `SECURE_KEY`); the KEY command carries
    /// the length, so a 10-byte modifier is not its 16-byte zero padding.
    pub fn blob_encap_with_modifier(
        &mut self,
        key_modifier: &[u8],
        plain: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CaamError> {
        let len = plain.len();
        if len > MAX_BLOB_PAYLOAD {
            return Err(CaamError::PayloadTooLarge { len });
        }
        let blob_len = len + BLOB_OVERHEAD;
        if out.len() < blob_len {
            return Err(CaamError::OutputTooSmall {
                need: blob_len,
                got: out.len(),
            });
        }
        let (km, km_len) = self.load_key_mod(key_modifier)?;
        self.mem.bounce_in.0[..len].copy_from_slice(plain);
        let in_ptr = self.mem.bounce_in.0.as_ptr();
        let out_ptr = self.mem.bounce_out.0.as_mut_ptr().cast_const();
        let in_bus = self.bus32(in_ptr, len.max(1))?;
        let out_bus = self.bus32(out_ptr, blob_len)?;
        self.dma.clean(in_ptr, len);
        self.dma.invalidate(out_ptr, blob_len);
        let len32 = u32::try_from(len).unwrap_or(u32::MAX);
        let r = self.run_job(&desc::blob_encap(km, km_len, in_bus, len32, out_bus));
        self.scrub_bounce(true, len);
        r?;
        self.dma.invalidate(out_ptr, blob_len);
        out[..blob_len].copy_from_slice(&self.mem.bounce_out.0[..blob_len]);
        Ok(blob_len)
    }

    /// Decapsulates `blob` (48..=64 KiB + 48 bytes) under `key_modifier`
    /// into `out` (≥ `blob.len() - 48` bytes). Returns the payload length.
    /// On any failure `out` is zeroed; a blob from another chip, with another
    /// key modifier, or altered, fails with [`CaamError::BlobMacMismatch`].
    pub fn blob_decap(
        &mut self,
        key_modifier: &[u8; 16],
        blob: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CaamError> {
        self.blob_decap_with_modifier(key_modifier, blob, out)
    }

    /// [`Caam::blob_decap`] with a key modifier of 1..=16 bytes.
    pub fn blob_decap_with_modifier(
        &mut self,
        key_modifier: &[u8],
        blob: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CaamError> {
        let r = self.blob_decap_inner(key_modifier, blob, out);
        if r.is_err() {
            out.zeroize();
        }
        r
    }

    fn blob_decap_inner(
        &mut self,
        key_modifier: &[u8],
        blob: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CaamError> {
        let Some(len) = blob.len().checked_sub(BLOB_OVERHEAD) else {
            return Err(CaamError::BlobTooShort { len: blob.len() });
        };
        if len > MAX_BLOB_PAYLOAD {
            return Err(CaamError::PayloadTooLarge { len });
        }
        if out.len() < len {
            return Err(CaamError::OutputTooSmall {
                need: len,
                got: out.len(),
            });
        }
        let (km, km_len) = self.load_key_mod(key_modifier)?;
        self.mem.bounce_in.0[..blob.len()].copy_from_slice(blob);
        let in_ptr = self.mem.bounce_in.0.as_ptr();
        let out_ptr = self.mem.bounce_out.0.as_mut_ptr().cast_const();
        let in_bus = self.bus32(in_ptr, blob.len())?;
        let out_bus = self.bus32(out_ptr, len.max(1))?;
        self.dma.clean(in_ptr, blob.len());
        self.dma.invalidate(out_ptr, len);
        let len32 = u32::try_from(len).unwrap_or(u32::MAX);
        let r = self.run_job(&desc::blob_decap(km, km_len, in_bus, len32, out_bus));
        self.dma.invalidate(out_ptr, len);
        if r.is_ok() {
            out[..len].copy_from_slice(&self.mem.bounce_out.0[..len]);
        }
        self.scrub_bounce(false, len);
        r.map(|()| len)
    }

    /// Runs a caller-built descriptor (for diagnostics and tests of the
    /// status decoding). The words are copied into the driver's descriptor
    /// buffer; at most 16 words.
    pub fn run_raw_descriptor(&mut self, words: &[u32]) -> Result<(), CaamError> {
        if words.is_empty() || words.len() > self.mem.desc.0.len() {
            return Err(CaamError::BadDescriptorLength { words: words.len() });
        }
        self.run_job(words)
    }

    /// The bus address of the driver's small output buffer (128 bytes), for
    /// building raw descriptors in tests and diagnostics.
    pub fn scratch_bus_addr(&self) -> Result<u32, CaamError> {
        self.bus32(self.mem.small_out.0.as_ptr(), 128)
    }
}

#[cfg(test)]
mod tests;
