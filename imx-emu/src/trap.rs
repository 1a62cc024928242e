//! Carrying out a trapped load or store against a device model.
//!
//! The board's EL2 data-abort handler calls [`emulate`] with the faulting
//! instruction word, FAR_EL2, the saved general registers and the device.
//! On success it advances ELR_EL2 by 4; on error it reports the
//! [`TrapError`] and stops.

use crate::decode::{DecodeError, Extend, Index, MemInsn, Offset, decode};

/// The saved general registers X0..X30 of the interrupted context.
pub trait RegFile {
    /// Reads Xn, `n` in 0..=30.
    fn get(&self, n: u8) -> u64;
    /// Writes Xn, `n` in 0..=30.
    fn set(&mut self, n: u8, v: u64);
}

/// A device that serves trapped accesses at absolute physical addresses.
pub trait MmioDevice {
    /// Reads `size` bytes (1, 2, 4 or 8) at `addr`.
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, EmuError>;
    /// Writes the low `size` bytes of `value` at `addr`.
    fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), EmuError>;
}

/// Why a device model refused an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmuError {
    /// The address is in no emulated window.
    NoDevice {
        /// The physical address.
        addr: u64,
    },
    /// The access size is not one the register supports (only 32-bit, and
    /// 64-bit split into two words, are modelled).
    BadSize {
        /// The physical address.
        addr: u64,
        /// The size in bytes.
        size: u8,
    },
    /// The address is not aligned to the access size.
    Unaligned {
        /// The physical address.
        addr: u64,
        /// The size in bytes.
        size: u8,
    },
    /// No register is modelled at this offset.
    Unimplemented {
        /// Name of the block ("CAAM", "OCOTP").
        block: &'static str,
        /// Offset from the block's base.
        offset: u32,
        /// Whether the access was a write.
        write: bool,
    },
    /// A write to a read-only register.
    ReadOnly {
        /// Name of the block.
        block: &'static str,
        /// Offset from the block's base.
        offset: u32,
    },
    /// A value the model does not support (e.g. 64-bit CAAM pointers).
    Unsupported {
        /// Name of the block.
        block: &'static str,
        /// Offset from the block's base.
        offset: u32,
        /// What is not supported.
        what: &'static str,
    },
    /// The emulated block is disabled (no valid fuse file).
    Disabled {
        /// Name of the block.
        block: &'static str,
    },
    /// The CAAM controller page refused the access (the chip's fuse file
    /// says the secure world owns it, as when OP-TEE runs).
    ControllerPageRefused {
        /// Offset from the CAAM base.
        offset: u32,
    },
}

impl core::fmt::Display for EmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::NoDevice { addr } => write!(f, "no emulated device at {addr:#x}"),
            Self::ControllerPageRefused { offset } => write!(
                f,
                "CAAM controller page not accessible: is OP-TEE in the boot image? (offset {offset:#05x})"
            ),
            Self::BadSize { addr, size } => {
                write!(
                    f,
                    "{size}-byte access at {addr:#x}: only 32/64-bit accesses are modelled"
                )
            }
            Self::Unaligned { addr, size } => {
                write!(f, "unaligned {size}-byte access at {addr:#x}")
            }
            Self::Unimplemented {
                block,
                offset,
                write,
            } => write!(
                f,
                "{block} register at offset {offset:#05x} not modelled ({})",
                if write { "write" } else { "read" }
            ),
            Self::ReadOnly { block, offset } => {
                write!(f, "{block} register at offset {offset:#05x} is read-only")
            }
            Self::Unsupported {
                block,
                offset,
                what,
            } => write!(
                f,
                "{block} offset {offset:#05x}: {what} not supported by the model"
            ),
            Self::Disabled { block } => write!(f, "{block} emulation disabled: no valid fuse file"),
        }
    }
}

/// Why a trapped access could not be emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapReason {
    /// The instruction is not a supported load/store.
    Decode(DecodeError),
    /// The device refused the access.
    Device(EmuError),
    /// FAR does not equal the address the instruction computes from its
    /// registers (e.g. a pair straddling a mapped and an unmapped page).
    AddressMismatch {
        /// The address computed from the registers.
        computed: u64,
    },
}

/// A trapped access that was not carried out; the registers are unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapError {
    /// The faulting address (FAR).
    pub addr: u64,
    /// The instruction word.
    pub insn: u32,
    /// Access size in bytes of one element, and whether it was a write;
    /// `None` when the instruction did not decode.
    pub access: Option<(u8, bool)>,
    /// Why it failed.
    pub reason: TrapReason,
}

impl core::fmt::Display for TrapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MMIO trap at {:#x}: ", self.addr)?;
        match self.access {
            Some((size, write)) => {
                write!(f, "{}-byte {}", size, if write { "write" } else { "read" })?
            }
            None => write!(f, "unknown access")?,
        }
        write!(f, ", insn {:#010x}: ", self.insn)?;
        match self.reason {
            TrapReason::Decode(e) => write!(f, "{e}"),
            TrapReason::Device(e) => write!(f, "{e}"),
            TrapReason::AddressMismatch { computed } => write!(
                f,
                "instruction addresses {computed:#x}, not the faulting address"
            ),
        }
    }
}

fn read_reg(regs: &impl RegFile, n: u8) -> u64 {
    if n == 31 { 0 } else { regs.get(n) }
}

fn extend_index(v: u64, extend: Extend) -> u64 {
    match extend {
        Extend::Uxtw => v & 0xFFFF_FFFF,
        Extend::Sxtw => {
            let low = v & 0xFFFF_FFFF;
            // Sign-extend bit 31.
            ((low << 32) as i64 >> 32) as u64
        }
        Extend::Lsl | Extend::Sxtx => v,
    }
}

fn offset_value(regs: &impl RegFile, offset: Offset) -> u64 {
    match offset {
        // Two's complement: adding the reinterpreted value is the signed add.
        Offset::Imm(i) => i as u64,
        Offset::Reg { rm, extend, shift } => {
            extend_index(read_reg(regs, rm), extend).wrapping_shl(u32::from(shift))
        }
    }
}

fn loaded_value(m: &MemInsn, raw: u64) -> u64 {
    let bits = u32::from(m.size) * 8;
    let v = if m.signed && bits < 64 {
        let shift = 64 - bits;
        (((raw << shift) as i64) >> shift) as u64
    } else if bits < 64 {
        raw & ((1u64 << bits) - 1)
    } else {
        raw
    };
    if m.dest64 { v } else { v & 0xFFFF_FFFF }
}

/// Emulates the load/store `insn` that faulted at `far`: performs the
/// access(es) on `dev`, writes loaded values into `regs` (zero- or
/// sign-extended, XZR discarded), and applies base writeback. The caller
/// advances ELR by 4 on success. On error, `regs` is unchanged (a store pair
/// whose second write fails has still performed its first write).
pub fn emulate(
    insn: u32,
    far: u64,
    regs: &mut impl RegFile,
    dev: &mut impl MmioDevice,
) -> Result<(), TrapError> {
    let m = decode(insn).map_err(|e| TrapError {
        addr: far,
        insn,
        access: None,
        reason: TrapReason::Decode(e),
    })?;
    let err = |reason| TrapError {
        addr: far,
        insn,
        access: Some((m.size, !m.load)),
        reason,
    };
    let base = regs.get(m.rn);
    let off = offset_value(regs, m.offset);
    let addr = match m.index {
        Index::Offset | Index::Pre => base.wrapping_add(off),
        Index::Post => base,
    };
    if addr != far {
        return Err(err(TrapReason::AddressMismatch { computed: addr }));
    }
    let size = u64::from(m.size);
    if m.load {
        let first = dev
            .read(addr, m.size)
            .map_err(|e| err(TrapReason::Device(e)))?;
        let second = match m.rt2 {
            Some(_) => Some(
                dev.read(addr.wrapping_add(size), m.size)
                    .map_err(|e| err(TrapReason::Device(e)))?,
            ),
            None => None,
        };
        if m.rt != 31 {
            regs.set(m.rt, loaded_value(&m, first));
        }
        if let (Some(rt2), Some(v)) = (m.rt2, second)
            && rt2 != 31
        {
            regs.set(rt2, loaded_value(&m, v));
        }
    } else {
        let mask = if size == 8 {
            u64::MAX
        } else {
            (1u64 << (size * 8)) - 1
        };
        dev.write(addr, m.size, read_reg(regs, m.rt) & mask)
            .map_err(|e| err(TrapReason::Device(e)))?;
        if let Some(rt2) = m.rt2 {
            dev.write(addr.wrapping_add(size), m.size, read_reg(regs, rt2) & mask)
                .map_err(|e| err(TrapReason::Device(e)))?;
        }
    }
    if m.index != Index::Offset {
        regs.set(m.rn, base.wrapping_add(off));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    struct Regs([u64; 31]);
    impl RegFile for Regs {
        fn get(&self, n: u8) -> u64 {
            assert!(n <= 30, "decoder passed register {n}");
            self.0[usize::from(n)]
        }
        fn set(&mut self, n: u8, v: u64) {
            assert!(n <= 30, "decoder passed register {n}");
            self.0[usize::from(n)] = v;
        }
    }

    /// A byte-addressed scratch device at 0x3090_0000 that logs accesses.
    struct Dev {
        mem: [u8; 256],
        log: Vec<(bool, u64, u8, u64)>,
        fail_at: Option<u64>,
    }
    const BASE: u64 = 0x3090_0000;
    impl Dev {
        fn new() -> Self {
            let mut mem = [0u8; 256];
            for (i, b) in mem.iter_mut().enumerate() {
                *b = u8::try_from(i).unwrap() ^ 0x80;
            }
            Self {
                mem,
                log: Vec::new(),
                fail_at: None,
            }
        }
    }
    impl MmioDevice for Dev {
        fn read(&mut self, addr: u64, size: u8) -> Result<u64, EmuError> {
            if Some(addr) == self.fail_at {
                return Err(EmuError::NoDevice { addr });
            }
            let o = usize::try_from(addr - BASE).unwrap();
            let mut b = [0u8; 8];
            b[..usize::from(size)].copy_from_slice(&self.mem[o..o + usize::from(size)]);
            let v = u64::from_le_bytes(b);
            self.log.push((false, addr, size, v));
            Ok(v)
        }
        fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), EmuError> {
            if Some(addr) == self.fail_at {
                return Err(EmuError::NoDevice { addr });
            }
            let o = usize::try_from(addr - BASE).unwrap();
            self.mem[o..o + usize::from(size)]
                .copy_from_slice(&value.to_le_bytes()[..usize::from(size)]);
            self.log.push((true, addr, size, value));
            Ok(())
        }
    }

    fn regs() -> Regs {
        let mut r = [0u64; 31];
        for (i, v) in r.iter_mut().enumerate() {
            *v = 0xAAAA_0000_0000_0000 | u64::try_from(i).unwrap();
        }
        Regs(r)
    }

    #[test]
    fn ldr_w_zero_extends_and_clears_upper_half() {
        let (mut r, mut d) = (regs(), Dev::new());
        r.0[2] = BASE + 0x10;
        emulate(0xb9400041, BASE + 0x10, &mut r, &mut d).unwrap(); // ldr w1, [x2]
        assert_eq!(r.0[1], 0x9392_9190);
        assert_eq!(d.log, [(false, BASE + 0x10, 4, 0x9392_9190)]);
    }

    #[test]
    fn sign_extending_loads() {
        let (mut r, mut d) = (regs(), Dev::new());
        r.0[2] = BASE;
        // mem[3] = 0x83: negative.
        emulate(0x39800c41, BASE + 3, &mut r, &mut d).unwrap(); // ldrsb x1, [x2, #3]
        assert_eq!(r.0[1], 0xFFFF_FFFF_FFFF_FF83);
        emulate(0x39c00041, BASE, &mut r, &mut d).unwrap(); // ldrsb w1, [x2]
        assert_eq!(r.0[1], 0xFFFF_FF80);
        emulate(0xb9800841, BASE + 8, &mut r, &mut d).unwrap(); // ldrsw x1, [x2, #8]
        assert_eq!(r.0[1], 0xFFFF_FFFF_8B8A_8988);
        // Positive byte: 0x7f ^ 0x80 = 0xff at offset 0x7f... use 0x81: 0x01.
        r.0[2] = BASE + 0x81;
        emulate(0x39c00041, BASE + 0x81, &mut r, &mut d).unwrap(); // ldrsb w1, [x2]
        assert_eq!(r.0[1], 0x01);
    }

    #[test]
    fn stores_truncate_and_xzr_stores_zero() {
        let (mut r, mut d) = (regs(), Dev::new());
        r.0[14] = BASE;
        r.0[13] = 0x1234_5678_9ABC_DEF0;
        emulate(0x390005cd, BASE + 1, &mut r, &mut d).unwrap(); // strb w13, [x14, #1]
        r.0[1] = BASE;
        emulate(0xb900143f, BASE + 0x14, &mut r, &mut d).unwrap(); // str wzr, [x1, #20]
        assert_eq!(
            d.log,
            [(true, BASE + 1, 1, 0xF0), (true, BASE + 0x14, 4, 0)]
        );
    }

    #[test]
    fn load_into_xzr_is_discarded_but_performed() {
        let (mut r, mut d) = (regs(), Dev::new());
        r.0[1] = BASE;
        let before = r.0;
        emulate(0xb940003f, BASE, &mut r, &mut d).unwrap(); // ldr wzr, [x1]
        assert_eq!(r.0, before);
        assert_eq!(d.log.len(), 1);
    }

    #[test]
    fn pre_and_post_index_writeback() {
        let (mut r, mut d) = (regs(), Dev::new());
        r.0[2] = BASE + 0x20;
        // ldr w1, [x2, #4]!  accesses base+4, base becomes base+4.
        emulate(0xb8404c41, BASE + 0x24, &mut r, &mut d).unwrap();
        assert_eq!(r.0[2], BASE + 0x24);
        assert_eq!(d.log[0].1, BASE + 0x24);
        // ldr w1, [x2], #4  accesses base, base becomes base+4.
        emulate(0xb8404441, BASE + 0x24, &mut r, &mut d).unwrap();
        assert_eq!(r.0[2], BASE + 0x28);
        assert_eq!(d.log[1].1, BASE + 0x24);
        // str x1, [x2], #-8
        r.0[1] = 7;
        emulate(0xf81f8441, BASE + 0x28, &mut r, &mut d).unwrap();
        assert_eq!(r.0[2], BASE + 0x20);
        assert_eq!(d.log[2], (true, BASE + 0x28, 8, 7));
    }

    #[test]
    fn register_offset_extensions() {
        let (mut r, mut d) = (regs(), Dev::new());
        r.0[2] = BASE + 0x40;
        r.0[3] = 0xFFFF_FFFF_FFFF_FFFE; // -2
        // ldr w1, [x2, w3, sxtw #2] -> base - 8
        emulate(0xb863d841, BASE + 0x38, &mut r, &mut d).unwrap();
        // ldr x1, [x2, w3, uxtw] -> base + 0xFFFF_FFFE: mismatch
        let e = emulate(0xf8634841, BASE + 0x38, &mut r, &mut d).unwrap_err();
        assert_eq!(
            e.reason,
            TrapReason::AddressMismatch {
                computed: BASE + 0x40 + 0xFFFF_FFFE
            }
        );
        r.0[3] = 3;
        // ldr x1, [x2, w3, uxtw #3] -> base + 24
        emulate(0xf8635841, BASE + 0x58, &mut r, &mut d).unwrap();
        // str x1, [x2, xzr]
        emulate(0xf83f6841, BASE + 0x40, &mut r, &mut d).unwrap();
        assert_eq!(d.log.len(), 3);
    }

    #[test]
    fn pairs_access_two_elements_and_write_back() {
        let (mut r, mut d) = (regs(), Dev::new());
        r.0[3] = BASE + 0x10;
        emulate(0xa8c10861, BASE + 0x10, &mut r, &mut d).unwrap(); // ldp x1, x2, [x3], #16
        assert_eq!(r.0[1], 0x9796_9594_9392_9190);
        assert_eq!(r.0[2], 0x9F9E_9D9C_9B9A_9998);
        assert_eq!(r.0[3], BASE + 0x20);
        // ldpsw x1, x2, [x3, #8]: words at 0x28 and 0x2C.
        emulate(0x69410861, BASE + 0x28, &mut r, &mut d).unwrap();
        assert_eq!(r.0[1], 0xFFFF_FFFF_ABAA_A9A8);
        assert_eq!(r.0[2], 0xFFFF_FFFF_AFAE_ADAC);
        // stp xzr, xzr, [x3, #504] is outside the test device: use
        // stp w1, w2, [x3, #-8]
        r.0[1] = 0x1111_1111_2222_2222;
        r.0[2] = 0x3333_3333;
        emulate(0x293f0861, BASE + 0x18, &mut r, &mut d).unwrap();
        assert_eq!(
            &d.log[4..],
            [
                (true, BASE + 0x18, 4, 0x2222_2222),
                (true, BASE + 0x1C, 4, 0x3333_3333)
            ]
        );
    }

    #[test]
    fn errors_leave_registers_unchanged() {
        let (mut r, mut d) = (regs(), Dev::new());
        r.0[3] = BASE + 0x10;
        d.fail_at = Some(BASE + 0x18);
        let before = r.0;
        let e = emulate(0xa8c10861, BASE + 0x10, &mut r, &mut d).unwrap_err(); // ldp x1, x2, [x3], #16
        assert_eq!(r.0, before);
        assert_eq!(e.access, Some((8, false)));
        let text = std::format!("{e}");
        assert!(text.contains("0x30900010"), "{text}");
        assert!(text.contains("8-byte read"), "{text}");
        assert!(text.contains("0xa8c10861"), "{text}");
        assert!(text.contains("no emulated device at 0x30900018"), "{text}");

        let e = emulate(0xbd400020, BASE, &mut r, &mut d).unwrap_err(); // ldr s0, [x1]
        assert_eq!(e.access, None);
        assert!(std::format!("{e}").contains("FP/SIMD"));
        assert_eq!(r.0, before);
    }
}
