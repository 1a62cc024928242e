//! Placing Linux like U-Boot's `booti`: check the Image header, move the
//! kernel to its 2 MiB-aligned base, copy and fix up the device tree, then
//! hand off.

use super::handoff::{self, Handoff};
use super::image::ImageHeader;
use crate::machine::{Machine, RamRange, outln};
use crate::requests::CmdError;
use board::dram::FDT_SLACK;
use board::{Current, Platform};
use fdt_edit::Fdt;

/// Places everything, fixes up the DTB and enters the kernel; returns only
/// on an error (with nothing moved unless all checks passed).
pub fn start(
    m: &mut Machine,
    kernel: u64,
    initrd: Option<RamRange>,
    fdt_src: u64,
) -> Result<(), CmdError> {
    let t0 = crate::arch::cycles();
    let prov = crate::provisioning::summary(m);
    defmt::info!("bench linux_summary={=u64}", crate::arch::cycles() - t0);
    let plan = plan(m, kernel, initrd, fdt_src, prov)?;
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
    prov: Option<crate::provisioning::Summary>,
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
    let t0 = crate::arch::cycles();
    let mut fdt = Fdt::open_into(input, out)
        .map_err(|e| CmdError::msg(format_args!("FDT at 0x{fdt_src:x}: {e}")))?;
    fixup(m, &mut fdt, initrd, prov).map_err(|e| CmdError::msg(format_args!("FDT fix-up: {e}")))?;
    let dtb = (fdt_dst.addr, fdt.totalsize() as u64);
    defmt::info!("bench linux_fdt={=u64}", crate::arch::cycles() - t0);

    // Last: move the kernel (source and destination may overlap).
    let t0 = crate::arch::cycles();
    if src.addr != dst.addr {
        // SAFETY: both ranges are checked RAM outside the loader, disjoint
        // from the new DTB and the initramfs; `copy` allows overlap.
        unsafe { core::ptr::copy(src.addr as *const u8, dst.addr as *mut u8, src.len as usize) };
    }
    defmt::info!("bench linux_image_move={=u64}", crate::arch::cycles() - t0);
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
    prov: Option<crate::provisioning::Summary>,
) -> Result<(), fdt_edit::FdtError> {
    let root = fdt.find_node("/")?;
    let chosen = fdt.ensure_subnode(root, "chosen")?;
    fdt.set_prop_str(chosen, "bootargs", &m.bootargs)?;
    // The provisioning outcome, so the OS finds its blobs without parsing
    // the journal (documented in docs/formats.md, "Linux handoff").
    if let Some(p) = prov {
        fdt.set_prop_str(chosen, "mfgprot,state", p.state.as_str())?;
        fdt.set_prop_str(
            chosen,
            "mfgprot,partition",
            mfg_formats::partitions::MFG_DATA.name,
        )?;
        fdt.set_prop_u32s(chosen, "mfgprot,partition-index", &[p.partition_index])?;
        fdt.set_prop_u64(chosen, "mfgprot,blob-table-offset", p.table_offset)?;
        fdt.set_prop_u32s(chosen, "mfgprot,blob-count", &[u32::from(p.blob_count)])?;
        let mut uid = [0u8; 32];
        for (i, b) in p.uid.iter().enumerate() {
            let hex = b"0123456789abcdef";
            uid[2 * i] = hex[usize::from(b >> 4)];
            uid[2 * i + 1] = hex[usize::from(b & 15)];
        }
        fdt.set_prop_str(
            chosen,
            "mfgprot,uid",
            core::str::from_utf8(&uid).unwrap_or(""),
        )?;
    }
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
