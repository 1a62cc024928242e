//! The saved state of an exception, shared by the vectors (`boot/`) and the
//! board's data-abort handler.

/// The register frame the exception vectors save on the exception stack.
/// The layout is fixed by `boot/src/arch/entry.S`.
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

/// A refused emulated access, kept small and `Copy` for the fault path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapRefusal {
    /// The faulting address.
    pub addr: u64,
    /// The instruction word at ELR.
    pub insn: u32,
    /// Why.
    pub reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

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
