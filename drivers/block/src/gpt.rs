//! GUID partition table reader (and, in [`write`], its writer).
//!
//! Checks the protective MBR, reads the primary header (LBA 1) and its entry
//! array, verifying both CRC-32s and the header's sizes and LBAs. If anything
//! about the primary is wrong it falls back to the backup header in the last
//! block of the device and says so in [`Gpt::source`]. No heap: at most
//! [`MAX_ENTRIES`] entries are accepted.

use crate::{BlockDevice, Guid, Partition};
use core::fmt;
use crc::{CRC_32_ISO_HDLC, Crc};

/// Most entries a table may declare (the usual count; U-Boot's limit too).
pub const MAX_ENTRIES: usize = 128;
/// Largest block size the reader handles.
pub const MAX_BLOCK_SIZE: usize = 4096;
/// Bytes of the entry array read per command (the whole usual array).
const ENTRY_CHUNK: usize = 16 * 1024;
/// UTF-16 code units in a partition name.
pub const NAME_UNITS: usize = 36;

mod write;
pub use write::{GptWriteError, NewPartition, usable_range, write_table};

/// The byte range of the partition named `name` in a disk image of 512-byte
/// blocks (the table as [`Gpt::read`] finds it: primary, else backup).
pub fn partition_range(image: &[u8], name: &str) -> Option<core::ops::Range<usize>> {
    let g = Gpt::read(&mut crate::ImageDisk::new(image, 512)).ok()?;
    let p = g.find_by_name(name)?;
    let first = usize::try_from(p.first_lba).ok()?.checked_mul(512)?;
    let end = usize::try_from(p.last_lba)
        .ok()?
        .checked_add(1)?
        .checked_mul(512)?;
    (end <= image.len()).then_some(first..end)
}

const SIGNATURE: &[u8; 8] = b"EFI PART";
const HEADER_MIN: usize = 92;
const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// What is wrong with one GPT header or its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GptFault {
    /// No `EFI PART` signature.
    BadSignature,
    /// Header size below 92 bytes or above the block size.
    BadHeaderSize(u32),
    /// The header CRC-32 does not match.
    HeaderCrc {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the header.
        computed: u32,
    },
    /// The header says it lives at another LBA than where it was read.
    WrongLba {
        /// Where it was read.
        expected: u64,
        /// What its `MyLBA` field says.
        found: u64,
    },
    /// First/last usable LBAs are out of order or off the device.
    BadUsableRange {
        /// First usable LBA.
        first: u64,
        /// Last usable LBA.
        last: u64,
    },
    /// Entry size not a power of two in 128..=block size.
    BadEntrySize(u32),
    /// More entries than [`MAX_ENTRIES`] (or none).
    BadEntryCount(u32),
    /// The entry array does not lie within the device.
    EntriesOutOfDisk {
        /// First LBA of the array.
        lba: u64,
        /// Blocks it spans.
        blocks: u64,
    },
    /// The entry array CRC-32 does not match.
    EntriesCrc {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the entries.
        computed: u32,
    },
    /// A used entry's LBAs are reversed or outside the usable range.
    BadEntry {
        /// 1-based entry index.
        index: u32,
    },
}

impl fmt::Display for GptFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BadSignature => f.write_str("no \"EFI PART\" signature"),
            Self::BadHeaderSize(s) => write!(f, "bad header size {s}"),
            Self::HeaderCrc { stored, computed } => write!(
                f,
                "header CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::WrongLba { expected, found } => {
                write!(f, "header at LBA {expected:#x} claims LBA {found:#x}")
            }
            Self::BadUsableRange { first, last } => {
                write!(f, "bad usable LBA range {first:#x}..{last:#x}")
            }
            Self::BadEntrySize(s) => write!(f, "bad partition entry size {s}"),
            Self::BadEntryCount(n) => write!(
                f,
                "bad partition entry count {n} (at most {MAX_ENTRIES} supported)"
            ),
            Self::EntriesOutOfDisk { lba, blocks } => write!(
                f,
                "partition entries at LBA {lba:#x} ({blocks:#x} blocks) outside the device"
            ),
            Self::EntriesCrc { stored, computed } => write!(
                f,
                "partition entries CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::BadEntry { index } => write!(f, "partition entry {index} has bad LBAs"),
        }
    }
}

/// Why no GPT could be read.
#[derive(Debug, PartialEq, Eq)]
pub enum GptError<E> {
    /// Reading the device failed.
    Device(E),
    /// Block size not a power of two in 512..=4096.
    BlockSize(usize),
    /// The device is too small to hold a GPT.
    TooSmall(u64),
    /// Block 0 holds no protective MBR (no 0x55AA signature or no 0xEE
    /// entry): not a GPT disk.
    NoProtectiveMbr,
    /// Primary and backup tables are both invalid.
    BothBad {
        /// What is wrong with the primary.
        primary: GptFault,
        /// What is wrong with the backup.
        backup: GptFault,
    },
}

impl<E: fmt::Display> fmt::Display for GptError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device(e) => write!(f, "gpt: read failed: {e}"),
            Self::BlockSize(s) => write!(f, "gpt: unsupported block size {s}"),
            Self::TooSmall(n) => write!(f, "gpt: device too small ({n:#x} blocks)"),
            Self::NoProtectiveMbr => f.write_str("gpt: no protective MBR, not a GPT disk"),
            Self::BothBad { primary, backup } => write!(
                f,
                "gpt: primary table invalid ({primary}) and backup table invalid ({backup})"
            ),
        }
    }
}

/// Which header the table was taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The primary header at LBA 1 was valid.
    Primary,
    /// The primary was invalid for the given reason; the backup was used.
    Backup {
        /// What was wrong with the primary.
        primary: GptFault,
    },
}

/// One used partition entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GptPartition {
    /// 1-based index in the entry array (U-Boot's partition number).
    pub index: u32,
    /// Partition type GUID.
    pub type_guid: Guid,
    /// Unique partition GUID.
    pub unique_guid: Guid,
    /// First LBA.
    pub first_lba: u64,
    /// Last LBA (inclusive).
    pub last_lba: u64,
    /// Attribute bits.
    pub attributes: u64,
    /// Name, UTF-16LE code units, zero-padded.
    pub name: [u16; NAME_UNITS],
}

impl GptPartition {
    /// Blocks in the partition.
    pub fn num_blocks(&self) -> u64 {
        self.last_lba - self.first_lba + 1
    }

    /// The name's characters (up to the first NUL; unpaired surrogates become
    /// U+FFFD).
    pub fn name_chars(&self) -> impl Iterator<Item = char> + '_ {
        let len = self.name.iter().position(|&u| u == 0).unwrap_or(NAME_UNITS);
        char::decode_utf16(self.name[..len].iter().copied())
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// Whether the name equals `s` exactly.
    pub fn name_is(&self, s: &str) -> bool {
        self.name_chars().eq(s.chars())
    }

    /// Something that prints the name.
    pub fn display_name(&self) -> impl fmt::Display + '_ {
        struct D<'a>(&'a GptPartition);
        impl fmt::Display for D<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                use fmt::Write;
                self.0.name_chars().try_for_each(|c| f.write_char(c))
            }
        }
        D(self)
    }
}

/// A parsed, verified GUID partition table.
#[derive(Clone, Debug)]
pub struct Gpt {
    /// Which header it came from.
    pub source: Source,
    /// LBA of the header used.
    pub header_lba: u64,
    /// The other header's LBA as recorded in the header used.
    pub alternate_lba: u64,
    /// First usable LBA.
    pub first_usable: u64,
    /// Last usable LBA.
    pub last_usable: u64,
    /// Disk GUID.
    pub disk_guid: Guid,
    /// Entry slots declared by the header.
    pub entry_slots: u32,
    /// Entry size in bytes.
    pub entry_size: u32,
    partitions: heapless::Vec<GptPartition, MAX_ENTRIES>,
}

struct Header {
    alternate_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: Guid,
    entries_lba: u64,
    entry_slots: u32,
    entry_size: u32,
    entries_crc: u32,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | u64::from(le32(b, at + 4)) << 32
}

fn guid_at(b: &[u8], at: usize) -> Guid {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    Guid(g)
}

enum Failure<E> {
    Device(E),
    Fault(GptFault),
}

impl<E> From<GptFault> for Failure<E> {
    fn from(f: GptFault) -> Self {
        Self::Fault(f)
    }
}

impl Gpt {
    /// Reads and verifies the table of `dev`.
    pub fn read<D: BlockDevice>(dev: &mut D) -> Result<Self, GptError<D::Error>> {
        let bs = dev.block_size();
        if !(512..=MAX_BLOCK_SIZE).contains(&bs) || !bs.is_power_of_two() {
            return Err(GptError::BlockSize(bs));
        }
        let n = dev.num_blocks();
        // pMBR + 2 headers + at least one entry block each.
        if n < 6 {
            return Err(GptError::TooSmall(n));
        }
        let mut buf = [0u8; MAX_BLOCK_SIZE];
        let blk = &mut buf[..bs];
        dev.read_blocks(0, blk).map_err(GptError::Device)?;
        if !has_protective_mbr(blk) {
            return Err(GptError::NoProtectiveMbr);
        }
        let primary = match Self::read_at(dev, 1, blk) {
            Ok(g) => return Ok(g),
            Err(Failure::Device(e)) => return Err(GptError::Device(e)),
            Err(Failure::Fault(f)) => f,
        };
        match Self::read_at(dev, n - 1, blk) {
            Ok(mut g) => {
                g.source = Source::Backup { primary };
                Ok(g)
            }
            Err(Failure::Device(e)) => Err(GptError::Device(e)),
            Err(Failure::Fault(backup)) => Err(GptError::BothBad { primary, backup }),
        }
    }

    fn read_at<D: BlockDevice>(
        dev: &mut D,
        lba: u64,
        blk: &mut [u8],
    ) -> Result<Self, Failure<D::Error>> {
        let bs = blk.len();
        let n = dev.num_blocks();
        dev.read_blocks(lba, blk).map_err(Failure::Device)?;
        let h = parse_header(blk, lba, n)?;
        let entry_size = usize::try_from(h.entry_size).unwrap_or(usize::MAX);
        let slots = usize::try_from(h.entry_slots).unwrap_or(usize::MAX);
        let per_block = bs / entry_size;
        let blocks = u64::try_from(slots.div_ceil(per_block)).unwrap_or(u64::MAX);
        let in_disk = h
            .entries_lba
            .checked_add(blocks)
            .is_some_and(|end| h.entries_lba >= 2 && end < n);
        if !in_disk {
            return Err(GptFault::EntriesOutOfDisk {
                lba: h.entries_lba,
                blocks,
            }
            .into());
        }
        let mut digest = CRC32.digest();
        let mut partitions = heapless::Vec::new();
        let mut left = slots;
        let mut index = 0u32;
        // The entry array in as few commands as the chunk allows (one for
        // the usual 128 x 128 bytes).
        let mut chunk = [0u8; ENTRY_CHUNK];
        let chunk_blocks = (ENTRY_CHUNK / bs) as u64;
        let mut b = 0;
        while b < blocks {
            let n = (blocks - b).min(chunk_blocks);
            let part = &mut chunk[..n as usize * bs];
            dev.read_blocks(h.entries_lba + b, part)
                .map_err(Failure::Device)?;
            for blk in part.chunks_exact(bs) {
                let here = left.min(per_block);
                digest.update(&blk[..here * entry_size]);
                for e in blk[..here * entry_size].chunks_exact(entry_size) {
                    index += 1;
                    let type_guid = guid_at(e, 0);
                    if type_guid.is_zero() {
                        continue;
                    }
                    let first_lba = le64(e, 32);
                    let last_lba = le64(e, 40);
                    if first_lba > last_lba
                        || first_lba < h.first_usable
                        || last_lba > h.last_usable
                    {
                        return Err(GptFault::BadEntry { index }.into());
                    }
                    let mut name = [0u16; NAME_UNITS];
                    for (i, u) in name.iter_mut().enumerate() {
                        *u = u16::from_le_bytes([e[56 + 2 * i], e[57 + 2 * i]]);
                    }
                    let p = GptPartition {
                        index,
                        type_guid,
                        unique_guid: guid_at(e, 16),
                        first_lba,
                        last_lba,
                        attributes: le64(e, 48),
                        name,
                    };
                    // Cannot overflow: slots <= MAX_ENTRIES was checked.
                    let _ = partitions.push(p);
                }
                left -= here;
            }
            b += n;
        }
        #[cfg(test)]
        tests::reach_hit(if lba == 1 {
            tests::REACH_PRIMARY_CRC
        } else {
            tests::REACH_BACKUP_CRC
        });
        let computed = digest.finalize();
        if computed != h.entries_crc {
            return Err(GptFault::EntriesCrc {
                stored: h.entries_crc,
                computed,
            }
            .into());
        }
        Ok(Self {
            source: Source::Primary,
            header_lba: lba,
            alternate_lba: h.alternate_lba,
            first_usable: h.first_usable,
            last_usable: h.last_usable,
            disk_guid: h.disk_guid,
            entry_slots: h.entry_slots,
            entry_size: h.entry_size,
            partitions,
        })
    }

    /// The used entries, in table order.
    pub fn partitions(&self) -> &[GptPartition] {
        &self.partitions
    }

    /// The first partition named `name`.
    pub fn find_by_name(&self, name: &str) -> Option<&GptPartition> {
        self.partitions.iter().find(|p| p.name_is(name))
    }

    /// The first partition of type `type_guid`.
    pub fn find_by_type(&self, type_guid: &Guid) -> Option<&GptPartition> {
        self.partitions.iter().find(|p| p.type_guid == *type_guid)
    }

    /// A bounded view of `part` on `dev`.
    pub fn open<D: BlockDevice>(dev: D, part: &GptPartition) -> Option<Partition<D>> {
        Partition::new(dev, part.first_lba, part.num_blocks())
    }
}

fn has_protective_mbr(b: &[u8]) -> bool {
    b[510] == 0x55 && b[511] == 0xAA && (0..4).any(|i| b[446 + 16 * i + 4] == 0xEE)
}

fn parse_header(b: &[u8], lba: u64, n: u64) -> Result<Header, GptFault> {
    if &b[..8] != SIGNATURE {
        return Err(GptFault::BadSignature);
    }
    let size = le32(b, 12);
    let size_us = usize::try_from(size).unwrap_or(usize::MAX);
    if size_us < HEADER_MIN || size_us > b.len() {
        return Err(GptFault::BadHeaderSize(size));
    }
    let stored = le32(b, 16);
    let mut d = CRC32.digest();
    d.update(&b[..16]);
    d.update(&[0; 4]);
    d.update(&b[20..size_us]);
    let computed = d.finalize();
    if stored != computed {
        return Err(GptFault::HeaderCrc { stored, computed });
    }
    let my_lba = le64(b, 24);
    if my_lba != lba {
        return Err(GptFault::WrongLba {
            expected: lba,
            found: my_lba,
        });
    }
    let first = le64(b, 40);
    let last = le64(b, 48);
    if first < 2 || first > last || last >= n - 1 {
        return Err(GptFault::BadUsableRange { first, last });
    }
    let entry_size = le32(b, 84);
    if entry_size < 128
        || !entry_size.is_power_of_two()
        || usize::try_from(entry_size).unwrap_or(usize::MAX) > b.len()
    {
        return Err(GptFault::BadEntrySize(entry_size));
    }
    let slots = le32(b, 80);
    if slots == 0 || usize::try_from(slots).unwrap_or(usize::MAX) > MAX_ENTRIES {
        return Err(GptFault::BadEntryCount(slots));
    }
    Ok(Header {
        alternate_lba: le64(b, 32),
        first_usable: first,
        last_usable: last,
        disk_guid: guid_at(b, 56),
        entries_lba: le64(b, 72),
        entry_slots: slots,
        entry_size,
        entries_crc: le32(b, 88),
    })
}

#[cfg(test)]
mod tests;
