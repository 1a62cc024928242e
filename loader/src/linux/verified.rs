//! Verified boot: the signed FIT in the eMMC's `boot` partition, checked
//! against the built-in boot key before anything is placed
//! (`docs/verified-boot.md`).

use super::disk::{fit_partition, load_part};
use super::place::start;
use crate::machine::{Machine, RamRange, outln};
use crate::requests::CmdError;
use board::dram::{FIT_LOAD, FIT_MAX};
use board::{Current, Platform};

/// The FIT boot public key(s): a U-Boot control DTB (`/signature/<name>`),
/// embedded by `loader/build.rs` from `MFG_BOOT_KEY` or the development key.
static BOOT_KEY_DTB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/boot-key.dtb"));
/// "OEM" or "development".
pub const BOOT_KEY_KIND: &str = env!("MFG_BOOT_KEY_KIND");

fn refused(e: fit::FitError) -> CmdError {
    CmdError::msg(format_args!("refused: {e}; nothing booted"))
}

/// Reads the FIT from the `boot` partition, verifies its configuration
/// signature against the built-in boot key and every image's hash, places
/// the images and boots them with the signed command line. Nothing is
/// placed unless every check passed.
pub fn boot(m: &mut Machine) -> Result<(), CmdError> {
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
