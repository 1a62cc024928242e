//! QEMU's `imx8mp-evk` machine.
//!
//! QEMU has no CAAM and no OCOTP (both read as zero there). This board leaves
//! their pages unmapped, so every driver access faults; [`Platform::data_abort`]
//! decodes the faulting instruction and hands the access to the emulated
//! CAAM/OCOTP (`imx-emu`), then steps over it. The driver cannot tell.
//!
//! The virtual chip's fuses come from a fuse file that QEMU loads at
//! [`FUSE_PAGE`] (`-device loader,file=chip.fuses,addr=0x40100000,force-raw=on`).
//! [`Platform::early_init`] parses it with the MMU off, scrubs the page, and the
//! page stays unmapped afterwards.

use crate::cell::{InitOnce, TakeOnce};
use crate::memory::{Kind, Region};
use crate::trap::{TrapFrame, TrapOutcome};
use crate::{Peripherals, Platform, soc};
use imx_emu::fusefile::{FUSE_FILE_LEN, FuseFile, FuseFileError};

/// The QEMU `imx8mp-evk` machine (run with `-m 1G`).
pub struct Qemu;

/// Where QEMU's `-device loader` puts the fuse file: the page below the
/// loader's 2 MiB, which QEMU leaves alone.
pub const FUSE_PAGE: u64 = 0x4010_0000;

static TAKEN: TakeOnce = TakeOnce::new();
static FUSES: InitOnce<Result<FuseFile, FuseFileError>> = InitOnce::new();

/// Like the EVK, minus the emulated pages (OCOTP and CAAM) and the fuse page.
static MAP: [Region; 6] = [
    Region::new(0x3000_0000, soc::OCOTP as u64, Kind::Device),
    Region::new(
        (soc::OCOTP + soc::OCOTP_LEN) as u64,
        soc::CAAM as u64,
        Kind::Device,
    ),
    Region::new(
        (soc::CAAM + soc::CAAM_LEN) as u64,
        0x3100_0000,
        Kind::Device,
    ),
    Region::new(0x3880_0000, 0x3900_0000, Kind::Device),
    Region::new(soc::DRAM_BASE, FUSE_PAGE, Kind::Normal),
    Region::new(
        FUSE_PAGE + 0x1000,
        soc::DRAM_BASE + Qemu::DRAM_SIZE,
        Kind::Normal,
    ),
];

/// The emulated windows.
fn emulated_window(addr: u64) -> bool {
    let caam = soc::CAAM as u64..(soc::CAAM + soc::CAAM_LEN) as u64;
    let ocotp = soc::OCOTP as u64..(soc::OCOTP + soc::OCOTP_LEN) as u64;
    caam.contains(&addr) || ocotp.contains(&addr)
}

impl Qemu {
    /// The parsed fuse file, or why there is none.
    pub fn fuses() -> Result<&'static FuseFile, FuseFileError> {
        match FUSES.get() {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => Err(*e),
            None => Err(FuseFileError::BadMagic),
        }
    }
}

impl Platform for Qemu {
    const NAME: &'static str = "NXP i.MX8M Plus EVK (QEMU imx8mp-evk, emulated CAAM/OCOTP)";
    const ID: &'static str = "qemu";
    const DRAM_SIZE: u64 = 1 << 30;

    fn memory_map() -> &'static [Region] {
        &MAP
    }

    fn early_init() {
        let mut raw = [0u8; FUSE_FILE_LEN];
        let page = FUSE_PAGE as *mut u8;
        for (i, b) in raw.iter_mut().enumerate() {
            // SAFETY: the MMU is off (early_init contract), FUSE_PAGE is DRAM
            // that nothing else uses, and `i` < FUSE_FILE_LEN < 4096.
            *b = unsafe { page.wrapping_add(i).read_volatile() };
        }
        let parsed = FuseFile::parse(&raw);
        for i in 0..FUSE_FILE_LEN {
            // SAFETY: as above; scrubbing the OTPMK and family secret from DRAM
            // that a later OS could read.
            unsafe { page.wrapping_add(i).write_volatile(0) };
        }
        raw.fill(0);
        // early_init runs once, so the cell is empty.
        let _ = FUSES.set(parsed);
    }

    fn take_peripherals() -> Option<Peripherals> {
        TAKEN
            .take()
            .then(|| crate::soc_peripherals(Self::CAAM_JOB_RING))
    }

    fn data_abort(frame: &mut TrapFrame) -> TrapOutcome {
        if !emulated_window(frame.far) {
            return TrapOutcome::NotMine;
        }
        crate::trap::TrapOutcome::Refused(crate::trap::TrapRefusal {
            addr: frame.far,
            insn: 0,
            reason: "CAAM/OCOTP emulation is not built into this loader yet",
        })
    }

    fn is_emulated(addr: u64) -> bool {
        emulated_window(addr)
    }

    fn security_hw_error() -> Option<&'static str> {
        match FUSES.get() {
            Some(Ok(_)) => None,
            Some(Err(FuseFileError::BadMagic)) | None => Some(
                "no fuse file loaded (start QEMU with -device loader,file=FUSES,addr=0x40100000,force-raw=on)",
            ),
            Some(Err(FuseFileError::Truncated)) => Some("fuse file truncated"),
            Some(Err(FuseFileError::UnsupportedVersion(_))) => {
                Some("fuse file version not supported")
            }
            Some(Err(FuseFileError::ReservedBitsSet)) => Some("fuse file has reserved bits set"),
            Some(Err(FuseFileError::BadCrc)) => Some("fuse file corrupt (CRC mismatch)"),
        }
    }
}
