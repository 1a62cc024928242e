//! ELF to raw arm64 Image conversion and section-size accounting.
//!
//! The loader links at [`LOAD_ADDR`] and carries its 64-byte arm64 Image
//! header at that address, so the raw Image is simply the file contents of
//! the `PT_LOAD` segments laid out by physical (load) address from
//! [`LOAD_ADDR`], gaps zero-filled, `.bss` (no file bytes) left out.

use object::Endianness;
use object::elf::{PT_LOAD, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE, SHT_NOBITS};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader, SectionHeader};
use std::fmt;

/// Where QEMU (and TF-A on silicon) places the loader.
pub const LOAD_ADDR: u64 = qemu_tests::LOAD_ADDR;
/// The arm64 Image header's `text_offset` for a load at RAM base + 2 MiB.
pub const TEXT_OFFSET: u64 = 0x20_0000;
/// "ARM\x64" at offset 0x38 of the header.
pub const ARM64_MAGIC: u32 = 0x644d_5241;
/// Refuse absurd images (a linker-script mistake) rather than writing GiBs.
pub const MAX_IMAGE: u64 = 16 << 20;

/// Why an ELF could not be turned into an Image.
#[derive(Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not a parsable 64-bit ELF.
    Parse(String),
    /// Not an AArch64 ELF.
    NotAarch64(u16),
    /// No `PT_LOAD` segment with file contents.
    NoLoadSegments,
    /// A segment loads below [`LOAD_ADDR`].
    BelowLoadAddr(u64),
    /// The lowest segment does not start at [`LOAD_ADDR`].
    NotAtLoadAddr(u64),
    /// The image would exceed [`MAX_IMAGE`] bytes.
    TooLarge(u64),
    /// The first 64 bytes are not an arm64 Image header.
    NoHeader,
    /// The header's `text_offset` is not [`TEXT_OFFSET`].
    BadTextOffset(u64),
    /// `image_size` in the header is 0 (QEMU would then load at 0x40080000)
    /// or smaller than the file.
    BadImageSize {
        /// `image_size` from the header.
        header: u64,
        /// Bytes of the raw image.
        file: u64,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "not a 64-bit ELF: {e}"),
            Self::NotAarch64(m) => write!(f, "ELF machine {m} is not AArch64"),
            Self::NoLoadSegments => write!(f, "ELF has no PT_LOAD segment with contents"),
            Self::BelowLoadAddr(a) => {
                write!(f, "segment at {a:#x} loads below {LOAD_ADDR:#x}")
            }
            Self::NotAtLoadAddr(a) => {
                write!(
                    f,
                    "image starts at {a:#x}, not at the link address {LOAD_ADDR:#x}"
                )
            }
            Self::TooLarge(n) => write!(f, "image would be {n} bytes (limit {MAX_IMAGE})"),
            Self::NoHeader => write!(f, "no arm64 Image header (magic ARM\\x64 at 0x38)"),
            Self::BadTextOffset(t) => {
                write!(
                    f,
                    "Image header text_offset {t:#x}, expected {TEXT_OFFSET:#x}"
                )
            }
            Self::BadImageSize { header, file } => write!(
                f,
                "Image header image_size {header:#x} must be non-zero and cover the file \
                 ({file:#x} bytes)"
            ),
        }
    }
}

impl std::error::Error for ImageError {}

fn parse(elf: &[u8]) -> Result<ElfFile64<'_, Endianness>, ImageError> {
    let file = ElfFile64::<Endianness>::parse(elf).map_err(|e| ImageError::Parse(e.to_string()))?;
    let machine = file.elf_header().e_machine(file.endian());
    if machine != object::elf::EM_AARCH64 {
        return Err(ImageError::NotAarch64(machine));
    }
    Ok(file)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Converts the loader ELF into the raw Image QEMU's `-kernel` (and TF-A's
/// BL33 slot) takes, and checks its arm64 Image header.
pub fn elf_to_image(elf: &[u8]) -> Result<Vec<u8>, ImageError> {
    let file = parse(elf)?;
    let e = file.endian();
    let mut segs = Vec::new();
    for ph in file.elf_program_headers() {
        if ph.p_type(e) != PT_LOAD || ph.p_filesz(e) == 0 {
            continue;
        }
        let data = ph
            .data(e, elf)
            .map_err(|()| ImageError::Parse("segment outside the file".into()))?;
        segs.push((ph.p_paddr(e), data));
    }
    let lowest = segs
        .iter()
        .map(|s| s.0)
        .min()
        .ok_or(ImageError::NoLoadSegments)?;
    if lowest < LOAD_ADDR {
        return Err(ImageError::BelowLoadAddr(lowest));
    }
    if lowest != LOAD_ADDR {
        return Err(ImageError::NotAtLoadAddr(lowest));
    }
    let mut end = 0u64;
    for (addr, data) in &segs {
        let len = u64::try_from(data.len()).map_err(|_| ImageError::TooLarge(u64::MAX))?;
        let seg_end = addr
            .checked_sub(LOAD_ADDR)
            .and_then(|o| o.checked_add(len))
            .ok_or(ImageError::TooLarge(u64::MAX))?;
        end = end.max(seg_end);
    }
    if end > MAX_IMAGE {
        return Err(ImageError::TooLarge(end));
    }
    let size = usize::try_from(end).map_err(|_| ImageError::TooLarge(end))?;
    let mut img = vec![0u8; size];
    for (addr, data) in &segs {
        let off = usize::try_from(addr - LOAD_ADDR).map_err(|_| ImageError::TooLarge(end))?;
        img[off..off + data.len()].copy_from_slice(data);
    }
    check_header(&img)?;
    Ok(img)
}

/// Checks the arm64 Image header QEMU reads: magic, `text_offset` and a
/// non-zero `image_size` that covers the file.
pub fn check_header(img: &[u8]) -> Result<(), ImageError> {
    if img.len() < 64 || le_u32(img, 0x38) != ARM64_MAGIC {
        return Err(ImageError::NoHeader);
    }
    let text_offset = le_u64(img, 0x08);
    if text_offset != TEXT_OFFSET {
        return Err(ImageError::BadTextOffset(text_offset));
    }
    let header = le_u64(img, 0x10);
    let file = u64::try_from(img.len()).unwrap_or(u64::MAX);
    if header == 0 || header < file {
        return Err(ImageError::BadImageSize { header, file });
    }
    Ok(())
}

/// Bytes of the allocated sections of an ELF, by kind.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct SectionSizes {
    /// `.text*` and other executable sections (e.g. `.vectors`).
    pub text: u64,
    /// `.rodata*` and other read-only data.
    pub rodata: u64,
    /// `.data*` and other writable initialised data.
    pub data: u64,
    /// `.bss*` (zero-initialised, no file bytes).
    pub bss: u64,
    /// Other no-bits sections: stacks, page tables.
    pub other_nobits: u64,
}

fn named(name: &[u8], base: &[u8]) -> bool {
    name == base || (name.starts_with(base) && name.get(base.len()) == Some(&b'.'))
}

/// Sums the allocated sections of `elf`: the four standard names (and their
/// `.name.*` variants) by name, since a linker script may merge writable
/// input (e.g. `.got`) into `.rodata`; any other section by its flags.
pub fn section_sizes(elf: &[u8]) -> Result<SectionSizes, ImageError> {
    let file = parse(elf)?;
    let e = file.endian();
    let table = file.elf_section_table();
    let mut s = SectionSizes::default();
    for sh in table.iter() {
        let flags = sh.sh_flags(e);
        if flags & u64::from(SHF_ALLOC) == 0 {
            continue;
        }
        let size = sh.sh_size(e);
        let name = table.section_name(e, sh).unwrap_or(b"");
        let nobits = sh.sh_type(e) == SHT_NOBITS;
        let slot = if named(name, b".text") {
            &mut s.text
        } else if named(name, b".rodata") {
            &mut s.rodata
        } else if named(name, b".data") {
            &mut s.data
        } else if named(name, b".bss") {
            &mut s.bss
        } else if nobits {
            &mut s.other_nobits
        } else if flags & u64::from(SHF_EXECINSTR) != 0 {
            &mut s.text
        } else if flags & u64::from(SHF_WRITE) != 0 {
            &mut s.data
        } else {
            &mut s.rodata
        };
        *slot += size;
    }
    Ok(s)
}

/// A minimal ELF64 writer for tests.
#[cfg(test)]
pub mod testelf {
    /// A section: name, type, flags, address, contents (or size for NOBITS).
    pub struct Sec {
        /// Name.
        pub name: &'static str,
        /// `sh_type`.
        pub ty: u32,
        /// `sh_flags`.
        pub flags: u64,
        /// Virtual address.
        pub addr: u64,
        /// Contents (empty for NOBITS).
        pub data: Vec<u8>,
        /// Size for NOBITS sections.
        pub nobits_size: u64,
    }

    /// A PT_LOAD segment covering the section at `sec` (index into the list),
    /// loaded at `paddr`, with `memsz` in memory.
    pub struct Seg {
        /// Index of the section whose bytes this segment covers.
        pub sec: usize,
        /// Load (physical) address.
        pub paddr: u64,
        /// Memory size.
        pub memsz: u64,
    }

    fn p16(v: &mut Vec<u8>, x: u16) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn p32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_le_bytes());
    }
    fn p64(v: &mut Vec<u8>, x: u64) {
        v.extend_from_slice(&x.to_le_bytes());
    }

    /// Builds a little-endian ELF64 for `machine`.
    pub fn build(machine: u16, entry: u64, secs: &[Sec], segs: &[Seg]) -> Vec<u8> {
        let phoff = 64u64;
        let data_off = phoff + 56 * segs.len() as u64;
        let mut offsets = Vec::new();
        let mut body = Vec::new();
        for s in secs {
            // Align each section's file offset to 16.
            while !(data_off + body.len() as u64).is_multiple_of(16) {
                body.push(0);
            }
            offsets.push(data_off + body.len() as u64);
            body.extend_from_slice(&s.data);
        }
        let mut shstr = vec![0u8];
        let mut name_off = Vec::new();
        for s in secs {
            name_off.push(shstr.len() as u32);
            shstr.extend_from_slice(s.name.as_bytes());
            shstr.push(0);
        }
        let shstr_name = shstr.len() as u32;
        shstr.extend_from_slice(b".shstrtab\0");
        let shstr_off = data_off + body.len() as u64;
        body.extend_from_slice(&shstr);
        while !(data_off + body.len() as u64).is_multiple_of(8) {
            body.push(0);
        }
        let shoff = data_off + body.len() as u64;

        let mut f = Vec::new();
        f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        f.extend_from_slice(&[0; 8]);
        p16(&mut f, 2); // ET_EXEC
        p16(&mut f, machine);
        p32(&mut f, 1);
        p64(&mut f, entry);
        p64(&mut f, phoff);
        p64(&mut f, shoff);
        p32(&mut f, 0);
        p16(&mut f, 64);
        p16(&mut f, 56);
        p16(&mut f, segs.len() as u16);
        p16(&mut f, 64);
        p16(&mut f, secs.len() as u16 + 2);
        p16(&mut f, secs.len() as u16 + 1);
        for g in segs {
            let s = &secs[g.sec];
            p32(&mut f, object::elf::PT_LOAD);
            p32(&mut f, 5);
            p64(&mut f, offsets[g.sec]);
            p64(&mut f, s.addr);
            p64(&mut f, g.paddr);
            p64(&mut f, s.data.len() as u64);
            p64(&mut f, g.memsz);
            p64(&mut f, 16);
        }
        f.extend_from_slice(&body);
        // Null section header.
        f.extend_from_slice(&[0; 64]);
        for (i, s) in secs.iter().enumerate() {
            p32(&mut f, name_off[i]);
            p32(&mut f, s.ty);
            p64(&mut f, s.flags);
            p64(&mut f, s.addr);
            p64(&mut f, offsets[i]);
            let size = if s.ty == object::elf::SHT_NOBITS {
                s.nobits_size
            } else {
                s.data.len() as u64
            };
            p64(&mut f, size);
            p32(&mut f, 0);
            p32(&mut f, 0);
            p64(&mut f, 16);
            p64(&mut f, 0);
        }
        p32(&mut f, shstr_name);
        p32(&mut f, object::elf::SHT_STRTAB);
        p64(&mut f, 0);
        p64(&mut f, 0);
        p64(&mut f, shstr_off);
        p64(&mut f, shstr.len() as u64);
        p32(&mut f, 0);
        p32(&mut f, 0);
        p64(&mut f, 1);
        p64(&mut f, 0);
        f
    }

    /// An arm64 Image header of `image_size` followed by `code`.
    pub fn header_and(image_size: u64, code: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
        h[8..16].copy_from_slice(&super::TEXT_OFFSET.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[24..32].copy_from_slice(&0xAu64.to_le_bytes());
        h[0x38..0x3c].copy_from_slice(&super::ARM64_MAGIC.to_le_bytes());
        h.extend_from_slice(code);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::testelf::{Sec, Seg, build, header_and};
    use super::*;
    use object::elf::{EM_AARCH64, EM_X86_64, SHT_PROGBITS};

    const AX: u64 = (SHF_ALLOC | SHF_EXECINSTR) as u64;
    const A: u64 = SHF_ALLOC as u64;
    const WA: u64 = (SHF_ALLOC | SHF_WRITE) as u64;

    fn sec(name: &'static str, ty: u32, flags: u64, addr: u64, data: Vec<u8>) -> Sec {
        Sec {
            name,
            ty,
            flags,
            addr,
            data,
            nobits_size: 0,
        }
    }

    /// text at 0x40200000 (header + code), rodata at +0x1000, data at +0x2000
    /// (loaded right after rodata's page), bss at +0x3000.
    fn loader_like(image_size: u64) -> Vec<u8> {
        let text = header_and(image_size, &[0xAA; 60]);
        let secs = vec![
            sec(".text", SHT_PROGBITS, AX, LOAD_ADDR, text),
            sec(
                ".rodata",
                SHT_PROGBITS,
                A,
                LOAD_ADDR + 0x1000,
                vec![0xBB; 20],
            ),
            sec(".data", SHT_PROGBITS, WA, LOAD_ADDR + 0x2000, vec![0xCC; 8]),
            Sec {
                nobits_size: 0x800,
                ..sec(".bss", SHT_NOBITS, WA, LOAD_ADDR + 0x3000, vec![])
            },
            sec(".comment", SHT_PROGBITS, 0, 0, vec![1, 2, 3]),
            Sec {
                nobits_size: 0x2000,
                ..sec(".stack", SHT_NOBITS, WA, LOAD_ADDR + 0x4000, vec![])
            },
            // Other names are classified by their flags.
            sec(".vectors", SHT_PROGBITS, AX, LOAD_ADDR + 0x6000, vec![1; 4]),
            sec(".ro_extra", SHT_PROGBITS, A, LOAD_ADDR + 0x6100, vec![2; 2]),
            sec(".databis", SHT_PROGBITS, WA, LOAD_ADDR + 0x6200, vec![3; 3]),
        ];
        let segs = [
            Seg {
                sec: 0,
                paddr: LOAD_ADDR,
                memsz: 124,
            },
            Seg {
                sec: 1,
                paddr: LOAD_ADDR + 0x1000,
                memsz: 20,
            },
            Seg {
                sec: 2,
                paddr: LOAD_ADDR + 0x2000,
                memsz: 8,
            },
        ];
        build(EM_AARCH64, LOAD_ADDR, &secs, &segs)
    }

    #[test]
    fn lays_out_segments_by_load_address() {
        let elf = loader_like(0x4000);
        let img = elf_to_image(&elf).unwrap();
        assert_eq!(img.len(), 0x2008);
        assert_eq!(&img[0x38..0x3c], b"ARM\x64");
        assert_eq!(img[64], 0xAA);
        assert_eq!(img[123], 0xAA);
        assert!(img[124..0x1000].iter().all(|&b| b == 0), "gap not zeroed");
        assert_eq!(&img[0x1000..0x1014], &[0xBB; 20]);
        assert_eq!(&img[0x2000..0x2008], &[0xCC; 8]);
    }

    #[test]
    fn sizes_by_section_kind() {
        let s = section_sizes(&loader_like(0x4000)).unwrap();
        assert_eq!(
            s,
            SectionSizes {
                text: 124 + 4,
                rodata: 20 + 2,
                data: 8 + 3,
                bss: 0x800,
                other_nobits: 0x2000,
            }
        );
    }

    #[test]
    fn checks_the_image_header() {
        assert_eq!(
            elf_to_image(&loader_like(0)),
            Err(ImageError::BadImageSize {
                header: 0,
                file: 0x2008
            })
        );
        assert_eq!(
            elf_to_image(&loader_like(0x100)),
            Err(ImageError::BadImageSize {
                header: 0x100,
                file: 0x2008
            })
        );
        let mut img = header_and(0x1000, &[]);
        img[10] = 0;
        assert_eq!(check_header(&img), Err(ImageError::BadTextOffset(0)));
        let mut img = header_and(0x1000, &[]);
        img[0x38] = 0;
        assert_eq!(check_header(&img), Err(ImageError::NoHeader));
        assert_eq!(check_header(&[0; 10]), Err(ImageError::NoHeader));
    }

    #[test]
    fn refuses_wrong_machine_and_address() {
        let text = header_and(0x1000, &[]);
        let secs = [sec(".text", SHT_PROGBITS, AX, LOAD_ADDR, text.clone())];
        let seg = |paddr| Seg {
            sec: 0,
            paddr,
            memsz: 64,
        };
        assert_eq!(
            elf_to_image(&build(EM_X86_64, 0, &secs, &[seg(LOAD_ADDR)])),
            Err(ImageError::NotAarch64(EM_X86_64))
        );
        assert_eq!(
            elf_to_image(&build(EM_AARCH64, 0, &secs, &[seg(0x4008_0000)])),
            Err(ImageError::BelowLoadAddr(0x4008_0000))
        );
        assert_eq!(
            elf_to_image(&build(EM_AARCH64, 0, &secs, &[seg(LOAD_ADDR + 0x1000)])),
            Err(ImageError::NotAtLoadAddr(LOAD_ADDR + 0x1000))
        );
        assert_eq!(
            elf_to_image(&build(EM_AARCH64, 0, &secs, &[])),
            Err(ImageError::NoLoadSegments)
        );
        assert!(matches!(
            elf_to_image(b"not an elf"),
            Err(ImageError::Parse(_))
        ));
    }
}
