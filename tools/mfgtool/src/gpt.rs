//! Disk images for `image`, `inspect` and `verify-id DISK.img`: the layout
//! of the partitions, written and read with `block::gpt` (the loader's own
//! GPT code: protective MBR, both tables with their CRCs, the backup when
//! the primary is damaged).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use mfg_formats::partitions::PartitionDef;

use crate::error::{Fail, Result};

/// Sector size.
pub const SECTOR: u64 = 512;
/// Entries in the partition array.
pub const ENTRIES: u64 = 128;
/// Size of one entry.
pub const ENTRY_SIZE: u64 = 128;
/// Sectors the entry array takes (128 x 128 / 512).
pub const ENTRY_SECTORS: u64 = ENTRIES * ENTRY_SIZE / SECTOR;
/// Partition alignment: 1 MiB.
pub const ALIGN: u64 = 2048;

/// One partition to create.
pub struct NewPart<'a> {
    pub def: PartitionDef,
    /// Size in bytes (rounded up to a sector).
    pub size: u64,
    /// Content placed at the partition's start.
    pub content: Vec<(u64, &'a [u8])>,
}

/// A partition found in a disk image.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Part {
    pub index: usize,
    pub name: String,
    pub type_guid: String,
    pub first_lba: u64,
    pub last_lba: u64,
}

impl Part {
    pub fn size(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * SECTOR
    }
}

fn random_guid() -> Result<[u8; 16]> {
    let mut g: [u8; 16] = crate::keys::random()?;
    g[7] = (g[7] & 0x0f) | 0x40; // version 4 (d3 stored little-endian)
    g[8] = (g[8] & 0x3f) | 0x80; // RFC 4122 variant
    Ok(g)
}

/// Creates `path` as a GPT disk of `size` bytes (a power of two) with the
/// partitions in order, each aligned to 1 MiB. Returns the partitions.
pub fn write_image(path: &Path, size: u64, parts: &[NewPart<'_>]) -> Result<Vec<Part>> {
    if !size.is_power_of_two() {
        return Err(Fail::usage(format!(
            "--size {size}: must be a power of two (QEMU's SD card needs it)"
        )));
    }
    let total = size / SECTOR;
    if total < 2 * ALIGN {
        return Err(Fail::usage(format!(
            "--size {size}: too small (at least 2 MiB)"
        )));
    }
    let (_, last_usable) = block::gpt::usable_range(total)
        .ok_or_else(|| Fail::usage(format!("--size {size}: too small (at least 2 MiB)")))?;
    let mut entries = Vec::new();
    let mut out = Vec::new();
    let mut lba = ALIGN;
    for (i, p) in parts.iter().enumerate() {
        let sectors = p.size.div_ceil(SECTOR).max(1);
        let last = lba + sectors - 1;
        if last > last_usable {
            let need = ((last + 1 + ENTRY_SECTORS + 1) * SECTOR).next_power_of_two();
            return Err(Fail::usage(format!(
                "--size {size}: too small for the partitions (need at least {need} bytes)"
            )));
        }
        entries.push(block::gpt::NewPartition {
            type_guid: p.def.type_guid.0,
            unique_guid: random_guid()?,
            first_lba: lba,
            last_lba: last,
            name: p.def.name,
        });
        out.push(Part {
            index: i + 1,
            name: p.def.name.to_string(),
            type_guid: p.def.type_guid.to_string(),
            first_lba: lba,
            last_lba: last,
        });
        lba = (last + 1).div_ceil(ALIGN) * ALIGN;
    }
    let disk_guid = random_guid()?;

    let f = File::create(path).map_err(|e| Fail::io(&path.display().to_string(), e))?;
    let io = |e| Fail::io(&path.display().to_string(), e);
    f.set_len(size).map_err(io)?;
    block::gpt::write_table(&mut FileDisk::new(&f, size), &disk_guid, &entries)
        .map_err(|e| Fail::format(format!("{}: cannot write the GPT: {e:?}", path.display())))?;
    for (p, part) in parts.iter().zip(&out) {
        for (off, data) in &p.content {
            if off + data.len() as u64 > part.size() {
                return Err(Fail::usage(format!(
                    "{}: content larger than the partition",
                    part.name
                )));
            }
            f.write_all_at(data, part.first_lba * SECTOR + off)
                .map_err(io)?;
        }
    }
    f.sync_all().map_err(io)?;
    Ok(out)
}

/// True if the file starts with a protective MBR (type 0xEE) and signature.
pub fn looks_like_disk(path: &Path) -> bool {
    let mut b = [0u8; 512];
    match File::open(path).and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => b[510] == 0x55 && b[511] == 0xaa && b[446 + 4] == 0xee,
        Err(_) => false,
    }
}

/// An opened disk image.
pub struct Disk {
    file: File,
    path: String,
    pub parts: Vec<Part>,
    /// True when the primary GPT was bad and the backup was used.
    pub used_backup: bool,
}

/// The image file as a block device for `block::gpt` (512-byte blocks).
struct FileDisk<'a> {
    file: &'a File,
    blocks: u64,
}

impl<'a> FileDisk<'a> {
    fn new(file: &'a File, size: u64) -> Self {
        Self {
            file,
            blocks: size / SECTOR,
        }
    }
}

impl block::BlockDevice for FileDisk<'_> {
    type Error = std::io::Error;
    fn block_size(&self) -> usize {
        SECTOR as usize
    }
    fn num_blocks(&self) -> u64 {
        self.blocks
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.file.read_exact_at(buf, lba * SECTOR)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(buf, lba * SECTOR)
    }
}

impl Disk {
    /// Opens and parses a GPT disk image (primary, else backup).
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let mut file = File::open(path).map_err(|e| Fail::io(&name, e))?;
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|e| Fail::io(&name, e))?;
        if size < 68 * SECTOR {
            return Err(Fail::format(format!(
                "{name}: too small for a GPT disk image"
            )));
        }
        let g = block::gpt::Gpt::read(&mut FileDisk::new(&file, size)).map_err(|e| {
            Fail::format(format!(
                "{name}: no valid GPT (primary and backup both bad): {e}"
            ))
        })?;
        let parts = g
            .partitions()
            .iter()
            .map(|p| Part {
                index: p.index as usize,
                name: p.name_chars().collect(),
                type_guid: p.type_guid.to_string(),
                first_lba: p.first_lba,
                last_lba: p.last_lba,
            })
            .collect();
        Ok(Self {
            file,
            path: name,
            parts,
            used_backup: matches!(g.source, block::gpt::Source::Backup { .. }),
        })
    }

    /// Finds a partition by name.
    pub fn find(&self, name: &str) -> Result<Part> {
        self.parts
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| Fail::format(format!("{}: no partition named '{name}'", self.path)))
    }

    /// Reads `len` bytes at byte `off` of a partition.
    pub fn read(&self, p: &Part, off: u64, len: usize) -> Result<Vec<u8>> {
        if off + len as u64 > p.size() {
            return Err(Fail::format(format!(
                "{}: read past the end of partition '{}'",
                self.path, p.name
            )));
        }
        let mut b = vec![0u8; len];
        self.file
            .read_exact_at(&mut b, p.first_lba * SECTOR + off)
            .map_err(|e| Fail::io(&self.path, e))?;
        Ok(b)
    }
}

/// Parses a size: bytes, or with a K/M/G suffix (binary units, optional
/// `iB`/`B`).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mul) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| Fail::usage(format!("bad size '{s}' (e.g. 64M, 1G, 67108864)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
