//! i.MX8M Plus OCOTP fuse reader and security state.
//!
//! Reads the fuse *shadow* registers (loaded from the fuses at reset), never
//! programs fuses. Bank `b`, word `w` is at `0x400 + 0x40*b + 0x10*w`
//! (U-Boot `arch/arm/include/asm/arch-imx8m/imx-regs.h` `struct ocotp_regs`
//! with `struct fuse_bank` of four words, each padded to 0x10).
//!
//! The i.MX8M Plus has 96 banks (U-Boot `drivers/misc/mxc_ocotp.c`:
//! `FUSE_BANKS 96` under `CONFIG_IMX8MP`, 64 for the other i.MX8M; no hole
//! in the shadow map on i.MX8M, `fuse_bank_physical` is the identity), so
//! the shadows run from 0x400 to 0x1C00.
//!
//! Fuse locations used (`docs/caam.md`, OCOTP):
//! - 128-bit unique ID on i.MX8MP: the low 64 bits are bank 0 words 2 and 3
//!   (0x420 low, 0x430 high; i.MX8MQ/MM/MN use 0x410/0x420, i.MX8MP adds
//!   0x10) and the high 64 bits are at 0xE00 (low) / 0xE10 (high), i.e.
//!   bank 40 words 0 and 1. Source: Linux `drivers/soc/imx/soc-imx8m.c`
//!   (`OCOTP_UID_LOW 0x410`, `IMX8MP_OCOTP_UID_OFFSET 0x10`,
//!   `IMX8MP_OCOTP_UID_HIGH 0xE00`; `imx8mm_soc_uid` reads `0xE00 + 0x10`
//!   as the upper word of `soc_uid_h`, and the serial number prints as
//!   `%016llX%016llX` of `soc_uid_h, soc_uid`).
//! - SRK hash: bank 6 words 0..3, then bank 7 words 0..3 (0x580..0x5F0),
//!   word `i` holding bytes `4i..4i+4` of the SHA-256 little-endian, the word
//!   order of `SRK_1_2_3_4_fuse.bin` (NXP U-Boot `mx8m_secure_boot.txt`).
//! - `SEC_CONFIG[1]`, the "closed" bit HAB checks: bank 1 word 3, bit 25
//!   (0x470; U-Boot `imx8m/soc.c` `imx_sec_config_fuse`, `hab.c`).
#![no_std]

#[cfg(test)]
extern crate std;

use hal::RegisterIo;
use tock_registers::register_structs;
use tock_registers::registers::ReadOnly;

/// Number of fuse banks with shadow registers on the i.MX8M Plus
/// (0x400..0x1C00; U-Boot `mxc_ocotp.c` `FUSE_BANKS`).
pub const BANKS: u32 = 96;
/// Words per bank.
pub const WORDS_PER_BANK: u32 = 4;
/// `SEC_CONFIG[1]` bit in bank 1 word 3.
pub const SEC_CONFIG_CLOSED: u32 = 1 << 25;

register_structs! {
    /// The OCOTP block: control registers (unused here) and the shadows.
    pub OcotpRegs {
        (0x000 => _control),
        (0x400 => pub shadow: [ShadowWord; 384]),
        (0x1C00 => @END),
    }
}

register_structs! {
    /// One shadow word, padded to 0x10 bytes.
    pub ShadowWord {
        (0x0 => pub value: ReadOnly<u32>),
        (0x4 => _pad),
        (0x10 => @END),
    }
}

/// Why a fuse read was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcotpError {
    /// Bank or word out of range.
    OutOfRange {
        /// The bank asked for.
        bank: u32,
        /// The word asked for.
        word: u32,
    },
}

impl core::fmt::Display for OcotpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::OutOfRange { bank, word } => write!(
                f,
                "fuse bank {bank} word {word} out of range (banks 0..{BANKS}, words 0..{WORDS_PER_BANK})"
            ),
        }
    }
}

/// The OCOTP reader over the register window at the OCOTP base
/// (0x3035_0000, at least 0x1C00 bytes).
pub struct Ocotp<R: RegisterIo> {
    regs: R,
}

/// Byte offset of the shadow of `bank`, `word` (unchecked).
pub const fn shadow_offset(bank: u32, word: u32) -> usize {
    core::mem::offset_of!(OcotpRegs, shadow)
        + (bank * WORDS_PER_BANK + word) as usize * core::mem::size_of::<ShadowWord>()
}

impl<R: RegisterIo> Ocotp<R> {
    /// A reader over `regs`.
    pub fn new(regs: R) -> Self {
        Self { regs }
    }

    /// Reads the shadow of fuse `bank`, `word` (U-Boot `fuse read` numbering).
    pub fn read(&self, bank: u32, word: u32) -> Result<u32, OcotpError> {
        if bank >= BANKS || word >= WORDS_PER_BANK {
            return Err(OcotpError::OutOfRange { bank, word });
        }
        Ok(self.regs.read(shadow_offset(bank, word)))
    }

    fn word(&self, bank: u32, word: u32) -> u32 {
        // Callers pass constants in range.
        self.regs.read(shadow_offset(bank, word))
    }

    /// The 128-bit unique ID as a big-endian number (the 32 hex digits Linux
    /// shows as the serial number).
    pub fn unique_id(&self) -> [u8; 16] {
        let words = [
            self.word(40, 1),
            self.word(40, 0),
            self.word(0, 3),
            self.word(0, 2),
        ];
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// The SRK hash burnt in banks 6 and 7.
    pub fn srk_hash(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, o) in out.chunks_exact_mut(4).enumerate() {
            let i = u32::try_from(i).unwrap_or(0);
            let w = self.word(6 + i / 4, i % 4);
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Whether `SEC_CONFIG[1]` is burnt (the part is closed: HAB enforces).
    pub fn is_closed(&self) -> bool {
        self.word(1, 3) & SEC_CONFIG_CLOSED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use imx_emu::fusefile::{DEFAULT_FAMILY_SECRET, FuseFile};
    use imx_emu::{BusError, BusMemory, Emulator, MmioDevice};

    #[test]
    fn layout_matches_u_boot() {
        assert_eq!(shadow_offset(0, 2), 0x420);
        assert_eq!(shadow_offset(0, 3), 0x430);
        assert_eq!(shadow_offset(1, 3), 0x470);
        assert_eq!(shadow_offset(6, 0), 0x580);
        assert_eq!(shadow_offset(7, 3), 0x5F0);
        assert_eq!(shadow_offset(8, 3), 0x630);
        assert_eq!(shadow_offset(40, 0), 0xE00);
        assert_eq!(shadow_offset(40, 1), 0xE10);
        assert_eq!(shadow_offset(95, 3), 0x1BF0);
        assert_eq!(core::mem::size_of::<OcotpRegs>(), 0x1C00);
    }

    /// A fake register block: 0x1C00 bytes of words.
    struct Fake(RefCell<[u32; 0x700]>);
    impl RegisterIo for Fake {
        fn read(&self, offset: usize) -> u32 {
            self.0.borrow()[offset / 4]
        }
        fn write(&self, _offset: usize, _value: u32) {
            panic!("the OCOTP reader must not write");
        }
    }

    #[test]
    fn reads_uid_srk_and_closed_bit_from_fake_registers() {
        let f = Fake(RefCell::new([0; 0x700]));
        {
            let mut r = f.0.borrow_mut();
            r[0x420 / 4] = 0x0C0D_0E0F;
            r[0x430 / 4] = 0x0809_0A0B;
            r[0xE00 / 4] = 0x0405_0607;
            r[0xE10 / 4] = 0x0001_0203;
            for i in 0..8u32 {
                let b = u8::try_from(4 * i).unwrap();
                r[(0x580 + 0x10 * i as usize) / 4] = u32::from_le_bytes([b, b + 1, b + 2, b + 3]);
            }
            r[0x470 / 4] = 0x0200_0000;
            r[0x1BF0 / 4] = 0x9595_9595;
            r[0x1400 / 4] = 0x6464_6464;
        }
        let o = Ocotp::new(f);
        let want: [u8; 16] = core::array::from_fn(|i| u8::try_from(i).unwrap());
        assert_eq!(o.unique_id(), want);
        let srk: [u8; 32] = core::array::from_fn(|i| u8::try_from(i).unwrap());
        assert_eq!(o.srk_hash(), srk);
        assert!(o.is_closed());
        assert_eq!(o.read(0, 2), Ok(0x0C0D_0E0F));
        // Banks 64..95 exist on the i.MX8M Plus (the old bound was 64).
        assert_eq!(o.read(64, 0), Ok(0x6464_6464));
        assert_eq!(o.read(95, 3), Ok(0x9595_9595));
        assert_eq!(
            o.read(96, 0),
            Err(OcotpError::OutOfRange { bank: 96, word: 0 })
        );
        assert!(std::format!("{}", o.read(96, 0).unwrap_err()).contains("banks 0..96"));
        assert_eq!(
            o.read(0, 4),
            Err(OcotpError::OutOfRange { bank: 0, word: 4 })
        );
        assert!(std::format!("{}", o.read(0, 4).unwrap_err()).contains("word 4"));
    }

    struct NoMem;
    impl BusMemory for NoMem {
        fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), BusError> {
            Err(BusError {
                addr,
                len: buf.len(),
            })
        }
        fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), BusError> {
            Err(BusError {
                addr,
                len: data.len(),
            })
        }
    }

    struct EmuRegs(RefCell<Emulator<NoMem>>);
    impl RegisterIo for EmuRegs {
        fn read(&self, offset: usize) -> u32 {
            let v = self
                .0
                .borrow_mut()
                .read(0x3035_0000 + offset as u64, 4)
                .unwrap();
            u32::try_from(v).unwrap()
        }
        fn write(&self, _offset: usize, _value: u32) {
            unreachable!()
        }
    }

    #[test]
    fn agrees_with_the_emulated_ocotp() {
        for open in [false, true] {
            let fuses = FuseFile {
                uid: *b"\x01\x23\x45\x67\x89\xAB\xCD\xEF\xFE\xDC\xBA\x98\x76\x54\x32\x10",
                srk_hash: core::array::from_fn(|i| u8::try_from(i * 7).unwrap()),
                otpmk: [0x33; 32],
                family_secret: DEFAULT_FAMILY_SECRET,
                open,
                options: Default::default(),
            };
            let o = Ocotp::new(EmuRegs(RefCell::new(Emulator::new(fuses.clone(), NoMem))));
            assert_eq!(o.unique_id(), fuses.uid);
            assert_eq!(o.srk_hash(), fuses.srk_hash);
            assert_eq!(o.is_closed(), !open);
            // Unburnt fuses read 0; the OTPMK is not exposed anywhere.
            for bank in 0..BANKS {
                for word in 0..WORDS_PER_BANK {
                    let v = o.read(bank, word).unwrap();
                    assert_ne!(v, 0x3333_3333, "OTPMK visible at {bank}/{word}");
                }
            }
            assert_eq!(o.read(8, 3), Ok(0), "no field return");
        }
    }
}
