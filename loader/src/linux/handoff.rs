//! Jumping to Linux: cache maintenance, scrubbing, and the final branch.

use crate::arch::{cache, layout};

unsafe extern "C" {
    fn linux_enter(entry: u64, dtb: u64, scrub_start: u64, scrub_end: u64) -> !;
}

/// What is handed to the kernel.
pub struct Handoff {
    /// Kernel entry (2 MiB-aligned base + text_offset).
    pub entry: u64,
    /// Bytes of memory the kernel image occupies (`image_size`).
    pub image_size: u64,
    /// The edited DTB and its size.
    pub dtb: (u64, u64),
    /// The initramfs, if any.
    pub initrd: Option<(u64, u64)>,
}

/// Cleans the D-cache over everything the kernel reads with its MMU off,
/// turns off the MMU and caches, zeroes the loader's data, .bss and stacks
/// (every key, secret and buffer the loader held), and enters the kernel.
pub fn enter(h: &Handoff) -> ! {
    let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let t0 = crate::arch::cycles();
    cache::clean_invalidate(to_usize(h.entry), to_usize(h.image_size));
    defmt::info!("bench linux_image_clean={=u64}", crate::arch::cycles() - t0);
    cache::clean_invalidate(to_usize(h.dtb.0), to_usize(h.dtb.1));
    if let Some((a, l)) = h.initrd {
        cache::clean_invalidate(to_usize(a), to_usize(l));
    }
    let (start, end) = (layout::rodata_end(), layout::image_end());
    cache::clean_invalidate(to_usize(start), to_usize(end - start));
    defmt::info!(
        "linux: entering at {=u64:#x}, dtb {=u64:#x}",
        h.entry,
        h.dtb.0
    );
    // Reset -> here, and the bytes `linux_enter` zeroes (4 instructions per
    // 16 bytes plus 82 fixed ones up to the kernel's first instruction).
    defmt::info!("bench linux_scrub_bytes={=u64}", end - start);
    defmt::info!("bench linux_entry={=u64}", crate::arch::cycles());
    // SAFETY: the kernel and DTB were placed and checked by the caller, and
    // their cache lines were cleaned to the point of coherency above, so the
    // kernel sees them with its MMU off. `linux_enter` runs from .text (not
    // scrubbed) and uses no stack after turning the MMU off, so zeroing the
    // loader's RW range (data, .bss, stacks) under it is sound; it never
    // returns.
    unsafe { linux_enter(h.entry, h.dtb.0, start, end) }
}
