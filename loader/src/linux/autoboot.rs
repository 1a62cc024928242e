//! U-Boot's autoboot countdown, run once after power-on.

use crate::machine::{Machine, outln};

/// U-Boot's autoboot: when the eMMC holds a kernel, count down `delay`
/// seconds (`Hit any key to stop autoboot`), then `boot`. A key stops it.
pub fn autoboot(m: &mut Machine, delay: u32) {
    use core::fmt::Write;
    use hal::Clock;
    if m.mmc.info().is_none() || !super::disk::kernel_present(m) {
        return;
    }
    let clock = board::timer::GenericTimer;
    let t0 = crate::arch::cycles();
    defmt::info!("bench autoboot_start={=u64}", t0);
    let mut left = delay;
    let _ = write!(m, "Hit any key to stop autoboot: {left:2} ");
    loop {
        let second = clock.deadline_us(1_000_000);
        loop {
            if let Some(b) = m.try_read_byte() {
                // The key is consumed, as in U-Boot; but an Esc starts a
                // key's escape sequence, whose rest is still to come: give
                // it back so the shell's editor swallows the whole key.
                if b == 0x1b {
                    let _ = m.typeahead.push_front(b);
                }
                outln!(m);
                return;
            }
            if left == 0 || second.expired(&clock) {
                break;
            }
        }
        if left == 0 {
            break;
        }
        left -= 1;
        let _ = write!(m, "\x08\x08\x08{left:2} ");
    }
    outln!(m);
    // The countdown busy-polls the timer and the UART: under `-icount` the
    // delay is executed instructions, which `xtask bench` subtracts.
    defmt::info!("bench autoboot_wait={=u64}", crate::arch::cycles() - t0);
    if let Err(e) = super::boot(m) {
        outln!(m, "boot: {}", e);
    }
}
