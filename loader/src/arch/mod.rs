//! Everything that is specific to AArch64 at EL2: entry, exception vectors,
//! MMU, cache maintenance, PSCI and the cycle counter (the generic timer is
//! `board::timer`, shared with the board).

pub mod cache;
pub mod exception;
pub mod mmu;
pub mod psci;

core::arch::global_asm!(include_str!("entry.S"));

/// Guest instructions (under QEMU `-icount shift=0`) or cycles since entry.
pub fn cycles() -> u64 {
    let v: u64;
    // SAFETY: reading PMCCNTR_EL0 at EL2 has no side effects; entry.S enabled it.
    unsafe { core::arch::asm!("mrs {}, pmccntr_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// What this CPU lacks of the Armv8 Cryptography Extension the loader is
/// built for (`.cargo/config.toml`: `+aes,+sha2`): `None` when AES with
/// PMULL and SHA-256 are all there (ID_AA64ISAR0_EL1.AES >= 2, .SHA2 >= 1).
pub fn missing_crypto_extension() -> Option<&'static str> {
    let isar0: u64;
    // SAFETY: reading ID_AA64ISAR0_EL1 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, id_aa64isar0_el1", out(reg) isar0, options(nomem, nostack))
    };
    let (aes, sha2) = ((isar0 >> 4) & 0xF, (isar0 >> 12) & 0xF);
    match (aes >= 2, sha2 >= 1) {
        (true, true) => None,
        (false, true) => Some("AES/PMULL"),
        (true, false) => Some("SHA-256"),
        (false, false) => Some("AES/PMULL and SHA-256"),
    }
}

unsafe extern "C" {
    /// entry.S: zeroes `depth` bytes (a multiple of 16; `u64::MAX`: all)
    /// below the caller's SP on the main stack and below SP_EL2 on the
    /// exception stack, never past either stack's bottom. Uses no stack;
    /// does nothing when called on SP_EL2.
    fn scrub_dead_stacks(depth: u64);
}

/// How much of the stacks [`scrubbing`] zeroes below the caller's SP.
#[derive(Clone, Copy, Debug)]
pub enum Scrub {
    /// Both stacks, down to their bottoms: at most 512 KiB + 32 KiB
    /// (34,816 16-byte stores). For paths whose stack depth is not bounded
    /// here (the flow, `blob`, `mfgprot`).
    All,
    /// This many KiB below SP on each stack: for a shallow path known to
    /// stay within it (the QEMU board's `early_init`, about 2 KiB deep; the
    /// RAM-scan test fails if a fuse copy survives).
    KiB(u64),
}

/// Zeroes the dead part of both stacks: what returned frames left below
/// the current SP (the main stack) and what the exception handler (the
/// QEMU CAAM model) left on its stack. Call it where a path that held
/// secrets in locals has returned.
pub fn scrub_stacks(how: Scrub) {
    let depth = match how {
        Scrub::All => u64::MAX,
        Scrub::KiB(k) => k.saturating_mul(1024),
    };
    // SAFETY: the routine writes only below the caller's SP on the main
    // stack, and nothing live is there: AArch64 has no red zone on this
    // target (AAPCS64; LLVM enables none for aarch64-unknown-none), so
    // every live local of every caller is at or above SP. On the exception
    // stack it writes below SP_EL2, which is the stack's top outside an
    // exception handler (the only place this is called from, as code runs
    // on SP_EL0; on SP_EL2 the routine does nothing). It clobbers only
    // x0-x4 and the flags, which the C ABI lets a callee clobber.
    unsafe { scrub_dead_stacks(depth) }
}

/// Runs `f`, then [`scrub_stacks`]. `f` runs out of line, in frames below
/// the caller's SP, so everything it left on the stack is zeroed (had it
/// been inlined, its locals would sit in the caller's live frame).
pub fn scrubbing<R>(how: Scrub, f: impl FnOnce() -> R) -> R {
    let r = call_out_of_line(f);
    scrub_stacks(how);
    r
}

#[inline(never)]
fn call_out_of_line<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}

/// Linker-script symbols, as addresses.
pub mod layout {
    unsafe extern "C" {
        static __image_start: u8;
        static __text_end: u8;
        static __rodata_end: u8;
        static __image_end: u8;
        static __stack_guard: u8;
        static __stack_bottom: u8;
        static __exc_stack_guard: u8;
        static __exc_stack_bottom: u8;
    }

    macro_rules! sym {
        ($name:ident, $sym:ident) => {
            /// Address of the linker symbol of the same name.
            pub fn $name() -> u64 {
                // Only the address is taken; the symbol is never read.
                core::ptr::addr_of!($sym) as u64
            }
        };
    }
    sym!(image_start, __image_start);
    sym!(text_end, __text_end);
    sym!(rodata_end, __rodata_end);
    sym!(image_end, __image_end);
    sym!(stack_guard, __stack_guard);
    sym!(stack_bottom, __stack_bottom);
    sym!(exc_stack_guard, __exc_stack_guard);
    sym!(exc_stack_bottom, __exc_stack_bottom);
}
