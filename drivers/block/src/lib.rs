//! Block devices and the GPT reader.
//!
//! - [`BlockDevice`]: what the loader reads and writes storage through (the
//!   uSDHC driver implements it; [`MemDisk`] is a RAM-backed one for tests).
//! - [`Partition`]: a bounded window `[start, start + len)` of a device that
//!   refuses requests outside it.
//! - [`gpt`]: the GUID partition table reader (protective MBR, primary header
//!   with fallback to the backup, CRC-32 checks), without heap.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod gpt;
mod guid;

pub use guid::{Guid, GuidParseError};

use core::fmt;

/// The SD/eMMC block: 512 bytes (the only block length the uSDHC driver,
/// the GPT code and the provisioning layout use).
pub const BLOCK: usize = 512;

/// A device addressed in fixed-size blocks.
///
/// Buffers passed to [`read_blocks`](Self::read_blocks) and
/// [`write_blocks`](Self::write_blocks) must be a non-zero multiple of
/// [`block_size`](Self::block_size) long and lie within the device
/// ([`check_range`] does the checks); implementations refuse anything else
/// before touching the medium.
pub trait BlockDevice {
    /// The device's error type.
    type Error: fmt::Display;

    /// Bytes per block (512 for SD/eMMC).
    fn block_size(&self) -> usize;
    /// Number of blocks of the device (or of the selected hardware partition).
    fn num_blocks(&self) -> u64;
    /// Reads `buf.len() / block_size()` blocks starting at `lba`.
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
    /// Writes `buf.len() / block_size()` blocks starting at `lba`.
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), Self::Error>;
}

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    type Error = T::Error;
    fn block_size(&self) -> usize {
        (**self).block_size()
    }
    fn num_blocks(&self) -> u64 {
        (**self).num_blocks()
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        (**self).read_blocks(lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), Self::Error> {
        (**self).write_blocks(lba, buf)
    }
}

/// Why a block request was refused before reaching the medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// The buffer is empty (zero blocks).
    Empty,
    /// The buffer length is not a multiple of the block size.
    Unaligned {
        /// Buffer length in bytes.
        len: usize,
        /// Block size in bytes.
        block_size: usize,
    },
    /// The request reaches past the last block.
    PastEnd {
        /// First block requested.
        lba: u64,
        /// Blocks requested.
        count: u64,
        /// Blocks the device (or partition) has.
        num_blocks: u64,
    },
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("block: zero-length request"),
            Self::Unaligned { len, block_size } => write!(
                f,
                "block: length {len:#x} is not a multiple of the block size {block_size:#x}"
            ),
            Self::PastEnd {
                lba,
                count,
                num_blocks,
            } => write!(
                f,
                "block: blocks {lba:#x}+{count:#x} past the end of the device ({num_blocks:#x} blocks)"
            ),
        }
    }
}

/// Checks a request of `len` bytes at `lba` against a device of `num_blocks`
/// blocks of `block_size` bytes; returns the block count.
pub fn check_range(
    block_size: usize,
    num_blocks: u64,
    lba: u64,
    len: usize,
) -> Result<u64, RangeError> {
    if len == 0 {
        return Err(RangeError::Empty);
    }
    if block_size == 0 || !len.is_multiple_of(block_size) {
        return Err(RangeError::Unaligned { len, block_size });
    }
    let count = u64::try_from(len / block_size).unwrap_or(u64::MAX);
    match lba.checked_add(count) {
        Some(end) if end <= num_blocks => Ok(count),
        _ => Err(RangeError::PastEnd {
            lba,
            count,
            num_blocks,
        }),
    }
}

/// Error of a [`Partition`]: the request was outside the partition, or the
/// device failed.
#[derive(Debug, PartialEq, Eq)]
pub enum PartitionError<E> {
    /// Refused: outside the partition (LBAs relative to the partition).
    Range(RangeError),
    /// The underlying device failed.
    Device(E),
}

impl<E: fmt::Display> fmt::Display for PartitionError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Range(e) => write!(f, "partition: {e}"),
            Self::Device(e) => e.fmt(f),
        }
    }
}

/// A window `[start, start + len)` (in blocks) of a device. Block 0 of the
/// partition is block `start` of the device; requests past `len` are refused
/// without touching the device.
#[derive(Debug)]
pub struct Partition<D> {
    dev: D,
    start: u64,
    len: u64,
}

impl<D: BlockDevice> Partition<D> {
    /// A view of `len` blocks from `start`; `None` if that does not fit the
    /// device.
    pub fn new(dev: D, start: u64, len: u64) -> Option<Self> {
        let end = start.checked_add(len)?;
        (end <= dev.num_blocks()).then_some(Self { dev, start, len })
    }

    /// First device block of the partition.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Gives the device back.
    pub fn into_inner(self) -> D {
        self.dev
    }
}

impl<D: BlockDevice> BlockDevice for Partition<D> {
    type Error = PartitionError<D::Error>;
    fn block_size(&self) -> usize {
        self.dev.block_size()
    }
    fn num_blocks(&self) -> u64 {
        self.len
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), Self::Error> {
        check_range(self.block_size(), self.len, lba, buf.len()).map_err(PartitionError::Range)?;
        self.dev
            .read_blocks(self.start + lba, buf)
            .map_err(PartitionError::Device)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), Self::Error> {
        check_range(self.block_size(), self.len, lba, buf.len()).map_err(PartitionError::Range)?;
        self.dev
            .write_blocks(self.start + lba, buf)
            .map_err(PartitionError::Device)
    }
}

/// A block device over a byte slice (host tests, RAM disks).
#[derive(Debug)]
pub struct MemDisk<'a> {
    data: &'a mut [u8],
    block_size: usize,
}

impl<'a> MemDisk<'a> {
    /// A disk over `data`; trailing bytes past the last whole block are unused.
    ///
    /// # Panics
    /// If `block_size` is zero.
    pub fn new(data: &'a mut [u8], block_size: usize) -> Self {
        assert!(block_size > 0, "block size must not be zero");
        Self { data, block_size }
    }

    fn span(&self, lba: u64, len: usize) -> Result<core::ops::Range<usize>, RangeError> {
        check_range(self.block_size, self.num_blocks(), lba, len)?;
        // In range of `data`, so it fits usize.
        let start = usize::try_from(lba).unwrap_or(usize::MAX) * self.block_size;
        Ok(start..start + len)
    }
}

impl BlockDevice for MemDisk<'_> {
    type Error = RangeError;
    fn block_size(&self) -> usize {
        self.block_size
    }
    fn num_blocks(&self) -> u64 {
        u64::try_from(self.data.len() / self.block_size).unwrap_or(u64::MAX)
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), RangeError> {
        let r = self.span(lba, buf.len())?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), RangeError> {
        let r = self.span(lba, buf.len())?;
        self.data[r].copy_from_slice(buf);
        Ok(())
    }
}

/// A read-only block device over an image in memory (host tools and tests
/// that look into a disk image); writes are refused.
#[derive(Debug, Clone, Copy)]
pub struct ImageDisk<'a> {
    data: &'a [u8],
    block_size: usize,
}

/// Why an [`ImageDisk`] refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Outside the image or misaligned.
    Range(RangeError),
    /// The image is read-only.
    ReadOnly,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Range(e) => write!(f, "{e}"),
            Self::ReadOnly => f.write_str("the disk image is read-only"),
        }
    }
}

impl<'a> ImageDisk<'a> {
    /// A read-only disk over `data`.
    ///
    /// # Panics
    /// If `block_size` is zero.
    pub fn new(data: &'a [u8], block_size: usize) -> Self {
        assert!(block_size > 0, "block size must not be zero");
        Self { data, block_size }
    }
}

impl BlockDevice for ImageDisk<'_> {
    type Error = ImageError;
    fn block_size(&self) -> usize {
        self.block_size
    }
    fn num_blocks(&self) -> u64 {
        u64::try_from(self.data.len() / self.block_size).unwrap_or(u64::MAX)
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), ImageError> {
        check_range(self.block_size, self.num_blocks(), lba, buf.len())
            .map_err(ImageError::Range)?;
        let start = usize::try_from(lba).unwrap_or(usize::MAX) * self.block_size;
        buf.copy_from_slice(&self.data[start..start + buf.len()]);
        Ok(())
    }
    fn write_blocks(&mut self, _: u64, _: &[u8]) -> Result<(), ImageError> {
        Err(ImageError::ReadOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec;

    #[test]
    fn range_checks() {
        assert_eq!(check_range(512, 10, 0, 512 * 10), Ok(10));
        assert_eq!(check_range(512, 10, 9, 512), Ok(1));
        assert_eq!(check_range(512, 10, 0, 0), Err(RangeError::Empty));
        assert_eq!(
            check_range(512, 10, 0, 513),
            Err(RangeError::Unaligned {
                len: 513,
                block_size: 512
            })
        );
        assert_eq!(
            check_range(512, 10, 9, 1024),
            Err(RangeError::PastEnd {
                lba: 9,
                count: 2,
                num_blocks: 10
            })
        );
        assert!(matches!(
            check_range(512, 10, u64::MAX, 512),
            Err(RangeError::PastEnd { .. })
        ));
        assert_eq!(
            check_range(512, 10, 9, 1024).unwrap_err().to_string(),
            "block: blocks 0x9+0x2 past the end of the device (0xa blocks)"
        );
    }

    #[test]
    fn partition_is_bounded_and_offset() {
        let mut data = vec![0u8; 512 * 16];
        for (i, b) in data.chunks_mut(512).enumerate() {
            b.fill(u8::try_from(i).unwrap());
        }
        let mut disk = MemDisk::new(&mut data, 512);
        assert!(Partition::new(&mut disk, 10, 7).is_none());
        let mut p = Partition::new(&mut disk, 4, 6).unwrap();
        assert_eq!(p.num_blocks(), 6);
        let mut buf = [0u8; 1024];
        p.read_blocks(0, &mut buf).unwrap();
        assert!(buf[..512].iter().all(|&b| b == 4));
        assert!(buf[512..].iter().all(|&b| b == 5));
        let e = p.read_blocks(5, &mut buf).unwrap_err();
        assert_eq!(
            e,
            PartitionError::Range(RangeError::PastEnd {
                lba: 5,
                count: 2,
                num_blocks: 6
            })
        );
        assert!(
            e.to_string()
                .starts_with("partition: block: blocks 0x5+0x2")
        );
        // A refused write leaves the device alone.
        assert!(p.write_blocks(6, &[0xAA; 512]).is_err());
        p.write_blocks(5, &[0xAA; 512]).unwrap();
        let disk = p.into_inner();
        let mut all = [0u8; 512];
        disk.read_blocks(9, &mut all).unwrap();
        assert!(all.iter().all(|&b| b == 0xAA));
        disk.read_blocks(10, &mut all).unwrap();
        assert!(all.iter().all(|&b| b == 10));
    }
}
