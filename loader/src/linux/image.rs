//! The arm64 Linux Image header (Documentation/arch/arm64/booting.rst) and
//! where the loader places the kernel, DTB and initramfs.

/// Header length.
pub const HEADER_LEN: usize = 64;
/// `ARM\x64` at offset 0x38.
pub const MAGIC: u32 = 0x644d_5241;

/// Why an Image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Fewer than 64 bytes.
    Truncated,
    /// No `ARM\x64` magic: not an arm64 Image.
    BadMagic(u32),
    /// `image_size` is 0 (pre-3.17 kernel): the loader cannot know how much
    /// memory the kernel needs.
    NoImageSize,
    /// Big-endian kernel.
    BigEndian,
    /// A page size this loader does not expect (needs 4 KiB or "unspecified").
    PageSize(u64),
    /// `text_offset` not a multiple of 4 KiB or absurdly large.
    BadTextOffset(u64),
    /// The kernel does not fit in RAM where it must go.
    TooBig {
        /// Bytes needed.
        need: u64,
        /// Bytes available.
        have: u64,
    },
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => write!(f, "kernel image truncated (no 64-byte header)"),
            Self::BadMagic(m) => write!(f, "bad Linux ARM64 Image magic! (0x{m:08x})"),
            Self::NoImageSize => {
                write!(f, "kernel Image has image_size 0 (too old to boot safely)")
            }
            Self::BigEndian => write!(f, "kernel Image is big-endian"),
            Self::PageSize(p) => write!(f, "kernel Image wants page size code {p}, not 4 KiB"),
            Self::BadTextOffset(t) => write!(f, "kernel Image text_offset 0x{t:x} is not sane"),
            Self::TooBig { need, have } => {
                write!(
                    f,
                    "kernel needs 0x{need:x} bytes but only 0x{have:x} are free"
                )
            }
        }
    }
}

/// The fields of the header the loader uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset from a 2 MiB-aligned base where the Image must be placed.
    pub text_offset: u64,
    /// Bytes of memory the kernel uses from its start, including BSS.
    pub image_size: u64,
    /// Header flags.
    pub flags: u64,
}

fn le64(b: &[u8], off: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(v)
}

impl ImageHeader {
    /// Parses and checks the header at the start of `image`.
    pub fn parse(image: &[u8]) -> Result<Self, ImageError> {
        if image.len() < HEADER_LEN {
            return Err(ImageError::Truncated);
        }
        let magic = u32::from_le_bytes([image[56], image[57], image[58], image[59]]);
        if magic != MAGIC {
            return Err(ImageError::BadMagic(magic));
        }
        let h = Self {
            text_offset: le64(image, 8),
            image_size: le64(image, 16),
            flags: le64(image, 24),
        };
        if h.image_size == 0 {
            return Err(ImageError::NoImageSize);
        }
        if h.flags & 1 != 0 {
            return Err(ImageError::BigEndian);
        }
        let page = (h.flags >> 1) & 3;
        if page != 0 && page != 1 {
            return Err(ImageError::PageSize(page));
        }
        if !h.text_offset.is_multiple_of(4096) || h.text_offset >= 2 << 20 {
            return Err(ImageError::BadTextOffset(h.text_offset));
        }
        Ok(h)
    }

    /// Where the kernel goes: the first 2 MiB-aligned base at or above
    /// `lowest`, plus `text_offset`, as long as `image_size` fits below
    /// `limit`.
    pub fn placement(&self, lowest: u64, limit: u64) -> Result<u64, ImageError> {
        let base = lowest.next_multiple_of(2 << 20);
        let start = base + self.text_offset;
        let have = limit.saturating_sub(start);
        if self.image_size > have {
            return Err(ImageError::TooBig {
                need: self.image_size,
                have,
            });
        }
        Ok(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text_offset: u64, image_size: u64, flags: u64) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[0..4].copy_from_slice(&0x1400_0010u32.to_le_bytes());
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[24..32].copy_from_slice(&flags.to_le_bytes());
        h[56..60].copy_from_slice(&MAGIC.to_le_bytes());
        h
    }

    #[test]
    fn parses_a_modern_kernel_header() {
        let h = ImageHeader::parse(&header(0, 0x2a0_0000, 0xa)).unwrap();
        assert_eq!(h.image_size, 0x2a0_0000);
        assert_eq!(h.placement(0x4025_0000, 0x8000_0000), Ok(0x4040_0000));
    }

    #[test]
    fn refuses_bad_headers() {
        assert_eq!(ImageHeader::parse(&[0; 10]), Err(ImageError::Truncated));
        let mut h = header(0, 0x100_0000, 0xa);
        h[56] = b'X';
        assert!(matches!(
            ImageHeader::parse(&h),
            Err(ImageError::BadMagic(_))
        ));
        assert_eq!(
            ImageHeader::parse(&header(0, 0, 0xa)),
            Err(ImageError::NoImageSize)
        );
        assert_eq!(
            ImageHeader::parse(&header(0, 1, 0xb)),
            Err(ImageError::BigEndian)
        );
        assert_eq!(
            ImageHeader::parse(&header(0, 1, 0x4)),
            Err(ImageError::PageSize(2))
        );
        assert_eq!(
            ImageHeader::parse(&header(0x123, 1, 0xa)),
            Err(ImageError::BadTextOffset(0x123))
        );
        let h = ImageHeader::parse(&header(0x8_0000, 0x1000_0000, 0xa)).unwrap();
        assert_eq!(
            h.placement(0x4025_0000, 0x4800_0000),
            Err(ImageError::TooBig {
                need: 0x1000_0000,
                have: 0x4800_0000 - 0x4048_0000
            })
        );
    }
}
