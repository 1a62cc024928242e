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
