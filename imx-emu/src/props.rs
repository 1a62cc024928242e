//! Property tests of the A64 load/store decoder and of the emulated CAAM's
//! descriptor interpreter.
//!
//! The case count defaults to a bounded number for `cargo test`; set
//! `PROPTEST_CASES=1000000` for a long run.

use crate::caam::BusMemory;
use crate::decode::{DecodeError, Index, MemInsn, Offset, decode};
use crate::emulator::{CAAM_BASE, Emulator};
use crate::fusefile::{DEFAULT_FAMILY_SECRET, FuseFile};
use crate::trap::MmioDevice;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// Words from the load/store encoding space more often than chance would.
fn insn_word() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        // op0 bit 27 set, bit 25 clear: "loads and stores".
        any::<u32>().prop_map(|w| (w | (1 << 27)) & !(1 << 25)),
        // Bits 29:27 = 111 or 101, bit 26 clear: the accepted classes.
        any::<u32>().prop_map(|w| (w & !(0b111 << 26)) | (0b111 << 27)),
        any::<u32>().prop_map(|w| (w & !(0b111 << 26)) | (0b101 << 27)),
    ]
}

fn with_field(w: u32, lo: u32, v: u8) -> u32 {
    (w & !(0x1F << lo)) | (u32::from(v) << lo)
}

/// Whether `d` is a writeback or load-pair form where `r` as a transfer
/// register collides with the base or the other transfer register.
fn collides(d: &MemInsn, rt: u8, rt2: Option<u8>, rn: u8) -> bool {
    let wb = d.index != Index::Offset;
    (wb && (rt == rn || rt2 == Some(rn))) || (d.load && rt2 == Some(rt) && rt != 31)
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn decode_never_panics_and_errors_carry_the_word(w in insn_word()) {
        match decode(w) {
            Ok(d) => {
                prop_assert!([1, 2, 4, 8].contains(&d.size));
                prop_assert!(d.rn < 31 && d.rt < 32);
                prop_assert!(!d.signed || d.load);
                prop_assert!(d.total_len() == d.size || d.rt2.is_some());
                if let Offset::Reg { rm, shift, .. } = d.offset {
                    prop_assert!(rm < 32);
                    prop_assert!(shift == 0 || 1u8 << shift == d.size);
                }
            }
            Err(e) => {
                prop_assert_eq!(e.insn(), w);
                let text = std::format!("{e}");
                prop_assert!(!text.is_empty());
            }
        }
    }

    /// Accepted words re-decode identically, and changing only a register
    /// field changes only that register in the result.
    #[test]
    fn register_fields_are_independent(w in insn_word(), r in 0u8..32) {
        let Ok(d) = decode(w) else { return Ok(()) };
        prop_assert_eq!(decode(w), Ok(d));
        // Rt (bits 4:0).
        let got = decode(with_field(w, 0, r));
        if collides(&d, r, d.rt2, d.rn) {
            prop_assert_eq!(got, Err(DecodeError::Unpredictable(with_field(w, 0, r))));
        } else {
            prop_assert_eq!(got, Ok(MemInsn { rt: r, ..d }));
        }
        // Rn (bits 9:5).
        let got = decode(with_field(w, 5, r));
        if r == 31 {
            prop_assert_eq!(got, Err(DecodeError::SpBase(with_field(w, 5, r))));
        } else if collides(&d, d.rt, d.rt2, r) {
            prop_assert_eq!(got, Err(DecodeError::Unpredictable(with_field(w, 5, r))));
        } else {
            prop_assert_eq!(got, Ok(MemInsn { rn: r, ..d }));
        }
    }

    /// LDR/STR (unsigned immediate) of every size: the documented fields.
    #[test]
    fn unsigned_offset_class(size_log in 0u32..4, opc in 0u32..2, imm12 in 0u32..4096,
                             rn in 0u8..31, rt in 0u8..32) {
        let w = size_log << 30 | 0b111_001 << 24 | opc << 22 | imm12 << 10
            | u32::from(rn) << 5 | u32::from(rt);
        let d = decode(w).unwrap();
        prop_assert_eq!(d, MemInsn {
            load: opc == 1,
            size: 1 << size_log,
            signed: false,
            dest64: size_log == 3,
            rt,
            rt2: None,
            rn,
            index: Index::Offset,
            offset: Offset::Imm(i64::from(imm12) << size_log),
        });
    }

    /// LDUR/STUR and the pre/post-index forms: signed 9-bit offset.
    #[test]
    fn unscaled_and_indexed_class(size_log in 0u32..4, opc in 0u32..2, imm9 in -256i64..256,
                                  mode in prop::sample::select(&[0b00u32, 0b01, 0b11][..]),
                                  rn in 0u8..31, rt in 0u8..32) {
        let field = u32::try_from(imm9 & 0x1FF).unwrap();
        let w = size_log << 30 | 0b111_000 << 24 | opc << 22 | field << 12 | mode << 10
            | u32::from(rn) << 5 | u32::from(rt);
        let index = match mode { 0b00 => Index::Offset, 0b01 => Index::Post, _ => Index::Pre };
        let got = decode(w);
        if index != Index::Offset && rt == rn {
            prop_assert_eq!(got, Err(DecodeError::Unpredictable(w)));
        } else {
            let d = got.unwrap();
            prop_assert_eq!((d.load, d.size, d.rt, d.rn, d.index, d.offset),
                (opc == 1, 1u8 << size_log, rt, rn, index, Offset::Imm(imm9)));
        }
    }

    /// LDP/STP (32/64-bit) and LDPSW with every index mode.
    #[test]
    fn pair_class(opc in prop::sample::select(&[0b00u32, 0b01, 0b10][..]), load in any::<bool>(),
                  mode in 1u32..4, imm7 in -64i64..64, rn in 0u8..31, rt in 0u8..32,
                  rt2 in 0u8..32) {
        let load = load || opc == 0b01;
        let field = u32::try_from(imm7 & 0x7F).unwrap();
        let w = opc << 30 | 0b101 << 27 | mode << 23 | u32::from(load) << 22 | field << 15
            | u32::from(rt2) << 10 | u32::from(rn) << 5 | u32::from(rt);
        let index = match mode { 1 => Index::Post, 2 => Index::Offset, _ => Index::Pre };
        let size: u8 = if opc == 0b10 { 8 } else { 4 };
        let got = decode(w);
        let unpredictable = (load && rt == rt2 && rt != 31)
            || (index != Index::Offset && (rt == rn || rt2 == rn));
        if unpredictable {
            prop_assert_eq!(got, Err(DecodeError::Unpredictable(w)));
        } else {
            prop_assert_eq!(got, Ok(MemInsn {
                load,
                size,
                signed: opc == 0b01,
                dest64: opc != 0b00,
                rt,
                rt2: Some(rt2),
                rn,
                index,
                offset: Offset::Imm(imm7 * i64::from(size)),
            }));
            prop_assert_eq!(got.unwrap().total_len(), 2 * size);
        }
    }
}

// ---------------------------------------------------------------------------
// The emulated CAAM, driven through its job ring registers.

use crate::test_ram::Ram;
const RAM_LEN: usize = 0x3_0000;
const JR1: u64 = CAAM_BASE + 0x2000;
const IN_RING: u32 = 0x4000_0000;
const OUT_RING: u32 = 0x4000_0100;
const DESC: u32 = 0x4000_0200;
const RING_SIZE: u32 = 4;

fn rd(e: &mut Emulator<Ram>, addr: u64) -> u32 {
    u32::try_from(e.read(addr, 4).unwrap()).unwrap()
}

fn wr(e: &mut Emulator<Ram>, addr: u64, v: u32) {
    e.write(addr, 4, u64::from(v)).unwrap();
}

fn ring_emulator(open: bool) -> Emulator<Ram> {
    let fuses = FuseFile {
        uid: [1; 16],
        srk_hash: [2; 32],
        otpmk: [3; 32],
        family_secret: DEFAULT_FAMILY_SECRET,
        open,
        options: Default::default(),
    };
    let mut e = Emulator::new(fuses, Ram(vec![0; RAM_LEN]));
    wr(&mut e, JR1, 0);
    wr(&mut e, JR1 + 4, IN_RING);
    wr(&mut e, JR1 + 0xC, RING_SIZE);
    wr(&mut e, JR1 + 0x20, 0);
    wr(&mut e, JR1 + 0x24, OUT_RING);
    wr(&mut e, JR1 + 0x2C, RING_SIZE);
    e
}

/// A descriptor word: arbitrary, or a plausible command header, or a
/// pointer into the RAM the model can reach.
fn desc_word() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => any::<u32>(),
        2 => (0u32..0x20, any::<u32>()).prop_map(|(top, low)| top << 27 | (low & 0x07FF_FFFF)),
        2 => (0u32..0x2_0000).prop_map(|o| 0x4001_0000 + o),
        1 => 0u32..0x100,
    ]
}

/// A job descriptor: a valid-looking header (or an arbitrary one) with its
/// length matching the words that follow.
fn descriptor() -> impl Strategy<Value = Vec<u32>> {
    (
        prop::collection::vec(desc_word(), 0..63),
        0u32..8,
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(|(mut body, start, raw_hdr, raw)| {
            let len = u32::try_from(body.len() + 1).unwrap();
            let hdr = if raw {
                raw_hdr
            } else {
                0xB080_0000 | (start.min(len) << 16) | len
            };
            body.insert(0, hdr);
            body
        })
}

proptest! {
    #![proptest_config(config(1024))]

    /// Arbitrary descriptors through the job ring never panic, always
    /// complete with an output entry naming the descriptor, and the ring
    /// keeps working afterwards.
    #[test]
    fn arbitrary_descriptors_always_complete(
        jobs in prop::collection::vec(descriptor(), 1..7), open in any::<bool>()
    ) {
        let mut e = ring_emulator(open);
        for (n, desc) in jobs.iter().enumerate() {
            let slot = u32::try_from(n).unwrap() % RING_SIZE;
            let bytes: Vec<u8> = desc.iter().flat_map(|w| w.to_le_bytes()).collect();
            e.mem().write(u64::from(DESC), &bytes).unwrap();
            e.mem().write(u64::from(IN_RING + 4 * slot), &DESC.to_le_bytes()).unwrap();
            wr(&mut e, JR1 + 0x1C, 1);
            prop_assert_eq!(rd(&mut e, JR1 + 0x3C), 1, "ORSFR after job {}", n);
            let mut out = [0u8; 8];
            e.mem().read(u64::from(OUT_RING + 8 * slot), &mut out).unwrap();
            prop_assert_eq!(u32::from_le_bytes(out[..4].try_into().unwrap()), DESC);
            let status = u32::from_le_bytes(out[4..].try_into().unwrap());
            if desc[0] >> 27 != 0x16 {
                prop_assert_ne!(status, 0, "a non-header word cannot succeed");
            }
            wr(&mut e, JR1 + 0x34, 1);
            prop_assert_eq!(rd(&mut e, JR1 + 0x3C), 0);
        }
        // After the garbage, a real job (MP public key into RAM+0x300)
        // still succeeds: nothing wedged the model.
        let slot = u32::try_from(jobs.len()).unwrap() % RING_SIZE;
        let good = [0xB083_0004u32, 0x0006_0000, 0x4000_0300, 0x8614_0000];
        let bytes: Vec<u8> = good.iter().flat_map(|w| w.to_le_bytes()).collect();
        e.mem().write(u64::from(DESC), &bytes).unwrap();
        e.mem().write(0x4000_0300, &[0u8; 64]).unwrap();
        e.mem().write(u64::from(IN_RING + 4 * slot), &DESC.to_le_bytes()).unwrap();
        wr(&mut e, JR1 + 0x1C, 1);
        prop_assert_eq!(rd(&mut e, JR1 + 0x3C), 1);
        let mut out = [0u8; 8];
        e.mem().read(u64::from(OUT_RING + 8 * slot), &mut out).unwrap();
        prop_assert_eq!(u32::from_le_bytes(out[4..].try_into().unwrap()), 0, "status");
        let mut key = [0u8; 64];
        e.mem().read(0x4000_0300, &mut key).unwrap();
        prop_assert_ne!(key, [0u8; 64]);
    }
}
