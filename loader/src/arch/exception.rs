//! What happens on an exception: MMIO emulation (QEMU board), recoverable
//! faults of the `md`/`mw` probes, and otherwise a crash report on the
//! console and a clean stop.

use super::layout;
use board::cell::SingleCore;
use board::trap::{TrapFrame, TrapOutcome, TrapRefusal};
use board::{Current, Platform};
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

const EC_DATA_ABORT_SAME_EL: u64 = 0x25;
#[cfg(not(feature = "production"))]
const EC_BRK: u64 = 0x3c;
/// Vector kinds from entry.S: 0..3 from code on SP_EL0 (the loader), 4..7 from
/// the exception handler itself (SP_EL2).
const KIND_SYNC_SP0: u64 = 0;
/// Added to the kind by a vector that found SP_EL2 below the exception
/// stack (`KIND_EXC_STACK_OVERFLOW` in entry.S): the handler that was
/// running overflowed its stack; the vector reset SP_EL2 to the top.
const KIND_EXC_STACK_OVERFLOW: u64 = 16;

/// `brk` immediate of the debug `crash estack` command: its handler
/// recurses on the exception stack until the stack overflows.
#[cfg(not(feature = "production"))]
pub const BRK_EXHAUST_EXC_STACK: u16 = 0xe5;

unsafe extern "C" {
    static probe_insns_start: u8;
    static probe_insns_end: u8;
    static probe_fault: u8;
}

/// The last fault a probe took: syndrome and, for refused emulated
/// accesses, the reason.
static PROBE_ESR: AtomicU64 = AtomicU64::new(0);
/// Written only by the exception handler while the probe that faulted is
/// stopped, and read by that probe's caller after it returned: the two
/// never overlap.
static PROBE_REFUSAL: SingleCore<Option<TrapRefusal>> = SingleCore::new(None);

/// Details of the last probe fault.
pub struct ProbeFault {
    /// Exception syndrome.
    pub esr: u64,
    /// Why an emulated access was refused, if it was one.
    pub refusal: Option<TrapRefusal>,
}

/// The last probe fault (valid right after a probe returned 1).
pub fn last_probe_fault() -> ProbeFault {
    // SAFETY: see `PROBE_REFUSAL`: no fault is being handled now.
    let refusal = unsafe { *PROBE_REFUSAL.get() };
    ProbeFault {
        esr: PROBE_ESR.load(Ordering::Relaxed),
        refusal,
    }
}

/// If the fault came from a probe instruction, makes the probe return 1.
fn probe_fixup(frame: &mut TrapFrame, refusal: Option<TrapRefusal>) -> bool {
    let start = core::ptr::addr_of!(probe_insns_start) as u64;
    let end = core::ptr::addr_of!(probe_insns_end) as u64;
    if !(start..end).contains(&frame.elr) {
        return false;
    }
    PROBE_ESR.store(frame.esr, Ordering::Relaxed);
    // SAFETY: see `PROBE_REFUSAL`: we are the exception handler.
    unsafe { *PROBE_REFUSAL.get() = refusal };
    frame.elr = core::ptr::addr_of!(probe_fault) as u64;
    true
}

/// Cycles spent emulating trapped device accesses (QEMU's CAAM/OCOTP).
static EMULATION_CYCLES: AtomicU64 = AtomicU64::new(0);

/// Total cycles spent in emulated accesses since boot, from handler entry
/// to return (the vector's register save/restore is not included).
pub fn emulation_cycles() -> u64 {
    EMULATION_CYCLES.load(Ordering::Relaxed)
}

#[unsafe(no_mangle)]
extern "C" fn exception_entry(kind: u64, frame: &mut TrapFrame) {
    if kind >= KIND_EXC_STACK_OVERFLOW {
        // Whatever the overflowed handler was doing is lost: stop here.
        crash(kind, frame, None)
    }
    let ec = (frame.esr >> 26) & 0x3f;
    #[cfg(not(feature = "production"))]
    if kind == KIND_SYNC_SP0
        && ec == EC_BRK
        && frame.esr & 0xffff == u64::from(BRK_EXHAUST_EXC_STACK)
    {
        let depth = exhaust_stack(0);
        // Unreachable unless the guard page is missing.
        defmt::error!("exception stack did not overflow (depth {=u64})", depth);
    }
    let mut refusal = None;
    if kind == KIND_SYNC_SP0 && ec == EC_DATA_ABORT_SAME_EL {
        let t = super::cycles();
        let outcome = Current::data_abort(frame);
        if outcome == TrapOutcome::Emulated {
            EMULATION_CYCLES.fetch_add(super::cycles() - t, Ordering::Relaxed);
        }
        match outcome {
            TrapOutcome::Emulated => return,
            TrapOutcome::NotMine => {}
            TrapOutcome::Refused(r) => refusal = Some(r),
        }
        if probe_fixup(frame, refusal) {
            return;
        }
    }
    crash(kind, frame, refusal)
}

/// Recurses with a 1 KiB frame on the current stack until a store lands in
/// its guard page (`crash stack` on the main stack, `crash estack` on the
/// exception stack). The frame is smaller than the 4 KiB guard page, so the
/// overflow cannot jump over it.
#[cfg(not(feature = "production"))]
#[inline(never)]
pub fn exhaust_stack(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    frame[usize::try_from(depth % 1024).unwrap_or(0)] = 1;
    core::hint::black_box(&mut frame);
    if depth == u64::MAX {
        return 0;
    }
    exhaust_stack(depth + 1) + u64::from(frame[0])
}

fn kind_name(kind: u64) -> &'static str {
    let what = ["synchronous", "IRQ", "FIQ", "SError"][(kind & 3) as usize];
    match kind >> 2 {
        0 => what,
        1 => match kind & 3 {
            0 => "synchronous (inside the exception handler)",
            _ => what,
        },
        _ => "from a lower EL",
    }
}

fn ec_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason",
        0x07 => "FP/SIMD access trapped",
        0x0e => "illegal execution state",
        0x15..=0x17 => "SVC/HVC/SMC",
        0x18 => "system register access trapped",
        0x20 | 0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 | 0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x3c => "BRK instruction",
        _ => "other",
    }
}

/// The fault status code (DFSC/IFSC) of an abort, in words.
fn fault_status(esr: u64) -> Option<&'static str> {
    let ec = (esr >> 26) & 0x3f;
    if !matches!(ec, 0x20 | 0x21 | 0x24 | 0x25) {
        return None;
    }
    Some(match esr & 0x3f {
        0x04..=0x07 => "translation fault",
        0x09..=0x0b => "access flag fault",
        0x0c..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x21 => "alignment fault",
        _ => "other fault status",
    })
}

fn diagnose(kind: u64, frame: &TrapFrame) -> Option<&'static str> {
    if kind >= KIND_EXC_STACK_OVERFLOW {
        return Some(
            "exception stack overflow (SP_EL2 below the exception stack; the handler's state is lost)",
        );
    }
    let far = frame.far;
    let ec = (frame.esr >> 26) & 0x3f;
    let permission = matches!(frame.esr & 0x3f, 0x0c..=0x0f);
    if ec == 0x21 && permission {
        return Some("instruction abort on an XN (execute-never) page");
    }
    let in_range = |a: u64, b: u64| (a..b).contains(&far);
    if in_range(layout::stack_guard(), layout::stack_bottom()) {
        Some("stack overflow (fault in the main stack's guard page)")
    } else if in_range(layout::exc_stack_guard(), layout::exc_stack_bottom()) {
        Some("exception stack overflow")
    } else if in_range(layout::image_start(), layout::text_end()) && (frame.esr >> 6) & 1 == 1 {
        Some("write to read-only .text")
    } else {
        None
    }
}

/// Prints the crash report on the console and the log, then stops.
fn crash(kind: u64, frame: &TrapFrame, refusal: Option<TrapRefusal>) -> ! {
    // SAFETY: this path never returns to the shell that owns the console.
    let mut con = unsafe { board::emergency_console() };
    let ec = (frame.esr >> 26) & 0x3f;
    let _ = write!(con, "\r\n*** EXCEPTION: {}", kind_name(kind & 15));
    if kind >= KIND_EXC_STACK_OVERFLOW {
        let _ = write!(con, ", on an overflowed exception stack");
    }
    let _ = write!(con, " ***\r\n");
    let _ = write!(
        con,
        "ESR  = 0x{:08x}  EC 0x{:02x} ({})  ISS 0x{:07x}\r\nFAR  = 0x{:016x}\r\nELR  = 0x{:016x}  SPSR = 0x{:08x}\r\n",
        frame.esr,
        ec,
        ec_name(ec),
        frame.esr & 0x1ff_ffff,
        frame.far,
        frame.elr,
        frame.spsr
    );
    if let Some(fs) = fault_status(frame.esr) {
        let access = if ec < 0x24 {
            "instruction fetch"
        } else if (frame.esr >> 6) & 1 == 1 {
            "write"
        } else {
            "read"
        };
        let _ = write!(con, "fault: {fs} on {access}");
        if matches!(frame.esr & 0x3c, 0x04 | 0x08 | 0x0c) {
            let _ = write!(con, ", level {}", frame.esr & 3);
        }
        let _ = write!(con, "\r\n");
    }
    for (i, x) in frame.x.iter().enumerate() {
        let sep = if i % 4 == 3 || i == 30 { "\r\n" } else { "  " };
        let _ = write!(con, "x{i:<2} = 0x{x:016x}{sep}");
    }
    let _ = write!(con, "sp  = 0x{:016x}\r\n", frame.sp);
    if let Some(r) = refusal {
        let _ = write!(
            con,
            "emulation refused the access at 0x{:x} (insn 0x{:08x}): {}\r\n",
            r.addr,
            r.insn,
            r.reason()
        );
    }
    if let Some(d) = diagnose(kind, frame) {
        let _ = write!(con, "cause: {d}\r\n");
    }
    let _ = write!(con, "*** loader stopped ***\r\n");
    defmt::error!(
        "exception kind={=u64} esr={=u64:#x} far={=u64:#x} elr={=u64:#x}",
        kind,
        frame.esr,
        frame.far,
        frame.elr
    );
    super::psci::halt()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // SAFETY: a panic never returns to the shell that owns the console.
    let mut con = unsafe { board::emergency_console() };
    let _ = write!(
        con,
        "\r\n*** PANIC: {info} ***\r\n*** loader stopped ***\r\n"
    );
    defmt::error!("panic");
    super::psci::halt()
}
