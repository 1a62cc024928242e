//! Disk images for `image`, `inspect` and `verify-id DISK.img`: the layout
//! of the partitions, written and read with `block::gpt` (the loader's own
//! GPT code: protective MBR, both tables with their CRCs, the backup when
//! the primary is damaged). Raw images (QEMU's SD card) or sparse images
//! of the whole eMMC user area (`crate::sparse`, for uuu).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use mfg_formats::partitions::PartitionDef;

use crate::error::{Fail, Result, read_file};
use crate::sparse;

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
pub struct ImagePartition {
    pub index: usize,
    pub name: String,
    pub type_guid: String,
    pub first_lba: u64,
    pub last_lba: u64,
}

impl ImagePartition {
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

/// The size of a disk image, and so its format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskSize {
    /// A raw image of this many bytes, a power of two (QEMU's SD card
    /// needs it).
    Bytes(u64),
    /// A sparse image (`crate::sparse`) of exactly this many sectors: the
    /// eMMC user area, so that the backup GPT is in its last sector.
    Sectors(u64),
}

/// Writes `path` as a GPT disk of `size` with the partitions in order, each
/// aligned to 1 MiB. Returns the partitions.
pub fn write_image(
    path: &Path,
    size: DiskSize,
    parts: &[NewPart<'_>],
) -> Result<Vec<ImagePartition>> {
    let (total, what) = match size {
        DiskSize::Bytes(b) => {
            if !b.is_power_of_two() {
                return Err(Fail::usage(format!(
                    "--size {b}: must be a power of two (QEMU's SD card needs it)"
                )));
            }
            (b / SECTOR, format!("--size {b}"))
        }
        DiskSize::Sectors(n) => {
            // The sparse format counts blocks in 32 bits; 2^32 sectors
            // (2 TiB) is beyond any eMMC, and keeps every byte offset
            // below far from overflow.
            if n > u64::from(u32::MAX) {
                return Err(Fail::usage(format!(
                    "--emmc-sectors {n}: more than a sparse image holds (at most {} sectors)",
                    u32::MAX
                )));
            }
            (n, format!("--emmc-sectors {n}"))
        }
    };
    let too_small = || Fail::usage(format!("{what}: too small (at least 2 MiB)"));
    if total < 2 * ALIGN {
        return Err(too_small());
    }
    let (_, last_usable) = block::gpt::usable_range(total).ok_or_else(too_small)?;
    let mut entries = Vec::new();
    let mut out = Vec::new();
    let mut lba = ALIGN;
    for (i, p) in parts.iter().enumerate() {
        let sectors = p.size.div_ceil(SECTOR).max(1);
        let last = lba + sectors - 1;
        if last > last_usable {
            let need = last + 1 + ENTRY_SECTORS + 1;
            let need = match size {
                DiskSize::Bytes(_) => format!("{} bytes", (need * SECTOR).next_power_of_two()),
                DiskSize::Sectors(_) => format!("{need} sectors"),
            };
            return Err(Fail::usage(format!(
                "{what}: too small for the partitions (need at least {need})"
            )));
        }
        entries.push(block::gpt::NewPartition {
            type_guid: p.def.type_guid.0,
            unique_guid: random_guid()?,
            first_lba: lba,
            last_lba: last,
            name: p.def.name,
        });
        out.push(ImagePartition {
            index: i + 1,
            name: p.def.name.to_string(),
            type_guid: p.def.type_guid.to_string(),
            first_lba: lba,
            last_lba: last,
        });
        lba = (last + 1).div_ceil(ALIGN) * ALIGN;
    }
    let disk_guid = random_guid()?;

    let mut table = TableWrites {
        blocks: total,
        writes: Vec::new(),
    };
    block::gpt::write_table(&mut table, &disk_guid, &entries)
        .map_err(|e| Fail::format(format!("{}: cannot write the GPT: {e:?}", path.display())))?;
    let mut writes: Vec<(u64, &[u8])> = table
        .writes
        .iter()
        .map(|(lba, b)| (lba * SECTOR, &b[..]))
        .collect();
    for (p, part) in parts.iter().zip(&out) {
        for (off, data) in &p.content {
            if off + data.len() as u64 > part.size() {
                return Err(Fail::usage(format!(
                    "{}: content larger than the partition",
                    part.name
                )));
            }
            writes.push((part.first_lba * SECTOR + off, data));
        }
    }

    let io = |e| Fail::io(&path.display().to_string(), e);
    match size {
        DiskSize::Bytes(b) => {
            let f = File::create(path).map_err(io)?;
            f.set_len(b).map_err(io)?;
            for (off, data) in writes {
                f.write_all_at(data, off).map_err(io)?;
            }
            f.sync_all().map_err(io)?;
        }
        DiskSize::Sectors(n) => {
            // The GPT (MBR, both headers and arrays) and every partition
            // are written, zeros included; the rest is left as it is.
            let mut mapped = vec![0..2 + ENTRY_SECTORS, n - 1 - ENTRY_SECTORS..n];
            mapped.extend(out.iter().map(|p| p.first_lba..p.last_lba + 1));
            let img = crate::sparse::encode(&crate::sparse::Layout {
                sectors: n,
                mapped,
                writes,
            })
            .map_err(|e| Fail::usage(format!("{what}: {e}")))?;
            crate::error::write_file(path, &img)?;
        }
    }
    Ok(out)
}

/// A block device that records what `block::gpt::write_table` writes.
struct TableWrites {
    blocks: u64,
    writes: Vec<(u64, Vec<u8>)>,
}

impl block::BlockDevice for TableWrites {
    type Error = std::io::Error;
    fn block_size(&self) -> usize {
        SECTOR as usize
    }
    fn num_blocks(&self) -> u64 {
        self.blocks
    }
    fn read_blocks(&mut self, _: u64, _: &mut [u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("the table writer does not read"))
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> std::io::Result<()> {
        self.writes.push((lba, buf.to_vec()));
        Ok(())
    }
}

/// True if the file starts with a protective MBR (type 0xEE) and signature,
/// or is a sparse image (which [`DiskImage::open`] then checks).
pub fn looks_like_disk(path: &Path) -> bool {
    let mut b = [0u8; 512];
    match File::open(path).and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => (b[510] == 0x55 && b[511] == 0xaa && b[446 + 4] == 0xee) || sparse::is_sparse(&b),
        Err(_) => false,
    }
}

/// What a disk image's bytes come from.
enum Backing {
    Raw(File),
    Sparse(sparse::Image),
}

impl Backing {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<()> {
        match self {
            Self::Raw(f) => f.read_exact_at(buf, off),
            Self::Sparse(s) => s.read_at(buf, off).map_err(std::io::Error::other),
        }
    }
}

/// An opened disk image.
pub struct DiskImage {
    backing: Backing,
    path: String,
    pub parts: Vec<ImagePartition>,
    /// True when the primary GPT was bad and the backup was used.
    pub used_backup: bool,
}

/// A disk image as a read-only block device for `block::gpt` (512-byte
/// blocks).
struct ImageDisk<'a> {
    backing: &'a Backing,
    blocks: u64,
}

impl block::BlockDevice for ImageDisk<'_> {
    type Error = std::io::Error;
    fn block_size(&self) -> usize {
        SECTOR as usize
    }
    fn num_blocks(&self) -> u64 {
        self.blocks
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.backing.read_at(buf, lba * SECTOR)
    }
    fn write_blocks(&mut self, _: u64, _: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("disk images are opened read-only"))
    }
}

impl DiskImage {
    /// Opens and parses a GPT disk image, raw or sparse (primary GPT, else
    /// the backup in the last sector).
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let mut file = File::open(path).map_err(|e| Fail::io(&name, e))?;
        let mut head = [0u8; 4];
        let sparse = file.read_exact(&mut head).is_ok() && sparse::is_sparse(&head);
        let (backing, size) = if sparse {
            let s = sparse::Image::parse(read_file(path)?)
                .map_err(|e| Fail::format(format!("{name}: {e}")))?;
            let len = s.len;
            (Backing::Sparse(s), len)
        } else {
            let size = file
                .seek(SeekFrom::End(0))
                .map_err(|e| Fail::io(&name, e))?;
            (Backing::Raw(file), size)
        };
        if size < 68 * SECTOR {
            return Err(Fail::format(format!(
                "{name}: too small for a GPT disk image"
            )));
        }
        let g = block::gpt::Gpt::read(&mut ImageDisk {
            backing: &backing,
            blocks: size / SECTOR,
        })
        .map_err(|e| {
            Fail::format(format!(
                "{name}: no valid GPT (primary and backup both bad): {e}"
            ))
        })?;
        let parts = g
            .partitions()
            .iter()
            .map(|p| ImagePartition {
                index: p.index as usize,
                name: p.name_chars().collect(),
                type_guid: p.type_guid.to_string(),
                first_lba: p.first_lba,
                last_lba: p.last_lba,
            })
            .collect();
        Ok(Self {
            backing,
            path: name,
            parts,
            used_backup: matches!(g.source, block::gpt::Source::Backup { .. }),
        })
    }

    /// Finds a partition by name.
    pub fn find(&self, name: &str) -> Result<ImagePartition> {
        self.parts
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| Fail::format(format!("{}: no partition named '{name}'", self.path)))
    }

    /// Reads `len` bytes at byte `off` of a partition.
    pub fn read(&self, p: &ImagePartition, off: u64, len: usize) -> Result<Vec<u8>> {
        if off + len as u64 > p.size() {
            return Err(Fail::format(format!(
                "{}: read past the end of partition '{}'",
                self.path, p.name
            )));
        }
        let mut b = vec![0u8; len];
        self.backing
            .read_at(&mut b, p.first_lba * SECTOR + off)
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

    fn le64(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// The eMMC image's backup GPT header is in the last of the given
    /// sectors (not a power of two) and the primary points at it.
    #[test]
    fn emmc_image_puts_the_backup_gpt_in_the_last_sector() {
        let n = 1_000_003;
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("disk.simg");
        let parts = [NewPart {
            def: mfg_formats::partitions::MFG_DATA,
            size: 8 << 20,
            content: vec![(4096, &b"hello"[..])],
        }];
        write_image(&path, DiskSize::Sectors(n), &parts).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // Sparse: the 8 MiB partition is a FILL chunk, free space skipped.
        assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
        let img = sparse::Image::parse(bytes).unwrap();
        assert_eq!(img.len, n * SECTOR);
        let mut h = [0u8; 512];
        img.read_at(&mut h, SECTOR).unwrap();
        assert_eq!(&h[..8], b"EFI PART");
        assert_eq!(le64(&h, 24), 1);
        assert_eq!(le64(&h, 32), n - 1, "primary AlternateLBA");
        assert_eq!(le64(&h, 48), n - 2 - ENTRY_SECTORS, "LastUsableLBA");
        img.read_at(&mut h, (n - 1) * SECTOR).unwrap();
        assert_eq!(&h[..8], b"EFI PART");
        assert_eq!(le64(&h, 24), n - 1, "backup MyLBA");
        assert_eq!(le64(&h, 32), 1);
        assert_eq!(le64(&h, 72), n - 1 - ENTRY_SECTORS, "backup entry array");
        let disk = DiskImage::open(&path).unwrap();
        assert!(!disk.used_backup);
        let p = disk.find("mfg-data").unwrap();
        assert_eq!(disk.read(&p, 4096, 6).unwrap(), b"hello\0");
        // Too small for the partition: refused, nothing written.
        let small = d.path().join("small.simg");
        let e = write_image(&small, DiskSize::Sectors(4 * ALIGN), &parts).unwrap_err();
        assert!(e.msg.contains("need at least 18465 sectors"), "{}", e.msg);
        assert!(!small.exists());
        // One sector more than the table needs is enough.
        write_image(&small, DiskSize::Sectors(18465), &parts).unwrap();
        assert_eq!(DiskImage::open(&small).unwrap().parts[0].last_lba, 18431);
    }
}
