//! What the flow needs from the machine, as small traits, and their
//! implementations for the i.MX drivers (`caam`, `ocotp`).

use block::BlockDevice;
use caam::{CaamError, CaamInfo, MpSignature};
use core::fmt;
use hal::{Clock, Dma, RegisterIo};

/// The eMMC (or any block device holding the GPT with the flow's
/// partitions).
pub trait Storage: BlockDevice {
    /// Makes the medium ready for I/O (card initialisation) if it is not.
    fn ready(&mut self) -> Result<(), Self::Error>;
    /// Transfers retried after an error since power-on (a flaky card is
    /// worth a look also when the retry succeeded).
    fn retries(&self) -> u32 {
        0
    }
}

/// The CAAM operations the flow uses.
pub trait SecurityHw {
    /// Era, RNG state, security state, MPMR lock.
    fn info(&self) -> CaamInfo;
    /// Why bringing the CAAM up failed, if it did (the real reason: a
    /// refused controller page reads as "no RNG" in `info`).
    fn init_error(&self) -> Option<CaamError>;
    /// Fills `out` from the CAAM's DRBG.
    fn rng_fill(&mut self, out: &mut [u8]) -> Result<(), CaamError>;
    /// The MP public key (x || y).
    fn mp_public_key(&mut self) -> Result<[u8; 64], CaamError>;
    /// The MPMR as it is now.
    fn mpmr_read(&self) -> [u8; 32];
    /// Writes the MPMR and locks it until the next power-on reset.
    fn mpmr_write_and_lock(&mut self, value: &[u8; 32]) -> Result<(), CaamError>;
    /// Signs `msg` with the MP private key (over SHA-256(MPMR || msg)).
    fn mp_sign(&mut self, msg: &[u8]) -> Result<MpSignature, CaamError>;
    /// Encapsulates `plain` as a blob bound to this chip and to
    /// `key_modifier` (1..=16 bytes, its length included); returns the
    /// blob's length.
    fn blob_encap(
        &mut self,
        key_modifier: &[u8],
        plain: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CaamError>;
    /// Decapsulates `blob` under `key_modifier`; returns the secret's length.
    fn blob_decap(
        &mut self,
        key_modifier: &[u8],
        blob: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CaamError>;
}

/// The fuses the identity reads.
pub trait Fuses {
    /// The chip's unique id.
    fn unique_id(&self) -> [u8; 16];
    /// The SRK hash fused by the OEM.
    fn srk_hash(&self) -> [u8; 32];
    /// Whether the part is closed (secure boot enforced).
    fn is_closed(&self) -> bool;
}

/// The security hardware, or why there is none (QEMU without a fuse file).
pub enum Hardware<'a> {
    /// CAAM and fuses.
    Available {
        /// The CAAM.
        caam: &'a mut dyn SecurityHw,
        /// The fuses.
        fuses: &'a dyn Fuses,
    },
    /// Unavailable, and why.
    Unavailable(&'static str),
}

/// Where the flow reports progress: the console.
pub trait Console: fmt::Write {
    /// Waits until everything written has left (before a power-off).
    fn flush(&mut self) {}
}

/// A step of the flow, for the [`Observer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The whole run.
    Run,
    /// Reading, authenticating and decrypting the bundle.
    Decrypt,
    /// Sealing the ID record to the OEM record key.
    Seal,
    /// Building, signing and storing the identity.
    Sign,
    /// Encapsulating, writing and verifying the blobs.
    Blob,
    /// Erasing the bundle.
    Consume,
    /// One eMMC read or write.
    Io,
}

/// Hooks for what is not the flow's business: the bench's metering, the
/// structured log, and the power-cut test plan. Every method has a no-op
/// default; `()` observes nothing.
pub trait Observer {
    /// `step` begins.
    fn begin(&mut self, _step: Step) {}
    /// `step` ends (also when it failed).
    fn end(&mut self, _step: Step) {}
    /// The flow issued one more eMMC write (it returned successfully). A
    /// power-cut plan may stop the machine here; `console` is where to say so.
    fn written(&mut self, _console: &mut dyn Console) {}
    /// A journal record was written to `copy`.
    fn journal(&mut self, _sequence: u64, _state: u8, _copy: usize) {}
    /// The run was refused with this journal error code.
    fn refused(&mut self, _code: u16) {}
}

impl Observer for () {}

/// What the flow is told about the loader running it.
pub struct Config<'a> {
    /// The product this loader provisions; bundles for another are refused.
    pub product: &'a str,
    /// The loader version, as the identity carries it.
    pub loader_version: &'a str,
    /// A production build: refuses open parts, prints no secret checksums.
    pub production: bool,
    /// The OEM record public key (x || y): ID records are sealed to it.
    pub record_key: &'a [u8; 64],
}

impl<R: RegisterIo, D: Dma, C: Clock> SecurityHw for caam::Caam<R, D, C> {
    fn info(&self) -> CaamInfo {
        caam::Caam::info(self)
    }
    fn init_error(&self) -> Option<CaamError> {
        caam::Caam::init_error(self)
    }
    fn rng_fill(&mut self, out: &mut [u8]) -> Result<(), CaamError> {
        caam::Caam::rng_fill(self, out)
    }
    fn mp_public_key(&mut self) -> Result<[u8; 64], CaamError> {
        caam::Caam::mp_public_key(self)
    }
    fn mpmr_read(&self) -> [u8; 32] {
        caam::Caam::mpmr_read(self)
    }
    fn mpmr_write_and_lock(&mut self, value: &[u8; 32]) -> Result<(), CaamError> {
        caam::Caam::mpmr_write_and_lock(self, value)
    }
    fn mp_sign(&mut self, msg: &[u8]) -> Result<MpSignature, CaamError> {
        caam::Caam::mp_sign(self, msg)
    }
    fn blob_encap(
        &mut self,
        key_modifier: &[u8],
        plain: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CaamError> {
        caam::Caam::blob_encap_with_modifier(self, key_modifier, plain, out)
    }
    fn blob_decap(
        &mut self,
        key_modifier: &[u8],
        blob: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CaamError> {
        caam::Caam::blob_decap_with_modifier(self, key_modifier, blob, out)
    }
}

impl<R: RegisterIo> Fuses for ocotp::Ocotp<R> {
    fn unique_id(&self) -> [u8; 16] {
        ocotp::Ocotp::unique_id(self)
    }
    fn srk_hash(&self) -> [u8; 32] {
        ocotp::Ocotp::srk_hash(self)
    }
    fn is_closed(&self) -> bool {
        ocotp::Ocotp::is_closed(self)
    }
}

impl<R: RegisterIo, D: Dma, C: Clock> Storage for usdhc::Usdhc<R, D, C> {
    fn ready(&mut self) -> Result<(), usdhc::MmcError> {
        if self.info().is_none() {
            self.init()?;
        }
        Ok(())
    }
    fn retries(&self) -> u32 {
        usdhc::Usdhc::retries(self)
    }
}
