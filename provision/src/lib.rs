//! The provisioning flow: sign-ID, decrypt-bundle, blob-encapsulate,
//! consume; and the read-only views of its result (`status`, `verify`, the
//! summary Linux is told).
//!
//! `no_std` and host-tested: the flow reaches the world only through the
//! traits in [`hw`] (the eMMC, the CAAM operations, the fuses, the console,
//! an optional [`Observer`] for metering and power-cut tests). The loader
//! implements them with its drivers; the host tests with the real CAAM
//! driver on the `imx-emu` model and the real uSDHC driver on its fake card.
//!
//! Data path: loader (boot or the `provision` command) -> [`run`] -> [`hw`]
//! traits -> drivers -> hardware or the emulated CAAM. Formats come from
//! `mfg-formats`: the journal is the only source of truth, kept as two
//! alternating copies in `mfg-data`. Every step writes its new data first,
//! reads it back, and only then writes the next journal record, so a power
//! cut at any instant leaves the previous or the next state:
//!
//! | journal | durable on eMMC | next boot does |
//! |---|---|---|
//! | blank | nothing | sign-ID, then the rest |
//! | id-signed | ID record | decrypt, blob, consume |
//! | secrets-blobbed | ID record, verified blobs and table | consume the bundle |
//! | done | all of it, bundle erased | nothing (boots straight through) |
//!
//! The bundle is authenticated and decrypted before sign-ID, so a refused
//! bundle leaves nothing on the eMMC but the journal entry of the refusal.
//! The bundle is erased only in the last step, after the blobs were read
//! back from the eMMC and decapsulated to the original secrets.
#![no_std]
// Flow errors carry the driver's message by value (no heap).
#![allow(clippy::result_large_err)]

#[cfg(test)]
extern crate std;

mod disk;
mod error;
mod flow;
pub mod hw;
mod inspect;

pub use disk::{Extent, Layout};
pub use error::FlowError;
pub use flow::{Outcome, SCRATCH_LEN, run};
pub use hw::{Config, Console, Fuses, Hardware, Observer, SecurityHw, Step, Storage};
pub use inspect::{Summary, status, summary, verify};

/// Overwrites `buf` with zeros in a way the compiler must keep: the writes
/// are followed by an opaque use of the buffer. A bulk `fill` (not byte-wise
/// volatile stores) keeps large scrubs cheap.
pub fn scrub(buf: &mut [u8]) {
    buf.fill(0);
    core::hint::black_box(&mut *buf);
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// `println!` for a [`Console`]: formats, then `\r\n`.
macro_rules! outln {
    ($m:expr) => {{
        let _ = core::fmt::Write::write_str($m, "\r\n");
    }};
    ($m:expr, $($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt($m, format_args!($($arg)*));
        let _ = core::fmt::Write::write_str($m, "\r\n");
    }};
}
pub(crate) use outln;

#[cfg(test)]
mod tests;
