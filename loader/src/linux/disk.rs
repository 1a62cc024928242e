//! Reading Linux from the eMMC: the GPT, the `boot` partition (a FIT),
//! and the development layout's raw `kernel`, `dtb` and `initrd`.

use super::image::ImageHeader;
use crate::machine::{Machine, RamRange, outln};
use crate::requests::CmdError;
use block::gpt::{Gpt, GptPartition};
use board::dram::{FDT_LOAD, INITRD_LOAD};
use board::{Current, Platform};

/// The GPT, after bringing the card up if it is not.
fn read_gpt(m: &mut Machine) -> Result<Gpt, CmdError> {
    if m.mmc.info().is_none() {
        m.mmc
            .init()
            .map_err(|e| CmdError::msg(format_args!("{e}")))?;
    }
    Gpt::read(&mut m.mmc).map_err(|e| CmdError::msg(format_args!("GPT: {e}")))
}

/// The `boot` partition, if the GPT has one.
pub fn fit_partition(m: &mut Machine) -> Result<Option<GptPartition>, CmdError> {
    Ok(read_gpt(m)?
        .find_by_name(mfg_formats::partitions::BOOT.name)
        .cloned())
}

/// What `boot` loaded.
pub struct Loaded {
    /// Kernel Image address.
    pub kernel: u64,
    /// DTB address.
    pub fdt: u64,
    /// initramfs, if any.
    pub initrd: Option<RamRange>,
}

/// Reads one partition's first `len` bytes (whole blocks) to `addr`.
pub fn load_part(
    m: &mut Machine,
    p: &GptPartition,
    addr: u64,
    len: u64,
) -> Result<RamRange, CmdError> {
    let avail = p.num_blocks() * 512;
    if len == 0 || len > avail {
        return Err(CmdError::msg(format_args!(
            "partition '{}' holds 0x{avail:x} bytes; its content needs 0x{len:x}",
            p.display_name()
        )));
    }
    let r = m.ram(addr, len.next_multiple_of(512))?;
    // SAFETY: a checked RAM range outside the loader, referenced only here.
    let buf = unsafe { r.slice_mut() };
    m.mmc
        .read(p.first_lba, buf)
        .map_err(|e| CmdError::msg(format_args!("{e}")))?;
    Ok(RamRange { addr, len })
}

/// Loads `kernel`, `dtb` and (if present) `initrd`: each partition holds the
/// raw file; the lengths come from the files' own headers (Image
/// `image_size`, FDT `totalsize`), the initramfs takes its whole partition.
pub fn load_from_mmc(m: &mut Machine) -> Result<Loaded, CmdError> {
    use mfg_formats::partitions::{DTB, INITRD, KERNEL};
    let gpt = read_gpt(m)?;
    let find = |name: &str| {
        gpt.find_by_name(name)
            .cloned()
            .ok_or_else(|| CmdError::msg(format_args!("no '{name}' partition")))
    };
    let (kp, dp) = (find(KERNEL.name)?, find(DTB.name)?);
    // The kernel header, read to a scratch spot (the DTB lands there next).
    let head = load_part(m, &kp, FDT_LOAD, 512)?;
    // SAFETY: the 512 bytes just read, in checked RAM; only read here.
    let h = ImageHeader::parse(unsafe { head.slice_mut() })
        .map_err(|e| CmdError::msg(format_args!("partition 'kernel': {e}")))?;
    let klen = h.image_size.min(kp.num_blocks() * 512);
    // Read the Image straight to where `booti` places it, so it is not moved.
    let (_, dram_end) = m.dram();
    let kernel = h
        .placement(crate::arch::layout::image_end(), dram_end)
        .map_err(|e| CmdError::msg(format_args!("partition 'kernel': {e}")))?;
    let t0 = crate::arch::cycles();
    load_part(m, &kp, kernel, klen)?;
    // The Image read, so `xtask bench` can separate it from the loader's work.
    defmt::info!("bench linux_image_read={=u64}", crate::arch::cycles() - t0);
    let fhead = load_part(m, &dp, FDT_LOAD, 512)?;
    // SAFETY: as above.
    let flen = fdt_edit::total_size(unsafe { fhead.slice_mut() })
        .map_err(|e| CmdError::msg(format_args!("partition 'dtb': {e}")))?;
    load_part(m, &dp, FDT_LOAD, flen as u64)?;
    let initrd = match gpt.find_by_name(INITRD.name).cloned() {
        Some(ip) => Some(load_part(m, &ip, INITRD_LOAD, ip.num_blocks() * 512)?),
        None => None,
    };
    outln!(
        m,
        "Loaded kernel (0x{:x} bytes), dtb (0x{:x} bytes){} from mmc {}",
        klen,
        flen,
        if initrd.is_some() { ", initrd" } else { "" },
        Current::MMC_DEV
    );
    Ok(Loaded {
        kernel,
        fdt: FDT_LOAD,
        initrd,
    })
}

/// Whether the eMMC holds something `boot` would boot: a `boot` partition
/// starting with a device tree (the FIT), or (development builds) a
/// `kernel` partition starting with an arm64 Image header.
pub fn kernel_present(m: &mut Machine) -> bool {
    let Ok(gpt) = Gpt::read(&mut m.mmc) else {
        return false;
    };
    // A `boot` partition is always tried (a production loader then says
    // why it refuses what is there); so is a raw kernel (in production,
    // to refuse it on the console rather than silently).
    if gpt
        .find_by_name(mfg_formats::partitions::BOOT.name)
        .is_some()
    {
        return true;
    }
    let Some(p) = gpt.find_by_name(mfg_formats::partitions::KERNEL.name) else {
        return false;
    };
    let mut b = [0u8; 512];
    m.mmc.read(p.first_lba, &mut b).is_ok() && ImageHeader::parse(&b).is_ok()
}
