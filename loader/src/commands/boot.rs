//! booti, boot (from the eMMC) and bootargs.

use super::{CmdError, Command};
use crate::linux::handoff::{self, Handoff};
use crate::linux::image::ImageHeader;
use crate::machine::{Machine, RamRange, outln};
#[cfg(not(feature = "production"))]
use crate::requests::boot::parse_booti;
use crate::requests::boot::{BootargsRequest, parse_boot, parse_bootargs};
use board::dram::{FDT_LOAD, FDT_SLACK, FIT_LOAD, FIT_MAX, INITRD_LOAD};
use board::{Current, Platform};
use fdt_edit::Fdt;

#[cfg(not(feature = "production"))]
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

#[cfg(feature = "production")]
pub const BOOT: Command = Command {
    name: "boot",
    sized: false,
    summary: "boot the signed FIT in the eMMC's 'boot' partition",
    usage: "\n    - verify the FIT in the 'boot' partition against the built-in boot key and boot it",
    run: boot,
};

#[cfg(not(feature = "production"))]
pub const BOOT: Command = Command {
    name: "boot",
    sized: false,
    summary: "boot Linux from the eMMC (signed FIT, else raw partitions)",
    usage: "\n    - boot the signed FIT in the 'boot' partition if there is one, else load the\n      partitions 'kernel', 'dtb' and, if present, 'initrd' and boot them",
    run: boot,
};

/// The FIT boot public key(s): a U-Boot control DTB (`/signature/<name>`),
/// embedded by `loader/build.rs` from `MFG_BOOT_KEY` or the development key.
static BOOT_KEY_DTB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/boot-key.dtb"));
/// "OEM" or "development".
pub const BOOT_KEY_KIND: &str = env!("MFG_BOOT_KEY_KIND");

fn bootargs(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    match parse_bootargs(args)? {
        BootargsRequest::Show => {
            let b = m.bootargs.clone();
            outln!(m, "bootargs={}", b.as_str());
        }
        #[cfg(feature = "production")]
        BootargsRequest::Set(_) => {
            return Err(CmdError::msg(format_args!(
                "refused: a production loader takes the kernel command line only from the signed FIT configuration"
            )));
        }
        #[cfg(not(feature = "production"))]
        BootargsRequest::Set(s) => m.bootargs = s,
    }
    Ok(())
}

fn boot(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    parse_boot(args)?;
    if cfg!(feature = "production") || fit_partition(m)?.is_some() {
        return boot_fit(m);
    }
    let t0 = crate::arch::cycles();
    let l = load_from_mmc(m)?;
    defmt::info!("bench linux_load={=u64}", crate::arch::cycles() - t0);
    start(m, l.kernel, l.initrd, l.fdt)
}

/// The GPT (after bringing the card up) and its `boot` partition, if any.
fn fit_partition(m: &mut Machine) -> Result<Option<block::gpt::GptPartition>, CmdError> {
    if m.mmc.info().is_none() {
        m.mmc
            .init()
            .map_err(|e| CmdError::msg(format_args!("{e}")))?;
    }
    let gpt =
        block::gpt::Gpt::read(&mut m.mmc).map_err(|e| CmdError::msg(format_args!("GPT: {e}")))?;
    Ok(gpt
        .find_by_name(mfg_formats::partitions::BOOT.name)
        .cloned())
}

fn refused(e: fit::FitError) -> CmdError {
    CmdError::msg(format_args!("refused: {e}; nothing booted"))
}

/// Reads the FIT from the `boot` partition, verifies its configuration
/// signature against the built-in boot key and every image's hash, places
/// the images and boots them with the signed command line. Nothing is
/// placed unless every check passed.
pub fn boot_fit(m: &mut Machine) -> Result<(), CmdError> {
    let part = fit_partition(m)?.ok_or_else(|| {
        CmdError::msg(format_args!(
            "no 'boot' partition: this loader boots only a signed FIT from it"
        ))
    })?;
    let (dram_start, dram_end) = m.dram();
    let avail = part.num_blocks() * 512;
    let limit = avail.min(FIT_MAX).min(dram_end.saturating_sub(FIT_LOAD));
    let head = load_part(m, &part, FIT_LOAD, 512)?;
    // SAFETY: the 512 bytes just read, in checked RAM; only read here.
    let total = fdt_edit::total_size(unsafe { head.slice_mut() })
        .map_err(|e| refused(fit::FitError::Malformed(e)))? as u64;
    if total > limit {
        return Err(refused(fit::FitError::TooLarge {
            size: total as usize,
            limit: limit as usize,
        }));
    }
    let t0 = crate::arch::cycles();
    let fit_range = load_part(m, &part, FIT_LOAD, total)?;
    defmt::info!("bench fit_read={=u64}", crate::arch::cycles() - t0);
    // SAFETY: the FIT just read into checked RAM outside the loader. This
    // shared view is the only reference to it while it lives (its last use
    // is in `place` below, before `start`, which works on addresses); the
    // only writes meanwhile go to `load` ranges that `check_images`
    // checked not to overlap it (`fit::Memory::reserved`).
    let blob: &[u8] = unsafe { fit_range.slice_mut() };
    let blob = &blob[..total as usize];
    outln!(
        m,
        "## Loading kernel from FIT Image at {:08x} (partition '{}', 0x{:x} bytes)",
        FIT_LOAD,
        part.display_name(),
        total
    );
    let ring = fit::Keyring::from_control_dtb(BOOT_KEY_DTB).map_err(refused)?;
    let image = fit::Fit::open(blob, limit as usize).map_err(refused)?;
    outln!(m, "   Using '{}' configuration", image.config_name());
    let t0 = crate::arch::cycles();
    let signed = image.check_signature(&ring).map_err(refused)?;
    defmt::info!("bench fit_signature={=u64}", crate::arch::cycles() - t0);
    outln!(
        m,
        "   Verifying configuration signature ... {}:{} key OK",
        fit::ALGO,
        BOOT_KEY_KIND
    );
    let dram = [(dram_start, dram_end - dram_start)];
    let loader_start = crate::arch::layout::image_start();
    let reserved = [
        (
            loader_start,
            crate::arch::layout::image_end() - loader_start,
        ),
        (FIT_LOAD, total),
    ];
    let mem = fit::Memory {
        dram: &dram,
        reserved: &reserved,
    };
    let t0 = crate::arch::cycles();
    let v = signed.check_images(&mem).map_err(refused)?;
    defmt::info!("bench fit_hash={=u64}", crate::arch::cycles() - t0);
    defmt::info!("bench fit_hashed_bytes={=u64}", total);
    outln!(m, "   Verifying Hash Integrity ... sha256 OK");
    let fdt = v.fdt.ok_or_else(|| {
        CmdError::msg(format_args!(
            "refused: the FIT configuration has no fdt; nothing booted"
        ))
    })?;
    let mut cmdline: heapless::String<512> = heapless::String::new();
    cmdline
        .push_str(v.bootargs.unwrap_or(Current::DEFAULT_BOOTARGS))
        .map_err(|_| {
            CmdError::msg(format_args!(
                "refused: the signed command line is longer than 511 bytes; nothing booted"
            ))
        })?;
    outln!(
        m,
        "   Command line ({}): {}",
        if v.bootargs.is_some() {
            "signed"
        } else {
            "built-in default"
        },
        cmdline.as_str()
    );
    m.bootargs = cmdline;
    // Every check passed: place the images.
    let at = |i: &fit::Image<'_>| FIT_LOAD + (i.data.as_ptr() as u64 - blob.as_ptr() as u64);
    let place = |i: &fit::Image<'_>| -> Result<u64, CmdError> {
        match i.load {
            Some(a) => {
                let r = m.ram(a, i.data.len() as u64)?;
                // SAFETY: checked RAM outside the loader, disjoint from the
                // FIT (checked by `check_images`) and from the other images.
                unsafe { r.slice_mut() }.copy_from_slice(i.data);
                Ok(a)
            }
            None => Ok(at(i)),
        }
    };
    let kernel = place(&v.kernel)?;
    let fdt_addr = place(&fdt)?;
    let initrd = match &v.ramdisk {
        Some(r) => Some(RamRange {
            addr: place(r)?,
            len: r.data.len() as u64,
        }),
        None => None,
    };
    start(m, kernel, initrd, fdt_addr)
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
fn load_part(
    m: &mut Machine,
    p: &block::gpt::GptPartition,
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
    use block::gpt::Gpt;
    use mfg_formats::partitions::{DTB, INITRD, KERNEL};
    if m.mmc.info().is_none() {
        m.mmc
            .init()
            .map_err(|e| CmdError::msg(format_args!("{e}")))?;
    }
    let gpt = Gpt::read(&mut m.mmc).map_err(|e| CmdError::msg(format_args!("GPT: {e}")))?;
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
fn kernel_present(m: &mut Machine) -> bool {
    let Ok(gpt) = block::gpt::Gpt::read(&mut m.mmc) else {
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

/// U-Boot's autoboot: when the eMMC holds a kernel, count down `delay`
/// seconds (`Hit any key to stop autoboot`), then `boot`. A key stops it.
pub fn autoboot(m: &mut Machine, delay: u32) {
    use core::fmt::Write;
    use hal::Clock;
    if m.mmc.info().is_none() || !kernel_present(m) {
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
            if m.try_read_byte().is_some() {
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
    if let Err(e) = boot(m, &["boot"]) {
        outln!(m, "boot: {}", e);
    }
}

#[cfg(not(feature = "production"))]
fn booti(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    let r = parse_booti(args)?;
    let initrd = match r.initrd {
        Some(rd) => Some(m.ram(rd.addr, rd.size)?),
        None => None,
    };
    start(m, r.kernel, initrd, r.fdt)
}

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
