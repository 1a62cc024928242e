//! `crash`: deliberate faults that prove the loader's memory protections
//! (debug builds only; absent from the production build).
//!
//! - `crash stack`: unbounded recursion runs into the unmapped guard page
//!   under the main stack;
//! - `crash exec`: a branch to code placed on the stack, which is mapped
//!   execute-never;
//! - `crash write`: a plain store (no fault-catching probe) into `.text`,
//!   which is mapped read-only;
//! - `crash estack`: a `brk` whose handler recurses on the exception stack
//!   into the guard page under it; the exception vector sees SP_EL2 below
//!   the stack and reports the overflow once (instead of faulting on its
//!   own frame store down into the main stack).
//!
//! Each ends in the exception handler's crash report; the loader stops.

use super::{CmdError, Command, arity};
use crate::machine::{Machine, outln};

pub const CRASH: Command = Command {
    name: "crash",
    sized: false,
    summary: "[debug] fault on purpose: stack overflows, exec from stack, write to .text",
    usage: "stack\n    - recurse until the main stack's guard page faults\ncrash exec\n    - branch to an instruction on the (execute-never) stack\ncrash write\n    - store into .text without the fault-catching probe\ncrash estack\n    - recurse in an exception handler until the exception stack's guard page faults\n    (debug builds only; each stops the loader with a crash report)",
    run: crash,
};

fn crash(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    arity(args, 1, 1)?;
    let what = match args[1] {
        "stack" => "recursing into the stack guard page",
        "exec" => "branching to the stack",
        "write" => "storing into .text",
        "estack" => "recursing on the exception stack into its guard page",
        other => {
            return Err(CmdError::msg(format_args!(
                "unknown crash '{other}' (stack, exec, write or estack)"
            )));
        }
    };
    outln!(m, "crash: {what} ...");
    m.console.flush();
    match args[1] {
        "stack" => {
            let n = crate::arch::exception::exhaust_stack(0);
            Err(CmdError::msg(format_args!("recursion returned ({n})")))
        }
        "exec" => exec_from_stack(),
        "estack" => exhaust_exception_stack(),
        _ => write_text(),
    }
}

fn exhaust_exception_stack() -> Result<(), CmdError> {
    // SAFETY: the exception handler never returns from this `brk`: it
    // recurses until the exception stack overflows (crash report, loader
    // stops), and were there no guard page it would fall through to the
    // crash report for an unexpected BRK. The `brk` itself touches no
    // memory or register.
    unsafe {
        core::arch::asm!(
            "brk #{imm}",
            imm = const crate::arch::exception::BRK_EXHAUST_EXC_STACK,
            options(nomem, nostack)
        )
    };
    Err(CmdError::msg(format_args!(
        "the exception handler returned from `crash estack`: its stack did not overflow"
    )))
}

fn exec_from_stack() -> Result<(), CmdError> {
    // `ret`, so that were the stack executable this would simply return.
    let code = core::hint::black_box([0xd65f_03c0u32; 4]);
    let target = code.as_ptr() as u64;
    // SAFETY: deliberately invalid: the stack is mapped execute-never
    // (mmu.rs), so the instruction fetch at `target` faults and the
    // exception handler prints the report and stops; the `blr` never
    // returns here. Were the page executable, the `ret` at `target` would
    // return with every caller-saved register declared clobbered.
    unsafe { core::arch::asm!("blr {t}", t = in(reg) target, clobber_abi("C")) };
    Err(CmdError::msg(format_args!(
        "executed code on the stack at 0x{target:x}: the stack is executable"
    )))
}

fn write_text() -> Result<(), CmdError> {
    // An address inside this function's own code: certainly in .text.
    let target = write_text as *const () as u64;
    // SAFETY: deliberately invalid: .text is mapped read-only (W^X), so the
    // store faults and the exception handler prints the report and stops.
    // Were it writable, the store would put the word already there back
    // unchanged (it stores the word it just loaded).
    unsafe {
        core::arch::asm!(
            "ldr {v:w}, [{a}]",
            "str {v:w}, [{a}]",
            a = in(reg) target,
            v = out(reg) _,
            options(nostack)
        )
    };
    Err(CmdError::msg(format_args!(
        "stored into .text at 0x{target:x}: .text is writable"
    )))
}
