//! DMA addressing and cache maintenance for bus masters that are not
//! cache-coherent (CAAM and uSDHC on i.MX8M).

/// What a driver needs to hand a buffer to a DMA master.
///
/// On the boards the map is the identity and the cache operations are real
/// `dc cvac` / `dc civac` loops; in host tests a fake maps an arena to a
/// made-up bus range so that device models can follow the pointers.
pub trait Dma {
    /// The bus address of `[ptr, ptr + len)`, or `None` if the device cannot
    /// reach all of it (for example above 4 GiB for 32-bit CAAM pointers).
    fn bus_addr(&self, ptr: *const u8, len: usize) -> Option<u64>;

    /// Writes back the cache lines covering the range so the device reads what
    /// the CPU wrote. Call before the device reads.
    fn clean(&self, ptr: *const u8, len: usize);

    /// Discards (after writing back) the cache lines covering the range so the
    /// CPU reads what the device wrote. Call after the device wrote. Buffers
    /// handed to a device for writing must not share cache lines with other
    /// live data.
    fn invalidate(&self, ptr: *const u8, len: usize);
}

/// The cache line size that DMA buffers are aligned to (Cortex-A53: 64 bytes).
pub const CACHE_LINE: usize = 64;
