//! The saved state of an exception, shared by the vectors (`loader/`) and the
//! board's data-abort handler.

/// The register frame the exception vectors save on the exception stack.
/// The layout is fixed by `loader/src/arch/entry.S`.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// The interrupted stack pointer (SP_EL0).
    pub sp: u64,
    /// Where the exception was taken.
    pub elr: u64,
    /// Saved PSTATE.
    pub spsr: u64,
    /// Exception syndrome.
    pub esr: u64,
    /// Fault address.
    pub far: u64,
    /// FP status.
    pub fpsr: u64,
    /// FP control.
    pub fpcr: u64,
    /// q0..q31.
    pub q: [u128; 32],
}

/// What the board did with a data abort.
// The refusal carries its message by value (no allocation on the fault
// path); the common `Emulated` return costs nothing extra.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapOutcome {
    /// The access was emulated; the frame was updated and ELR advanced.
    Emulated,
    /// Not an address the board emulates.
    NotMine,
    /// The board emulates this address but refused the access; the string
    /// says why (unsupported instruction form or register).
    Refused(TrapRefusal),
}

/// A refused emulated access, `Copy` (no allocation) for the fault path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapRefusal {
    /// The faulting address.
    pub addr: u64,
    /// The instruction word at ELR.
    pub insn: u32,
    msg: [u8; REFUSAL_LEN],
    len: usize,
}

const REFUSAL_LEN: usize = 232;

impl TrapRefusal {
    /// A refusal with the message `why` (truncated to 232 bytes).
    pub fn new(addr: u64, insn: u32, why: core::fmt::Arguments<'_>) -> Self {
        struct Buf([u8; REFUSAL_LEN], usize);
        impl core::fmt::Write for Buf {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                for &b in s.as_bytes() {
                    if self.1 < REFUSAL_LEN {
                        self.0[self.1] = b;
                        self.1 += 1;
                    }
                }
                Ok(())
            }
        }
        let mut b = Buf([0; REFUSAL_LEN], 0);
        let _ = core::fmt::write(&mut b, why);
        Self {
            addr,
            insn,
            msg: b.0,
            len: b.1,
        }
    }

    /// Why the access was refused.
    pub fn reason(&self) -> &str {
        let mut n = self.len;
        // Never cut a UTF-8 sequence in half.
        while core::str::from_utf8(&self.msg[..n]).is_err() {
            n -= 1;
        }
        core::str::from_utf8(&self.msg[..n]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};
    use std::format;

    #[test]
    fn refusal_keeps_and_truncates_its_message() {
        let r = TrapRefusal::new(1, 2, format_args!("CAAM offset {:#x}", 0x10));
        assert_eq!(r.reason(), "CAAM offset 0x10");
        // 1 + 2k bytes: byte 232 starts a two-byte character, which is dropped.
        let long = format!("a{}", "é".repeat(200));
        let r = TrapRefusal::new(1, 2, format_args!("{long}"));
        assert_eq!(r.reason().len(), 231);
    }

    #[test]
    fn frame_layout_matches_entry_s() {
        assert_eq!(offset_of!(TrapFrame, sp), 248);
        assert_eq!(offset_of!(TrapFrame, elr), 256);
        assert_eq!(offset_of!(TrapFrame, esr), 272);
        assert_eq!(offset_of!(TrapFrame, far), 280);
        assert_eq!(offset_of!(TrapFrame, fpsr), 288);
        assert_eq!(offset_of!(TrapFrame, q), 304);
        assert_eq!(size_of::<TrapFrame>(), 816);
    }
}
