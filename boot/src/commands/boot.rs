//! booti and bootargs.

use super::{CmdError, Command, arity};
use crate::console::args::hex;
use crate::linux::handoff::{self, Handoff};
use crate::linux::image::ImageHeader;
use crate::machine::{Machine, RamRange, outln};
use board::{Current, Platform};
use fdt_edit::Fdt;

pub const BOOTI: Command = Command {
    name: "booti",
    sized: false,
    summary: "boot Linux 'Image' format from memory",
    usage: "KERNEL_ADDR INITRD_ADDR:SIZE|- FDT_ADDR\n    - boot the arm64 Image at KERNEL_ADDR with the device tree at FDT_ADDR,\n      and an initramfs at INITRD_ADDR (SIZE bytes), or none with '-'",
    run: booti,
};

pub const BOOTARGS: Command = Command {
    name: "bootargs",
    sized: false,
    summary: "print or set the kernel command line",
    usage: "\n    - print the kernel command line\nbootargs VALUE...\n    - set it for the next boot",
    run: bootargs,
};

/// Room the DTB gets to grow for the loader's fix-ups.
const FDT_SLACK: u64 = 0x1_0000;

fn bootargs(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    if args.len() == 1 {
        let b = m.bootargs.clone();
        outln!(m, "bootargs={}", b.as_str());
        return Ok(());
    }
    let mut s: heapless::String<512> = heapless::String::new();
    for (i, a) in args[1..].iter().enumerate() {
        if (i > 0 && s.push(' ').is_err()) || s.push_str(a).is_err() {
            return Err(CmdError::msg(format_args!(
                "command line longer than 511 bytes"
            )));
        }
    }
    m.bootargs = s;
    Ok(())
}

fn booti(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    arity(args, 3, 3)?;
    let kernel = hex(args[1])?;
    let initrd = match args[2] {
        "-" => None,
        spec => {
            let (a, s) = spec
                .split_once(':')
                .ok_or_else(|| CmdError::msg(format_args!("initrd must be ADDR:SIZE or '-'")))?;
            Some(m.ram(hex(a)?, hex(s)?)?)
        }
    };
    let fdt_src = hex(args[3])?;
    let plan = plan(m, kernel, initrd, fdt_src)?;
    outln!(m, "## Flattened Device Tree blob at {:08x}", fdt_src);
    outln!(
        m,
        "   Loading Device Tree to {:08x}, end {:08x} ... OK",
        plan.dtb.0,
        plan.dtb.0 + plan.dtb.1
    );
    outln!(m);
    outln!(m, "Starting kernel ...");
    outln!(m);
    m.console.flush();
    handoff::enter(&plan)
}

/// Checks everything, moves the kernel into place, copies and fixes up the
/// DTB. Nothing is moved unless every check passed.
fn plan(
    m: &mut Machine,
    kernel: u64,
    initrd: Option<RamRange>,
    fdt_src: u64,
) -> Result<Handoff, CmdError> {
    let (_, dram_end) = m.dram();
    let mut head = [0u8; 64];
    // SAFETY: `m.ram` checked the 64 bytes are RAM outside the loader; we
    // only copy them out.
    head.copy_from_slice(unsafe { m.ram(kernel, 64)?.slice_mut() });
    let h = ImageHeader::parse(&head).map_err(|e| CmdError::msg(format_args!("{e}")))?;
    let src = m.ram(kernel, h.image_size)?;
    let entry = h
        .placement(crate::arch::layout::image_end(), dram_end)
        .map_err(|e| CmdError::msg(format_args!("{e}")))?;
    let dst = m.ram(entry, h.image_size)?;

    let mut fh = [0u8; 40];
    // SAFETY: as above, a copy out of checked RAM.
    fh.copy_from_slice(unsafe { m.ram(fdt_src, 40)?.slice_mut() });
    let fdt_len = fdt_edit::total_size(&fh)
        .map_err(|e| CmdError::msg(format_args!("FDT at 0x{fdt_src:x}: {e}")))?
        as u64;
    let fdt_in = m.ram(fdt_src, fdt_len)?;
    let fdt_dst = m.ram((dst.end()).next_multiple_of(2 << 20), fdt_len + FDT_SLACK)?;
    if fdt_in.overlaps(&fdt_dst) {
        return Err(CmdError::msg(format_args!(
            "the device tree at 0x{fdt_src:x} is where the loader puts the fixed-up copy; load it elsewhere"
        )));
    }
    if let Some(rd) = initrd
        && (rd.overlaps(&dst) || rd.overlaps(&fdt_dst))
    {
        return Err(CmdError::msg(format_args!(
            "the initramfs overlaps where the kernel or device tree go"
        )));
    }
    if fdt_in.overlaps(&dst) {
        return Err(CmdError::msg(format_args!(
            "the device tree at 0x{fdt_src:x} would be overwritten by the kernel"
        )));
    }

    // SAFETY: fdt_in and fdt_dst are disjoint checked RAM ranges; nothing
    // else refers to them.
    let input = unsafe { fdt_in.slice_mut() };
    // SAFETY: as above.
    let out = unsafe { fdt_dst.slice_mut() };
    let mut fdt = Fdt::open_into(input, out)
        .map_err(|e| CmdError::msg(format_args!("FDT at 0x{fdt_src:x}: {e}")))?;
    fixup(m, &mut fdt, initrd).map_err(|e| CmdError::msg(format_args!("FDT fix-up: {e}")))?;
    let dtb = (fdt_dst.addr, fdt.totalsize() as u64);

    // Last: move the kernel (source and destination may overlap).
    // SAFETY: both ranges are checked RAM outside the loader, disjoint from
    // the new DTB and the initramfs; `copy` allows overlap.
    unsafe { core::ptr::copy(src.addr as *const u8, dst.addr as *mut u8, src.len as usize) };
    Ok(Handoff {
        entry,
        image_size: h.image_size,
        dtb,
        initrd: initrd.map(|r| (r.addr, r.len)),
    })
}

/// The device-tree fix-ups: command line, initramfs, memory.
/// `/memory` cells assume the usual `#address-cells = #size-cells = 2` of
/// arm64 device trees.
fn fixup(
    m: &Machine,
    fdt: &mut Fdt<'_>,
    initrd: Option<RamRange>,
) -> Result<(), fdt_edit::FdtError> {
    let root = fdt.find_node("/")?;
    let chosen = fdt.ensure_subnode(root, "chosen")?;
    fdt.set_prop_str(chosen, "bootargs", &m.bootargs)?;
    if let Some(rd) = initrd {
        fdt.set_prop_u64(chosen, "linux,initrd-start", rd.addr)?;
        fdt.set_prop_u64(chosen, "linux,initrd-end", rd.end())?;
    }
    // Like U-Boot, always describe the DRAM the board really has: a board
    // DTB may describe another memory fit (the EVK DTB says 6 GiB).
    let mem = match fdt.find_node("/memory") {
        Ok(n) => n,
        Err(_) => fdt.ensure_subnode(root, "memory@40000000")?,
    };
    fdt.set_prop_str(mem, "device_type", "memory")?;
    let mut reg: heapless::Vec<u32, 8> = heapless::Vec::new();
    for &(base, size) in Current::DRAM_BANKS {
        for v in [base, size] {
            let _ = reg.push((v >> 32) as u32);
            let _ = reg.push(v as u32);
        }
    }
    fdt.set_prop_u32s(mem, "reg", &reg)?;
    Ok(())
}
