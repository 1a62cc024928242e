//! md and mw: memory and register display/modify, U-Boot syntax and format.
//!
//! Every access goes through a probe (see `arch/entry.S`): an address that is
//! not mapped is refused up front, and a bus fault or refused emulated access
//! is reported instead of crashing. On QEMU the emulated CAAM/OCOTP windows
//! are reachable exactly as on silicon.

use super::{CmdError, Command, arity};
use crate::arch::{exception, mmu};
use crate::console::args::{hex, width_suffix};
use crate::console::hexdump::{self, LINE_BYTES};
use crate::machine::{Machine, outln};
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

/// Checks that `[addr, addr + len)` is mapped (or emulated) page by page.
fn check_range(addr: u64, len: u64, width: usize) -> Result<(), CmdError> {
    if !addr.is_multiple_of(width as u64) {
        return Err(CmdError::msg(format_args!(
            "address 0x{addr:x} is not aligned to {width} bytes"
        )));
    }
    let end = addr
        .checked_add(len)
        .ok_or_else(|| CmdError::msg(format_args!("range past the end of the address space")))?;
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

fn width_of(typed: &str) -> usize {
    width_suffix(typed).map_or(4, |(_, w)| w)
}

fn md(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    arity(args, 1, 2)?;
    let width = width_of(args[0]);
    let addr = hex(args[1])?;
    let count = args.get(2).map(|c| hex(c)).transpose()?.unwrap_or(0x40);
    if count == 0 {
        return Err(CmdError::msg(format_args!("count must be at least 1")));
    }
    let len = count
        .checked_mul(width as u64)
        .ok_or_else(|| CmdError::msg(format_args!("count too large")))?;
    check_range(addr, len, width)?;
    let mut line = [0u8; LINE_BYTES];
    let mut a = addr;
    let end = addr + len;
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
    arity(args, 2, 3)?;
    let width = width_of(args[0]);
    let addr = hex(args[1])?;
    let value = hex(args[2])?;
    if width < 8 && value >> (8 * width) != 0 {
        return Err(CmdError::msg(format_args!(
            "value 0x{value:x} does not fit in {width} byte(s)"
        )));
    }
    let count = args.get(3).map(|c| hex(c)).transpose()?.unwrap_or(1);
    if count == 0 {
        return Err(CmdError::msg(format_args!("count must be at least 1")));
    }
    let len = count
        .checked_mul(width as u64)
        .ok_or_else(|| CmdError::msg(format_args!("count too large")))?;
    check_range(addr, len, width)?;
    for i in 0..count {
        write(addr + i * width as u64, width, value)?;
    }
    let _ = m;
    Ok(())
}
