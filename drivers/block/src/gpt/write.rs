//! GUID partition table writer: protective MBR, primary and backup headers
//! and entry arrays with their CRC-32s, for 512-byte blocks and the usual
//! 128 entries of 128 bytes.

use super::{CRC32, NAME_UNITS, SIGNATURE};
use crate::{BLOCK, BlockDevice};

const ENTRIES: usize = 128;
const ENTRY_SIZE: usize = 128;
/// Blocks the entry array takes.
const ENTRY_BLOCKS: u64 = (ENTRIES * ENTRY_SIZE / BLOCK) as u64;

/// One partition to create.
#[derive(Clone, Copy, Debug)]
pub struct NewPartition<'a> {
    /// Partition type GUID, in on-disk byte order.
    pub type_guid: [u8; 16],
    /// Unique partition GUID, in on-disk byte order.
    pub unique_guid: [u8; 16],
    /// First LBA.
    pub first_lba: u64,
    /// Last LBA (inclusive).
    pub last_lba: u64,
    /// Name (at most 36 UTF-16 code units are kept).
    pub name: &'a str,
}

/// Why a table could not be written.
#[derive(Debug, PartialEq, Eq)]
pub enum GptWriteError<E> {
    /// Not 512-byte blocks, or too small for two tables.
    UnsupportedDevice,
    /// More than 128 partitions.
    TooManyPartitions,
    /// A partition lies outside the usable range or overlaps another.
    BadPartition(usize),
    /// The device refused a write.
    Device(E),
}

/// First and last usable LBA of a device of `blocks` 512-byte blocks.
pub fn usable_range(blocks: u64) -> Option<(u64, u64)> {
    let first = 2 + ENTRY_BLOCKS;
    let last = blocks.checked_sub(2 + ENTRY_BLOCKS)?;
    (first <= last).then_some((first, last))
}

fn header(
    my: u64,
    alt: u64,
    range: (u64, u64),
    disk: &[u8; 16],
    array: u64,
    crc: u32,
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[0..8].copy_from_slice(SIGNATURE);
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&my.to_le_bytes());
    h[32..40].copy_from_slice(&alt.to_le_bytes());
    h[40..48].copy_from_slice(&range.0.to_le_bytes());
    h[48..56].copy_from_slice(&range.1.to_le_bytes());
    h[56..72].copy_from_slice(disk);
    h[72..80].copy_from_slice(&array.to_le_bytes());
    h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
    h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
    h[88..92].copy_from_slice(&crc.to_le_bytes());
    let c = CRC32.checksum(&h[..92]);
    h[16..20].copy_from_slice(&c.to_le_bytes());
    h
}

/// Writes a protective MBR and both GPTs describing `parts` (in that order,
/// indexes from 1). Partition contents are left as they are.
pub fn write_table<D: BlockDevice>(
    dev: &mut D,
    disk_guid: &[u8; 16],
    parts: &[NewPartition<'_>],
) -> Result<(), GptWriteError<D::Error>> {
    if dev.block_size() != BLOCK {
        return Err(GptWriteError::UnsupportedDevice);
    }
    let total = dev.num_blocks();
    let range = usable_range(total).ok_or(GptWriteError::UnsupportedDevice)?;
    if parts.len() > ENTRIES {
        return Err(GptWriteError::TooManyPartitions);
    }
    let mut entries = [0u8; ENTRIES * ENTRY_SIZE];
    for (i, p) in parts.iter().enumerate() {
        let inside = range.0 <= p.first_lba && p.first_lba <= p.last_lba && p.last_lba <= range.1;
        let overlaps = parts[..i]
            .iter()
            .any(|q| p.first_lba <= q.last_lba && q.first_lba <= p.last_lba);
        if !inside || overlaps {
            return Err(GptWriteError::BadPartition(i));
        }
        let e = &mut entries[i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE];
        e[0..16].copy_from_slice(&p.type_guid);
        e[16..32].copy_from_slice(&p.unique_guid);
        e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
        e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
        for (k, u) in p.name.encode_utf16().take(NAME_UNITS).enumerate() {
            e[56 + 2 * k..58 + 2 * k].copy_from_slice(&u.to_le_bytes());
        }
    }
    let crc = CRC32.checksum(&entries);
    let mut mbr = [0u8; BLOCK];
    mbr[446 + 1..446 + 4].copy_from_slice(&[0x00, 0x02, 0x00]);
    mbr[446 + 4] = 0xee;
    mbr[446 + 5..446 + 8].copy_from_slice(&[0xff, 0xff, 0xff]);
    mbr[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(total - 1).unwrap_or(u32::MAX);
    mbr[446 + 12..446 + 16].copy_from_slice(&size.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let backup_array = total - 1 - ENTRY_BLOCKS;
    let w =
        |dev: &mut D, lba: u64, b: &[u8]| dev.write_blocks(lba, b).map_err(GptWriteError::Device);
    w(dev, 0, &mbr)?;
    w(dev, 1, &header(1, total - 1, range, disk_guid, 2, crc))?;
    w(dev, 2, &entries)?;
    w(dev, backup_array, &entries)?;
    w(
        dev,
        total - 1,
        &header(total - 1, 1, range, disk_guid, backup_array, crc),
    )
}
