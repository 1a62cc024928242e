//! PSCI over SMC (TF-A on silicon, QEMU's built-in PSCI when booted as an
//! arm64 Image).

const SYSTEM_OFF: u64 = 0x8400_0008;
const SYSTEM_RESET: u64 = 0x8400_0009;

fn call(function: u64) {
    // SAFETY: an SMC to the PSCI firmware; SYSTEM_OFF/RESET do not return on
    // success. SMCCC lets the callee clobber x0-x17, declared here.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") function => _,
            out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x5") _,
            out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
            out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack)
        )
    };
}

/// Powers the system off. Returns only if the firmware refused.
pub fn system_off() {
    call(SYSTEM_OFF);
}

/// Resets the system. Returns only if the firmware refused.
pub fn system_reset() {
    call(SYSTEM_RESET);
}

/// Stops this CPU for good (after a fatal error when PSCI failed).
pub fn halt() -> ! {
    loop {
        // SAFETY: `wfe` only waits.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}
