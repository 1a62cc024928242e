//! The flow's view of the eMMC: the two partitions it owns and block I/O
//! bounded to them.

use crate::error::FlowError;
use crate::hw::{Console, Observer, Step, Storage};
use block::gpt::Gpt;
use mfg_formats::area::{BLOCK, MFG_DATA_BYTES};
use mfg_formats::partitions::{MFG_BUNDLE, MFG_DATA};

/// Where a partition lies: first LBA and size in blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// First LBA on the device.
    pub first: u64,
    /// Size in blocks.
    pub blocks: u64,
}

/// The flow's partitions.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// `mfg-data`: journal, ID record, blob table, blobs.
    pub data: Extent,
    /// Its GPT partition index (1-based, as Linux numbers partitions).
    pub data_index: u32,
    /// `mfg-bundle`: the sealed bundle the CM flashed.
    pub bundle: Extent,
}

impl Layout {
    /// Finds both partitions by name in the GPT.
    pub fn find<S: Storage>(dev: &mut S) -> Result<Self, FlowError> {
        dev.ready().map_err(FlowError::storage)?;
        let gpt = Gpt::read(dev).map_err(FlowError::gpt)?;
        let part = |name: &'static str| {
            gpt.find_by_name(name).map(|p| Extent {
                first: p.first_lba,
                blocks: p.num_blocks(),
            })
        };
        let data = part(MFG_DATA.name).ok_or(FlowError::Partition("no 'mfg-data' partition"))?;
        let data_index = gpt.find_by_name(MFG_DATA.name).map_or(0, |p| p.index);
        let bundle =
            part(MFG_BUNDLE.name).ok_or(FlowError::Partition("no 'mfg-bundle' partition"))?;
        if data.blocks < MFG_DATA_BYTES / BLOCK as u64 {
            return Err(FlowError::Partition("'mfg-data' is smaller than 8 MiB"));
        }
        // Erasing the bundle must never touch the blobs: a table whose
        // partitions share a block is refused before anything is written.
        if data.first < bundle.first + bundle.blocks && bundle.first < data.first + data.blocks {
            return Err(FlowError::Partition(
                "'mfg-bundle' overlaps 'mfg-data' in the GPT",
            ));
        }
        Ok(Self {
            data,
            data_index,
            bundle,
        })
    }
}

/// Block I/O for the flow, bounded to its partitions, with the observer
/// told of every transfer and write.
pub(crate) struct Disk<'a, S: Storage> {
    pub dev: &'a mut S,
    pub obs: &'a mut dyn Observer,
}

impl<S: Storage> Disk<'_, S> {
    fn check(p: Extent, lba: u64, len: usize) -> Result<u64, FlowError> {
        let blocks = (len / BLOCK) as u64;
        if !len.is_multiple_of(BLOCK) || lba.checked_add(blocks).is_none_or(|e| e > p.blocks) {
            return Err(FlowError::Partition("request outside the partition"));
        }
        Ok(p.first + lba)
    }

    /// Reads whole blocks at `lba` of `p`.
    pub fn read(&mut self, p: Extent, lba: u64, buf: &mut [u8]) -> Result<(), FlowError> {
        let abs = Self::check(p, lba, buf.len())?;
        self.obs.begin(Step::Io);
        let r = self.dev.read_blocks(abs, buf);
        self.obs.end(Step::Io);
        r.map_err(FlowError::storage)
    }

    /// Writes whole blocks at `lba` of `p`.
    pub fn write(
        &mut self,
        out: &mut dyn Console,
        p: Extent,
        lba: u64,
        buf: &[u8],
    ) -> Result<(), FlowError> {
        let abs = Self::check(p, lba, buf.len())?;
        self.obs.begin(Step::Io);
        let r = self.dev.write_blocks(abs, buf);
        self.obs.end(Step::Io);
        r.map_err(FlowError::storage)?;
        self.obs.written(out);
        Ok(())
    }

    /// Writes, then reads back and compares, block by block.
    pub fn write_verified(
        &mut self,
        out: &mut dyn Console,
        p: Extent,
        lba: u64,
        buf: &[u8],
        what: &'static str,
    ) -> Result<(), FlowError> {
        self.write(out, p, lba, buf)?;
        let mut back = [0u8; BLOCK];
        for (i, chunk) in buf.chunks(BLOCK).enumerate() {
            self.read(p, lba + i as u64, &mut back)?;
            if back != chunk {
                return Err(FlowError::ReadBack(what));
            }
        }
        Ok(())
    }
}
