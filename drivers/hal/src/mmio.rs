//! Register access.

use core::ptr::NonNull;

/// 32-bit register access at byte offsets within one register window.
///
/// Offsets are checked by the implementation: an offset outside the window or
/// not 4-byte aligned is a driver bug and panics.
pub trait RegisterIo {
    /// Reads the 32-bit register at `offset`.
    fn read(&self, offset: usize) -> u32;
    /// Writes the 32-bit register at `offset`.
    fn write(&self, offset: usize, value: u32);

    /// Read-modify-write: clears `clear`, then sets `set`.
    fn modify(&self, offset: usize, clear: u32, set: u32) {
        let v = self.read(offset);
        self.write(offset, (v & !clear) | set);
    }
}

impl<T: RegisterIo + ?Sized> RegisterIo for &T {
    fn read(&self, offset: usize) -> u32 {
        (**self).read(offset)
    }
    fn write(&self, offset: usize, value: u32) {
        (**self).write(offset, value)
    }
}

/// A window of memory-mapped device registers, accessed with volatile 32-bit
/// loads and stores, one register at a time.
#[derive(Debug)]
pub struct MmioRegion {
    base: NonNull<u32>,
    len: usize,
}

// SAFETY: an `MmioRegion` is a capability to a device window, not a reference
// to Rust-managed memory; moving it to another context is sound. The loader is
// single-threaded, and drivers own their region.
unsafe impl Send for MmioRegion {}

impl MmioRegion {
    /// Creates the capability for the register window `[base, base + len)`.
    ///
    /// # Safety
    /// `base` must be the 4-byte-aligned address of `len` bytes of device
    /// registers that are mapped (as device memory) for the lifetime of the
    /// returned value, and no other `MmioRegion` or reference may alias them.
    pub const unsafe fn new(base: NonNull<u32>, len: usize) -> Self {
        Self { base, len }
    }

    /// The base address of the window (for messages and dumps).
    pub fn base(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// The size of the window in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn reg(&self, offset: usize) -> *mut u32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.len,
            "register offset {offset:#x} outside window"
        );
        // `wrapping_byte_add` keeps this safe; the assert keeps it in bounds.
        self.base.as_ptr().wrapping_byte_add(offset)
    }
}

impl RegisterIo for MmioRegion {
    fn read(&self, offset: usize) -> u32 {
        let p = self.reg(offset);
        // SAFETY: `p` is 4-aligned and inside the window that `new`'s contract
        // says is mapped device memory owned by this region.
        unsafe { p.read_volatile() }
    }

    fn write(&self, offset: usize, value: u32) {
        let p = self.reg(offset);
        // SAFETY: as in `read`.
        unsafe { p.write_volatile(value) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_reads_and_writes_words() {
        let mut words = [0u32; 4];
        // SAFETY: `words` is a live, aligned 16-byte buffer used only through
        // this region in this test.
        let r = unsafe { MmioRegion::new(NonNull::from(&mut words).cast(), 16) };
        r.write(8, 0xdead_beef);
        r.modify(8, 0xffff, 0x1234);
        assert_eq!(r.read(8), 0xdead_1234);
        assert_eq!(r.read(0), 0);
    }

    #[test]
    #[should_panic(expected = "outside window")]
    fn region_rejects_offset_past_end() {
        let mut words = [0u32; 1];
        // SAFETY: as above.
        let r = unsafe { MmioRegion::new(NonNull::from(&mut words).cast(), 4) };
        r.read(4);
    }
}
