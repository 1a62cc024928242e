// Entry: the arm64 Image header, boot-core selection, stacks, FP/SIMD, .bss,
// the cycle counter, then Rust. TF-A (or QEMU) enters here at EL2, MMU off,
// x0 = DTB address.

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry                   // code0
    .long   0                               // code1
    .quad   0x200000                        // text_offset: load at 2 MiB-aligned base + 2 MiB
    .quad   __image_size                    // image_size, including .bss and stacks
    .quad   0xa                             // flags: LE, 4 KiB pages, anywhere
    .quad   0, 0, 0                         // reserved
    .ascii  "ARM\x64"                       // magic
    .long   0                               // reserved

.section .text.boot, "ax"
primary_entry:
    mov     x19, x0                         // keep the DTB address
    // Only CPU 0 runs the loader; others wait (QEMU keeps them off anyway).
    mrs     x1, mpidr_el1
    and     x1, x1, #0xffffff
    cbnz    x1, park
    // We must be at EL2.
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    park
    // FP/SIMD: Rust on aarch64-unknown-none uses it. CPTR_EL2.TFP = 0.
    mov     x1, #0x33ff
    msr     cptr_el2, x1
    isb
    // Exception vectors and stacks: SP_EL2 for exceptions, SP_EL0 for code.
    adr     x1, exception_vectors
    msr     vbar_el2, x1
    ldr     x1, =__exc_stack_top
    mov     sp, x1
    ldr     x1, =__stack_top
    msr     sp_el0, x1
    msr     spsel, #0
    isb
    // Zero .bss (it is 64-byte aligned and sized).
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b
2:
    // Cycle counter from zero, counting EL2 (PMCCFILTR_EL0.NSH): with QEMU
    // -icount shift=0 it counts guest instructions.
    mov     x1, #(1 << 27)
    msr     pmccfiltr_el0, x1
    mov     x1, #(1 << 31)
    msr     pmcntenset_el0, x1
    mov     x1, #((1 << 0) | (1 << 2) | (1 << 6))
    msr     pmcr_el0, x1
    isb
    mov     x0, x19
    bl      loader_main
park:
    wfe
    b       park

// Exception vectors. Every entry saves a full frame (general registers,
// ELR/SPSR/ESR/FAR, FP/SIMD state) on SP_EL2 and calls
// `exception_entry(kind, frame)`; returning from it restores the frame
// (possibly changed, e.g. by MMIO emulation) and erets.
//
// Each entry first checks that the frame fits on the exception stack: were
// SP_EL2 below `__exc_stack_bottom` (a handler overflowed into the guard
// page), the frame store would fault again, re-enter the vector with SP even
// lower, and descend until it landed in (and corrupted) the main stack. On
// overflow the entry resets SP_EL2 to the top of the exception stack, builds
// the frame there and reports kind 16 + its own kind, which
// `exception_entry` turns into a terminal crash report. x0 waits in
// TPIDR_EL2 (otherwise unused) meanwhile; the flags are free (NZCV is in
// SPSR_EL2). Each entry must fit in its 0x80 bytes (checked below).
.equ FRAME_SIZE, 816
.equ KIND_EXC_STACK_OVERFLOW, 16

.macro vector kind
    .balign 0x80
    sub     sp, sp, #FRAME_SIZE
    msr     tpidr_el2, x0
    ldr     x0, =__exc_stack_bottom
    cmp     sp, x0
    b.lo    1f
    mrs     x0, tpidr_el2
    stp     x0, x1, [sp, #0]
    mov     x0, #\kind
    b       exception_common
1:  ldr     x0, =__exc_stack_top
    sub     sp, x0, #FRAME_SIZE
    mrs     x0, tpidr_el2
    stp     x0, x1, [sp, #0]
    mov     x0, #(KIND_EXC_STACK_OVERFLOW + \kind)
    b       exception_common
.endm

.section .text.vectors, "ax"
.balign 0x800
exception_vectors:
    vector 0    // current EL, SP_EL0: sync
    vector 1    //                     IRQ
    vector 2    //                     FIQ
    vector 3    //                     SError
    vector 4    // current EL, SP_ELx: sync
    vector 5    //                     IRQ
    vector 6    //                     FIQ
    vector 7    //                     SError
    vector 8    // lower EL, AArch64
    vector 9
    vector 10
    vector 11
    vector 12   // lower EL, AArch32
    vector 13
    vector 14
    vector 15
    // All entries are alike: if the last fits in 0x80 bytes, they all do
    // (otherwise this .org moves backwards: an assembler error).
    .org    exception_vectors + 0x800
    // The entries' literals (__exc_stack_bottom/top), within ldr's reach.
    .ltorg

exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x1, sp_el0
    stp     x30, x1, [sp, #240]
    mrs     x1, elr_el2
    mrs     x2, spsr_el2
    stp     x1, x2, [sp, #256]
    mrs     x1, esr_el2
    mrs     x2, far_el2
    stp     x1, x2, [sp, #272]
    mrs     x1, fpsr
    mrs     x2, fpcr
    stp     x1, x2, [sp, #288]
    add     x1, sp, #304
    stp     q0, q1, [x1], #32
    stp     q2, q3, [x1], #32
    stp     q4, q5, [x1], #32
    stp     q6, q7, [x1], #32
    stp     q8, q9, [x1], #32
    stp     q10, q11, [x1], #32
    stp     q12, q13, [x1], #32
    stp     q14, q15, [x1], #32
    stp     q16, q17, [x1], #32
    stp     q18, q19, [x1], #32
    stp     q20, q21, [x1], #32
    stp     q22, q23, [x1], #32
    stp     q24, q25, [x1], #32
    stp     q26, q27, [x1], #32
    stp     q28, q29, [x1], #32
    stp     q30, q31, [x1], #32
    mov     x1, sp
    bl      exception_entry
    add     x1, sp, #304
    ldp     q0, q1, [x1], #32
    ldp     q2, q3, [x1], #32
    ldp     q4, q5, [x1], #32
    ldp     q6, q7, [x1], #32
    ldp     q8, q9, [x1], #32
    ldp     q10, q11, [x1], #32
    ldp     q12, q13, [x1], #32
    ldp     q14, q15, [x1], #32
    ldp     q16, q17, [x1], #32
    ldp     q18, q19, [x1], #32
    ldp     q20, q21, [x1], #32
    ldp     q22, q23, [x1], #32
    ldp     q24, q25, [x1], #32
    ldp     q26, q27, [x1], #32
    ldp     q28, q29, [x1], #32
    ldp     q30, q31, [x1], #32
    ldp     x1, x2, [sp, #288]
    msr     fpsr, x1
    msr     fpcr, x2
    ldp     x1, x2, [sp, #256]
    msr     elr_el2, x1
    msr     spsr_el2, x2
    ldp     x30, x1, [sp, #240]
    msr     sp_el0, x1
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    add     sp, sp, #FRAME_SIZE
    eret

// scrub_dead_stacks(depth): zeroes the dead parts of both stacks, so that
// secrets left in returned frames do not linger in RAM: on the main stack the
// `depth` bytes below the caller's SP (at most down to `__stack_bottom`), on
// the exception stack the `depth` bytes below SP_EL2 (its top, as no
// exception is being handled). `depth` is a multiple of 16; u64::MAX means
// the whole stacks. A leaf: it uses no stack, clobbers x0-x4 and the flags
// only. Called on SP_EL0 (SPSel = 0); with SPSel = 1 (from an exception
// handler) it does nothing, since SP would then not bound the live part of
// the main stack.
.section .text.scrub, "ax"
.global scrub_dead_stacks
scrub_dead_stacks:
    mrs     x2, spsel
    cbnz    x2, 4f
    mov     x3, x0
    ldr     x4, =__stack_bottom
    mov     x1, sp
    subs    x0, x1, x3
    csel    x0, x4, x0, lo          // depth past address 0: from the bottom
    cmp     x0, x4
    csel    x0, x4, x0, lo          // below the bottom: from the bottom
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:  msr     spsel, #1
    mov     x1, sp
    msr     spsel, #0
    ldr     x4, =__exc_stack_bottom
    subs    x0, x1, x3
    csel    x0, x4, x0, lo
    cmp     x0, x4
    csel    x0, x4, x0, lo
3:  cmp     x0, x1
    b.hs    4f
    stp     xzr, xzr, [x0], #16
    b       3b
4:  ret

// Probed memory accesses for `md`/`mw`: fn(addr, value_or_out) -> 0 ok, 1 fault.
// A data abort at one of the `probe_access_*` labels resumes at `probe_fault`
// with x0 = 1 (see exception.rs).
.section .text.probe, "ax"
.global probe_read8, probe_read16, probe_read32, probe_read64
.global probe_write8, probe_write16, probe_write32, probe_write64
.global probe_insns_start, probe_insns_end, probe_fault
probe_read8:
probe_insns_start:
    ldrb    w2, [x0]
    b       probe_load_done
probe_read16:
    ldrh    w2, [x0]
    b       probe_load_done
probe_read32:
    ldr     w2, [x0]
    b       probe_load_done
probe_read64:
    ldr     x2, [x0]
    b       probe_load_done
probe_write8:
    strb    w1, [x0]
    b       probe_ok
probe_write16:
    strh    w1, [x0]
    b       probe_ok
probe_write32:
    str     w1, [x0]
    b       probe_ok
probe_write64:
    str     x1, [x0]
probe_insns_end:
    b       probe_ok
probe_load_done:
    str     x2, [x1]
probe_ok:
    mov     x0, #0
    ret
probe_fault:
    mov     x0, #1
    ret

// Enters Linux: x0 = kernel entry, x1 = DTB, x2..x3 = loader RW range to scrub.
// The caller cleaned and invalidated the D-cache over the kernel, DTB,
// initramfs and the scrub range. Here: interrupts masked, MMU and caches off,
// the loader's data, .bss and stacks zeroed (secrets included), every other
// register cleared, then x0 = DTB, x1-x3 = 0 as the arm64 boot protocol asks.
.section .text.linux, "ax"
.global linux_enter
linux_enter:
    msr     daifset, #0xf
    mov     x19, x0
    mov     x20, x1
    mrs     x4, sctlr_el2
    bic     x4, x4, #1                      // M
    bic     x4, x4, #(1 << 2)               // C
    bic     x4, x4, #(1 << 12)              // I
    msr     sctlr_el2, x4
    isb
    ic      iallu
    tlbi    alle2
    dsb     sy
    isb
1:  cmp     x2, x3
    b.hs    2f
    stp     xzr, xzr, [x2], #16
    b       1b
2:  dsb     sy
    msr     cntvoff_el2, xzr
    msr     spsel, #1                       // off SP_EL0, so it can be cleared
    msr     sp_el0, xzr
    .irp r, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    movi    v\r\().2d, #0
    .endr
    mov     x0, x20
    .irp r, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,20,21,22,23,24,25,26,27,28,29,30
    mov     x\r, xzr
    .endr
    br      x19
