//! The Arm generic timer as the [`hal::Clock`] of the loader, its drivers
//! and the board: the physical counter (CNTPCT_EL0) at CNTFRQ_EL0 ticks per
//! second (8 MHz on QEMU; the frequency TF-A programmed on silicon). On the
//! host (unit tests of the portable crates) it reads 0 at 1 Hz.

/// The generic timer.
#[derive(Clone, Copy, Default, Debug)]
pub struct GenericTimer;

impl hal::Clock for GenericTimer {
    fn ticks(&self) -> u64 {
        #[cfg(target_arch = "aarch64")]
        {
            let v: u64;
            // SAFETY: an ISB (so the read is not hoisted above earlier
            // instructions) and a read of CNTPCT_EL0 have no side effects.
            unsafe {
                core::arch::asm!("isb", "mrs {}, cntpct_el0", out(reg) v, options(nomem, nostack))
            };
            v
        }
        #[cfg(not(target_arch = "aarch64"))]
        0
    }

    fn frequency(&self) -> u64 {
        #[cfg(target_arch = "aarch64")]
        {
            let f: u64;
            // SAFETY: reading CNTFRQ_EL0 has no side effects.
            unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
            f.max(1)
        }
        #[cfg(not(target_arch = "aarch64"))]
        1
    }
}
