//! md and mw: memory and register display/modify, U-Boot syntax and format.
//!
//! Every access goes through a probe (see `arch/entry.S`): an address that is
//! not mapped is refused up front, and a bus fault or refused emulated access
//! is reported instead of crashing. Development builds: on QEMU the
//! emulated CAAM/OCOTP windows are reachable exactly as on silicon, and so
//! is the loader's own memory (bring-up). Production builds (once a token
//! unlocked `md`/`mw`): only DRAM outside the loader image, see
//! [`production_range`].

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

/// The production build's limit for `md`/`mw`, checked before any access:
/// never the CAAM, OCOTP or SNVS register windows (a CAAM job reads the MP
/// keys, aims DMA anywhere; the OCOTP window programs fuses), never an
/// address the QEMU board emulates, and otherwise only DRAM outside the
/// loader's image (its code, data, stacks and, on QEMU, the emulator's
/// state) as [`Machine::ram`] checks it: no other device either (a uSDHC
/// ADMA descriptor would reach the loader through DMA).
fn production_range(m: &Machine, addr: u64, end: u64) -> Result<(), CmdError> {
    use board::soc;
    const WINDOWS: [(usize, usize, &str); 3] = [
        (soc::CAAM, soc::CAAM_LEN, "the CAAM"),
        (soc::OCOTP, soc::OCOTP_LEN, "the OCOTP (fuse)"),
        (soc::SNVS, 0x1_0000, "the SNVS"),
    ];
    for (base, len, what) in WINDOWS {
        let (b, e) = (base as u64, (base + len) as u64);
        if addr < e && b < end {
            return Err(CmdError::msg(format_args!(
                "0x{addr:x}..0x{end:x} reaches {what} register window (0x{b:x}..0x{e:x}): refused in the production build"
            )));
        }
    }
    let mut page = addr & !0xfff;
    while page < end {
        if Current::is_emulated(page.max(addr)) {
            return Err(CmdError::msg(format_args!(
                "0x{:x} is an emulated device: refused in the production build",
                page.max(addr)
            )));
        }
        page += 0x1000;
    }
    m.ram(addr, end - addr).map(|_| ()).map_err(|e| match e {
        CmdError::Msg(s) => CmdError::msg(format_args!(
            "{s} (production build: md/mw reach only DRAM outside the loader)"
        )),
        other => other,
    })
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
    if cfg!(feature = "production") {
        production_range(m, addr, end)?;
    }
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
    if cfg!(feature = "production") {
        production_range(m, r.addr, r.addr + r.len())?;
    }
    check_mapped(r.addr, r.addr + r.len())?;
    for i in 0..r.count {
        write(r.addr + i * r.width as u64, r.width, r.value)?;
    }
    Ok(())
}
