//! Decoding of A64 general-register loads and stores.
//!
//! Data aborts taken to EL2 from EL2 never carry a valid instruction syndrome
//! (ESR_EL2.ISV = 0), so the trap handler decodes the faulting instruction
//! itself. Only the forms a driver can reasonably emit for MMIO are accepted:
//! LDR/STR of every size with unsigned-offset, unscaled, pre-index,
//! post-index and register-offset addressing, the sign-extending loads, and
//! LDP/STP/LDPSW. Everything else is refused with a variant that names the
//! class and carries the instruction word.
//!
//! Encodings follow the "Loads and Stores" encoding index of the Arm
//! Architecture Reference Manual (A-profile): op0 bits 31:28, bit 26 (V)
//! selects FP/SIMD, bits 29:27 = `111` is "load/store register",
//! `101` "load/store pair", `011` with bits 25:24 = `00` "load literal",
//! bits 29:24 = `001000` "exclusive / ordered".

/// How the access updates the base register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// `[Xn, #imm]` / `[Xn, Xm]`: no writeback.
    Offset,
    /// `[Xn, #imm]!`: the access is at `Xn + imm`, then `Xn = Xn + imm`.
    Pre,
    /// `[Xn], #imm`: the access is at `Xn`, then `Xn = Xn + imm`.
    Post,
}

/// The extension applied to an index register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extend {
    /// `UXTW`: the low 32 bits, zero-extended.
    Uxtw,
    /// `LSL` (`UXTX`): the whole 64-bit register.
    Lsl,
    /// `SXTW`: the low 32 bits, sign-extended.
    Sxtw,
    /// `SXTX`: the whole 64-bit register.
    Sxtx,
}

/// The offset added to the base register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offset {
    /// A byte offset (already scaled for scaled encodings).
    Imm(i64),
    /// An index register, extended, then shifted left by `shift`.
    Reg {
        /// Index register number; 31 is XZR here, not SP.
        rm: u8,
        /// How `rm` is extended.
        extend: Extend,
        /// Left shift: 0 or log2 of the access size.
        shift: u8,
    },
}

/// A decoded general-register load or store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemInsn {
    /// `true` for loads.
    pub load: bool,
    /// Size of one element in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// For loads: sign-extend the element.
    pub signed: bool,
    /// For loads: the destination is an X register (else a W register, whose
    /// upper 32 bits are cleared).
    pub dest64: bool,
    /// First transfer register; 31 is the zero register.
    pub rt: u8,
    /// Second transfer register of a pair; 31 is the zero register.
    pub rt2: Option<u8>,
    /// Base register, never 31 (SP is refused).
    pub rn: u8,
    /// Addressing mode.
    pub index: Index,
    /// Offset (for pre/post-index this is also the writeback amount).
    pub offset: Offset,
}

impl MemInsn {
    /// Total bytes transferred (two elements for a pair).
    pub fn total_len(&self) -> u8 {
        if self.rt2.is_some() {
            self.size * 2
        } else {
            self.size
        }
    }
}

/// Why an instruction word was not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// An FP/SIMD register load or store.
    FpSimd(u32),
    /// A load/store exclusive (LDXR/STXR and friends).
    Exclusive(u32),
    /// A load-acquire / store-release form (LDAR, STLR, LDAPR, STLUR...).
    AcquireRelease(u32),
    /// An atomic memory operation (LDADD, SWP, CAS...).
    Atomic(u32),
    /// A PC-relative literal load.
    Literal(u32),
    /// A prefetch (PRFM/PRFUM).
    Prefetch(u32),
    /// The base register is SP.
    SpBase(u32),
    /// An unprivileged (LDTR/STTR) or non-temporal (LDNP/STNP) form, or a
    /// pointer-authenticated load: valid, but not something MMIO code uses.
    UnsupportedForm(u32),
    /// A form the architecture calls CONSTRAINED UNPREDICTABLE (writeback
    /// into a transfer register, or a load pair into one register).
    Unpredictable(u32),
    /// An unallocated encoding within the load/store space.
    Unallocated(u32),
    /// Not a load or store at all.
    NotLoadStore(u32),
}

impl DecodeError {
    /// The instruction word that was refused.
    pub fn insn(&self) -> u32 {
        match *self {
            Self::FpSimd(w)
            | Self::Exclusive(w)
            | Self::AcquireRelease(w)
            | Self::Atomic(w)
            | Self::Literal(w)
            | Self::Prefetch(w)
            | Self::SpBase(w)
            | Self::UnsupportedForm(w)
            | Self::Unpredictable(w)
            | Self::Unallocated(w)
            | Self::NotLoadStore(w) => w,
        }
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let what = match self {
            Self::FpSimd(_) => "FP/SIMD load/store not emulated",
            Self::Exclusive(_) => "exclusive load/store not emulated",
            Self::AcquireRelease(_) => "acquire/release load/store not emulated",
            Self::Atomic(_) => "atomic memory operation not emulated",
            Self::Literal(_) => "literal load cannot target MMIO",
            Self::Prefetch(_) => "prefetch not emulated",
            Self::SpBase(_) => "SP as base register refused",
            Self::UnsupportedForm(_) => "unprivileged/non-temporal/PAC form not emulated",
            Self::Unpredictable(_) => "CONSTRAINED UNPREDICTABLE form refused",
            Self::Unallocated(_) => "unallocated load/store encoding",
            Self::NotLoadStore(_) => "not a load/store instruction",
        };
        write!(f, "{what} (insn {:#010x})", self.insn())
    }
}

fn bits(w: u32, hi: u32, lo: u32) -> u32 {
    (w >> lo) & ((1 << (hi - lo + 1)) - 1)
}

fn sext(v: u32, width: u32) -> i64 {
    let shift = 64 - width;
    (i64::from(v) << shift) >> shift
}

fn reg(w: u32, lo: u32) -> u8 {
    // A 5-bit field always fits.
    u8::try_from(bits(w, lo + 4, lo)).unwrap_or(31)
}

/// Decodes one A64 instruction word as a general-register load or store.
pub fn decode(insn: u32) -> Result<MemInsn, DecodeError> {
    let op29_27 = bits(insn, 29, 27);
    let v = bits(insn, 26, 26) == 1;
    let op25_24 = bits(insn, 25, 24);
    match (op29_27, op25_24) {
        (0b111, _) if v => Err(DecodeError::FpSimd(insn)),
        (0b111, 0b01) => decode_single(insn, true),
        (0b111, 0b00) => decode_single(insn, false),
        (0b101, _) if v => Err(DecodeError::FpSimd(insn)),
        (0b101, _) => decode_pair(insn),
        (0b011, 0b00) if v => Err(DecodeError::FpSimd(insn)),
        (0b011, 0b00) => {
            if bits(insn, 31, 30) == 0b11 {
                Err(DecodeError::Prefetch(insn))
            } else {
                Err(DecodeError::Literal(insn))
            }
        }
        // Bits 29:24 = 011001 with bits 21 and 11:10 clear: LDAPR/STLUR
        // (RCpc, unscaled immediate).
        (0b011, 0b01) if !v && bits(insn, 21, 21) == 0 && bits(insn, 11, 10) == 0 => {
            Err(DecodeError::AcquireRelease(insn))
        }
        (0b001, 0b00) if !v => {
            // Load/store exclusive and ordered: o2 = bit 23, o1 = bit 21.
            match (bits(insn, 23, 23), bits(insn, 21, 21)) {
                (0, _) => Err(DecodeError::Exclusive(insn)),
                (1, 0) => Err(DecodeError::AcquireRelease(insn)),
                _ => Err(DecodeError::Atomic(insn)),
            }
        }
        _ => Err(DecodeError::NotLoadStore(insn)),
    }
}

/// Size, direction and extension for LDR/STR/LDRS* from `size` and `opc`.
/// Returns `(size_bytes, load, signed, dest64)` or `None` for a prefetch,
/// `Err` for unallocated.
fn single_kind(insn: u32) -> Result<Option<(u8, bool, bool, bool)>, DecodeError> {
    let size_log = bits(insn, 31, 30);
    let size = 1u8 << size_log;
    let opc = bits(insn, 23, 22);
    Ok(Some(match (size_log, opc) {
        (_, 0b00) => (size, false, false, size_log == 3),
        (_, 0b01) => (size, true, false, size_log == 3),
        (0b11, 0b10) => return Ok(None),
        (0b10, 0b10) => (size, true, true, true),
        (0b00 | 0b01, 0b10) => (size, true, true, true),
        (0b00 | 0b01, 0b11) => (size, true, true, false),
        _ => return Err(DecodeError::Unallocated(insn)),
    }))
}

fn decode_single(insn: u32, unsigned_imm: bool) -> Result<MemInsn, DecodeError> {
    let rt = reg(insn, 0);
    let rn = reg(insn, 5);
    let size_log = bits(insn, 31, 30);
    let (index, offset) = if unsigned_imm {
        let imm12 = i64::from(bits(insn, 21, 10));
        (Index::Offset, Offset::Imm(imm12 << size_log))
    } else if bits(insn, 21, 21) == 0 {
        let imm9 = sext(bits(insn, 20, 12), 9);
        let index = match bits(insn, 11, 10) {
            0b00 => Index::Offset,
            0b01 => Index::Post,
            0b11 => Index::Pre,
            _ => return Err(DecodeError::UnsupportedForm(insn)),
        };
        (index, Offset::Imm(imm9))
    } else {
        match bits(insn, 11, 10) {
            0b10 => {}
            0b00 => {
                // Atomic memory operations; LDAPR lives here too (o3 = 1,
                // opc = 100, A = 1).
                if bits(insn, 15, 12) == 0b1100 && bits(insn, 23, 23) == 1 {
                    return Err(DecodeError::AcquireRelease(insn));
                }
                return Err(DecodeError::Atomic(insn));
            }
            _ => return Err(DecodeError::UnsupportedForm(insn)),
        }
        let extend = match bits(insn, 15, 13) {
            0b010 => Extend::Uxtw,
            0b011 => Extend::Lsl,
            0b110 => Extend::Sxtw,
            0b111 => Extend::Sxtx,
            _ => return Err(DecodeError::Unallocated(insn)),
        };
        let shift = if bits(insn, 12, 12) == 1 {
            u8::try_from(size_log).unwrap_or(0)
        } else {
            0
        };
        (
            Index::Offset,
            Offset::Reg {
                rm: reg(insn, 16),
                extend,
                shift,
            },
        )
    };
    let Some((size, load, signed, dest64)) = single_kind(insn)? else {
        return Err(DecodeError::Prefetch(insn));
    };
    if rn == 31 {
        return Err(DecodeError::SpBase(insn));
    }
    if index != Index::Offset && rt == rn {
        return Err(DecodeError::Unpredictable(insn));
    }
    Ok(MemInsn {
        load,
        size,
        signed,
        dest64,
        rt,
        rt2: None,
        rn,
        index,
        offset,
    })
}

fn decode_pair(insn: u32) -> Result<MemInsn, DecodeError> {
    let opc = bits(insn, 31, 30);
    let load = bits(insn, 22, 22) == 1;
    let index = match bits(insn, 25, 23) {
        0b001 => Index::Post,
        0b010 => Index::Offset,
        0b011 => Index::Pre,
        0b000 => return Err(DecodeError::UnsupportedForm(insn)),
        _ => return Err(DecodeError::Unallocated(insn)),
    };
    let (size, signed, dest64) = match (opc, load) {
        (0b00, _) => (4u8, false, false),
        (0b10, _) => (8, false, true),
        (0b01, true) => (4, true, true),
        // opc 01 store is STGP (MTE); opc 11 is unallocated.
        _ => return Err(DecodeError::Unallocated(insn)),
    };
    let scale = if size == 8 { 3 } else { 2 };
    let imm = sext(bits(insn, 21, 15), 7) << scale;
    let rt = reg(insn, 0);
    let rt2 = reg(insn, 10);
    let rn = reg(insn, 5);
    if rn == 31 {
        return Err(DecodeError::SpBase(insn));
    }
    if load && rt == rt2 && rt != 31 {
        return Err(DecodeError::Unpredictable(insn));
    }
    if index != Index::Offset && (rt == rn || rt2 == rn) {
        return Err(DecodeError::Unpredictable(insn));
    }
    Ok(MemInsn {
        load,
        size,
        signed,
        dest64,
        rt,
        rt2: Some(rt2),
        rn,
        index,
        offset: Offset::Imm(imm),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // All words below were assembled with `aarch64-linux-gnu-as
    // -march=armv8.4-a+lse+rcpc` and read back with objdump; the assembly is
    // in the comment on each line.

    #[allow(clippy::too_many_arguments)]
    fn single(
        load: bool,
        size: u8,
        signed: bool,
        dest64: bool,
        rt: u8,
        rn: u8,
        index: Index,
        offset: Offset,
    ) -> MemInsn {
        MemInsn {
            load,
            size,
            signed,
            dest64,
            rt,
            rt2: None,
            rn,
            index,
            offset,
        }
    }

    #[test]
    fn unsigned_offset_forms() {
        use Index::Offset as O;
        let imm = Offset::Imm;
        let cases = [
            (0xb9400041, single(true, 4, false, false, 1, 2, O, imm(0))), // ldr w1, [x2]
            (0xf9400483, single(true, 8, false, true, 3, 4, O, imm(8))),  // ldr x3, [x4, #8]
            (
                0xb97ffcc5,
                single(true, 4, false, false, 5, 6, O, imm(16380)),
            ), // ldr w5, [x6, #16380]
            (
                0xf97ffd07,
                single(true, 8, false, true, 7, 8, O, imm(32760)),
            ), // ldr x7, [x8, #32760]
            (
                0x397ffd49,
                single(true, 1, false, false, 9, 10, O, imm(4095)),
            ), // ldrb w9, [x10, #4095]
            (0x7940058b, single(true, 2, false, false, 11, 12, O, imm(2))), // ldrh w11, [x12, #2]
            (
                0x390005cd,
                single(false, 1, false, false, 13, 14, O, imm(1)),
            ), // strb w13, [x14, #1]
            (
                0x79000e0f,
                single(false, 2, false, false, 15, 16, O, imm(6)),
            ), // strh w15, [x16, #6]
            (
                0xb9000651,
                single(false, 4, false, false, 17, 18, O, imm(4)),
            ), // str w17, [x18, #4]
            (0xf9000693, single(false, 8, false, true, 19, 20, O, imm(8))), // str x19, [x20, #8]
            (0x39c00041, single(true, 1, true, false, 1, 2, O, imm(0))),  // ldrsb w1, [x2]
            (0x39800c41, single(true, 1, true, true, 1, 2, O, imm(3))),   // ldrsb x1, [x2, #3]
            (0x79c00441, single(true, 2, true, false, 1, 2, O, imm(2))),  // ldrsh w1, [x2, #2]
            (0x79800841, single(true, 2, true, true, 1, 2, O, imm(4))),   // ldrsh x1, [x2, #4]
            (0xb9800841, single(true, 4, true, true, 1, 2, O, imm(8))),   // ldrsw x1, [x2, #8]
            (
                0xb900143f,
                single(false, 4, false, false, 31, 1, O, imm(20)),
            ), // str wzr, [x1, #20]
            (0xf900003f, single(false, 8, false, true, 31, 1, O, imm(0))), // str xzr, [x1]
            (0xb940003f, single(true, 4, false, false, 31, 1, O, imm(0))), // ldr wzr, [x1]
        ];
        for (w, want) in cases {
            assert_eq!(decode(w), Ok(want), "{w:#010x}");
        }
    }

    #[test]
    fn unscaled_pre_post_forms() {
        use Index::{Offset as O, Post, Pre};
        let imm = Offset::Imm;
        let cases = [
            (0xb85fc041, single(true, 4, false, false, 1, 2, O, imm(-4))), // ldur w1, [x2, #-4]
            (0xf84ff041, single(true, 8, false, true, 1, 2, O, imm(255))), // ldur x1, [x2, #255]
            (
                0xb8100083,
                single(false, 4, false, false, 3, 4, O, imm(-256)),
            ), // stur w3, [x4, #-256]
            (0x385ff041, single(true, 1, false, false, 1, 2, O, imm(-1))), // ldurb w1, [x2, #-1]
            (0x789fe041, single(true, 2, true, true, 1, 2, O, imm(-2))),   // ldursh x1, [x2, #-2]
            (0xb89fc041, single(true, 4, true, true, 1, 2, O, imm(-4))),   // ldursw x1, [x2, #-4]
            (0x78001041, single(false, 2, false, false, 1, 2, O, imm(1))), // sturh w1, [x2, #1]
            (0xb8404c41, single(true, 4, false, false, 1, 2, Pre, imm(4))), // ldr w1, [x2, #4]!
            (0xf85f8c41, single(true, 8, false, true, 1, 2, Pre, imm(-8))), // ldr x1, [x2, #-8]!
            (
                0xb81fcc41,
                single(false, 4, false, false, 1, 2, Pre, imm(-4)),
            ), // str w1, [x2, #-4]!
            (
                0xb8404441,
                single(true, 4, false, false, 1, 2, Post, imm(4)),
            ), // ldr w1, [x2], #4
            (
                0xf81f8441,
                single(false, 8, false, true, 1, 2, Post, imm(-8)),
            ), // str x1, [x2], #-8
            (
                0x38401441,
                single(true, 1, false, false, 1, 2, Post, imm(1)),
            ), // ldrb w1, [x2], #1
            (0x78802483, single(true, 2, true, true, 3, 4, Post, imm(2))), // ldrsh x3, [x4], #2
            (0xb8804c83, single(true, 4, true, true, 3, 4, Pre, imm(4))),  // ldrsw x3, [x4, #4]!
        ];
        for (w, want) in cases {
            assert_eq!(decode(w), Ok(want), "{w:#010x}");
        }
    }

    #[test]
    fn register_offset_forms() {
        use super::Extend::*;
        use Index::Offset as O;
        let r = |rm, extend, shift| Offset::Reg { rm, extend, shift };
        let cases = [
            (
                0xb8636841,
                single(true, 4, false, false, 1, 2, O, r(3, Lsl, 0)),
            ), // ldr w1, [x2, x3]
            (
                0xb8637841,
                single(true, 4, false, false, 1, 2, O, r(3, Lsl, 2)),
            ), // ldr w1, [x2, x3, lsl #2]
            (
                0xf8634841,
                single(true, 8, false, true, 1, 2, O, r(3, Uxtw, 0)),
            ), // ldr x1, [x2, w3, uxtw]
            (
                0xf8635841,
                single(true, 8, false, true, 1, 2, O, r(3, Uxtw, 3)),
            ), // ldr x1, [x2, w3, uxtw #3]
            (
                0xb863d841,
                single(true, 4, false, false, 1, 2, O, r(3, Sxtw, 2)),
            ), // ldr w1, [x2, w3, sxtw #2]
            (
                0xf863e841,
                single(true, 8, false, true, 1, 2, O, r(3, Sxtx, 0)),
            ), // ldr x1, [x2, x3, sxtx]
            (
                0x38236841,
                single(false, 1, false, false, 1, 2, O, r(3, Lsl, 0)),
            ), // strb w1, [x2, x3]
            (
                0x78237841,
                single(false, 2, false, false, 1, 2, O, r(3, Lsl, 1)),
            ), // strh w1, [x2, x3, lsl #1]
            (
                0x38a36841,
                single(true, 1, true, true, 1, 2, O, r(3, Lsl, 0)),
            ), // ldrsb x1, [x2, x3]
            (
                0x78e3d841,
                single(true, 2, true, false, 1, 2, O, r(3, Sxtw, 1)),
            ), // ldrsh w1, [x2, w3, sxtw #1]
            (
                0xf83f6841,
                single(false, 8, false, true, 1, 2, O, r(31, Lsl, 0)),
            ), // str x1, [x2, xzr]
        ];
        for (w, want) in cases {
            assert_eq!(decode(w), Ok(want), "{w:#010x}");
        }
    }

    #[test]
    fn pair_forms() {
        use Index::{Offset as O, Post, Pre};
        let p = |load, size, signed, dest64, rt, rt2, rn, index, imm| MemInsn {
            load,
            size,
            signed,
            dest64,
            rt,
            rt2: Some(rt2),
            rn,
            index,
            offset: Offset::Imm(imm),
        };
        let cases = [
            (0x29400861, p(true, 4, false, false, 1, 2, 3, O, 0)), // ldp w1, w2, [x3]
            (0xa9410861, p(true, 8, false, true, 1, 2, 3, O, 16)), // ldp x1, x2, [x3, #16]
            (0x293f0861, p(false, 4, false, false, 1, 2, 3, O, -8)), // stp w1, w2, [x3, #-8]
            (0xa9bf0861, p(false, 8, false, true, 1, 2, 3, Pre, -16)), // stp x1, x2, [x3, #-16]!
            (0xa8c10861, p(true, 8, false, true, 1, 2, 3, Post, 16)), // ldp x1, x2, [x3], #16
            (0x29c10861, p(true, 4, false, false, 1, 2, 3, Pre, 8)), // ldp w1, w2, [x3, #8]!
            (0x28810861, p(false, 4, false, false, 1, 2, 3, Post, 8)), // stp w1, w2, [x3], #8
            (0x69410861, p(true, 4, true, true, 1, 2, 3, O, 8)),   // ldpsw x1, x2, [x3, #8]
            (0x68ff0861, p(true, 4, true, true, 1, 2, 3, Post, -8)), // ldpsw x1, x2, [x3], #-8
            (0xa91ffc7f, p(false, 8, false, true, 31, 31, 3, O, 504)), // stp xzr, xzr, [x3, #504]
            (0xa9600861, p(true, 8, false, true, 1, 2, 3, O, -512)), // ldp x1, x2, [x3, #-512]
        ];
        for (w, want) in cases {
            assert_eq!(decode(w), Ok(want), "{w:#010x}");
            assert_eq!(want.total_len(), want.size * 2);
        }
    }

    #[test]
    fn refusals_carry_the_word_and_class() {
        use DecodeError::*;
        type Make = fn(u32) -> DecodeError;
        let cases: [(u32, Make); 38] = [
            (0xbd400020, FpSimd),          // ldr s0, [x1]
            (0x3dc00420, FpSimd),          // ldr q0, [x1, #16]
            (0xfc008421, FpSimd),          // str d1, [x1], #8
            (0xad400420, FpSimd),          // ldp q0, q1, [x1]
            (0x2d010420, FpSimd),          // stp s0, s1, [x1, #8]
            (0x3cdf0020, FpSimd),          // ldur q0, [x1, #-16]
            (0xfc626820, FpSimd),          // ldr d0, [x1, x2]
            (0x885f7c41, Exclusive),       // ldxr w1, [x2]
            (0x88037c41, Exclusive),       // stxr w3, w1, [x2]
            (0xc85ffc41, Exclusive),       // ldaxr x1, [x2]
            (0xc87f8861, Exclusive),       // ldaxp x1, x2, [x3]
            (0x88dffc41, AcquireRelease),  // ldar w1, [x2]
            (0xc89ffc41, AcquireRelease),  // stlr x1, [x2]
            (0xb8bfc041, AcquireRelease),  // ldapr w1, [x2]
            (0x99004041, AcquireRelease),  // stlur w1, [x2, #4]
            (0xb8210062, Atomic),          // ldadd w1, w2, [x3]
            (0xf8218062, Atomic),          // swp x1, x2, [x3]
            (0x88a17c62, Atomic),          // cas w1, w2, [x3]
            (0x18000801, Literal),         // ldr w1, <label>
            (0x58000801, Literal),         // ldr x1, <label>
            (0x98000801, Literal),         // ldrsw x1, <label>
            (0xf9800020, Prefetch),        // prfm pldl1keep, [x1]
            (0xf8a26820, Prefetch),        // prfm pldl1keep, [x1, x2]
            (0xf89ff020, Prefetch),        // prfum pldl1keep, [x1, #-1]
            (0xb94007e1, SpBase),          // ldr w1, [sp, #4]
            (0xf81f0fe1, SpBase),          // str x1, [sp, #-16]!
            (0xa8c17bfd, SpBase),          // ldp x29, x30, [sp], #16
            (0xb8400841, UnsupportedForm), // ldtr w1, [x2]
            (0xf8008841, UnsupportedForm), // sttr x1, [x2, #8]
            (0xa8400861, UnsupportedForm), // ldnp x1, x2, [x3]
            (0x28000861, UnsupportedForm), // stnp w1, w2, [x3]
            (0xb8404c21, Unpredictable),   // ldr w1, [x1, #4]!
            (0x28c10821, Unpredictable),   // ldp w1, w2, [x1], #8
            (0xa9400441, Unpredictable),   // ldp x1, x1, [x2]
            (0x8b030041, NotLoadStore),    // add x1, x2, x3
            (0xd503201f, NotLoadStore),    // nop
            // Hand-built: size 10, opc 11 (unscaled) is unallocated.
            (0xb8c00041, Unallocated),
            // Hand-built: register offset with option 000 is unallocated.
            (0xb8630841, Unallocated),
        ];
        for (w, make) in cases {
            let got = decode(w);
            assert_eq!(got, Err(make(w)), "{w:#010x}");
            let e = got.unwrap_err();
            assert_eq!(e.insn(), w);
            let text = std::format!("{e}");
            assert!(text.contains(&std::format!("{w:#010x}")), "{text}");
        }
    }

    #[test]
    fn every_word_in_the_ldst_space_decodes_or_refuses_without_panic() {
        // Sweep the fields that matter with fixed registers: bits 31:21 and
        // 11:10 cover size, V, class, opc, index mode and option.
        let mut accepted = 0u32;
        for hi in 0u32..(1 << 11) {
            for lo in 0u32..4 {
                let w = (hi << 21) | (lo << 10) | (3 << 16) | (2 << 5) | 1;
                if let Ok(m) = decode(w) {
                    accepted += 1;
                    assert!(matches!(m.size, 1 | 2 | 4 | 8));
                    assert_ne!(m.rn, 31);
                }
            }
        }
        assert!(accepted > 100, "only {accepted} accepted");
    }
}
