//! A GPT disk image writer (protective MBR, primary and backup GPT with
//! CRCs) and reader (falls back to the backup header) for `image`,
//! `inspect` and `verify-id DISK.img`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use mfg_formats::crc32;
use mfg_formats::partitions::{Guid, PartitionDef};

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

fn header(
    my: u64,
    alt: u64,
    first: u64,
    last: u64,
    disk_guid: &[u8; 16],
    entries_lba: u64,
    entries_crc: u32,
) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&my.to_le_bytes());
    h[32..40].copy_from_slice(&alt.to_le_bytes());
    h[40..48].copy_from_slice(&first.to_le_bytes());
    h[48..56].copy_from_slice(&last.to_le_bytes());
    h[56..72].copy_from_slice(disk_guid);
    h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
    h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
    h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
    h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
    let c = crc32(&h[..92]);
    h[16..20].copy_from_slice(&c.to_le_bytes());
    h
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
    let first_usable = 2 + ENTRY_SECTORS;
    let last_usable = total - 1 - ENTRY_SECTORS - 1;
    let mut entries = vec![0u8; (ENTRIES * ENTRY_SIZE) as usize];
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
        let e = &mut entries[i * ENTRY_SIZE as usize..(i + 1) * ENTRY_SIZE as usize];
        e[0..16].copy_from_slice(&p.def.type_guid.to_gpt_bytes());
        e[16..32].copy_from_slice(&random_guid()?);
        e[32..40].copy_from_slice(&lba.to_le_bytes());
        e[40..48].copy_from_slice(&last.to_le_bytes());
        for (k, u) in p.def.name.encode_utf16().take(36).enumerate() {
            e[56 + 2 * k..58 + 2 * k].copy_from_slice(&u.to_le_bytes());
        }
        out.push(Part {
            index: i + 1,
            name: p.def.name.to_string(),
            type_guid: p.def.type_guid.to_string(),
            first_lba: lba,
            last_lba: last,
        });
        lba = (last + 1).div_ceil(ALIGN) * ALIGN;
    }
    let ecrc = crc32(&entries);
    let disk_guid = random_guid()?;
    let mut mbr = [0u8; 512];
    mbr[446 + 1..446 + 4].copy_from_slice(&[0x00, 0x02, 0x00]);
    mbr[446 + 4] = 0xee;
    mbr[446 + 5..446 + 8].copy_from_slice(&[0xff, 0xff, 0xff]);
    mbr[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    let mbr_size = u32::try_from(total - 1).unwrap_or(u32::MAX);
    mbr[446 + 12..446 + 16].copy_from_slice(&mbr_size.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let primary = header(1, total - 1, first_usable, last_usable, &disk_guid, 2, ecrc);
    let backup_entries = total - 1 - ENTRY_SECTORS;
    let backup = header(
        total - 1,
        1,
        first_usable,
        last_usable,
        &disk_guid,
        backup_entries,
        ecrc,
    );

    let f = File::create(path).map_err(|e| Fail::io(&path.display().to_string(), e))?;
    let io = |e| Fail::io(&path.display().to_string(), e);
    f.set_len(size).map_err(io)?;
    f.write_all_at(&mbr, 0).map_err(io)?;
    f.write_all_at(&primary, SECTOR).map_err(io)?;
    f.write_all_at(&entries, 2 * SECTOR).map_err(io)?;
    f.write_all_at(&entries, backup_entries * SECTOR)
        .map_err(io)?;
    f.write_all_at(&backup, (total - 1) * SECTOR).map_err(io)?;
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
    size: u64,
    pub parts: Vec<Part>,
    /// True when the primary GPT was bad and the backup was used.
    pub used_backup: bool,
}

fn parse_header(h: &[u8], my: u64) -> Option<(u64, u32, u32, u32)> {
    if &h[0..8] != b"EFI PART" {
        return None;
    }
    let hs = u32::from_le_bytes(h[12..16].try_into().ok()?) as usize;
    if !(92..=512).contains(&hs) {
        return None;
    }
    let mut c = h[..hs].to_vec();
    let want = u32::from_le_bytes(c[16..20].try_into().ok()?);
    c[16..20].fill(0);
    if crc32(&c) != want || u64::from_le_bytes(h[24..32].try_into().ok()?) != my {
        return None;
    }
    Some((
        u64::from_le_bytes(h[72..80].try_into().ok()?),
        u32::from_le_bytes(h[80..84].try_into().ok()?),
        u32::from_le_bytes(h[84..88].try_into().ok()?),
        u32::from_le_bytes(h[88..92].try_into().ok()?),
    ))
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
        let total = size / SECTOR;
        let mut d = Self {
            file,
            path: name.clone(),
            size,
            parts: Vec::new(),
            used_backup: false,
        };
        for (my, backup) in [(1u64, false), (total - 1, true)] {
            let h = d.read_at(my * SECTOR, 512)?;
            let Some((elba, n, esz, ecrc)) = parse_header(&h, my) else {
                continue;
            };
            if esz < 128 || n == 0 || n > 1024 || !esz.is_multiple_of(8) {
                continue;
            }
            let arr = match d.read_at(elba * SECTOR, n as usize * esz as usize) {
                Ok(a) => a,
                Err(_) => continue,
            };
            if crc32(&arr) != ecrc {
                continue;
            }
            for (i, e) in arr.chunks(esz as usize).enumerate() {
                let tg: [u8; 16] = e[0..16].try_into().unwrap_or([0; 16]);
                if tg == [0; 16] {
                    continue;
                }
                let first = u64::from_le_bytes(e[32..40].try_into().unwrap_or([0; 8]));
                let last = u64::from_le_bytes(e[40..48].try_into().unwrap_or([0; 8]));
                let units: Vec<u16> = e[56..128]
                    .chunks(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .take_while(|&u| u != 0)
                    .collect();
                if last < first || last >= total {
                    return Err(Fail::format(format!(
                        "{name}: partition {} out of the disk",
                        i + 1
                    )));
                }
                d.parts.push(Part {
                    index: i + 1,
                    name: String::from_utf16_lossy(&units),
                    type_guid: Guid::from_gpt_bytes(&tg).to_string(),
                    first_lba: first,
                    last_lba: last,
                });
            }
            d.used_backup = backup;
            return Ok(d);
        }
        Err(Fail::format(format!(
            "{name}: no valid GPT (primary and backup both bad)"
        )))
    }

    fn read_at(&mut self, off: u64, len: usize) -> Result<Vec<u8>> {
        if off + len as u64 > self.size {
            return Err(Fail::format(format!(
                "{}: read past the end of the image",
                self.path
            )));
        }
        let mut b = vec![0u8; len];
        self.file
            .read_exact_at(&mut b, off)
            .map_err(|e| Fail::io(&self.path, e))?;
        Ok(b)
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

    #[test]
    fn header_crc_and_fields() {
        let h = header(1, 99, 34, 65, &[7; 16], 2, 0x1234);
        assert!(parse_header(&h, 1).is_some());
        assert!(parse_header(&h, 2).is_none(), "wrong my_lba accepted");
        let mut bad = h;
        bad[40] ^= 1;
        assert!(parse_header(&bad, 1).is_none(), "CRC not checked");
    }
}
