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
//! page stays unmapped afterwards. A test plan (power cut) and a CAAM fault
//! plan may follow the fuse file (see `imx_emu::fusefile`); only this board
//! reads them.

use crate::cell::{InitOnce, SingleCore, TakeOnce};
use crate::memory::{Kind, Region};
use crate::trap::{TrapFrame, TrapOutcome, TrapRefusal};
use crate::{Peripherals, Platform, dram, soc};
use imx_emu::fusefile::{
    FAULT_PLAN_LEN, FUSE_FILE_LEN, Fault, FuseFile, FuseFileError, MmcFault, TEST_PLAN_LEN,
    TestPlan,
};
use imx_emu::usdhc_faults::FaultyUsdhc;
use imx_emu::{BusError, BusMemory, Emulator, RegFile};

/// The QEMU `imx8mp-evk` machine (run with `-m 1G`).
pub struct Qemu;

pub use crate::dram::FUSE_PAGE;

// The model's address map is the SoC's: where the two meet they agree.
const _: () = assert!(imx_emu::CAAM_BASE == soc::CAAM as u64);
const _: () = assert!(imx_emu::CAAM_SIZE == soc::CAAM_LEN as u64);
const _: () = assert!(imx_emu::ocotp::OCOTP_BASE == soc::OCOTP as u64);

static TAKEN: TakeOnce = TakeOnce::new();
/// Whether the fuse file parsed. The fuses themselves (OTPMK and MP family
/// secret included) live only in the emulator, `EMU`.
static FUSES: InitOnce<Result<(), FuseFileError>> = InitOnce::new();
static PLAN: InitOnce<TestPlan> = InitOnce::new();
static MMC_FAULT: InitOnce<Option<MmcFault>> = InitOnce::new();
/// The emulated CAAM/OCOTP of this virtual chip. Created in `early_init`,
/// before the MMU is on and before any exception can use it, and afterwards
/// touched only from the data-abort handler, which runs with exceptions
/// masked and never re-enters itself (a fault inside it goes to the crash
/// path).
static EMU: SingleCore<Option<Emulator<GuestRam>>> = SingleCore::new(None);

/// The emulated CAAM's DMA view: guest DRAM, identity-mapped.
struct GuestRam;

impl GuestRam {
    fn check(addr: u64, len: usize) -> Result<*mut u8, BusError> {
        let err = BusError { addr, len };
        let end = addr.checked_add(len as u64).ok_or(err)?;
        let dram = dram::BASE..=dram::BASE + Qemu::DRAM_SIZE;
        let fuse = FUSE_PAGE..FUSE_PAGE + dram::FUSE_PAGE_LEN;
        if !dram.contains(&addr) || !dram.contains(&end) || (addr < fuse.end && fuse.start < end) {
            return Err(err);
        }
        Ok(addr as *mut u8)
    }
}

impl BusMemory for GuestRam {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), BusError> {
        let src = Self::check(addr, buf.len())?;
        // SAFETY: `check` put the range inside mapped DRAM (the fuse page,
        // the only unmapped DRAM page outside the loader image, excluded).
        // The CPU that would race with this "DMA" is stopped in the trap.
        unsafe { core::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), BusError> {
        let dst = Self::check(addr, data.len())?;
        // SAFETY: as in `read`; like a DMA master, the model writes memory
        // the driver handed it, while the driver is stopped in the trap.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        Ok(())
    }
}

/// X0..X30 of the trapped context.
struct Regs<'a>(&'a mut [u64; 31]);

impl RegFile for Regs<'_> {
    fn get(&self, n: u8) -> u64 {
        self.0[usize::from(n)]
    }
    fn set(&mut self, n: u8, v: u64) {
        self.0[usize::from(n)] = v;
    }
}

/// Microseconds of the generic timer (the eMMC fault layer's clock).
fn now_us() -> u64 {
    use hal::Clock;
    crate::timer::GenericTimer.micros()
}

/// The generic timer's counter, to make each boot's emulated RNG stream
/// differ.
fn counter() -> u64 {
    use hal::Clock;
    crate::timer::GenericTimer.ticks()
}

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
    Region::new(dram::BASE, FUSE_PAGE, Kind::Normal),
    Region::new(
        FUSE_PAGE + dram::FUSE_PAGE_LEN,
        dram::BASE + Qemu::DRAM_SIZE,
        Kind::Normal,
    ),
];

/// The emulated windows.
fn emulated_window(addr: u64) -> bool {
    let caam = soc::CAAM as u64..(soc::CAAM + soc::CAAM_LEN) as u64;
    let ocotp = soc::OCOTP as u64..(soc::OCOTP + soc::OCOTP_LEN) as u64;
    caam.contains(&addr) || ocotp.contains(&addr)
}

impl Platform for Qemu {
    const NAME: &'static str = "NXP i.MX8M Plus EVK (QEMU imx8mp-evk, emulated CAAM/OCOTP)";
    const ID: &'static str = "qemu";
    const MMC: usdhc::Config = usdhc::Config::QEMU_SD;
    const BOOTDELAY: u32 = 1;
    /// QEMU's UART1 is `-serial` #0, the test harness's log file.
    const LOG_UART: bool = true;
    const DRAM_SIZE: u64 = 1 << 30;
    const DRAM_BANKS: &'static [(u64, u64)] = &[(dram::BASE, Self::DRAM_SIZE)];

    fn memory_map() -> &'static [Region] {
        &MAP
    }

    fn early_init() {
        let mut raw = [0u8; FUSE_FILE_LEN + TEST_PLAN_LEN + FAULT_PLAN_LEN];
        let page = FUSE_PAGE as *mut u8;
        for (i, b) in raw.iter_mut().enumerate() {
            // SAFETY: the MMU is off (early_init contract), FUSE_PAGE is DRAM
            // that nothing else uses, and `i` < raw.len() < 4096.
            *b = unsafe { page.wrapping_add(i).read_volatile() };
        }
        let parsed = FuseFile::parse(&raw);
        let _ = PLAN.set(TestPlan::parse(&raw[FUSE_FILE_LEN..]).unwrap_or_default());
        // A CAAM fault plan (tests only) follows the test plan.
        let fault = Fault::parse(&raw[FUSE_FILE_LEN + TEST_PLAN_LEN..]);
        let _ = MMC_FAULT.set(fault.and_then(Fault::mmc));
        for i in 0..raw.len() {
            // SAFETY: as above; scrubbing the OTPMK and family secret from DRAM
            // that a later OS could read.
            unsafe { page.wrapping_add(i).write_volatile(0) };
        }
        raw.fill(0);
        // The fuses move into the emulator: no other copy is kept. Stack
        // temporaries left here are zeroed by the loader right after
        // early_init (`scrub_dead_stacks`).
        let status = parsed.map(|f| {
            let mut emu = Emulator::new(f, GuestRam);
            emu.reseed(&counter().to_le_bytes());
            emu.set_fault(fault);
            // SAFETY: see `EMU`: nothing else can see the cell yet.
            unsafe { *EMU.get() = Some(emu) };
        });
        // early_init runs once, so the cell is empty.
        let _ = FUSES.set(status);
    }

    fn take_peripherals() -> Option<Peripherals> {
        TAKEN.take().then(|| {
            let plan = MMC_FAULT.get().copied().flatten();
            crate::soc_peripherals(Self::CAAM_JOB_RING, Self::LOG_UART, |w| {
                FaultyUsdhc::new(w, plan, now_us)
            })
        })
    }

    fn data_abort(frame: &mut TrapFrame) -> TrapOutcome {
        if !emulated_window(frame.far) {
            return TrapOutcome::NotMine;
        }
        // SAFETY: ELR points at the faulting load/store in the loader's
        // mapped, executable .text; reading an instruction word is harmless.
        let insn = unsafe { (frame.elr as *const u32).read_volatile() };
        // SAFETY: see `EMU`: we are the data-abort handler.
        let Some(emu) = (unsafe { EMU.get() }).as_mut() else {
            let why = Self::security_hw_error().unwrap_or("no emulator");
            return TrapOutcome::Refused(TrapRefusal::new(frame.far, insn, format_args!("{why}")));
        };
        match imx_emu::emulate(insn, frame.far, &mut Regs(&mut frame.x), emu) {
            Ok(()) => {
                frame.elr += 4;
                TrapOutcome::Emulated
            }
            Err(e) => TrapOutcome::Refused(TrapRefusal::new(frame.far, insn, format_args!("{e}"))),
        }
    }

    fn is_emulated(addr: u64) -> bool {
        emulated_window(addr)
    }

    fn power_cut_after_write() -> Option<u32> {
        PLAN.get().and_then(|p| p.cut_after_write)
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
