//! The emulated OCOTP: fuse shadow registers served from the fuse file.
//!
//! Shadow register of bank `b`, word `w` is at `0x400 + 0x40*b + 0x10*w`
//! (U-Boot `struct ocotp_regs` / `fuse_bank`, `docs/caam.md`: four words per
//! bank). Modelled fuses, all others read 0 (unburnt):
//! - UID (i.MX8MP): bank 0 words 2/3 (0x420 low, 0x430 high) and bank 40
//!   words 0/1 (0xE00 low, 0xE10 high) of the upper 64 bits (Linux
//!   `soc-imx8m.c` `IMX8MP_OCOTP_UID_OFFSET`, `IMX8MP_OCOTP_UID_HIGH`; the
//!   serial number prints as `0xE10 0xE00 0x430 0x420`, most significant
//!   first, which is the fuse file's big-endian UID).
//! - `SEC_CONFIG[1]` (closed): bank 1 word 3 bit 25 (0x470, U-Boot
//!   `imx_sec_config_fuse`).
//! - SRK hash: banks 6 and 7, words 0..3 (0x580..0x5F0); word `i` is
//!   bytes `4i..4i+4` of the hash read little-endian, the word order of
//!   `SRK_1_2_3_4_fuse.bin`.
//!
//! The OTPMK and the MP family secret are never readable (on silicon the
//! OTPMK is read-locked; the family secret has no fuse at all).

use crate::fusefile::FuseFile;
use crate::trap::EmuError;

/// Physical base of the OCOTP block.
pub const OCOTP_BASE: u64 = 0x3035_0000;
/// Size of the OCOTP window.
pub const OCOTP_SIZE: u64 = 0x1_0000;
/// Offset of the first shadow register.
pub const SHADOW_BASE: u32 = 0x400;
/// Shadow offsets end here (after bank 95: the i.MX8M Plus has 96 banks,
/// U-Boot `mxc_ocotp.c` `FUSE_BANKS`).
pub const SHADOW_END: u32 = 0x1C00;
/// `SEC_CONFIG[1]`: the part is closed (bank 1 word 3).
pub const SEC_CONFIG_CLOSED: u32 = 0x0200_0000;

/// Shadow offset of `bank`, `word`.
pub const fn shadow_offset(bank: u32, word: u32) -> u32 {
    SHADOW_BASE + 0x40 * bank + 0x10 * word
}

fn be(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The value of fuse word (`bank`, `word`) on the chip `f`.
pub fn fuse_word(f: &FuseFile, bank: u32, word: u32) -> u32 {
    match (bank, word) {
        (0, 2) => be(&f.uid[12..16]),
        (0, 3) => be(&f.uid[8..12]),
        (40, 0) => be(&f.uid[4..8]),
        (40, 1) => be(&f.uid[0..4]),
        (1, 3) if !f.open => SEC_CONFIG_CLOSED,
        (6 | 7, 0..=3) => {
            let i = ((bank - 6) * 4 + word) as usize;
            le(&f.srk_hash[4 * i..4 * i + 4])
        }
        _ => 0,
    }
}

pub(crate) fn read(f: &FuseFile, off: u32) -> Result<u32, EmuError> {
    if (SHADOW_BASE..SHADOW_END).contains(&off) && off.is_multiple_of(0x10) {
        let n = (off - SHADOW_BASE) / 0x10;
        return Ok(fuse_word(f, n / 4, n % 4));
    }
    Err(EmuError::Unimplemented {
        block: "OCOTP",
        offset: off,
        write: false,
    })
}

pub(crate) fn write(off: u32) -> EmuError {
    if (SHADOW_BASE..SHADOW_END).contains(&off) && off.is_multiple_of(0x10) {
        EmuError::ReadOnly {
            block: "OCOTP",
            offset: off,
        }
    } else {
        EmuError::Unimplemented {
            block: "OCOTP",
            offset: off,
            write: true,
        }
    }
}
