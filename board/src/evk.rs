//! The real i.MX8M Plus EVK (LPDDR4, eMMC on uSDHC3, console on UART2).

use crate::memory::{Kind, Region};
use crate::trap::{TrapFrame, TrapOutcome, TrapRefusal};
use crate::{Peripherals, Platform, cell::TakeOnce, dram, soc};

/// The i.MX8M Plus EVK.
pub struct Evk;

static TAKEN: TakeOnce = TakeOnce::new();

/// AIPS1-3 (all the peripherals the loader uses, CAAM and OCOTP included),
/// the GIC, and the first 2 GiB of DRAM (DMA masters here see 32 bits).
static MAP: [Region; 3] = [
    Region::new(0x3000_0000, 0x3100_0000, Kind::Device),
    Region::new(0x3880_0000, 0x3900_0000, Kind::Device),
    Region::new(dram::BASE, dram::BASE + Evk::DRAM_SIZE, Kind::Normal),
];

impl Platform for Evk {
    const NAME: &'static str = "NXP i.MX8M Plus EVK";
    const ID: &'static str = "imx8mp-evk";
    const MMC: usdhc::Config = usdhc::Config::IMX8MP_EVK_EMMC;
    const DRAM_SIZE: u64 = 2 << 30;
    /// 6 GiB LPDDR4: 3 GiB below 4 GiB, 3 GiB above.
    const DRAM_BANKS: &'static [(u64, u64)] = &[(0x4000_0000, 3 << 30), (0x1_0000_0000, 3 << 30)];

    fn memory_map() -> &'static [Region] {
        &MAP
    }

    fn early_init() {}

    fn take_peripherals() -> Option<Peripherals> {
        TAKEN
            .take()
            .then(|| crate::soc_peripherals(Self::CAAM_JOB_RING, Self::LOG_UART, |w| w))
    }

    /// A synchronous external abort on the CAAM controller page is the
    /// bus refusing a non-secure access: the secure world (OP-TEE) owns the
    /// CAAM. Say so instead of a bare crash report (`docs/caam.md`).
    fn data_abort(frame: &mut TrapFrame) -> TrapOutcome {
        const DFSC_SYNC_EXTERNAL: u64 = 0x10;
        let page0 = soc::CAAM as u64..soc::CAAM as u64 + 0x1000;
        if !page0.contains(&frame.far) || frame.esr & 0x3f != DFSC_SYNC_EXTERNAL {
            return TrapOutcome::NotMine;
        }
        // SAFETY: ELR points at the faulting load/store in the loader's
        // mapped, executable .text; reading an instruction word is harmless.
        let insn = unsafe { (frame.elr as *const u32).read_volatile() };
        TrapOutcome::Refused(TrapRefusal::new(
            frame.far,
            insn,
            format_args!("CAAM controller page not accessible: is OP-TEE in the boot image?"),
        ))
    }

    fn is_emulated(_addr: u64) -> bool {
        false
    }

    fn security_hw_error() -> Option<&'static str> {
        None
    }
}
