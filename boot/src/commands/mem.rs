//! md and mw: memory and register display/modify, U-Boot syntax and format.
//!
//! Every access goes through a probe (see `arch/entry.S`): an address that is
//! not mapped is refused up front, and a bus fault or refused emulated access
//! is reported instead of crashing. On QEMU the emulated CAAM/OCOTP windows
//! are reachable exactly as on silicon.

use super::{CmdError, Command};
use crate::arch::{exception, mmu};
use crate::console::hexdump::{self, LINE_BYTES};
use crate::machine::{Machine, outln};
use crate::requests::mem::{parse_md, parse_mw};
use board::{Current, Platform};

pub const MD: Command = Command {
    name: "md",
    sized: true,
    summary: "memory display",
    usage: "[.b, .w, .l, .q] address [# of objects]",
    run: md,
};

pub const MW: Command = Command {
    name: "mw",
    sized: true,
    summary: "memory write (fill)",
    usage: "[.b, .w, .l, .q] address value [count]",
    run: mw,
};

unsafe extern "C" {
    fn probe_read8(addr: u64, out: *mut u64) -> u64;
    fn probe_read16(addr: u64, out: *mut u64) -> u64;
    fn probe_read32(addr: u64, out: *mut u64) -> u64;
    fn probe_read64(addr: u64, out: *mut u64) -> u64;
    fn probe_write8(addr: u64, v: u64) -> u64;
    fn probe_write16(addr: u64, v: u64) -> u64;
    fn probe_write32(addr: u64, v: u64) -> u64;
    fn probe_write64(addr: u64, v: u64) -> u64;
}

/// Checks that `[addr, end)` is mapped (or emulated) page by page (the
/// parser checked alignment and that the range does not wrap).
fn check_mapped(addr: u64, end: u64) -> Result<(), CmdError> {
    let mut page = addr & !0xfff;
    while page < end {
        let a = page.max(addr);
        if mmu::lookup(a) == mmu::Perm::None && !Current::is_emulated(a) {
            return Err(CmdError::msg(format_args!(
                "address 0x{a:x} is not mapped (outside RAM and devices, or a guard page)"
            )));
        }
        page += 0x1000;
    }
    Ok(())
}

fn fault_error(op: &str, addr: u64) -> CmdError {
    let f = exception::last_probe_fault();
    match f.refusal {
        Some(r) => CmdError::msg(format_args!("{op} 0x{addr:x} refused: {}", r.reason())),
        None => {
            let dfsc = f.esr & 0x3f;
            let kind = match dfsc {
                0x0c..=0x0f => "permission fault",
                0x04..=0x07 => "translation fault",
                0x10 => "external abort (no device answered)",
                0x21 => "alignment fault",
                _ => "fault",
            };
            CmdError::msg(format_args!(
                "{kind} on {op} 0x{addr:x} (ESR 0x{:08x})",
                f.esr
            ))
        }
    }
}

fn read(addr: u64, width: usize) -> Result<u64, CmdError> {
    let mut v = 0u64;
    let out = &mut v as *mut u64;
    let probe: unsafe extern "C" fn(u64, *mut u64) -> u64 = match width {
        1 => probe_read8,
        2 => probe_read16,
        4 => probe_read32,
        _ => probe_read64,
    };
    // SAFETY: the probe accesses `addr` with one load of `width` bytes; a
    // fault there is caught by the exception handler (probe fixup) and
    // returns 1 instead of crashing. `out` is a valid u64 on our stack.
    let r = unsafe { probe(addr, out) };
    if r == 0 {
        Ok(v)
    } else {
        Err(fault_error("read at", addr))
    }
}

fn write(addr: u64, width: usize, v: u64) -> Result<(), CmdError> {
    let probe: unsafe extern "C" fn(u64, u64) -> u64 = match width {
        1 => probe_write8,
        2 => probe_write16,
        4 => probe_write32,
        _ => probe_write64,
    };
    // SAFETY: as in `read`: one store of `width` bytes at an address the
    // user chose, faults caught by the probe fixup. Writing over the loader's
    // own RW data is the user's call, as in U-Boot.
    let r = unsafe { probe(addr, v) };
    if r == 0 {
        Ok(())
    } else {
        Err(fault_error("write at", addr))
    }
}

fn md(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    let r = parse_md(args)?;
    let (addr, width) = (r.addr, r.width);
    let end = addr + r.len();
    check_mapped(addr, end)?;
    let mut line = [0u8; LINE_BYTES];
    let mut a = addr;
    while a < end {
        let n = ((end - a) as usize).min(LINE_BYTES);
        for off in (0..n).step_by(width) {
            let v = read(a + off as u64, width)?;
            line[off..off + width].copy_from_slice(&v.to_le_bytes()[..width]);
        }
        let _ = hexdump::line(m, a, &line[..n], width);
        a += n as u64;
        if m.ctrlc() {
            outln!(m, "<INTERRUPT>");
            break;
        }
    }
    Ok(())
}

fn mw(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    let r = parse_mw(args)?;
    check_mapped(r.addr, r.addr + r.len())?;
    for i in 0..r.count {
        write(r.addr + i * r.width as u64, r.width, r.value)?;
    }
    let _ = m;
    Ok(())
}
