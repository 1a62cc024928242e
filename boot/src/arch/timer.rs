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

/// Busy-waits `us` microseconds.
pub fn delay_us(us: u64) {
    use hal::Clock;
    let t = GenericTimer;
    let d = t.deadline_us(us);
    while !d.expired(&t) {
        core::hint::spin_loop();
    }
}
