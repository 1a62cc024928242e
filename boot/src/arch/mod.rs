//! Everything that is specific to AArch64 at EL2: entry, exception vectors,
//! MMU, cache maintenance, PSCI, the generic timer and the cycle counter.

pub mod cache;
pub mod exception;
pub mod mmu;
pub mod psci;
pub mod timer;

core::arch::global_asm!(include_str!("entry.S"));

/// Guest instructions (under QEMU `-icount shift=0`) or cycles since entry.
pub fn cycles() -> u64 {
    let v: u64;
    // SAFETY: reading PMCCNTR_EL0 at EL2 has no side effects; entry.S enabled it.
    unsafe { core::arch::asm!("mrs {}, pmccntr_el0", out(reg) v, options(nomem, nostack)) };
    v
}

unsafe extern "C" {
    /// entry.S: zeroes the main stack from `__stack_bottom` up to the
    /// caller's SP and the exception stack from `__exc_stack_bottom` up to
    /// SP_EL2. Uses no stack; does nothing when called on SP_EL2.
    fn scrub_dead_stacks();
}

/// Zeroes the dead part of both stacks: what returned frames left below
/// the current SP (the main stack) and everything the exception handler
/// (the QEMU CAAM model) left on its stack. Call it where a path that held
/// secrets in locals has returned. Cost: one 16-byte store per 16 bytes
/// not in use, at most 512 KiB + 32 KiB (34,816 stores).
pub fn scrub_stacks() {
    // SAFETY: the routine writes only below the caller's SP on the main
    // stack, and nothing live is there: AArch64 has no red zone on this
    // target (AAPCS64; LLVM enables none for aarch64-unknown-none), so
    // every live local of every caller is at or above SP. On the exception
    // stack it writes below SP_EL2, which is the stack's top outside an
    // exception handler (the only place this is called from, as code runs
    // on SP_EL0; on SP_EL2 the routine does nothing). It clobbers only
    // x0-x2 and the flags, which the C ABI lets a callee clobber.
    unsafe { scrub_dead_stacks() }
}

/// Runs `f`, then [`scrub_stacks`]. `f` runs out of line, in frames below
/// the caller's SP, so everything it left on the stack is zeroed (had it
/// been inlined, its locals would sit in the caller's live frame).
pub fn scrubbing<R>(f: impl FnOnce() -> R) -> R {
    let r = call_out_of_line(f);
    scrub_stacks();
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
