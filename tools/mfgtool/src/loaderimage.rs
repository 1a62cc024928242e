//! The measurement a loader locks into the MPMR, computed from its ELF.
//!
//! At boot the loader hashes its own memory from `__image_start` to
//! `__rodata_end` (`loader/src/provisioning.rs` `measurement()`, symbols from
//! `linker/loader.ld`): `.text`, the page padding after it, and `.rodata`
//! (with `.got`) up to the next page boundary, exactly as loaded from the
//! raw Image. The raw Image (`loader.bin`) is the `PT_LOAD` segments' file
//! bytes laid out by load address from the lowest one, gaps zero-filled
//! (`xtask/src/image.rs`).
//!
//! `mfgtool ledger release --loader` takes the ELF (`loader.elf`), not the
//! `.bin`: a raw Image does not say where `.rodata` ends (the page after it
//! is `.data`), and guessing that boundary would release a measurement no
//! loader locks. From the ELF we read the two symbols, rebuild the Image
//! bytes the same way the build does, and hash the same range the loader
//! hashes.

use sha2::{Digest, Sha256};

use crate::error::{Fail, Result};

const PT_LOAD: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const EM_AARCH64: u16 = 183;
/// Refuse absurd images (as the build does).
const MAX_IMAGE: u64 = 16 << 20;

/// What `release --loader` found in the ELF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// SHA-256 of the measured range: what the loader locks into the MPMR.
    pub measurement: [u8; 32],
    /// `__image_start`.
    pub image_start: u64,
    /// `__rodata_end`.
    pub rodata_end: u64,
}

fn bad(why: impl Into<String>) -> Fail {
    Fail::format(format!("loader ELF: {}", why.into()))
}

fn rd<const N: usize>(b: &[u8], at: u64) -> Result<[u8; N]> {
    let at = usize::try_from(at).map_err(|_| bad("offset out of range"))?;
    b.get(
        at..at
            .checked_add(N)
            .ok_or_else(|| bad("offset out of range"))?,
    )
    .and_then(|s| s.try_into().ok())
    .ok_or_else(|| bad("truncated"))
}
fn u16_at(b: &[u8], at: u64) -> Result<u16> {
    Ok(u16::from_le_bytes(rd(b, at)?))
}
fn u32_at(b: &[u8], at: u64) -> Result<u32> {
    Ok(u32::from_le_bytes(rd(b, at)?))
}
fn u64_at(b: &[u8], at: u64) -> Result<u64> {
    Ok(u64::from_le_bytes(rd(b, at)?))
}
fn slice(b: &[u8], off: u64, len: u64) -> Result<&[u8]> {
    let s = usize::try_from(off).map_err(|_| bad("offset out of range"))?;
    let n = usize::try_from(len).map_err(|_| bad("size out of range"))?;
    b.get(s..s.checked_add(n).ok_or_else(|| bad("size out of range"))?)
        .ok_or_else(|| bad("section or segment outside the file"))
}

/// Is this an ELF file (magic)?
pub fn is_elf(b: &[u8]) -> bool {
    b.starts_with(b"\x7fELF")
}

/// Looks up a symbol's value in the ELF's `.symtab`.
fn symbol(elf: &[u8], name: &str) -> Result<Option<u64>> {
    let shoff = u64_at(elf, 0x28)?;
    let shentsize = u64::from(u16_at(elf, 0x3a)?);
    let shnum = u64::from(u16_at(elf, 0x3c)?);
    if shoff == 0 || shnum == 0 {
        return Err(bad("no section headers (stripped?)"));
    }
    if shentsize != 64 {
        return Err(bad("unexpected section header size"));
    }
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        if u32_at(elf, sh + 4)? != SHT_SYMTAB {
            continue;
        }
        let (off, size, entsize) = (
            u64_at(elf, sh + 24)?,
            u64_at(elf, sh + 32)?,
            u64_at(elf, sh + 56)?,
        );
        let link = u64::from(u32_at(elf, sh + 40)?);
        if entsize != 24 || link >= shnum {
            return Err(bad("malformed symbol table"));
        }
        let strsh = shoff + link * shentsize;
        let strtab = slice(elf, u64_at(elf, strsh + 24)?, u64_at(elf, strsh + 32)?)?;
        let syms = slice(elf, off, size)?;
        for s in syms.chunks_exact(24) {
            let n = u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize;
            let Some(rest) = strtab.get(n..) else {
                continue;
            };
            let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
            if &rest[..end] == name.as_bytes() {
                let mut v = [0u8; 8];
                v.copy_from_slice(&s[8..16]);
                return Ok(Some(u64::from_le_bytes(v)));
            }
        }
    }
    Ok(None)
}

/// The measurement a loader built from `elf` locks into the MPMR.
pub fn measure_elf(elf: &[u8]) -> Result<Measured> {
    if !is_elf(elf) {
        return Err(bad("not an ELF file"));
    }
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err(bad("not a 64-bit little-endian ELF"));
    }
    let machine = u16_at(elf, 0x12)?;
    if machine != EM_AARCH64 {
        return Err(bad(format!("machine {machine} is not AArch64")));
    }
    let need = |n: &str| -> Result<u64> {
        symbol(elf, n)?.ok_or_else(|| {
            bad(format!(
                "no symbol {n} (is this the loader's ELF, unstripped, linked with linker/loader.ld?)"
            ))
        })
    };
    let image_start = need("__image_start")?;
    let rodata_end = need("__rodata_end")?;
    if rodata_end <= image_start || rodata_end - image_start > MAX_IMAGE {
        return Err(bad("__rodata_end is not above __image_start"));
    }
    // The raw Image: PT_LOAD file bytes by load address, gaps zero.
    let phoff = u64_at(elf, 0x20)?;
    let phentsize = u64::from(u16_at(elf, 0x36)?);
    let phnum = u64::from(u16_at(elf, 0x38)?);
    if phentsize != 56 {
        return Err(bad("unexpected program header size"));
    }
    let mut segs = Vec::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(elf, ph)? != PT_LOAD {
            continue;
        }
        let (off, vaddr, paddr, filesz) = (
            u64_at(elf, ph + 8)?,
            u64_at(elf, ph + 16)?,
            u64_at(elf, ph + 24)?,
            u64_at(elf, ph + 32)?,
        );
        if filesz == 0 {
            continue;
        }
        if vaddr != paddr {
            return Err(bad(format!(
                "segment at {vaddr:#x} loads at {paddr:#x}: the loader runs where it is loaded"
            )));
        }
        segs.push((paddr, slice(elf, off, filesz)?));
    }
    let lowest = segs
        .iter()
        .map(|s| s.0)
        .min()
        .ok_or_else(|| bad("no PT_LOAD segment with contents"))?;
    if lowest != image_start {
        return Err(bad(format!(
            "the image starts at {lowest:#x}, not at __image_start {image_start:#x}"
        )));
    }
    let len = rodata_end - image_start;
    let mut img = vec![0u8; len as usize];
    // Bytes of the range that no segment holds (the page padding after
    // the last .rodata byte) are zero, as in the raw Image, where .data
    // follows at __rodata_end.
    for (addr, data) in segs {
        let at = addr - image_start;
        if at >= len {
            continue;
        }
        let n = (data.len() as u64).min(len - at);
        img[at as usize..(at + n) as usize].copy_from_slice(&data[..n as usize]);
    }
    Ok(Measured {
        measurement: Sha256::digest(&img).into(),
        image_start,
        rodata_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    mod elf {
        include!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/elf.rs"));
    }
    use elf::synthetic_elf;

    #[test]
    fn measures_text_padding_and_rodata_not_data() {
        let base = 0x4020_0000;
        let code: Vec<u8> = (0..0x1800u32).map(|i| i as u8).collect();
        let elf = synthetic_elf(
            base,
            &code,
            0x2000,
            b"DATA",
            &[("__image_start", base), ("__rodata_end", base + 0x2000)],
        );
        let m = measure_elf(&elf).unwrap();
        let mut expect = code.clone();
        expect.resize(0x2000, 0);
        assert_eq!(m.measurement, <[u8; 32]>::from(Sha256::digest(&expect)));
        assert_eq!((m.image_start, m.rodata_end), (base, base + 0x2000));
        // .data (after __rodata_end) is not measured; a code byte is.
        let elf2 = synthetic_elf(
            base,
            &code,
            0x2000,
            b"ATAD",
            &[("__image_start", base), ("__rodata_end", base + 0x2000)],
        );
        assert_eq!(measure_elf(&elf2).unwrap().measurement, m.measurement);
        let mut code3 = code.clone();
        code3[5] ^= 1;
        let elf3 = synthetic_elf(
            base,
            &code3,
            0x2000,
            b"DATA",
            &[("__image_start", base), ("__rodata_end", base + 0x2000)],
        );
        assert_ne!(measure_elf(&elf3).unwrap().measurement, m.measurement);
        // Refusals: no symbol, not an ELF, a range the image does not hold.
        let no_sym = synthetic_elf(base, &code, 0x2000, b"D", &[("__image_start", base)]);
        assert!(
            measure_elf(&no_sym)
                .unwrap_err()
                .msg
                .contains("__rodata_end")
        );
        assert!(measure_elf(&code).unwrap_err().msg.contains("not an ELF"));
        let below = synthetic_elf(
            base,
            &code,
            0x2000,
            b"D",
            &[("__image_start", base), ("__rodata_end", base)],
        );
        assert!(measure_elf(&below).is_err());
        let elsewhere = synthetic_elf(
            base,
            &code,
            0x2000,
            b"D",
            &[
                ("__image_start", base + 0x1000),
                ("__rodata_end", base + 0x2000),
            ],
        );
        assert!(
            measure_elf(&elsewhere)
                .unwrap_err()
                .msg
                .contains("not at __image_start")
        );
    }

    /// The real loader, when a build left one: the ELF-derived measurement
    /// is the SHA-256 of the first `__rodata_end - __image_start` bytes of
    /// the `.bin` the board loads (which is what the loader hashes).
    #[test]
    fn real_loader_elf_agrees_with_its_bin() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/out");
        let Ok(boards) = std::fs::read_dir(dir) else {
            eprintln!("note: no target/out: no built loader to compare");
            return;
        };
        for b in boards.flatten() {
            let (elf, bin) = (b.path().join("loader.elf"), b.path().join("loader.bin"));
            let (Ok(elf), Ok(bin)) = (std::fs::read(&elf), std::fs::read(&bin)) else {
                continue;
            };
            let m = measure_elf(&elf).unwrap();
            let n = (m.rodata_end - m.image_start) as usize;
            if bin.len() < n {
                continue; // .elf and .bin of different builds
            }
            let expect: [u8; 32] = Sha256::digest(&bin[..n]).into();
            assert_eq!(m.measurement, expect, "{}", b.path().display());
        }
    }
}
