//! The console on QEMU: boot, commands, line editing, every bad-input case,
//! faults, reset and poweroff.

use qemu_tests::{Qemu, QemuOpts, loader_image};
use std::time::Duration;

/// Boots the QEMU-board loader and waits for the first prompt.
fn boot() -> (Qemu, String) {
    Qemu::boot_to_prompt(QemuOpts::new(loader_image())).expect("QEMU boots to its prompt")
}

fn run(q: &mut Qemu, cmd: &str) -> String {
    q.run(cmd)
        .unwrap_or_else(|e| panic!("`{cmd}` did not return to the prompt: {e}"))
}

/// The shell is still alive: `version` answers with the loader version.
fn assert_alive(q: &mut Qemu) {
    let v = run(q, "version");
    assert!(
        v.contains(env!("CARGO_PKG_VERSION")),
        "`version` after the error printed {v:?}"
    );
}

/// U-Boot's `md` line for bytes at `addr`, `width` bytes per item.
fn md_line(addr: u64, bytes: &[u8], width: usize) -> String {
    let mut s = format!("{addr:08x}:");
    for chunk in bytes.chunks(width) {
        let mut v = [0u8; 8];
        v[..width].copy_from_slice(chunk);
        let v = u64::from_le_bytes(v);
        s.push_str(&format!(" {v:0w$x}", w = width * 2));
    }
    // A short last line is padded so the ASCII column lines up.
    let missing = (16 - bytes.len()) / width;
    s.push_str(&" ".repeat(missing * (width * 2 + 1)));
    s.push_str("    ");
    for &b in bytes {
        s.push(if (0x20..0x7f).contains(&b) {
            char::from(b)
        } else {
            '.'
        });
    }
    s
}

fn lines(out: &str) -> Vec<&str> {
    out.lines().map(|l| l.trim_end_matches('\r')).collect()
}

#[test]
fn boots_to_prompt_with_banner_and_defmt_log() {
    let (q, banner) = boot();
    assert!(
        banner.contains(env!("CARGO_PKG_VERSION")),
        "banner lacks the version: {banner:?}"
    );
    let log = q
        .wait_defmt("bench prompt=", Duration::from_secs(5))
        .expect("defmt-print decodes the log");
    let marks = qemu_tests::bench_marks(&log);
    assert!(
        marks.iter().any(|(n, v)| n == "prompt" && *v > 0),
        "no `bench prompt=` in the defmt log:\n{log}"
    );
    // The console carries no defmt frames: it is plain printable text.
    assert!(
        q.console_bytes()
            .iter()
            .all(|&b| b == b'\r' || b == b'\n' || (0x20..0x7f).contains(&b)),
        "non-text bytes on the console: {:?}",
        q.console_log()
    );
}

#[test]
fn help_lists_every_command_and_explains_one() {
    let (mut q, _) = boot();
    let out = run(&mut q, "help");
    for cmd in [
        "help", "version", "md", "mw", "bdinfo", "echo", "reset", "poweroff",
    ] {
        assert!(
            lines(&out)
                .iter()
                .any(|l| l.split_whitespace().next() == Some(cmd)),
            "`help` does not list {cmd}:\n{out}"
        );
    }
    let md = run(&mut q, "help md");
    assert!(md.contains("md"), "`help md`: {md:?}");
    assert!(
        !md.contains("poweroff"),
        "`help md` printed the whole list: {md:?}"
    );
}

#[test]
fn version_and_bdinfo() {
    let (mut q, _) = boot();
    assert_alive(&mut q);
    let bd = run(&mut q, "bdinfo");
    let field = |name: &str| {
        lines(&bd)
            .iter()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_start().trim_start_matches("= ").to_string())
            .unwrap_or_else(|| panic!("bdinfo has no {name:?} line:\n{bd}"))
    };
    assert_eq!(field("-> start"), "0x0000000040000000");
    assert_eq!(field("-> size"), "0x0000000040000000", "1 GiB of DRAM");
    assert_eq!(field("current el"), "2");
    assert_eq!(field("load addr"), "0x0000000040200000");
    assert!(field("boardname").contains("imx8mp-evk"), "{bd}");
    assert!(
        field("loader ver").ends_with(env!("CARGO_PKG_VERSION")),
        "{bd}"
    );
}

#[test]
fn echo_prints_its_arguments() {
    let (mut q, _) = boot();
    assert_eq!(run(&mut q, "echo hello   world"), "hello world\r\n");
}

#[test]
fn md_shows_the_loaded_image_in_uboot_format() {
    let image = std::fs::read(loader_image()).expect("loader image");
    let (mut q, _) = boot();
    let out = run(&mut q, "md.l 40200000 4");
    assert_eq!(lines(&out), [md_line(0x4020_0000, &image[..16], 4)]);
    let out = run(&mut q, "md.b 40200000 10");
    assert_eq!(lines(&out), [md_line(0x4020_0000, &image[..16], 1)]);
    let out = run(&mut q, "md.w 40200000 8");
    assert_eq!(lines(&out), [md_line(0x4020_0000, &image[..16], 2)]);
    let out = run(&mut q, "md.q 40200000 2");
    assert_eq!(lines(&out), [md_line(0x4020_0000, &image[..16], 8)]);
}

#[test]
fn mw_then_md_round_trips() {
    let (mut q, _) = boot();
    run(&mut q, "mw.l 50000000 deadbeef");
    let out = run(&mut q, "md.l 50000000 1");
    assert_eq!(
        lines(&out),
        [md_line(0x5000_0000, &0xdead_beefu32.to_le_bytes(), 4)]
    );
    // With a count, and bytes in memory order.
    run(&mut q, "mw.l 50000010 41424344 4");
    let out = run(&mut q, "md.b 50000010 10");
    assert_eq!(
        lines(&out),
        [md_line(0x5000_0010, &[0x44, 0x43, 0x42, 0x41].repeat(4), 1)]
    );
    run(&mut q, "mw.q 50000020 0123456789abcdef");
    run(&mut q, "mw.b 50000020 ff");
    let out = run(&mut q, "md.q 50000020 1");
    assert!(out.starts_with("50000020: 0123456789abcdff"), "{out:?}");
    // 0x prefixes are accepted as in U-Boot.
    run(&mut q, "mw.w 0x50000030 0xbeef");
    let out = run(&mut q, "md.w 0x50000030 1");
    assert!(out.starts_with("50000030: beef"), "{out:?}");
}

#[test]
fn md_prints_sixteen_bytes_per_line() {
    let image = std::fs::read(loader_image()).expect("loader image");
    let (mut q, _) = boot();
    let out = run(&mut q, "md.l 40200000 9");
    assert_eq!(
        lines(&out),
        [
            md_line(0x4020_0000, &image[..16], 4),
            md_line(0x4020_0010, &image[16..32], 4),
            md_line(0x4020_0020, &image[32..36], 4),
        ]
    );
}

#[test]
fn unknown_command() {
    let (mut q, _) = boot();
    assert_eq!(run(&mut q, "foo"), "Unknown command 'foo' - try 'help'\r\n");
    assert_alive(&mut q);
}

#[test]
fn bad_number() {
    let (mut q, _) = boot();
    for (cmd, bad) in [
        ("md.l 5000zz00", "5000zz00"),
        ("mw.l 50000000 xyz", "xyz"),
        ("md.l 50000000 -1", "-1"),
        ("md.b 0x", "0x"),
        ("md.q 1ffffffffffffffff", "1ffffffffffffffff"),
    ] {
        let name = cmd.split_whitespace().next().unwrap_or_default();
        assert_eq!(
            run(&mut q, cmd),
            format!("{name}: bad number '{bad}'\r\n"),
            "`{cmd}`"
        );
    }
    // Numbers that parse but make no sense get their own messages.
    let out = run(&mut q, "md.l 50000000 0");
    assert!(out.contains("count must be at least 1"), "{out:?}");
    let out = run(&mut q, "mw.b 50000000 100");
    assert!(out.contains("does not fit in 1 byte"), "{out:?}");
    let out = run(&mut q, "md.l 50000002 1");
    assert!(out.contains("not aligned to 4 bytes"), "{out:?}");
    assert_alive(&mut q);
}

#[test]
fn missing_or_extra_arguments_print_the_usage() {
    let (mut q, _) = boot();
    for cmd in ["md", "mw.l", "mw.l 50000000"] {
        let name = cmd.split_whitespace().next().unwrap_or_default();
        let base = name.split('.').next().unwrap_or_default();
        let out = run(&mut q, cmd);
        assert!(
            out.starts_with(&format!("{name}: missing argument\r\nUsage:\r\n{base} ")),
            "`{cmd}`: {out:?}"
        );
    }
    let out = run(&mut q, "version extra");
    assert!(
        out.starts_with("version: too many arguments\r\n"),
        "{out:?}"
    );
    let out = run(&mut q, "help nosuch");
    assert!(
        out.contains("Unknown command 'nosuch' - try 'help'"),
        "{out:?}"
    );
    assert_alive(&mut q);
}

#[test]
fn line_too_long() {
    let (mut q, _) = boot();
    let long = format!("echo {}", "a".repeat(2000));
    let out = run(&mut q, &long);
    assert_eq!(
        lines(&out),
        ["line too long (max 256 characters): ignored"],
        "the over-long line was executed or not refused"
    );
    // A line of exactly the limit still runs.
    let max = format!("echo {}", "b".repeat(256 - 5));
    assert_eq!(run(&mut q, &max), format!("{}\r\n", "b".repeat(251)));
    assert_alive(&mut q);
}

#[test]
fn non_ascii_bytes() {
    let (mut q, _) = boot();
    q.send_raw("echo caf\u{e9}\r".as_bytes()).expect("send");
    let out = q.wait_prompt().expect("prompt after non-ASCII input");
    assert_eq!(
        lines(&out),
        ["echo caf", "non-ASCII byte 0xc3 in line: ignored"],
        "non-ASCII line"
    );
    q.send_raw(&[0xff, 0x80, b'\r']).expect("send");
    let out = q.wait_prompt().expect("prompt after raw high bytes");
    assert!(out.contains("non-ASCII byte 0xff"), "{out:?}");
    assert_alive(&mut q);
}

#[test]
fn addresses_outside_ram_or_in_a_hole_are_refused() {
    let (mut q, _) = boot();
    // 1 GiB of RAM ends at 0x80000000; 0x0 (boot ROM, not mapped) is a
    // hole; the second word crosses the end of RAM; the last is past
    // every mapping.
    for (cmd, addr) in [
        ("md.l 80000000 1", "0x80000000"),
        ("mw.l 80000000 1", "0x80000000"),
        ("md.l 0 1", "0x0"),
        ("mw.b 0 1", "0x0"),
        ("md.l 7ffffffc 2", "0x80000000"),
        ("md.q ffffffffffff0000 1", "0xffffffffffff0000"),
    ] {
        let out = run(&mut q, cmd);
        assert!(
            out.contains(&format!("address {addr} is not mapped")),
            "`{cmd}`: {out:?}"
        );
        assert!(
            !out.contains("80000000:") && !out.starts_with("00000000:"),
            "`{cmd}` dumped memory outside RAM: {out:?}"
        );
    }
    assert_alive(&mut q);
}

#[test]
fn deliberate_bus_fault_is_reported_and_survived() {
    let (mut q, _) = boot();
    // No device at 0x30000000: QEMU raises a synchronous external abort.
    let out = run(&mut q, "md.l 30000000 1");
    let low = out.to_lowercase();
    assert!(
        low.contains("fault") || low.contains("abort"),
        "no fault report: {out:?}"
    );
    assert!(
        low.contains("30000000"),
        "report lacks the address: {out:?}"
    );
    assert_alive(&mut q);
    // And again: the handler is re-entrant after recovery.
    let out = run(&mut q, "mw.l 30000000 1");
    assert!(
        out.starts_with("mw.l: external abort (no device answered) on write at 0x30000000"),
        "{out:?}"
    );
    assert_alive(&mut q);
}

#[test]
fn ctrl_c_cancels_the_line() {
    let (mut q, _) = boot();
    q.send_raw(b"foo\x03").expect("send");
    let out = q.wait_prompt().expect("prompt after Ctrl-C");
    assert!(out.contains("<INTERRUPT>"), "{out:?}");
    assert!(
        !out.contains("Unknown command"),
        "Ctrl-C ran the line: {out:?}"
    );
    assert_alive(&mut q);
}

#[test]
fn ctrl_u_clears_the_line() {
    let (mut q, _) = boot();
    q.send_raw(b"foo\x15").expect("send");
    let out = run(&mut q, "version");
    assert!(
        !out.contains("Unknown command"),
        "Ctrl-U kept 'foo': {out:?}"
    );
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out:?}");
}

#[test]
fn backspace_and_delete_edit_the_line() {
    let (mut q, _) = boot();
    q.send_raw(b"versiox\x08").expect("send");
    let out = run(&mut q, "n");
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "BS: {out:?}");
    q.send_raw(b"echo abX\x7f").expect("send");
    let out = run(&mut q, "c");
    assert_eq!(out, "abc\r\n", "DEL");
    // Backspace at the start of an empty line is harmless.
    q.send_raw(b"\x08\x08").expect("send");
    assert_alive(&mut q);
}

#[test]
fn empty_line_gives_a_new_prompt() {
    let (mut q, _) = boot();
    assert_eq!(run(&mut q, ""), "");
    assert_eq!(run(&mut q, "   "), "");
    assert_alive(&mut q);
}

#[test]
fn poweroff_ends_qemu_with_status_0() {
    let (mut q, _) = boot();
    q.send_line("poweroff").expect("send");
    let status = q.wait_exit(Duration::from_secs(10)).expect("QEMU exits");
    assert!(status.success(), "QEMU exit status {status}");
}

#[test]
fn reset_reboots_to_a_second_prompt() {
    let (mut q, banner) = boot();
    run(&mut q, "mw.l 50000000 600dcafe");
    q.send_line("reset").expect("send");
    let second = q.wait_prompt().expect("second prompt after reset");
    let first_line = banner
        .lines()
        .find(|l| !l.trim().is_empty())
        .expect("banner has a line");
    assert!(
        second.contains(first_line),
        "no second banner after reset: {second:?}"
    );
    assert_alive(&mut q);
    // RAM outside the image survives a PSCI reset on QEMU.
    let out = run(&mut q, "md.l 50000000 1");
    assert!(out.starts_with("50000000: 600dcafe"), "{out:?}");
    // The machine still powers off normally afterwards.
    q.send_line("poweroff").expect("send");
    assert!(
        q.wait_exit(Duration::from_secs(10))
            .expect("exit")
            .success()
    );
}
