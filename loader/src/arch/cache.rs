//! Data-cache maintenance by address, and the [`hal::Dma`] implementation for
//! the identity-mapped, non-coherent DMA masters (CAAM, uSDHC).

use core::arch::asm;

/// The smallest data-cache line size (CTR_EL0.DminLine).
fn dcache_line() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    4 << ((ctr >> 16) & 0xf)
}

macro_rules! by_line {
    ($name:ident, $op:literal, $doc:literal) => {
        #[doc = $doc]
        pub fn $name(start: usize, len: usize) {
            if len == 0 {
                return;
            }
            let line = dcache_line();
            let mut a = start & !(line - 1);
            let end = start.saturating_add(len);
            while a < end {
                // SAFETY: cache maintenance by VA on a mapped address has no
                // effect on memory contents visible to this program (clean)
                // or only discards lines after writing them back (civac).
                unsafe { asm!(concat!("dc ", $op, ", {}"), in(reg) a, options(nostack)) };
                a += line;
            }
            // SAFETY: a barrier has no memory-safety effect.
            unsafe { asm!("dsb sy", options(nostack)) };
        }
    };
}

by_line!(
    clean,
    "cvac",
    "Writes back the lines covering the range to the point of coherency."
);
by_line!(
    clean_invalidate,
    "civac",
    "Writes back and discards the lines covering the range."
);
by_line!(
    invalidate,
    "ivac",
    "Discards the lines covering the range without writing back. Only for memory that was written with the caches off."
);

/// Identity-mapped DMA below a bus limit, with real cache maintenance.
#[derive(Clone, Copy)]
pub struct IdentityDma {
    /// DRAM the masters may reach: `[start, end)`.
    pub start: u64,
    /// End of the reachable range (4 GiB for 32-bit CAAM pointers).
    pub end: u64,
}

impl hal::Dma for IdentityDma {
    fn bus_addr(&self, ptr: *const u8, len: usize) -> Option<u64> {
        let a = ptr as u64;
        let end = a.checked_add(len as u64)?;
        (a >= self.start && end <= self.end).then_some(a)
    }

    fn clean(&self, ptr: *const u8, len: usize) {
        clean(ptr as usize, len);
    }

    fn invalidate(&self, ptr: *const u8, len: usize) {
        // Clean+invalidate: correct even if a line also holds CPU-written data
        // (drivers keep DMA buffers line-aligned anyway).
        clean_invalidate(ptr as usize, len);
    }
}
