//! The structured log: `defmt` frames (rzcobs) on the log UART (UART1; QEMU
//! `-serial` #0), never mixed with console text. The host decodes them with
//! `defmt-print -e loader.elf`. Timestamps are microseconds of the generic
//! timer. Boards without a wired, clocked log UART (`Platform::LOG_UART`
//! false: the i.MX8M Plus EVK, whose UART1 is the Bluetooth UART) never call
//! [`init`], and every frame is dropped; the console carries every message
//! a person needs there.

use board::cell::SingleCore;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use hal::{Clock, MmioRegion};
use imx_uart::Uart;

struct LogState {
    uart: Option<Uart<MmioRegion>>,
    encoder: defmt::Encoder,
}

static TAKEN: AtomicBool = AtomicBool::new(false);
/// Frames started while another was open (from an exception handler): dropped.
static NESTED: AtomicU32 = AtomicU32::new(0);
/// Touched only between `acquire` and `release`, and `TAKEN` makes that
/// section exclusive (a logger re-entered from an exception handler finds
/// TAKEN set and drops the message).
static STATE: SingleCore<LogState> = SingleCore::new(LogState {
    uart: None,
    encoder: defmt::Encoder::new(),
});

/// Hands the log UART to the logger. Call once, early.
pub fn init(mut uart: Uart<MmioRegion>) {
    uart.init();
    if TAKEN.swap(true, Ordering::Acquire) {
        return;
    }
    // SAFETY: TAKEN is held, so no log frame is being written.
    unsafe { STATE.get().uart = Some(uart) };
    TAKEN.store(false, Ordering::Release);
}

#[defmt::global_logger]
struct Logger;

// SAFETY: acquire/release bracket every frame; TAKEN gives exclusivity.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            NESTED.fetch_add(1, Ordering::Relaxed);
        } else {
            // SAFETY: we hold TAKEN.
            let s = unsafe { STATE.get() };
            if let Some(u) = s.uart.as_mut() {
                s.encoder.start_frame(|b| u.write_bytes(b));
            }
        }
    }

    unsafe fn flush() {}

    unsafe fn release() {
        if NESTED.load(Ordering::Relaxed) > 0 {
            NESTED.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        // SAFETY: we hold TAKEN (the outermost acquire took it).
        let s = unsafe { STATE.get() };
        if let Some(u) = s.uart.as_mut() {
            s.encoder.end_frame(|b| u.write_bytes(b));
        }
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        if NESTED.load(Ordering::Relaxed) == 0 {
            // SAFETY: we hold TAKEN (the outermost acquire took it).
            let s = unsafe { STATE.get() };
            if let Some(u) = s.uart.as_mut() {
                s.encoder.write(bytes, |b| u.write_bytes(b));
            }
        }
    }
}

defmt::timestamp!("{=u64:us}", board::timer::GenericTimer.micros());
