//! The provisioning area (GPT partition `mfg-data`) and the bundle partition
//! (`mfg-bundle`) header.
//!
//! Block offsets are in 512-byte blocks from the start of the partition:
//!
//! | blocks | content |
//! |---|---|
//! | 0 | journal copy 0 |
//! | 1 | journal copy 1 |
//! | 2 | ID record slot 0 |
//! | 3 | ID record slot 1 |
//! | 8..24 | blob table (16 + 64 x count bytes, at most 9 blocks) |
//! | 32.. | blobs, each starting on a block boundary |
//!
//! Power-cut rule: the loader writes new data (ID record into the slot the
//! current journal does not point at, blob table and blobs) first, reads it
//! back, and only then writes the next journal record into the copy that does
//! not hold the current one. The valid copy with the newer sequence wins
//! (serial-number order, [`sequence_newer`]).

use crate::bundle::{
    FLAG_KM_GIVEN, FLAG_KM_SHORT, KeyModifier, MAX_BUNDLE_LEN, MAX_NAME_LEN, MAX_SECRETS,
    SecretType,
};
use crate::rd::{Rd, Wr};
use crate::{FormatError, crc32, padded_name};

/// Block size of the layout.
pub use block::BLOCK;
/// Blocks of the two journal copies.
pub const JOURNAL_LBA: [u64; 2] = [0, 1];
/// Blocks of the two ID record slots.
pub const ID_SLOT_LBA: [u64; 2] = [2, 3];
/// First block of the blob table.
pub const BLOB_TABLE_LBA: u64 = 8;
/// Blocks reserved for the blob table.
pub const BLOB_TABLE_BLOCKS: u64 = 16;
/// First block of the blob data.
pub const BLOB_DATA_LBA: u64 = 32;
/// Size of the `mfg-data` partition `mfgtool image` creates (8 MiB); the
/// layout never uses bytes beyond it.
pub const MFG_DATA_BYTES: u64 = 8 * 1024 * 1024;
/// Size of the `mfg-bundle` partition `mfgtool image` creates (8 MiB).
pub const MFG_BUNDLE_BYTES: u64 = 8 * 1024 * 1024;
/// CAAM blob overhead: 32-byte encrypted blob key + 16-byte MAC.
pub const BLOB_OVERHEAD: usize = 48;

/// Journal magic.
pub const JOURNAL_MAGIC: [u8; 4] = *b"MFJR";
/// Journal record size (rest of its block is zero).
pub const JOURNAL_LEN: usize = 64;
/// Blob table magic.
pub const TABLE_MAGIC: [u8; 4] = *b"MFBT";
/// Blob table header size.
pub const TABLE_HEADER_LEN: usize = 16;
/// Blob table entry size.
pub const TABLE_ENTRY_LEN: usize = 64;
/// Largest blob table.
pub const TABLE_MAX_LEN: usize = TABLE_HEADER_LEN + MAX_SECRETS * TABLE_ENTRY_LEN;
/// Bundle partition header magic.
pub const BUNDLE_PART_MAGIC: [u8; 4] = *b"MFBP";
/// Bundle partition header size (the bundle starts at byte 512).
pub const BUNDLE_PART_HEADER_LEN: usize = 20;
/// Byte offset of the sealed bundle in `mfg-bundle`.
pub const BUNDLE_OFFSET: u64 = 512;
/// Version of the journal, blob table and bundle partition header.
pub const VERSION: u16 = 1;
/// `id_slot` value meaning "no ID record".
pub const NO_SLOT: u8 = 0xff;
/// Largest valid journal sequence number. `u64::MAX` is refused: with it in
/// both copies the journal could never move on (no newer value exists under
/// a "highest wins" rule).
pub const MAX_SEQUENCE: u64 = u64::MAX - 1;

/// Whether journal sequence `b` is newer than `a`: serial-number order
/// (RFC 1982 style), `b - a` modulo 2^64 in 1..2^63. For sequences below
/// 2^63 this is plain `b > a`; it lets [`JournalRecord::successor`] wrap
/// from [`MAX_SEQUENCE`] to 1 and still be newer, so a journal planted at the
/// top of the range cannot stop the device from recording progress.
pub fn sequence_newer(b: u64, a: u64) -> bool {
    let d = b.wrapping_sub(a);
    d != 0 && d < 1 << 63
}

/// Blob size for a secret of `secret_len` bytes.
pub const fn blob_len(secret_len: usize) -> usize {
    secret_len + BLOB_OVERHEAD
}

/// Provisioning state.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum ProvState {
    /// Nothing done (code 0).
    Blank,
    /// ID record signed and stored (code 1).
    IdSigned,
    /// Blob table and blobs written and verified (code 2).
    SecretsBlobbed,
    /// Bundle consumed: provisioned (code 3).
    Done,
}

impl ProvState {
    /// On-wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::Blank => 0,
            Self::IdSigned => 1,
            Self::SecretsBlobbed => 2,
            Self::Done => 3,
        }
    }
    /// Parses a code.
    pub fn from_code(c: u8) -> Result<Self, FormatError> {
        Ok(match c {
            0 => Self::Blank,
            1 => Self::IdSigned,
            2 => Self::SecretsBlobbed,
            3 => Self::Done,
            _ => {
                return Err(FormatError::BadField {
                    what: "journal state",
                });
            }
        })
    }
    /// `blank`, `id-signed`, `secrets-blobbed`, `done`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blank => "blank",
            Self::IdSigned => "id-signed",
            Self::SecretsBlobbed => "secrets-blobbed",
            Self::Done => "done",
        }
    }
}

/// One journal record (a copy in block 0 or 1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct JournalRecord {
    /// State.
    pub state: ProvState,
    /// ID record slot in use (0 or 1), or `None` in state `Blank`.
    pub id_slot: Option<u8>,
    /// Monotonic sequence number, at least 1.
    pub sequence: u64,
    /// Bundle the flow consumed or is consuming.
    pub bundle_id: Option<u64>,
    /// Number of blobs (0 before `SecretsBlobbed`).
    pub blob_count: u16,
    /// Code of the last refusal/error (0 = none); the loader defines codes.
    pub last_error: u16,
    /// Blob table CRC-32 as stored in the table header (0 before
    /// `SecretsBlobbed`).
    pub table_crc: u32,
    /// Boot counter at the time of writing.
    pub boot_counter: u32,
}

impl JournalRecord {
    /// A blank record with sequence 0 (what an erased area means).
    pub const BLANK: Self = Self {
        state: ProvState::Blank,
        id_slot: None,
        sequence: 0,
        bundle_id: None,
        blob_count: 0,
        last_error: 0,
        table_crc: 0,
        boot_counter: 0,
    };

    /// The record that follows this one: same fields, sequence + 1 (1 after
    /// [`MAX_SEQUENCE`], which [`sequence_newer`] still orders after it),
    /// last error cleared. The caller then sets what changes and writes it
    /// to [`next_journal_copy`].
    pub fn successor(&self) -> Self {
        Self {
            sequence: if self.sequence >= MAX_SEQUENCE {
                1
            } else {
                self.sequence + 1
            },
            last_error: 0,
            ..*self
        }
    }

    /// Serialises into a full 512-byte block (bytes 64.. zero).
    pub fn to_block(&self) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        let mut w = Wr::new(&mut b);
        let _ = (|| -> Result<(), FormatError> {
            w.put(&JOURNAL_MAGIC)?;
            w.u16(VERSION)?;
            w.u8(self.state.code())?;
            w.u8(self.id_slot.unwrap_or(NO_SLOT))?;
            w.u64(self.sequence)?;
            w.u64(self.bundle_id.unwrap_or(0))?;
            w.u16(self.blob_count)?;
            w.u16(self.last_error)?;
            w.u32(table_len(usize::from(self.blob_count)) as u32)?;
            w.u32(self.table_crc)?;
            w.u32(self.boot_counter)?;
            w.u8(u8::from(self.bundle_id.is_some()))
        })();
        let crc = crc32(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a journal copy (at least 64 bytes).
    pub fn parse(b: &[u8]) -> Result<Self, FormatError> {
        const W: &str = "journal";
        let body = b
            .get(..JOURNAL_LEN)
            .ok_or(FormatError::Truncated { what: W })?;
        let mut r = Rd::new(body, W);
        r.magic_version(&JOURNAL_MAGIC, VERSION)?;
        let crc = u32::from_le_bytes([body[60], body[61], body[62], body[63]]);
        if crc32(&body[..60]) != crc {
            return Err(FormatError::BadCrc { what: W });
        }
        let state = ProvState::from_code(r.u8()?)?;
        let slot = r.u8()?;
        let sequence = r.u64()?;
        let bundle_id = r.u64()?;
        let blob_count = r.u16()?;
        let last_error = r.u16()?;
        let tlen = r.u32()?;
        let table_crc = r.u32()?;
        let boot_counter = r.u32()?;
        let flags = r.u8()?;
        if flags & !1 != 0 || r.take(19)?.iter().any(|&x| x != 0) {
            return Err(FormatError::BadField {
                what: "journal reserved bytes",
            });
        }
        if sequence == 0 || sequence > MAX_SEQUENCE {
            return Err(FormatError::BadField {
                what: "journal sequence",
            });
        }
        let id_slot = match (state, slot) {
            (ProvState::Blank, NO_SLOT) => None,
            (ProvState::Blank, _) => {
                return Err(FormatError::BadField {
                    what: "journal ID slot",
                });
            }
            (_, s @ (0 | 1)) => Some(s),
            _ => {
                return Err(FormatError::BadField {
                    what: "journal ID slot",
                });
            }
        };
        let has_table = state >= ProvState::SecretsBlobbed;
        let count_ok = if has_table {
            (1..=MAX_SECRETS).contains(&usize::from(blob_count))
        } else {
            blob_count == 0 && table_crc == 0
        };
        if !count_ok {
            return Err(FormatError::BadLength {
                what: "journal blob count",
            });
        }
        if u64::from(tlen) != table_len(usize::from(blob_count)) as u64 {
            return Err(FormatError::BadLength {
                what: "journal blob table length",
            });
        }
        #[cfg(test)]
        crate::reach::hit(crate::reach::JOURNAL);
        let bundle_id = if flags & 1 != 0 {
            Some(bundle_id)
        } else if bundle_id != 0 {
            return Err(FormatError::BadField {
                what: "journal bundle id",
            });
        } else {
            None
        };
        Ok(Self {
            state,
            id_slot,
            sequence,
            bundle_id,
            blob_count,
            last_error,
            table_crc,
            boot_counter,
        })
    }
}

/// Blob table length in bytes for `count` entries (0 for no table).
pub const fn table_len(count: usize) -> usize {
    if count == 0 {
        0
    } else {
        TABLE_HEADER_LEN + count * TABLE_ENTRY_LEN
    }
}

/// Picks the journal: the valid copy with the newer sequence
/// ([`sequence_newer`]; copy 0 on a tie). Returns the record and its copy
/// index, or `None` when neither copy is valid (a blank area).
pub fn select_journal(copy0: &[u8], copy1: &[u8]) -> Option<(JournalRecord, usize)> {
    match (JournalRecord::parse(copy0), JournalRecord::parse(copy1)) {
        (Ok(a), Ok(b)) if sequence_newer(b.sequence, a.sequence) => Some((b, 1)),
        (Ok(a), _) => Some((a, 0)),
        (Err(_), Ok(b)) => Some((b, 1)),
        (Err(_), Err(_)) => None,
    }
}

/// The copy index the next journal record goes to: the one that does not
/// hold the current record (copy 0 when there is none).
pub fn next_journal_copy(current: Option<usize>) -> usize {
    match current {
        Some(0) => 1,
        _ => 0,
    }
}

/// One blob table entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlobEntry {
    name: [u8; MAX_NAME_LEN],
    /// Secret type.
    pub kind: SecretType,
    /// Whether the key modifier was given by the OEM.
    pub key_modifier_given: bool,
    /// CAAM key modifier (1..=16 bytes).
    pub key_modifier: KeyModifier,
    /// Byte offset of the blob from the start of `mfg-data` (block aligned).
    pub offset: u32,
    /// Blob length in bytes (secret length + 48).
    pub length: u32,
    /// CRC-32 of the blob bytes.
    pub crc: u32,
}

impl BlobEntry {
    /// Makes an entry; the name must be a valid secret name.
    pub fn new(
        name: &str,
        kind: SecretType,
        key_modifier: KeyModifier,
        key_modifier_given: bool,
        offset: u32,
        length: u32,
        crc: u32,
    ) -> Result<Self, FormatError> {
        crate::check_name(name.as_bytes(), MAX_NAME_LEN, "blob name")?;
        let mut n = [0u8; MAX_NAME_LEN];
        crate::put_padded(&mut n, name.as_bytes());
        Ok(Self {
            name: n,
            kind,
            key_modifier_given,
            key_modifier,
            offset,
            length,
            crc,
        })
    }
    /// The secret's name.
    pub fn name(&self) -> &str {
        padded_name(&self.name, "blob name").unwrap_or("?")
    }
    /// Plaintext secret length (blob length - 48).
    pub fn secret_len(&self) -> usize {
        (self.length as usize).saturating_sub(BLOB_OVERHEAD)
    }
    fn write(&self, w: &mut Wr<'_>) -> Result<(), FormatError> {
        w.put(&self.name)?;
        w.u8(self.kind.code())?;
        w.u8(self.key_modifier.flags(self.key_modifier_given))?;
        w.u8(self.key_modifier.len_byte())?;
        w.u8(0)?;
        w.put(self.key_modifier.field())?;
        w.u32(self.offset)?;
        w.u32(self.length)?;
        w.u32(self.crc)
    }
    fn parse(b: &[u8]) -> Result<Self, FormatError> {
        let mut r = Rd::new(b, "blob table entry");
        let name_field: [u8; MAX_NAME_LEN] = r.arr()?;
        padded_name(&name_field, "blob name")?;
        let kind = SecretType::from_code(r.u8()?)?;
        let flags = r.u8()?;
        let km_len = r.u8()?;
        if flags & !(FLAG_KM_GIVEN | FLAG_KM_SHORT) != 0 || r.u8()? != 0 {
            return Err(FormatError::BadField { what: "blob flags" });
        }
        Ok(Self {
            name: name_field,
            kind,
            key_modifier_given: flags & FLAG_KM_GIVEN != 0,
            key_modifier: KeyModifier::decode(flags, km_len, r.arr()?, "blob key modifier")?,
            offset: r.u32()?,
            length: r.u32()?,
            crc: r.u32()?,
        })
    }
}

/// Codes for the journal's `last_error` field (a refusal writes a journal
/// record with the state unchanged and one of these).
pub mod error_code {
    /// No error.
    pub const NONE: u16 = 0;
    /// Bundle authentication failed (wrong OEM key or tampered bundle).
    pub const BUNDLE_AUTH: u16 = 1;
    /// Bundle format version (or another format version) not supported.
    pub const UNSUPPORTED_VERSION: u16 = 2;
    /// Bundle malformed (header, length, secret list).
    pub const BUNDLE_MALFORMED: u16 = 3;
    /// Bundle made for another product.
    pub const WRONG_PRODUCT: u16 = 4;
    /// Open (non-closed) part refused by a production build.
    pub const OPEN_PART: u16 = 5;
    /// Fuse (OCOTP) read failed.
    pub const FUSE_READ: u16 = 6;
    /// CAAM job failed (sign, public key, blob).
    pub const CAAM: u16 = 7;
    /// eMMC read/write failed or read-back mismatch.
    pub const EMMC: u16 = 8;
    /// Blob verification after writing failed.
    pub const BLOB_VERIFY: u16 = 9;

    /// A stable name for a code (`unknown` for codes not listed here).
    pub fn name(code: u16) -> &'static str {
        match code {
            NONE => "none",
            BUNDLE_AUTH => "bundle authentication failed",
            UNSUPPORTED_VERSION => "unsupported format version",
            BUNDLE_MALFORMED => "bundle malformed",
            WRONG_PRODUCT => "bundle for another product",
            OPEN_PART => "open part refused",
            FUSE_READ => "fuse read failed",
            CAAM => "CAAM error",
            EMMC => "eMMC error",
            BLOB_VERIFY => "blob verification failed",
            _ => "unknown",
        }
    }

    /// The code for a bundle-opening error.
    pub fn for_format_error(e: crate::FormatError) -> u16 {
        match e {
            crate::FormatError::AuthenticationFailed => BUNDLE_AUTH,
            crate::FormatError::UnsupportedVersion { .. } => UNSUPPORTED_VERSION,
            crate::FormatError::WrongProduct => WRONG_PRODUCT,
            _ => BUNDLE_MALFORMED,
        }
    }
}

/// Places blobs one after another in the blob area, as the layout rule
/// says: first at block 32, each next one at the previous end rounded up
/// to a block, all within the 8 MiB partition.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlobPlanner {
    prev_end: Option<u64>,
}

impl BlobPlanner {
    /// A planner for an empty blob area.
    pub const fn new() -> Self {
        Self { prev_end: None }
    }
    /// Returns (byte offset in `mfg-data`, blob length) for the next blob
    /// of a `secret_len`-byte secret.
    pub fn place(&mut self, secret_len: usize) -> Result<(u32, u32), FormatError> {
        if !(1..=crate::bundle::MAX_SECRET_LEN).contains(&secret_len) {
            return Err(FormatError::BadLength {
                what: "secret length",
            });
        }
        let off = next_blob_offset(self.prev_end);
        let len = blob_len(secret_len) as u64;
        if off + len > MFG_DATA_BYTES {
            return Err(FormatError::BadLength {
                what: "blob area full",
            });
        }
        self.prev_end = Some(off + len);
        let off = u32::try_from(off).map_err(|_| FormatError::BadLength {
            what: "blob offset",
        })?;
        let len = u32::try_from(len).map_err(|_| FormatError::BadLength {
            what: "blob length",
        })?;
        Ok((off, len))
    }
}

/// Byte offset where the blob after one ending at `prev_end` goes
/// (`prev_end` rounded up to a block; the first blob at block 32).
pub fn next_blob_offset(prev_end: Option<u64>) -> u64 {
    match prev_end {
        None => BLOB_DATA_LBA * BLOCK as u64,
        Some(e) => e.div_ceil(BLOCK as u64) * BLOCK as u64,
    }
}

fn table_crc(header12: &[u8], entries: &[u8]) -> u32 {
    let mut d = crate::CRC32.digest();
    d.update(header12);
    d.update(entries);
    d.finalize()
}

/// Writes a blob table for `entries` into `out`; returns (length, CRC).
/// Checks the same rules [`BlobTable::parse`] enforces.
pub fn write_blob_table(
    out: &mut [u8],
    entries: &[BlobEntry],
) -> Result<(usize, u32), FormatError> {
    if !(1..=MAX_SECRETS).contains(&entries.len()) {
        return Err(FormatError::BadLength { what: "blob count" });
    }
    let len = table_len(entries.len());
    let out = out.get_mut(..len).ok_or(FormatError::BufferTooSmall)?;
    {
        let mut w = Wr::new(out);
        w.put(&TABLE_MAGIC)?;
        w.u16(VERSION)?;
        w.u16(
            u16::try_from(entries.len())
                .map_err(|_| FormatError::BadLength { what: "blob count" })?,
        )?;
        w.u32(0)?;
        w.u32(0)?;
        for e in entries {
            e.write(&mut w)?;
        }
    }
    let crc = table_crc(&out[..12], &out[TABLE_HEADER_LEN..]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    BlobTable::parse(out)?;
    Ok((len, crc))
}

/// A parsed, checked blob table (a view over its bytes).
#[derive(Clone, Copy, Debug)]
pub struct BlobTable<'a> {
    entries: &'a [u8],
    count: usize,
    crc: u32,
}

impl<'a> BlobTable<'a> {
    /// Parses and checks a table: magic, version, 1..=64 entries, CRC,
    /// valid names (unique), types, blob lengths 49..=65584, offsets block
    /// aligned, at or after block 32, in increasing order without overlap,
    /// ending within the 8 MiB area.
    pub fn parse(b: &'a [u8]) -> Result<Self, FormatError> {
        const W: &str = "blob table";
        let mut r = Rd::new(b, W);
        r.magic_version(&TABLE_MAGIC, VERSION)?;
        let count = usize::from(r.u16()?);
        if !(1..=MAX_SECRETS).contains(&count) {
            return Err(FormatError::BadLength { what: "blob count" });
        }
        if r.u32()? != 0 {
            return Err(FormatError::BadField {
                what: "blob table reserved bytes",
            });
        }
        let crc = r.u32()?;
        let entries = r.take(count * TABLE_ENTRY_LEN)?;
        if table_crc(&b[..12], entries) != crc {
            return Err(FormatError::BadCrc { what: W });
        }
        let t = Self {
            entries,
            count,
            crc,
        };
        let mut prev_end: Option<u64> = None;
        for i in 0..count {
            let e = t.entry_checked(i)?;
            for j in 0..i {
                if t.entry_checked(j)?.name == e.name {
                    return Err(FormatError::DuplicateName);
                }
            }
            let len = e.length as usize;
            if !(blob_len(1)..=blob_len(crate::bundle::MAX_SECRET_LEN)).contains(&len) {
                return Err(FormatError::BadLength {
                    what: "blob length",
                });
            }
            let off = u64::from(e.offset);
            if !off.is_multiple_of(BLOCK as u64) || off < next_blob_offset(prev_end) {
                return Err(FormatError::BadField {
                    what: "blob offset",
                });
            }
            let end = off + u64::from(e.length);
            #[cfg(test)]
            if i + 1 == count {
                crate::reach::hit(crate::reach::BLOB_TABLE);
            }
            if end > MFG_DATA_BYTES {
                return Err(FormatError::BadLength {
                    what: "blob offset",
                });
            }
            prev_end = Some(end);
        }
        Ok(t)
    }
    fn entry_checked(&self, i: usize) -> Result<BlobEntry, FormatError> {
        let s = i * TABLE_ENTRY_LEN;
        BlobEntry::parse(
            self.entries
                .get(s..s + TABLE_ENTRY_LEN)
                .ok_or(FormatError::Truncated { what: "blob table" })?,
        )
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }
    /// Never true for a parsed table.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The table CRC (what the journal records).
    pub fn crc(&self) -> u32 {
        self.crc
    }
    /// Entry `i`, if `i < len()`.
    pub fn get(&self, i: usize) -> Option<BlobEntry> {
        self.entry_checked(i).ok()
    }
    /// Iterates the entries.
    pub fn iter(&self) -> impl Iterator<Item = BlobEntry> + '_ {
        (0..self.count).filter_map(|i| self.get(i))
    }
}

/// Header of the `mfg-bundle` partition (its first block). An erased
/// partition (no valid header) means "no bundle".
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BundlePartitionHeader {
    /// Sealed bundle length in bytes (it starts at byte 512).
    pub bundle_len: u32,
    /// CRC-32 of the sealed bundle bytes.
    pub bundle_crc: u32,
}

impl BundlePartitionHeader {
    /// Header for `bundle`.
    pub fn for_bundle(bundle: &[u8]) -> Result<Self, FormatError> {
        let bundle_len = u32::try_from(bundle.len())
            .ok()
            .filter(|&n| n as usize <= MAX_BUNDLE_LEN)
            .ok_or(FormatError::BadLength {
                what: "bundle partition length",
            })?;
        Ok(Self {
            bundle_len,
            bundle_crc: crc32(bundle),
        })
    }
    /// Serialises into a 512-byte block.
    pub fn to_block(&self) -> [u8; BLOCK] {
        let mut b = [0u8; BLOCK];
        b[0..4].copy_from_slice(&BUNDLE_PART_MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[8..12].copy_from_slice(&self.bundle_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.bundle_crc.to_le_bytes());
        let crc = crc32(&b[..16]);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        b
    }
    /// Parses a header; `BadMagic` means no bundle (erased partition).
    pub fn parse(b: &[u8]) -> Result<Self, FormatError> {
        const W: &str = "bundle partition header";
        let body = b
            .get(..BUNDLE_PART_HEADER_LEN)
            .ok_or(FormatError::Truncated { what: W })?;
        let mut r = Rd::new(body, W);
        r.magic_version(&BUNDLE_PART_MAGIC, VERSION)?;
        if r.u16()? != 0 {
            return Err(FormatError::BadField { what: W });
        }
        let bundle_len = r.u32()?;
        let bundle_crc = r.u32()?;
        if r.u32()? != crc32(&body[..16]) {
            return Err(FormatError::BadCrc { what: W });
        }
        #[cfg(test)]
        crate::reach::hit(crate::reach::BUNDLE_PART);
        if bundle_len as usize > MAX_BUNDLE_LEN
            || u64::from(bundle_len) + BUNDLE_OFFSET > MFG_BUNDLE_BYTES
            || (bundle_len as usize) < crate::bundle::HEADER_LEN
        {
            return Err(FormatError::BadLength {
                what: "bundle partition length",
            });
        }
        Ok(Self {
            bundle_len,
            bundle_crc,
        })
    }
    /// Checks the bundle bytes (exactly `bundle_len` of them) against the CRC.
    pub fn check(&self, bundle: &[u8]) -> Result<(), FormatError> {
        if bundle.len() != self.bundle_len as usize {
            return Err(FormatError::BadLength {
                what: "bundle partition length",
            });
        }
        if crc32(bundle) != self.bundle_crc {
            return Err(FormatError::BadCrc {
                what: "bundle partition",
            });
        }
        Ok(())
    }
}
