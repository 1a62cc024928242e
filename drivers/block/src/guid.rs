//! GUIDs as stored in GPT (mixed-endian) and printed by U-Boot.

use core::fmt;

/// A GUID in its on-disk byte order: the first three fields little-endian,
/// the last two big-endian (as in GPT headers and entries).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

/// A GUID string that is not `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuidParseError;

impl fmt::Display for GuidParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("guid: expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex)")
    }
}

/// Byte order of the text form: text byte `i` is stored at `ORDER[i]`.
const ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];

impl Guid {
    /// The all-zero GUID (an unused GPT entry).
    pub const ZERO: Self = Self([0; 16]);
    /// EFI System Partition `c12a7328-f81f-11d2-ba4b-00a0c93ec93b`.
    pub const EFI_SYSTEM: Self = Self::from_text_bytes([
        0xc1, 0x2a, 0x73, 0x28, 0xf8, 0x1f, 0x11, 0xd2, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9,
        0x3b,
    ]);
    /// Linux filesystem data `0fc63daf-8483-4772-8e79-3d69d8477de4`.
    pub const LINUX_FS: Self = Self::from_text_bytes([
        0x0f, 0xc6, 0x3d, 0xaf, 0x84, 0x83, 0x47, 0x72, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d,
        0xe4,
    ]);

    /// From the 16 bytes in the order they appear in the text form.
    pub const fn from_text_bytes(t: [u8; 16]) -> Self {
        let mut b = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            b[ORDER[i]] = t[i];
            i += 1;
        }
        Self(b)
    }

    /// Parses the text form (either case), e.g.
    /// `c12a7328-f81f-11d2-ba4b-00a0c93ec93b`.
    pub fn parse(s: &str) -> Result<Self, GuidParseError> {
        let s = s.as_bytes();
        if s.len() != 36 {
            return Err(GuidParseError);
        }
        let mut t = [0u8; 16];
        let mut n = 0;
        let mut i = 0;
        while i < 36 {
            if matches!(i, 8 | 13 | 18 | 23) {
                if s[i] != b'-' {
                    return Err(GuidParseError);
                }
                i += 1;
                continue;
            }
            let hi = hex(s[i]).ok_or(GuidParseError)?;
            let lo = hex(s[i + 1]).ok_or(GuidParseError)?;
            t[n] = hi << 4 | lo;
            n += 1;
            i += 2;
        }
        Ok(Self::from_text_bytes(t))
    }

    /// Whether this is the all-zero GUID.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lower-case text form, as U-Boot's `part list` prints it.
impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &at) in ORDER.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{:02x}", self.0[at])?;
        }
        Ok(())
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn esp_guid_has_mixed_endian_disk_bytes() {
        // On disk (as in every GPT): 28 73 2a c1 1f f8 d2 11 ba 4b 00 a0 c9 3e c9 3b.
        assert_eq!(
            Guid::EFI_SYSTEM.0,
            [
                0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
                0xc9, 0x3b
            ]
        );
        assert_eq!(
            Guid::EFI_SYSTEM.to_string(),
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let g = Guid::parse("0FC63DAF-8483-4772-8E79-3D69D8477DE4").unwrap();
        assert_eq!(g, Guid::LINUX_FS);
        assert_eq!(g.to_string(), "0fc63daf-8483-4772-8e79-3d69d8477de4");
        assert_eq!(
            Guid::parse("0fc63daf-8483-4772-8e79-3d69d8477de"),
            Err(GuidParseError)
        );
        assert_eq!(
            Guid::parse("0fc63daf+8483-4772-8e79-3d69d8477de4"),
            Err(GuidParseError)
        );
        assert_eq!(
            Guid::parse("0fc63daf-8483-4772-8e79-3d69d8477dg4"),
            Err(GuidParseError)
        );
        assert!(Guid::ZERO.is_zero() && !g.is_zero());
    }
}
