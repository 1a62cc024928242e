//! Provisioning formats shared by the loader and the OEM tool: sealed bundle,
//! identity message and ID record, the on-eMMC provisioning area and the
//! bundle partition, and the GPT partition names and type GUIDs.
//!
//! Every parser checks the magic and version first and every length before it
//! is used; no parser panics on any input (property-tested). The byte layouts
//! are specified in `docs/formats.md`. All integers are little-endian.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod area;
pub mod base64;
pub mod bundle;
pub mod identity;
pub mod partitions;
pub mod sealed;
pub mod unlock;

mod rd;

pub use area::{
    BlobEntry, BlobTable, BundlePartitionHeader, JournalRecord, ProvState, select_journal,
};
pub use bundle::{
    BundleHeader, BundleView, KeyModifier, Secret, SecretType, open_for_product, open_in_place,
};
pub use identity::{IdRecord, IdentityMessage, SecurityState};

/// CRC-32 used by every format here: CRC-32/ISO-HDLC (the zlib/PNG CRC,
/// polynomial 0x04C11DB7 reflected, init and xorout 0xFFFFFFFF).
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Computes the CRC-32 of `data` (see [`CRC32`]).
pub fn crc32(data: &[u8]) -> u32 {
    CRC32.checksum(data)
}

/// Why a format was refused. One enum for the whole crate; every message is
/// stable and names the structure concerned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FormatError {
    /// The input ends before the structure does.
    Truncated {
        /// Structure being read.
        what: &'static str,
    },
    /// The magic at the start is wrong.
    BadMagic {
        /// Structure being read.
        what: &'static str,
    },
    /// A format version this code does not implement.
    UnsupportedVersion {
        /// Structure being read.
        what: &'static str,
        /// The version found.
        version: u16,
    },
    /// A length or count field is inconsistent or over a stated limit.
    BadLength {
        /// Field concerned.
        what: &'static str,
    },
    /// A field holds a value outside its defined set (reserved bits, unknown
    /// enum value, invalid name character).
    BadField {
        /// Field concerned.
        what: &'static str,
    },
    /// A CRC-32 does not match: torn write or corruption.
    BadCrc {
        /// Structure concerned.
        what: &'static str,
    },
    /// AES-GCM tag check failed: wrong MP public key, another product, or a
    /// changed byte.
    AuthenticationFailed,
    /// An output buffer is too small.
    BufferTooSmall,
    /// Two secrets carry the same name.
    DuplicateName,
    /// The bundle is for another product.
    WrongProduct,
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated { what } => write!(f, "{what}: truncated"),
            Self::BadMagic { what } => write!(f, "{what}: bad magic"),
            Self::UnsupportedVersion { what, version } => {
                write!(f, "{what}: unsupported format version {version}")
            }
            Self::BadLength { what } => write!(f, "{what}: bad length"),
            Self::BadField { what } => write!(f, "{what}: invalid value"),
            Self::BadCrc { what } => write!(f, "{what}: CRC mismatch"),
            Self::AuthenticationFailed => write!(f, "bundle authentication failed"),
            Self::BufferTooSmall => write!(f, "output buffer too small"),
            Self::DuplicateName => write!(f, "duplicate secret name"),
            Self::WrongProduct => write!(f, "bundle is for another product"),
        }
    }
}

/// True for the bytes allowed in secret names and product ids:
/// ASCII letters, digits, `.`, `_`, `-`.
pub fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Checks a name of 1..=`max` bytes from the allowed set.
pub(crate) fn check_name(name: &[u8], max: usize, what: &'static str) -> Result<(), FormatError> {
    if name.is_empty() || name.len() > max {
        return Err(FormatError::BadLength { what });
    }
    if !name.iter().all(|&b| is_name_byte(b)) {
        return Err(FormatError::BadField { what });
    }
    Ok(())
}

/// Reads a NUL-padded name field: the name is the bytes before the first NUL,
/// every byte after it must be NUL, and the name must be valid.
pub(crate) fn padded_name<'a>(field: &'a [u8], what: &'static str) -> Result<&'a str, FormatError> {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let (name, pad) = field.split_at(len);
    if pad.iter().any(|&b| b != 0) {
        return Err(FormatError::BadField { what });
    }
    check_name(name, field.len(), what)?;
    core::str::from_utf8(name).map_err(|_| FormatError::BadField { what })
}

/// Writes `name` NUL-padded into `field` (which must be at least as long).
pub(crate) fn put_padded(field: &mut [u8], name: &[u8]) {
    field.fill(0);
    let n = name.len().min(field.len());
    field[..n].copy_from_slice(&name[..n]);
}

/// Test builds only: which parsers' deepest checks the current thread
/// reached since the last [`reach::take`]. The property tests measure with
/// it how many generated cases get past the integrity checks (magic,
/// version, CRC, tag) to the last field check; release and target builds
/// have neither the module nor its calls.
#[cfg(test)]
pub(crate) mod reach {
    use core::cell::Cell;

    /// Journal: the bundle-id flag check, after every other field.
    pub(crate) const JOURNAL: u32 = 1 << 0;
    /// Identity message (inside the ID record): the station-nonce check.
    pub(crate) const IDENTITY: u32 = 1 << 1;
    /// Blob table: the last entry's end-of-area check.
    pub(crate) const BLOB_TABLE: u32 = 1 << 2;
    /// Bundle partition header: the length check after its CRC.
    pub(crate) const BUNDLE_PART: u32 = 1 << 3;
    /// Decrypted secret list: the trailing-bytes check after every entry.
    pub(crate) const SECRET_LIST: u32 = 1 << 4;

    std::thread_local! {
        static HITS: Cell<u32> = const { Cell::new(0) };
    }

    /// Records that the probe `bit` was reached.
    pub(crate) fn hit(bit: u32) {
        HITS.with(|h| h.set(h.get() | bit));
    }

    /// The probes reached since the last call, and clears them.
    pub(crate) fn take() -> u32 {
        HITS.with(|h| h.replace(0))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod structure_props;
