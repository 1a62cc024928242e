//! The small contract between drivers and the platform.
//!
//! Drivers never touch raw addresses. They talk to hardware through three
//! traits that the board implements for real silicon and tests implement with
//! fakes:
//! - [`RegisterIo`]: 32-bit register reads and writes at byte offsets of one
//!   register window. [`MmioRegion`] is the real, volatile implementation.
//! - [`Dma`]: turning a CPU pointer into the bus address a DMA master uses,
//!   and the cache maintenance a non-coherent master needs.
//! - [`Clock`]: a monotonic counter for timeouts.
//!
//! Register *layouts* live in each driver as `tock-registers` structs (the
//! single source of truth for offsets, checked at compile time); drivers take
//! offsets from them with `core::mem::offset_of!` and compose values with
//! `tock-registers` fields.
#![no_std]

#[cfg(test)]
extern crate std;

mod clock;
mod dma;
mod mmio;

pub use clock::{Clock, Deadline};
pub use dma::{CACHE_LINE, Dma};
pub use mmio::{MmioRegion, RegisterIo};
