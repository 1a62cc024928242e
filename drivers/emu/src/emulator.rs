//! The device the QEMU board's trap handler talks to.

use crate::caam::{BusMemory, Caam};
use crate::fusefile::FuseFile;
use crate::ocotp::{self, OCOTP_BASE, OCOTP_SIZE};
use crate::trap::{EmuError, MmioDevice};

/// Physical base of the CAAM.
pub const CAAM_BASE: u64 = 0x3090_0000;
/// Size of the CAAM window (controller page, JR pages 1..3, and pages the
/// model does not implement).
pub const CAAM_SIZE: u64 = 0x4_0000;

/// The emulated CAAM and OCOTP of one virtual chip.
///
/// Accesses are 32-bit; a 64-bit access is split into two 32-bit ones (low
/// word at the lower address). Byte/halfword accesses and unmodelled offsets
/// are refused with an [`EmuError`].
pub struct Emulator<M: BusMemory> {
    fuses: FuseFile,
    mem: M,
    caam: Caam,
}

impl<M: BusMemory> Emulator<M> {
    /// A chip with fuses `fuses` whose CAAM DMA goes through `mem`.
    pub fn new(fuses: FuseFile, mem: M) -> Self {
        let caam = Caam::new(&fuses);
        Self { fuses, mem, caam }
    }

    /// The chip's fuses.
    pub fn fuses(&self) -> &FuseFile {
        &self.fuses
    }

    /// The DMA memory (for tests and the board).
    pub fn mem(&mut self) -> &mut M {
        &mut self.mem
    }

    /// Mixes a nonce (e.g. a timer value) into the RNG so that runs differ.
    pub fn reseed(&mut self, nonce: &[u8]) {
        self.caam.reseed(nonce);
    }

    /// Fault injection for tests: while stalled, jobs added with IRJAR stay
    /// in the input ring and never complete. Un-stalling runs them.
    pub fn set_stalled(&mut self, stalled: bool) {
        self.caam.set_stalled(stalled, &mut self.mem, &self.fuses);
    }

    fn read32(&mut self, addr: u64) -> Result<u32, EmuError> {
        if (CAAM_BASE..CAAM_BASE + CAAM_SIZE).contains(&addr) {
            self.caam.read(offset(addr, CAAM_BASE), &self.fuses)
        } else if (OCOTP_BASE..OCOTP_BASE + OCOTP_SIZE).contains(&addr) {
            ocotp::read(&self.fuses, offset(addr, OCOTP_BASE))
        } else {
            Err(EmuError::NoDevice { addr })
        }
    }

    fn write32(&mut self, addr: u64, v: u32) -> Result<(), EmuError> {
        if (CAAM_BASE..CAAM_BASE + CAAM_SIZE).contains(&addr) {
            self.caam
                .write(offset(addr, CAAM_BASE), v, &mut self.mem, &self.fuses)
        } else if (OCOTP_BASE..OCOTP_BASE + OCOTP_SIZE).contains(&addr) {
            Err(ocotp::write(offset(addr, OCOTP_BASE)))
        } else {
            Err(EmuError::NoDevice { addr })
        }
    }
}

fn offset(addr: u64, base: u64) -> u32 {
    // Callers check that `addr` is inside a window smaller than 4 GiB.
    u32::try_from(addr - base).unwrap_or(u32::MAX)
}

fn check(addr: u64, size: u8) -> Result<(), EmuError> {
    match size {
        4 | 8 if addr % u64::from(size) == 0 => Ok(()),
        4 | 8 => Err(EmuError::Unaligned { addr, size }),
        _ => Err(EmuError::BadSize { addr, size }),
    }
}

impl<M: BusMemory> MmioDevice for Emulator<M> {
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, EmuError> {
        check(addr, size)?;
        let lo = self.read32(addr)?;
        if size == 4 {
            return Ok(u64::from(lo));
        }
        let hi = self.read32(addr + 4)?;
        Ok(u64::from(lo) | (u64::from(hi) << 32))
    }

    fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), EmuError> {
        check(addr, size)?;
        // Truncation to the low word is the point here.
        let lo = (value & 0xFFFF_FFFF) as u32;
        self.write32(addr, lo)?;
        if size == 8 {
            self.write32(addr + 4, (value >> 32) as u32)?;
        }
        Ok(())
    }
}
