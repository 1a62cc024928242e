//! Card registers (CID, CSD, EXT_CSD) and what `init` reports about a card.

use core::fmt;

/// EXT_CSD byte indices (JEDEC JESD84-B51 section 7.4).
pub mod ext_csd {
    /// Secure/TRIM feature support (bit 4: TRIM).
    pub const SEC_FEATURE_SUPPORT: usize = 231;
    /// High-capacity erase unit size, in 512 KiB.
    pub const HC_ERASE_GRP_SIZE: usize = 224;
    /// Boot partition size, in 128 KiB.
    pub const BOOT_SIZE_MULT: usize = 226;
    /// Sector count of the user area (4 bytes, little-endian).
    pub const SEC_COUNT: usize = 212;
    /// Supported bus speed modes (bit 0: 26 MHz, bit 1: 52 MHz).
    pub const CARD_TYPE: usize = 196;
    /// EXT_CSD structure revision.
    pub const EXT_CSD_REV: usize = 192;
    /// High-speed timing selection.
    pub const HS_TIMING: usize = 185;
    /// Bus width selection (0: 1-bit, 1: 4-bit, 2: 8-bit).
    pub const BUS_WIDTH: usize = 183;
    /// Partition configuration (bits 2:0 select the access partition).
    pub const PARTITION_CONFIG: usize = 179;
    /// Erase group definition (bit 0: use HC_ERASE_GRP_SIZE).
    pub const ERASE_GROUP_DEF: usize = 175;
    /// RPMB partition size, in 128 KiB.
    pub const RPMB_SIZE_MULT: usize = 168;
}

/// Bits `[hi:lo]` of a 128-bit CID/CSD (bit numbering of the specs; the
/// CRC byte, bits 7:0, is zero in what the controller returns).
pub(crate) fn bits(reg: u128, hi: u32, lo: u32) -> u32 {
    let n = hi - lo + 1;
    let mask = if n >= 32 { u32::MAX } else { (1u32 << n) - 1 };
    // Truncation to the field width is the point.
    u32::try_from((reg >> lo) & u128::from(mask)).unwrap_or(0)
}

/// What kind of card answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardKind {
    /// SD memory card (SDSC, SDHC or SDXC).
    Sd,
    /// eMMC (or MMC).
    Mmc,
}

/// Data bus width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BusWidth {
    /// DAT0 only.
    Bit1 = 1,
    /// DAT0-3.
    Bit4 = 4,
    /// DAT0-7 (eMMC only).
    Bit8 = 8,
}

impl BusWidth {
    /// Width in bits.
    pub fn bits(self) -> u8 {
        self as u8
    }
}

/// Bus timing mode, named as U-Boot's `mmc info` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusMode {
    /// SD default speed, 25 MHz.
    SdLegacy,
    /// eMMC backward-compatible timing, 26 MHz.
    MmcLegacy,
    /// eMMC high speed, 52 MHz.
    MmcHs52,
}

impl BusMode {
    /// Nominal bus clock in Hz.
    pub fn hz(self) -> u32 {
        match self {
            Self::SdLegacy => 25_000_000,
            Self::MmcLegacy => 26_000_000,
            Self::MmcHs52 => 52_000_000,
        }
    }
}

impl fmt::Display for BusMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SdLegacy => "SD Legacy",
            Self::MmcLegacy => "MMC legacy",
            Self::MmcHs52 => "MMC High Speed (52MHz)",
        })
    }
}

/// A spec version such as 5.1 or 4.41 (`minor` is printed as is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    /// Major number.
    pub major: u8,
    /// Minor number as printed (1 for x.1, 41 for 4.41).
    pub minor: u8,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Everything `init` learned about the card (enough for `mmc info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardInfo {
    /// SD or eMMC.
    pub kind: CardKind,
    /// CID manufacturer ID.
    pub manufacturer_id: u8,
    /// CID OEM/application ID (2 bytes on SD, 1 on eMMC).
    pub oem_id: u16,
    /// CID product name bytes (5 on SD, 6 on eMMC).
    pub name_bytes: [u8; 6],
    /// CID product revision.
    pub revision: u8,
    /// CID serial number.
    pub serial: u32,
    /// Spec version: eMMC from EXT_CSD_REV; SD 2.0 if it answered CMD8,
    /// else 1.0 (the SCR is not read).
    pub version: Version,
    /// Block-addressed (SDHC/SDXC, or eMMC in sector mode).
    pub high_capacity: bool,
    /// Blocks (512 bytes) of the user area.
    pub user_blocks: u64,
    /// Bytes of each boot partition (0 on SD).
    pub boot_size: u64,
    /// Bytes of the RPMB partition (0 on SD).
    pub rpmb_size: u64,
    /// EXT_CSD PARTITION_CONFIG as last written/read (0 on SD).
    pub partition_config: u8,
    /// Bus width in use.
    pub bus_width: BusWidth,
    /// Bus timing in use.
    pub mode: BusMode,
    /// Erase group size in blocks.
    pub erase_group_blocks: u32,
    /// The card supports TRIM (eMMC); erases then touch only the given blocks.
    pub trim: bool,
    /// Relative card address.
    pub rca: u16,
}

impl CardInfo {
    /// The product name as text (trailing spaces/NULs kept out).
    pub fn name(&self) -> &str {
        let n = match self.kind {
            CardKind::Sd => 5,
            CardKind::Mmc => 6,
        };
        let b = &self.name_bytes[..n];
        let end = b
            .iter()
            .rposition(|&c| c != 0 && c != b' ')
            .map_or(0, |i| i + 1);
        core::str::from_utf8(&b[..end]).unwrap_or("?")
    }

    /// User-area capacity in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.user_blocks * 512
    }

    /// Whether the card has an RPMB partition.
    pub fn has_rpmb(&self) -> bool {
        self.rpmb_size != 0
    }
}

/// Fields of a CID (bits per the SD and eMMC specs).
pub(crate) fn parse_cid(cid: u128, kind: CardKind, info: &mut CardInfo) {
    info.manufacturer_id = u8::try_from(bits(cid, 127, 120)).unwrap_or(0);
    let mut name = [0u8; 6];
    match kind {
        CardKind::Sd => {
            info.oem_id = u16::try_from(bits(cid, 119, 104)).unwrap_or(0);
            for (i, c) in name.iter_mut().take(5).enumerate() {
                let hi = 103 - 8 * u32::try_from(i).unwrap_or(0);
                *c = u8::try_from(bits(cid, hi, hi - 7)).unwrap_or(0);
            }
            info.revision = u8::try_from(bits(cid, 63, 56)).unwrap_or(0);
            info.serial = bits(cid, 55, 24);
        }
        CardKind::Mmc => {
            info.oem_id = u16::try_from(bits(cid, 111, 104)).unwrap_or(0);
            for (i, c) in name.iter_mut().enumerate() {
                let hi = 103 - 8 * u32::try_from(i).unwrap_or(0);
                *c = u8::try_from(bits(cid, hi, hi - 7)).unwrap_or(0);
            }
            info.revision = u8::try_from(bits(cid, 55, 48)).unwrap_or(0);
            info.serial = bits(cid, 47, 16);
        }
    }
    info.name_bytes = name;
}

/// Capacity in 512-byte blocks from a CSD (version 1 formula for SDSC and
/// MMC, version 2 for SDHC/SDXC); `None` for an unknown CSD structure.
pub(crate) fn csd_blocks(csd: u128, kind: CardKind) -> Option<u64> {
    let structure = bits(csd, 127, 126);
    if kind == CardKind::Sd && structure == 1 {
        let c_size = u64::from(bits(csd, 69, 48));
        return Some((c_size + 1) * 1024);
    }
    if kind == CardKind::Sd && structure != 0 {
        return None;
    }
    let c_size = u64::from(bits(csd, 73, 62));
    let mult = bits(csd, 49, 47);
    let read_bl_len = bits(csd, 83, 80);
    let bytes = (c_size + 1) << (mult + 2) << read_bl_len;
    Some(bytes / 512)
}

/// Erase group size in blocks from an MMC CSD (ERASE_GRP_SIZE/MULT).
pub(crate) fn csd_mmc_erase_group(csd: u128) -> u32 {
    (bits(csd, 46, 42) + 1) * (bits(csd, 41, 37) + 1)
}

/// eMMC version from EXT_CSD_REV (as U-Boot maps it).
pub(crate) fn mmc_version(rev: u8) -> Version {
    let (major, minor) = match rev {
        0 => (4, 0),
        1 => (4, 1),
        2 => (4, 2),
        3 => (4, 3),
        4 => (4, 4),
        5 => (4, 41),
        6 => (4, 5),
        7 => (5, 0),
        _ => (5, 1),
    };
    Version { major, minor }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(reg: &mut u128, hi: u32, lo: u32, v: u128) {
        let n = hi - lo + 1;
        let mask = (1u128 << n) - 1;
        *reg = (*reg & !(mask << lo)) | ((v & mask) << lo);
    }

    #[test]
    fn sd_v2_csd_capacity() {
        let mut csd = 0u128;
        put(&mut csd, 127, 126, 1);
        put(&mut csd, 69, 48, 0x3B37); // a 7.4 GiB card
        assert_eq!(csd_blocks(csd, CardKind::Sd), Some(0x3B38 * 1024));
        put(&mut csd, 127, 126, 2);
        assert_eq!(csd_blocks(csd, CardKind::Sd), None);
    }

    #[test]
    fn v1_csd_capacity() {
        // 1 GiB SDSC: READ_BL_LEN 10, C_SIZE 4095... use 512 MiB: C_SIZE 0xFFF, MULT 7, BL 9.
        let mut csd = 0u128;
        put(&mut csd, 83, 80, 9);
        put(&mut csd, 73, 62, 0xFFF);
        put(&mut csd, 49, 47, 7);
        assert_eq!(
            csd_blocks(csd, CardKind::Sd),
            Some((0x1000u64 << 9 << 9) / 512)
        );
        assert_eq!(csd_blocks(csd, CardKind::Mmc), Some(0x1000 << 9));
        put(&mut csd, 46, 42, 31);
        put(&mut csd, 41, 37, 15);
        assert_eq!(csd_mmc_erase_group(csd), 32 * 16);
    }

    #[test]
    fn cid_fields() {
        let mut cid = 0u128;
        put(&mut cid, 127, 120, 0x15);
        put(&mut cid, 111, 104, 0x01);
        for (i, c) in b"8GTF4R".iter().enumerate() {
            let hi = 103 - 8 * u32::try_from(i).unwrap();
            put(&mut cid, hi, hi - 7, u128::from(*c));
        }
        put(&mut cid, 55, 48, 0x10);
        put(&mut cid, 47, 16, 0xDEAD_BEEF);
        let mut info = crate::tests_support::blank_info(CardKind::Mmc);
        parse_cid(cid, CardKind::Mmc, &mut info);
        assert_eq!(info.manufacturer_id, 0x15);
        assert_eq!(info.oem_id, 1);
        assert_eq!(info.name(), "8GTF4R");
        assert_eq!((info.revision, info.serial), (0x10, 0xDEAD_BEEF));

        let mut cid = 0u128;
        put(&mut cid, 127, 120, 0x03);
        put(&mut cid, 119, 104, u128::from(u16::from_be_bytes(*b"SD")));
        for (i, c) in b"SU08G".iter().enumerate() {
            let hi = 103 - 8 * u32::try_from(i).unwrap();
            put(&mut cid, hi, hi - 7, u128::from(*c));
        }
        put(&mut cid, 63, 56, 0x80);
        put(&mut cid, 55, 24, 0x1234_5678);
        let mut info = crate::tests_support::blank_info(CardKind::Sd);
        parse_cid(cid, CardKind::Sd, &mut info);
        assert_eq!(info.manufacturer_id, 3);
        assert_eq!(info.oem_id, 0x5344);
        assert_eq!(info.name(), "SU08G");
        assert_eq!((info.revision, info.serial), (0x80, 0x1234_5678));
    }

    #[test]
    fn versions_and_modes_print_like_u_boot() {
        use std::string::ToString;
        assert_eq!(mmc_version(8).to_string(), "5.1");
        assert_eq!(mmc_version(5).to_string(), "4.41");
        assert_eq!(BusMode::MmcHs52.to_string(), "MMC High Speed (52MHz)");
        assert_eq!(BusMode::SdLegacy.hz(), 25_000_000);
    }
}
