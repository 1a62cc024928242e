//! Board support: the only place where addresses become register windows.
//!
//! The generic loader (`loader/`) is written against [`Platform`]; each board
//! fills it in:
//! - [`qemu`]: QEMU's `imx8mp-evk` machine. CAAM and OCOTP do not exist there,
//!   so their pages stay unmapped and the board emulates them behind the MMU
//!   (see `qemu.rs`); the virtual chip's fuses come from a fuse file.
//! - [`evk`]: the real i.MX8M Plus EVK. Same SoC addresses, real CAAM and OCOTP.
//!
//! The two differ only where the hardware differs: DRAM size, the emulated
//! pages, and what a data abort can mean.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod dram;
pub mod memory;
pub mod trap;

#[cfg(feature = "imx8mp-evk")]
pub mod evk;
#[cfg(feature = "qemu")]
pub mod qemu;

#[cfg(all(feature = "qemu", feature = "imx8mp-evk"))]
compile_error!("select exactly one board feature: `qemu` or `imx8mp-evk`");

/// The board the loader is built for.
#[cfg(feature = "imx8mp-evk")]
pub type Current = evk::Evk;
/// The board the loader is built for.
#[cfg(all(feature = "qemu", not(feature = "imx8mp-evk")))]
pub type Current = qemu::Qemu;

use hal::MmioRegion;
use imx_uart::Uart;

/// The eMMC controller's register window as the board hands it out: plain
/// MMIO on silicon; on QEMU behind the eMMC fault-injection layer, which
/// passes everything through unless the fuse file carries an eMMC fault plan.
#[cfg(all(feature = "qemu", not(feature = "imx8mp-evk")))]
pub type MmcRegs = imx_emu::usdhc_faults::FaultyUsdhc<MmioRegion>;
/// The eMMC controller's register window as the board hands it out.
#[cfg(not(all(feature = "qemu", not(feature = "imx8mp-evk"))))]
pub type MmcRegs = MmioRegion;
use memory::Region;
use trap::{TrapFrame, TrapOutcome};

/// i.MX8M Plus peripheral addresses (the same on every board with this SoC).
pub mod soc {
    /// UART1: the structured (defmt) log.
    pub const UART1: usize = 0x3086_0000;
    /// UART2: the console on the EVK.
    pub const UART2: usize = 0x3089_0000;
    /// uSDHC3: the EVK's eMMC.
    pub const USDHC3: usize = 0x30B6_0000;
    /// uSDHC window size.
    pub const USDHC_LEN: usize = 0x100;
    /// CAAM (controller page; job ring N at `CAAM + 0x1000 * (N + 1)`).
    pub const CAAM: usize = 0x3090_0000;
    /// CAAM window size.
    pub const CAAM_LEN: usize = 0x4_0000;
    /// OCOTP controller with the fuse shadow registers.
    pub const OCOTP: usize = 0x3035_0000;
    /// OCOTP window size.
    pub const OCOTP_LEN: usize = 0x1_0000;
    /// SNVS (HP status, LP power control).
    pub const SNVS: usize = 0x3037_0000;
}

/// The register windows a board hands out, once.
pub struct Peripherals {
    /// The console UART.
    pub console: Uart<MmioRegion>,
    /// The structured-log UART (UART1), on boards where it is wired and
    /// clocked ([`Platform::LOG_UART`]); `None` elsewhere, and the log is
    /// dropped.
    pub log: Option<Uart<MmioRegion>>,
    /// The eMMC controller.
    pub usdhc: MmcRegs,
    /// CAAM controller page.
    pub caam_ctrl: MmioRegion,
    /// CAAM job ring page (the ring the board chose).
    pub caam_jr: MmioRegion,
    /// OCOTP.
    pub ocotp: MmioRegion,
}

/// What the generic loader needs from a board.
pub trait Platform {
    /// Human-readable board name.
    const NAME: &'static str;
    /// Short name used in file names and `version`.
    const ID: &'static str;
    /// DRAM size mapped by the loader, from [`dram::BASE`].
    const DRAM_SIZE: u64;
    /// The CAAM job ring the loader uses (JR0 is HAB's, OP-TEE takes JR2).
    const CAAM_JOB_RING: u8 = 1;
    /// Whether UART1 carries the structured (`defmt`) log. Only where the
    /// board wires it and something before the loader clocked and pinmuxed
    /// it: on the i.MX8M Plus EVK UART1 is the Bluetooth module's UART
    /// (`imx8mp-evk.dts`: `&uart1 { /* BT */`) and neither U-Boot's SPL
    /// (only `uart2` is `bootph-pre-ram`) nor TF-A touch it, so the loader
    /// must not either: registers of an unclocked peripheral may hang the bus.
    const LOG_UART: bool = false;
    /// The board's DRAM banks `(base, size)`, as Linux must be told in
    /// `/memory` (the loader itself maps only `DRAM_SIZE` from the first).
    const DRAM_BANKS: &'static [(u64, u64)];
    /// How the eMMC controller (USDHC3) is wired.
    const MMC: usdhc::Config;
    /// U-Boot's device number for the eMMC (`mmc dev 2` on the EVK).
    const MMC_DEV: u8 = 2;
    /// Seconds of `Hit any key to stop autoboot` before booting Linux.
    const BOOTDELAY: u32 = 2;
    /// Whether the provisioning flow runs automatically at boot.
    const AUTO_PROVISION: bool = true;
    /// The kernel command line until the user sets another.
    const DEFAULT_BOOTARGS: &'static str = "console=ttymxc1,115200 earlycon";

    /// Device and memory regions to map. Anything not listed is a hole and
    /// faults. The loader's own image is mapped W^X on top of DRAM.
    fn memory_map() -> &'static [Region];

    /// Runs once, first thing, with the MMU off (the QEMU board reads its
    /// fuse file here).
    fn early_init();

    /// Hands out the register windows. Returns `None` on the second call.
    fn take_peripherals() -> Option<Peripherals>;

    /// A data abort the generic handler does not know how to handle; the
    /// board may emulate the access (QEMU) and step over the instruction.
    fn data_abort(frame: &mut TrapFrame) -> TrapOutcome;

    /// Whether `addr` is served by emulation behind the MMU (for `md`/`mw`).
    fn is_emulated(addr: u64) -> bool;

    /// Test plan: stop the machine right after this many eMMC writes of the
    /// provisioning flow (QEMU tests of power cuts; never on silicon).
    fn power_cut_after_write() -> Option<u32> {
        None
    }

    /// Why the CAAM/fuse commands cannot run, if they cannot (QEMU: missing
    /// or corrupt fuse file).
    fn security_hw_error() -> Option<&'static str>;
}

pub mod cell;
pub mod timer;

/// Builds the SoC's register windows. Both boards call this exactly once,
/// guarded by [`cell::TakeOnce`]; `mmc` makes the board's [`MmcRegs`].
#[cfg_attr(not(any(feature = "qemu", feature = "imx8mp-evk")), allow(dead_code))]
fn soc_peripherals(
    job_ring: u8,
    log_uart: bool,
    mmc: impl FnOnce(MmioRegion) -> MmcRegs,
) -> Peripherals {
    /// # Safety
    /// `base..base+len` must be a device window mapped by `memory_map()` (or
    /// emulated behind it) and handed out only once.
    unsafe fn window(base: usize, len: usize) -> MmioRegion {
        let ptr = core::ptr::NonNull::new(base as *mut u32).expect("non-null device address");
        // SAFETY: forwarded from this function's contract.
        unsafe { MmioRegion::new(ptr, len) }
    }
    let jr = soc::CAAM + 0x1000 * (usize::from(job_ring) + 1);
    // SAFETY (for each window below): the addresses are the i.MX8M Plus
    // peripheral addresses of the reference manual (see `soc`), inside the
    // device regions of every board's memory map or emulated behind it; this
    // function runs once (callers hold a `TakeOnce`), so no window is aliased.
    // The CAAM controller page and the job ring page are disjoint 4 KiB pages.
    let uart_len = imx_uart::WINDOW_LEN;
    Peripherals {
        // SAFETY: see above.
        console: Uart::new(unsafe { window(soc::UART2, uart_len) }),
        // SAFETY: see above.
        log: log_uart.then(|| Uart::new(unsafe { window(soc::UART1, uart_len) })),
        // SAFETY: see above.
        usdhc: mmc(unsafe { window(soc::USDHC3, soc::USDHC_LEN) }),
        // SAFETY: see above.
        caam_ctrl: unsafe { window(soc::CAAM, 0x1000) },
        // SAFETY: see above.
        caam_jr: unsafe { window(jr, 0x1000) },
        // SAFETY: see above.
        ocotp: unsafe { window(soc::OCOTP, soc::OCOTP_LEN) },
    }
}

/// A second handle on the console UART for the fatal path (crash reports,
/// panics), which cannot borrow the shell's.
///
/// # Safety
/// Call only on a path that never returns to the code owning the console, or
/// while that code is stopped at a point where it is not using the UART (an
/// exception taken from it); interleaved bytes are the only possible effect.
pub unsafe fn emergency_console() -> Uart<MmioRegion> {
    let ptr = core::ptr::NonNull::new(soc::UART2 as *mut u32).expect("non-null");
    // SAFETY: UART2 is mapped device memory on every board; the caller
    // guarantees the owner is not using it concurrently.
    Uart::new(unsafe { MmioRegion::new(ptr, imx_uart::WINDOW_LEN) })
}

#[cfg(all(test, not(feature = "qemu")))]
mod log_uart_tests {
    use super::*;

    #[test]
    fn the_log_uart_exists_only_where_the_board_wires_it() {
        // Building the windows touches no register (host: no device there).
        assert!(soc_peripherals(1, false, |w| w).log.is_none());
        assert!(soc_peripherals(1, true, |w| w).log.is_some());
    }

    /// The EVK's UART1 is the Bluetooth UART, unclocked before the loader
    /// (checked when the EVK board is built for tests).
    #[cfg(feature = "imx8mp-evk")]
    const _: () = assert!(!<evk::Evk as Platform>::LOG_UART);
}
