//! U-Boot's `md` line format: `40200000: 14000010 d503201f ...    ................`

use core::fmt::{self, Write};

/// Bytes shown per line.
pub const LINE_BYTES: usize = 16;

/// Writes one `md` line for `bytes` (at most [`LINE_BYTES`]) read at `addr`,
/// as units of `width` bytes (1, 2, 4, 8), little-endian. Short last lines are
/// padded so the ASCII column lines up, as U-Boot does. Ends with `\r\n`.
pub fn line(out: &mut impl Write, addr: u64, bytes: &[u8], width: usize) -> fmt::Result {
    write!(out, "{addr:08x}:")?;
    for unit in bytes.chunks(width) {
        let mut v = 0u64;
        for (i, b) in unit.iter().enumerate() {
            v |= u64::from(*b) << (8 * i);
        }
        write!(out, " {v:0w$x}", w = width * 2)?;
    }
    let missing = (LINE_BYTES - bytes.len()) / width;
    for _ in 0..missing * (width * 2 + 1) {
        out.write_char(' ')?;
    }
    out.write_str("    ")?;
    for &b in bytes {
        out.write_char(if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '.'
        })?;
    }
    out.write_str("\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_words_match_u_boot() {
        let mut s = String::new();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&[0x10, 0, 0, 0x14, 0x1f, 0x20, 0x03, 0xd5]);
        bytes[8..].copy_from_slice(b"ARM\x64abcd");
        line(&mut s, 0x4020_0000, &bytes, 4).unwrap();
        assert_eq!(
            s,
            "40200000: 14000010 d503201f 644d5241 64636261    ..... ..ARMdabcd\r\n"
        );
    }

    #[test]
    fn bytes_and_short_lines_are_padded() {
        let mut s = String::new();
        line(&mut s, 0x10, &[0x41, 0x42], 1).unwrap();
        assert_eq!(
            s,
            format!("00000010: 41 42{}    AB\r\n", " ".repeat(14 * 3))
        );
        let mut q = String::new();
        line(&mut q, 0x4000_0000, &[1, 0, 0, 0, 0, 0, 0, 0x80], 8).unwrap();
        assert_eq!(
            q,
            format!(
                "40000000: 8000000000000001{}    ........\r\n",
                " ".repeat(17)
            )
        );
    }
}
