//! The generic timer as the loader's [`hal::Clock`].

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0, Readable};

/// The physical counter (CNTPCT_EL0) at CNTFRQ_EL0 ticks per second (8 MHz on
/// QEMU; the frequency TF-A programmed on silicon).
#[derive(Clone, Copy, Default)]
pub struct GenericTimer;

impl hal::Clock for GenericTimer {
    fn ticks(&self) -> u64 {
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        CNTPCT_EL0.get()
    }

    fn frequency(&self) -> u64 {
        CNTFRQ_EL0.get().max(1)
    }
}
