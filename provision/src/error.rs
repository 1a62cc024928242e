//! Why the provisioning flow stopped.

use caam::CaamError;
use core::fmt::{self, Write};
use mfg_formats::FormatError;
use mfg_formats::area::error_code;

/// One error enum for the flow. Each maps to a journal code.
#[derive(Debug)]
pub enum FlowError {
    /// The eMMC could not be read or written (the driver's message).
    Storage(heapless::String<160>),
    /// The GPT could not be read (message kept as text).
    Gpt(heapless::String<96>),
    /// A partition the flow needs is missing or too small.
    Partition(&'static str),
    /// Data read back differs from what was written.
    ReadBack(&'static str),
    /// The security hardware is unavailable (no fuse file under QEMU).
    NoSecurityHw(&'static str),
    /// The CAAM failed a job.
    Caam(CaamError),
    /// A production build refuses an open (non-closed) part.
    OpenPart,
    /// The sealed bundle was refused.
    Bundle(FormatError),
    /// A provisioning-area structure is malformed.
    Area(FormatError),
    /// A blob did not decapsulate back to its secret after writing.
    BlobVerify(heapless::String<32>),
    /// The journal says the blobs are written, but they are not the ones it
    /// vouches for, and the bundle to redo them is gone.
    BlobsInvalid(&'static str),
    /// The MPMR is not locked: the loader locks it with its measurement at
    /// boot, so an unlocked one means that did not happen.
    MpmrNotLocked,
    /// The CAAM reports security state "fail" (CSTA.MOO = 3): its keys are
    /// gone, nothing it signs or wraps can be trusted.
    SecurityFail,
}

impl FlowError {
    /// The journal's `last_error` code.
    pub fn code(&self) -> u16 {
        match self {
            Self::Storage(_) | Self::Gpt(_) | Self::Partition(_) | Self::ReadBack(_) => {
                error_code::EMMC
            }
            Self::NoSecurityHw(_) => error_code::FUSE_READ,
            Self::Caam(_) | Self::SecurityFail | Self::MpmrNotLocked => error_code::CAAM,
            Self::OpenPart => error_code::OPEN_PART,
            Self::Bundle(e) => error_code::for_format_error(*e),
            Self::Area(_) => error_code::BUNDLE_MALFORMED,
            Self::BlobVerify(_) | Self::BlobsInvalid(_) => error_code::BLOB_VERIFY,
        }
    }

    /// Whether a journal entry can record this refusal: not without a
    /// provisioning area. After an eMMC error the entry is still tried (a
    /// transient error leaves the card usable; the journal's other copy is
    /// untouched if the write fails).
    pub fn journal_worthy(&self) -> bool {
        !matches!(self, Self::Gpt(_) | Self::Partition(_))
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Storage(e) => f.write_str(e),
            Self::Gpt(e) => write!(f, "GPT: {e}"),
            Self::Partition(p) => write!(f, "{p}"),
            Self::ReadBack(what) => {
                write!(f, "read-back of the {what} differs from what was written")
            }
            Self::NoSecurityHw(e) => write!(f, "security hardware unavailable: {e}"),
            Self::Caam(e) => write!(f, "CAAM: {e}"),
            Self::OpenPart => write!(
                f,
                "open (non-closed) part: a production loader refuses to provision it"
            ),
            Self::Bundle(e) => write!(f, "bundle refused: {e}"),
            Self::Area(e) => write!(f, "provisioning area: {e}"),
            Self::MpmrNotLocked => write!(
                f,
                "the MPMR is not locked (the loader locks it with its measurement at boot)"
            ),
            Self::SecurityFail => write!(
                f,
                "CAAM security state is fail: the part cannot be provisioned"
            ),
            Self::BlobsInvalid(why) => write!(
                f,
                "the blobs on the eMMC do not match the journal ({why}) and the bundle is gone"
            ),
            Self::BlobVerify(n) => write!(
                f,
                "blob '{n}' did not decapsulate to its secret after writing"
            ),
        }
    }
}

impl FlowError {
    /// A storage error, by its message.
    pub fn storage(e: impl fmt::Display) -> Self {
        let mut s = heapless::String::new();
        let _ = write!(s, "{e}");
        Self::Storage(s)
    }

    /// A GPT error, by its message.
    pub fn gpt(e: impl fmt::Display) -> Self {
        let mut s = heapless::String::new();
        let _ = write!(s, "{e}");
        Self::Gpt(s)
    }
}

impl From<CaamError> for FlowError {
    fn from(e: CaamError) -> Self {
        Self::Caam(e)
    }
}
