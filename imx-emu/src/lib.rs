//! Emulated CAAM and OCOTP for the QEMU board, the virtual-chip fuse file,
//! and the A64 load/store decoder that MMIO traps go through.
//!
//! - [`mod@decode`] / [`trap`]: the EL2 data-abort path. [`trap::emulate`] decodes
//!   the faulting instruction and performs it against an [`MmioDevice`].
//! - [`Emulator`]: the device behind the traps, serving the CAAM window
//!   `0x3090_0000..0x3094_0000` and the OCOTP window
//!   `0x3035_0000..0x3036_0000` from a [`fusefile::FuseFile`].
//! - [`usdhc_faults::FaultyUsdhc`]: eMMC faults injected on the uSDHC
//!   register window, from the fuse file's fault plan.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod caam;
mod crypto;
pub mod decode;
mod emulator;
pub mod fusefile;
pub mod ocotp;
#[cfg(test)]
mod props;
#[cfg(test)]
mod test_ram;
pub mod trap;
pub mod usdhc_faults;

pub use caam::{BusError, BusMemory};
pub use decode::{DecodeError, MemInsn, decode};
pub use emulator::{CAAM_BASE, CAAM_SIZE, Emulator};
pub use trap::{EmuError, MmioDevice, RegFile, TrapError, emulate};

/// The model's MP private key (P-256 scalar, big-endian) for a chip, as the
/// emulated CAAM derives it for each MP job. For tests that prove it never
/// lingers in guest RAM, on the eMMC or in logs: the model keeps no copy
/// between jobs. Anyone with the fuse file can derive it; silicon's key
/// never leaves the CAAM.
pub fn mp_private_key(fuses: &fusefile::FuseFile) -> [u8; 32] {
    crypto::mp_signing_key(&fuses.family_secret, &fuses.srk_hash, !fuses.open, None)
        .to_bytes()
        .into()
}

/// The model's MP private key after MPPRIVK with `passphrase` on a chip
/// that came up with SCFGR.MPCURVE = 0 (see [`mp_private_key`]).
pub fn mp_private_key_generated(fuses: &fusefile::FuseFile, passphrase: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(passphrase).into();
    crypto::mp_signing_key(
        &fuses.family_secret,
        &fuses.srk_hash,
        !fuses.open,
        Some(&digest),
    )
    .to_bytes()
    .into()
}
