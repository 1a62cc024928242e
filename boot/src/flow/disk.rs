//! The flow's view of the eMMC: the two partitions it owns, block I/O bounded
//! to them, a count of writes (for power-cut tests), and time accounting.

use super::error::FlowError;
use crate::arch::cycles;
use crate::machine::{LoaderMmc, Machine};
use block::gpt::Gpt;
use core::fmt::Write;
use mfg_formats::area::{BLOCK, MFG_DATA_BYTES};
use mfg_formats::partitions::{MFG_BUNDLE, MFG_DATA};

/// A partition: first LBA and size in blocks.
#[derive(Clone, Copy, Debug)]
pub struct Part {
    /// First LBA on the device.
    pub first: u64,
    /// Size in blocks.
    pub blocks: u64,
}

/// The flow's partitions.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// `mfg-data`: journal, ID record, blob table, blobs.
    pub data: Part,
    /// `mfg-bundle`: the sealed bundle the CM flashed.
    pub bundle: Part,
}

impl Layout {
    /// Finds both partitions by name in the GPT.
    pub fn find(mmc: &mut LoaderMmc) -> Result<Self, FlowError> {
        if mmc.info().is_none() {
            mmc.init()?;
        }
        let gpt = Gpt::read(mmc).map_err(|e| {
            let mut s = heapless::String::new();
            let _ = write!(s, "{e}");
            FlowError::Gpt(s)
        })?;
        let part = |name: &'static str| {
            gpt.find_by_name(name).map(|p| Part {
                first: p.first_lba,
                blocks: p.num_blocks(),
            })
        };
        let data = part(MFG_DATA.name).ok_or(FlowError::Partition("no 'mfg-data' partition"))?;
        let bundle =
            part(MFG_BUNDLE.name).ok_or(FlowError::Partition("no 'mfg-bundle' partition"))?;
        if data.blocks < MFG_DATA_BYTES / BLOCK as u64 {
            return Err(FlowError::Partition("'mfg-data' is smaller than 8 MiB"));
        }
        Ok(Self { data, bundle })
    }
}

/// Block I/O for the flow.
pub struct Disk<'a> {
    /// The machine (its eMMC, CAAM and console).
    pub m: &'a mut Machine,
    /// Writes issued so far in this boot.
    pub writes: &'a mut u32,
    /// Stop the machine right after this many writes (power-cut tests).
    pub cut_after: Option<u32>,
    /// Cycles spent in eMMC reads and writes.
    pub io_cycles: u64,
}

impl Disk<'_> {
    fn check(p: Part, lba: u64, len: usize) -> Result<u64, FlowError> {
        let blocks = (len / BLOCK) as u64;
        if !len.is_multiple_of(BLOCK) || lba.checked_add(blocks).is_none_or(|e| e > p.blocks) {
            return Err(FlowError::Partition("request outside the partition"));
        }
        Ok(p.first + lba)
    }

    /// Reads whole blocks at `lba` of `p`.
    pub fn read(&mut self, p: Part, lba: u64, buf: &mut [u8]) -> Result<(), FlowError> {
        let abs = Self::check(p, lba, buf.len())?;
        let t = cycles();
        let r = self.m.mmc.read(abs, buf);
        self.io_cycles += cycles() - t;
        Ok(r?)
    }

    /// Writes whole blocks at `lba` of `p`. With a power-cut plan, the
    /// machine stops right after the planned write.
    pub fn write(&mut self, p: Part, lba: u64, buf: &[u8]) -> Result<(), FlowError> {
        let abs = Self::check(p, lba, buf.len())?;
        let t = cycles();
        let r = self.m.mmc.write(abs, buf);
        self.io_cycles += cycles() - t;
        r?;
        *self.writes += 1;
        if self.cut_after == Some(*self.writes) {
            crate::machine::outln!(
                self.m,
                "*** power cut (test plan) after eMMC write {} ***",
                *self.writes
            );
            self.m.console.flush();
            defmt::warn!("flow: power cut injected after write {=u32}", *self.writes);
            crate::arch::psci::system_off();
            crate::arch::psci::halt();
        }
        Ok(())
    }

    /// Writes, then reads back and compares, block by block.
    pub fn write_verified(
        &mut self,
        p: Part,
        lba: u64,
        buf: &[u8],
        what: &'static str,
    ) -> Result<(), FlowError> {
        self.write(p, lba, buf)?;
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
