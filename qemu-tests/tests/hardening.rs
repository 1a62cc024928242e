//! Memory protections proven on QEMU: W^X (`.text` is read-only, the stack
//! is execute-never), the main stack's guard page, and the exception
//! stack's guard page (an overflow is reported once). The debug-only
//! `crash` command faults on purpose; the crash report must name the cause.
//! `mw` into `.text` goes through the fault-catching probe: the shell
//! reports a permission fault and survives.

use qemu_tests::{LOAD_ADDR, Qemu, QemuOpts, loader_image};
use std::path::PathBuf;
use std::time::Duration;

fn boot(image: PathBuf) -> Qemu {
    Qemu::boot_to_prompt(QemuOpts::new(image))
        .expect("QEMU boots to its prompt")
        .0
}

fn run(q: &mut Qemu, cmd: &str) -> String {
    q.run(cmd)
        .unwrap_or_else(|e| panic!("`{cmd}` did not return to the prompt: {e}"))
}

/// Runs `crash WHAT` and returns the crash report up to the final line.
fn crash_report(what: &str) -> String {
    let mut q = boot(loader_image());
    q.send_line(&format!("crash {what}")).unwrap();
    let report = q
        .wait_for("*** loader stopped ***", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("`crash {what}` gave no crash report: {e}"));
    // The loader stops: no prompt comes back.
    assert!(
        q.wait_for("=> ", Duration::from_secs(1)).is_err(),
        "the loader went on after `crash {what}`"
    );
    report
}

#[test]
fn mw_into_text_is_a_permission_fault_and_the_shell_survives() {
    let mut q = boot(loader_image());
    // 0x40200100: inside .text, just past the Image header.
    let text = LOAD_ADDR + 0x100;
    let before = run(&mut q, &format!("md.l {text:x} 4"));
    let out = run(&mut q, &format!("mw.l {text:x} 0"));
    assert!(
        out.contains(&format!("mw.l: permission fault on write at 0x{text:x}")),
        "{out:?}"
    );
    assert_eq!(
        run(&mut q, &format!("md.l {text:x} 4")),
        before,
        "text changed"
    );
    let v = run(&mut q, "version");
    assert!(v.contains(env!("CARGO_PKG_VERSION")), "{v:?}");
}

#[test]
fn crash_is_listed_as_a_debug_command() {
    let mut q = boot(loader_image());
    let help = run(&mut q, "help");
    assert!(
        help.lines()
            .any(|l| l.starts_with("crash") && l.contains("[debug]")),
        "{help}"
    );
    let out = run(&mut q, "crash sideways");
    assert!(out.contains("unknown crash 'sideways'"), "{out:?}");
    let out = run(&mut q, "crash");
    assert!(out.contains("missing argument"), "{out:?}");
}

#[test]
fn stack_overflow_hits_the_guard_page() {
    let r = crash_report("stack");
    assert!(r.contains("data abort"), "{r}");
    assert!(r.contains("fault: translation fault on "), "{r}");
    assert!(
        r.contains("cause: stack overflow (fault in the main stack's guard page)"),
        "{r}"
    );
}

/// An exception handler that overflows the exception stack: the vector
/// finds SP_EL2 below the stack, resets it, and reports once, naming the
/// handler's store into the guard page. Without that check the vector's
/// own frame store faults again and again, SP_EL2 descends through the
/// guard page onto the top of the main stack (overwriting it), and the one
/// report that comes out is about the vector's store in `exception_common`
/// (a plain "synchronous (inside the exception handler)" header).
#[test]
fn exception_stack_overflow_is_reported_once() {
    let mut q = boot(loader_image());
    q.send_line("crash estack").unwrap();
    let report = q
        .wait_for("*** loader stopped ***", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("`crash estack` gave no crash report: {e}"));
    // Anything printed after the report (a second report, a prompt).
    let after = q.wait_for("*** EXCEPTION", Duration::from_secs(2));
    assert!(after.is_err(), "more output after the report: {after:?}");
    assert_eq!(report.matches("*** EXCEPTION").count(), 1, "{report}");
    assert_eq!(
        report.matches("*** loader stopped ***").count(),
        1,
        "{report}"
    );
    assert!(
        report.contains(
            "*** EXCEPTION: synchronous (inside the exception handler), on an overflowed exception stack ***"
        ),
        "{report}"
    );
    // The fault reported is the handler's own store into the guard page.
    assert!(report.contains("EC 0x25 (data abort)"), "{report}");
    assert!(
        report.contains("fault: translation fault on write"),
        "{report}"
    );
    assert!(
        report.contains("cause: exception stack overflow"),
        "{report}"
    );
    eprintln!("{report}");
}

#[test]
fn executing_from_the_stack_is_an_instruction_abort_on_an_xn_page() {
    let r = crash_report("exec");
    assert!(r.contains("EC 0x21 (instruction abort)"), "{r}");
    assert!(
        r.contains("fault: permission fault on instruction fetch"),
        "{r}"
    );
    assert!(
        r.contains("cause: instruction abort on an XN (execute-never) page"),
        "{r}"
    );
}

#[test]
fn writing_text_without_the_probe_is_a_permission_fault() {
    let r = crash_report("write");
    assert!(r.contains("EC 0x25 (data abort)"), "{r}");
    assert!(r.contains("fault: permission fault on write"), "{r}");
    assert!(r.contains("cause: write to read-only .text"), "{r}");
}

#[test]
fn the_production_image_has_no_crash_command() {
    let mut q = boot(qemu_tests::production_loader_image());
    let help = run(&mut q, "help");
    assert!(!help.contains("crash"), "{help}");
    let out = run(&mut q, "crash stack");
    assert!(out.contains("Unknown command 'crash'"), "{out:?}");
    let v = run(&mut q, "version");
    assert!(v.contains(env!("CARGO_PKG_VERSION")), "{v:?}");
}
