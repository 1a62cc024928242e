//! Android sparse images: the format of AOSP's libsparse (`img2simg`),
//! which U-Boot's fastboot writes (`lib/image-sparse.c`) and uuu's `FB:
//! flash` passes on chunk by chunk (layout: uuu's `libuuu/sparse_format.h`).
//!
//! A 28-byte file header (magic 0xed26ff3a, version 1.0, block size, total
//! blocks, chunk count), then chunks with a 12-byte header (type, blocks,
//! bytes including the header): RAW (the data follows), FILL (a 4-byte value
//! repeated), DONT_CARE (nothing is written: the device keeps what it had).
//! Blocks here are 512 bytes, one eMMC sector, so any sector count works.

use std::ops::Range;

/// Sparse image magic.
pub const MAGIC: u32 = 0xed26_ff3a;
/// Block size written: one sector.
pub const BLOCK: u64 = 512;
const FILE_HDR: usize = 28;
const CHUNK_HDR: usize = 12;
const RAW: u16 = 0xcac1;
const FILL: u16 = 0xcac2;
const DONT_CARE: u16 = 0xcac3;
const CRC32: u16 = 0xcac4;

/// An image to write sparsely: `sectors` in all; the sector ranges in
/// `mapped` are written (their bytes from `writes`, zero elsewhere), the
/// rest is DONT_CARE.
pub struct Layout<'a> {
    pub sectors: u64,
    pub mapped: Vec<Range<u64>>,
    /// (byte offset, bytes), inside mapped ranges.
    pub writes: Vec<(u64, &'a [u8])>,
}

enum Chunk<'a> {
    Raw(&'a [u8]),
    Zero(u64),
    Skip(u64),
}

/// Encodes `l` as a sparse image: RAW for blocks holding data, FILL 0 for
/// zero blocks inside mapped ranges, DONT_CARE between them. Errors if the
/// image has more than 2^32-1 blocks or a write falls outside `mapped`.
pub fn encode(l: &Layout<'_>) -> Result<Vec<u8>, String> {
    let total = u32::try_from(l.sectors)
        .map_err(|_| format!("{} sectors: more than a sparse image holds", l.sectors))?;
    let mut mapped = l.mapped.clone();
    mapped.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in mapped.into_iter().filter(|r| !r.is_empty()) {
        if r.end > l.sectors {
            return Err(format!("sectors {r:?} outside the image"));
        }
        match merged.last_mut() {
            Some(m) if r.start <= m.end => m.end = m.end.max(r.end),
            _ => merged.push(r),
        }
    }
    for &(off, d) in &l.writes {
        let (first, end) = (off / BLOCK, (off + d.len() as u64).div_ceil(BLOCK));
        if !merged.iter().any(|m| m.start <= first && end <= m.end) {
            return Err(format!("write at byte {off} outside the mapped sectors"));
        }
    }
    // Each mapped range in memory, data overlaid on zeros.
    let bodies: Vec<Vec<u8>> = merged
        .iter()
        .map(|m| {
            let base = m.start * BLOCK;
            let mut b = vec![0u8; usize::try_from((m.end - m.start) * BLOCK).unwrap_or(0)];
            for &(off, d) in &l.writes {
                if (m.start * BLOCK..m.end * BLOCK).contains(&off) {
                    let at = usize::try_from(off - base).unwrap_or(0);
                    b[at..at + d.len()].copy_from_slice(d);
                }
            }
            b
        })
        .collect();
    let mut chunks = Vec::new();
    let mut at = 0;
    for (m, body) in merged.iter().zip(&bodies) {
        if m.start > at {
            chunks.push(Chunk::Skip(m.start - at));
        }
        let blk = BLOCK as usize;
        let mut i = 0;
        while i < body.len() {
            let zero = body[i..i + blk].iter().all(|&b| b == 0);
            let mut j = i + blk;
            while j < body.len() && body[j..j + blk].iter().all(|&b| b == 0) == zero {
                j += blk;
            }
            chunks.push(if zero {
                Chunk::Zero(((j - i) / blk) as u64)
            } else {
                Chunk::Raw(&body[i..j])
            });
            i = j;
        }
        at = m.end;
    }
    if l.sectors > at {
        chunks.push(Chunk::Skip(l.sectors - at));
    }

    let mut out = Vec::new();
    put_header(&mut out, BLOCK as u32, total, chunks.len() as u32);
    for c in &chunks {
        let (kind, blocks, data): (u16, u64, &[u8]) = match c {
            Chunk::Raw(d) => (RAW, d.len() as u64 / BLOCK, d),
            Chunk::Zero(n) => (FILL, *n, &[0; 4]),
            Chunk::Skip(n) => (DONT_CARE, *n, &[]),
        };
        if u32::try_from(CHUNK_HDR + data.len()).is_err() {
            return Err("a chunk of 4 GiB or more".to_string());
        }
        // At most `total` blocks, which fits u32.
        put_chunk(&mut out, kind, blocks as u32, data);
    }
    Ok(out)
}

/// True if `head` starts with the sparse image magic.
pub fn is_sparse(head: &[u8]) -> bool {
    head.get(..4) == Some(&MAGIC.to_le_bytes()[..])
}

/// What a chunk puts at its place.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Data {
    /// Bytes of the image file.
    Raw(Range<usize>),
    Fill([u8; 4]),
}

/// A decoded sparse image: its size and what its RAW and FILL chunks
/// write; DONT_CARE ranges read as zeros here (on a device they keep what
/// was there).
pub struct Image {
    bytes: Vec<u8>,
    /// Size of the expanded image in bytes.
    pub len: u64,
    /// (byte range in the expanded image, content), in order.
    extents: Vec<(Range<u64>, Data)>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sparse image of {} bytes, {} extents",
            self.len,
            self.extents.len()
        )
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Appends the file header (format 1.0, no image checksum).
fn put_header(out: &mut Vec<u8>, blk: u32, total: u32, chunks: u32) {
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(FILE_HDR as u16).to_le_bytes());
    out.extend_from_slice(&(CHUNK_HDR as u16).to_le_bytes());
    out.extend_from_slice(&blk.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&chunks.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// Appends one chunk: header, then its data (`data.len()` checked by the
/// caller to keep the chunk under 4 GiB).
fn put_chunk(out: &mut Vec<u8>, kind: u16, blocks: u32, data: &[u8]) {
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&blocks.to_le_bytes());
    out.extend_from_slice(&((CHUNK_HDR + data.len()) as u32).to_le_bytes());
    out.extend_from_slice(data);
}

impl Image {
    /// Parses a sparse image, checking every header and size.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < FILE_HDR || !is_sparse(&bytes) {
            return Err("not a sparse image".into());
        }
        let (major, hdr, chdr) = (
            le16(&bytes, 4),
            usize::from(le16(&bytes, 8)),
            usize::from(le16(&bytes, 10)),
        );
        let (blk, total, count) = (
            u64::from(le32(&bytes, 12)),
            u64::from(le32(&bytes, 16)),
            le32(&bytes, 20),
        );
        if major != 1 {
            return Err(format!("sparse image version {major} (only 1 is known)"));
        }
        if hdr < FILE_HDR || chdr < CHUNK_HDR || hdr > bytes.len() {
            return Err("sparse image header sizes are wrong".into());
        }
        if blk == 0 || blk % 4 != 0 {
            return Err(format!("sparse image block size {blk}"));
        }
        let mut pos = hdr;
        let mut at = 0u64;
        let mut extents = Vec::new();
        for n in 0..count {
            let h = bytes
                .get(pos..pos + chdr)
                .ok_or_else(|| format!("sparse image truncated in chunk {n}"))?;
            let (kind, blocks, size) = (le16(h, 0), u64::from(le32(h, 4)), le32(h, 8) as usize);
            let data = size
                .checked_sub(chdr)
                .ok_or_else(|| format!("sparse chunk {n}: size {size} below its header"))?;
            // Both factors are 32-bit: the product fits.
            let len = blocks * blk;
            let want = match kind {
                RAW => usize::try_from(len).unwrap_or(usize::MAX),
                FILL => 4,
                // A checksum of what came before: it covers no blocks.
                CRC32 if blocks == 0 => 4,
                CRC32 => {
                    return Err(format!(
                        "sparse chunk {n}: a CRC32 chunk of {blocks} blocks"
                    ));
                }
                DONT_CARE => 0,
                k => return Err(format!("sparse chunk {n}: unknown type {k:#06x}")),
            };
            // Every chunk ends inside the image the header announces.
            if len > total * blk - at {
                return Err(format!(
                    "sparse chunk {n}: {blocks} blocks past the image's {total}"
                ));
            }
            if data != want {
                return Err(format!(
                    "sparse chunk {n}: {data} data bytes for {blocks} blocks of type {kind:#06x}"
                ));
            }
            let body = pos + chdr..pos + chdr + data;
            if body.end > bytes.len() {
                return Err(format!("sparse image truncated in chunk {n}"));
            }
            match kind {
                RAW => extents.push((at..at + len, Data::Raw(body.clone()))),
                FILL => {
                    let v = [
                        bytes[body.start],
                        bytes[body.start + 1],
                        bytes[body.start + 2],
                        bytes[body.start + 3],
                    ];
                    extents.push((at..at + len, Data::Fill(v)));
                }
                _ => {}
            }
            at += len;
            pos = body.end;
        }
        if at != total * blk {
            return Err(format!(
                "sparse image chunks cover {} blocks, the header says {total}",
                at / blk
            ));
        }
        if pos != bytes.len() {
            return Err("sparse image has bytes after its last chunk".into());
        }
        Ok(Self {
            bytes,
            len: at,
            extents,
        })
    }

    /// Reads `buf.len()` bytes at byte `off` of the expanded image.
    pub fn read_at(&self, buf: &mut [u8], off: u64) -> Result<(), String> {
        let end = off
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| format!("read past the end of the image ({} bytes)", self.len))?;
        buf.fill(0);
        for (r, d) in &self.extents {
            let (s, e) = (r.start.max(off), r.end.min(end));
            if s >= e {
                continue;
            }
            let dst = &mut buf[(s - off) as usize..(e - off) as usize];
            match d {
                Data::Raw(b) => {
                    let from = b.start + (s - r.start) as usize;
                    dst.copy_from_slice(&self.bytes[from..from + dst.len()]);
                }
                Data::Fill(v) => {
                    for (i, x) in dst.iter_mut().enumerate() {
                        *x = v[((s - r.start) as usize + i) % 4];
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_types(img: &[u8]) -> Vec<(u16, u32)> {
        let mut v = Vec::new();
        let mut pos = FILE_HDR;
        for _ in 0..le32(img, 20) {
            v.push((le16(img, pos), le32(img, pos + 4)));
            pos += le32(img, pos + 8) as usize;
        }
        v
    }

    #[test]
    fn encode_writes_data_raw_zeros_as_fill_and_skips_the_rest() {
        let data = [7u8; 700];
        let l = Layout {
            sectors: 1000,
            mapped: vec![10..20, 0..2, 500..503],
            writes: vec![
                (10 * 512 + 100, &data[..]),
                (512, &[1][..]),
                (502 * 512, &[9][..]),
            ],
        };
        let img = encode(&l).unwrap();
        assert_eq!(le32(&img, 12), 512);
        assert_eq!(le32(&img, 16), 1000);
        assert_eq!(
            chunk_types(&img),
            [
                (FILL, 1),
                (RAW, 1),
                (DONT_CARE, 8),
                (RAW, 2),
                (FILL, 8),
                (DONT_CARE, 480),
                (FILL, 2),
                (RAW, 1),
                (DONT_CARE, 497),
            ]
        );
        let s = Image::parse(img).unwrap();
        assert_eq!(s.len, 1000 * 512);
        let mut b = vec![0u8; 2 * 512];
        s.read_at(&mut b, 10 * 512).unwrap();
        assert!(b[..100].iter().all(|&x| x == 0));
        assert_eq!(&b[100..800], &data[..]);
        assert!(b[800..].iter().all(|&x| x == 0));
        let mut one = [0u8; 1];
        s.read_at(&mut one, 502 * 512).unwrap();
        assert_eq!(one, [9]);
        assert!(s.read_at(&mut one, 1000 * 512).is_err());
    }

    #[test]
    fn encode_refuses_writes_outside_the_mapped_sectors_and_huge_images() {
        let l = Layout {
            sectors: 100,
            mapped: vec![0..2, 10..12],
            writes: vec![(2 * 512, &[1][..])],
        };
        assert!(encode(&l).unwrap_err().contains("outside the mapped"));
        let l = Layout {
            sectors: 1 << 32,
            mapped: vec![],
            writes: vec![],
        };
        assert!(encode(&l).unwrap_err().contains("more than a sparse image"));
    }

    #[test]
    fn parse_refuses_inconsistent_images() {
        let l = Layout {
            sectors: 64,
            mapped: vec![0..4, 60..64],
            writes: vec![(0, &[1, 2, 3][..])],
        };
        let good = encode(&l).unwrap();
        assert!(Image::parse(good.clone()).is_ok());
        // Truncated, trailing bytes, wrong total, bad chunk size, bad magic.
        assert!(Image::parse(good[..good.len() - 1].to_vec()).is_err());
        let mut v = good.clone();
        v.push(0);
        assert!(Image::parse(v).is_err());
        let mut v = good.clone();
        v[16] = 65;
        assert!(Image::parse(v).unwrap_err().contains("the header says 65"));
        let mut v = good.clone();
        v[FILE_HDR + 8] ^= 1;
        assert!(Image::parse(v).is_err());
        let mut v = good;
        v[0] ^= 1;
        assert!(Image::parse(v).unwrap_err().contains("not a sparse image"));
    }

    /// A hand-made sparse file: block size, total blocks, chunks of
    /// (type, blocks, data).
    fn crafted(blk: u32, total: u32, chunks: &[(u16, u32, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        put_header(&mut v, blk, total, chunks.len() as u32);
        for &(kind, blocks, data) in chunks {
            put_chunk(&mut v, kind, blocks, data);
        }
        v
    }

    #[test]
    fn parse_refuses_chunks_past_the_image_without_overflowing() {
        // Two chunks of 2^32-1 blocks of 0xfffffffc bytes: the running
        // offset would pass 2^64.
        let big = u32::MAX;
        let evil = crafted(
            0xffff_fffc,
            1,
            &[(DONT_CARE, big, &[]), (DONT_CARE, big, &[])],
        );
        let e = Image::parse(evil).unwrap_err();
        assert!(
            e.contains("sparse chunk 0") && e.contains("past the image"),
            "{e}"
        );
        // The sum fits in 2^32 blocks but not in the header's total.
        let e =
            Image::parse(crafted(512, 3, &[(DONT_CARE, 2, &[]), (DONT_CARE, 2, &[])])).unwrap_err();
        assert!(e.contains("sparse chunk 1"), "{e}");
        // A CRC32 chunk covers no blocks.
        let e = Image::parse(crafted(512, 2, &[(CRC32, 2, &[0; 4])])).unwrap_err();
        assert!(e.contains("CRC32 chunk of 2 blocks"), "{e}");
        let ok = crafted(512, 2, &[(DONT_CARE, 2, &[]), (CRC32, 0, &[0; 4])]);
        assert_eq!(Image::parse(ok).unwrap().len, 1024);
    }
}
