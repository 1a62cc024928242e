//! Console torture on QEMU: thousands of random and malformed lines (binary
//! bytes, huge numbers, 10 KB lines, every command from `help` with wrong
//! arity or garbage arguments), then the loader must still be at `=> ` and
//! answer `version`.
//!
//! Seeded and bounded: `TORTURE_SEED` (default fixed), `TORTURE_LINES`
//! (default 3000) and `TORTURE_SECS` (default 90, a wall-clock cap) set a
//! run; a long run is e.g. `TORTURE_LINES=100000 TORTURE_SECS=3600 cargo
//! test -p qemu-tests --test torture`. The seed and the number of lines
//! sent are printed.
//!
//! Commands that legitimately end the session or poke state (`reset`,
//! `poweroff`, `boot`, `booti`, `mw`, `blob`, the debug `crash`) only get forms their argument
//! checks refuse; `md` only reads DRAM or unmapped addresses (never the
//! UART, whose receive register would eat our input); no disk is attached,
//! so `provision` and `mmc` have nothing to change.

use qemu_tests::{Qemu, QemuOpts, loader_image};
use std::time::{Duration, Instant};

/// xorshift64*: small, seedable, good enough to pick inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One argument: garbage, a huge number, a small number or a DRAM address.
fn token(r: &mut Rng) -> String {
    match r.below(9) {
        0 => "zz".into(),
        1 => "-1".into(),
        2 => "0x".into(),
        3 => "99999999999999999999999999999999".into(),
        4 => "0x1ffffffffffffffff".into(),
        5 => format!("{:x}", r.below(0x100)),
        6 => format!("{:x}", 0x4000_0000 + r.below(0x4000_0000)),
        7 => format!("{}", r.below(1000)),
        _ => {
            let len = 1 + r.below(12);
            (0..len)
                .map(|_| char::from(0x21 + u8::try_from(r.below(0x5e)).unwrap()))
                .filter(|&c| c != '"')
                .collect()
        }
    }
}

/// A token that is never a valid number in any base the loader parses.
fn garbage(r: &mut Rng) -> &'static str {
    r.pick(&["zz", "-1", "0x", "+1", "1ffffffffffffffff", "0xg", "x"])
}

fn words(r: &mut Rng, n: u64) -> String {
    (0..n).map(|_| token(r)).collect::<Vec<_>>().join(" ")
}

/// A command line for `name` that its argument checks refuse (for the
/// dangerous ones) or random arguments (for the rest).
/// Between `lo` and `lo + span - 1` random words.
fn words_in(r: &mut Rng, lo: u64, span: u64) -> String {
    let n = lo + r.below(span);
    words(r, n)
}

fn command_line(r: &mut Rng, name: &str) -> String {
    let suffix = r.pick(&["", "", ".b", ".w", ".l", ".q", ".x", "."]);
    match name {
        // No arguments accepted: any argument is refused.
        "reset" | "poweroff" | "boot" => format!("{name} {}", words_in(r, 1, 5)),
        // `crash WHAT` (debug builds) stops the loader: no argument, two or
        // more, or an unknown WHAT.
        "crash" => match r.below(3) {
            0 => name.to_string(),
            1 => format!("{name} {}", words_in(r, 2, 4)),
            _ => format!("{name} {}", garbage(r)),
        },
        // Exactly three: send 0-2 or 4-7.
        "booti" => {
            let n = [0, 1, 2, 4, 5, 6, 7][usize::try_from(r.below(7)).unwrap()];
            format!("{name} {}", words(r, n))
        }
        // 2-3 arguments: too few, too many, or an unparseable one.
        "mw" => match r.below(3) {
            0 => format!("{name}{suffix} {}", words_in(r, 0, 2)),
            1 => format!("{name}{suffix} {}", words_in(r, 4, 4)),
            _ => format!(
                "{name}{suffix} {} {}",
                garbage(r),
                if r.below(2) == 0 {
                    token(r)
                } else {
                    garbage(r).into()
                }
            ),
        },
        // blob enc|dec with 4 or 5 numbers: give fewer, more, or garbage.
        "blob" => {
            let sub = r.pick(&["enc", "dec", "x", ""]);
            let n = [0, 1, 2, 3, 6, 7][usize::try_from(r.below(6)).unwrap()];
            format!("{name} {sub} {}", words(r, n))
        }
        // Reads only: DRAM or unmapped addresses, small counts.
        "md" => {
            let addr = match r.below(4) {
                0 => format!("{:x}", 0x4000_0000 + r.below(0x4000_0000)),
                1 => format!("{:x}", r.next() | 0x1_0000_0000),
                2 => garbage(r).into(),
                _ => "".into(),
            };
            let count = match r.below(4) {
                0 => format!("{:x}", r.below(0x40)),
                1 => garbage(r).into(),
                2 => words_in(r, 2, 3),
                _ => "".into(),
            };
            format!("{name}{suffix} {addr} {count}")
        }
        _ => {
            let sub = r.pick(&[
                "", "info", "read", "write", "erase", "sign", "pubk", "status", "verify", "dev",
                "part", "list", "rescan", "mode", "enc", "dec",
            ]);
            format!("{name} {sub} {}", words_in(r, 0, 8))
        }
    }
}

/// Bytes of one malformed line, CR-terminated.
fn malformed_line(r: &mut Rng, names: &[String]) -> Vec<u8> {
    let mut line = match r.below(16) {
        // Binary bytes, any value (control characters included).
        0..=3 => (0..r.below(300))
            .map(|_| u8::try_from(r.below(256)).unwrap())
            .collect(),
        // A 10 KB line of printable text.
        4 => (0..10 * 1024)
            .map(|_| 0x20 + u8::try_from(r.below(0x5f)).unwrap())
            .collect(),
        // Huge numbers and unbalanced quotes.
        5 | 6 => format!(
            "{} {} \"{}",
            r.pick(&["echo", "md", "fuse read", "mfgprot sign", "help"]),
            "9".repeat(usize::try_from(1 + r.below(400)).unwrap()),
            words_in(r, 0, 4)
        )
        .into_bytes(),
        // Too many words.
        7 => format!("echo {}", words_in(r, 16, 20)).into_bytes(),
        // Unknown commands.
        8 | 9 => format!("{} {}", token(r), words_in(r, 0, 3)).into_bytes(),
        // Every command, wrong arity or garbage.
        _ => {
            let name = &names[usize::try_from(r.below(names.len() as u64)).unwrap()];
            command_line(r, name).into_bytes()
        }
    };
    line.push(b'\r');
    line
}

#[test]
fn console_survives_thousands_of_malformed_lines() {
    let seed = env_u64("TORTURE_SEED", 0x1A2B_3C4D_5E6F_7081);
    let max_lines = env_u64("TORTURE_LINES", 3000);
    let budget = Duration::from_secs(env_u64("TORTURE_SECS", 90));
    let mut r = Rng(seed | 1);

    let (mut q, _) =
        Qemu::boot_to_prompt(QemuOpts::new(loader_image())).expect("QEMU boots to its prompt");
    let help = q.run("help").expect("help answers");
    let names: Vec<String> = help
        .lines()
        .filter(|l| l.contains(" - "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    for expected in ["md", "mw", "reset", "version", "help"] {
        assert!(
            names.iter().any(|n| n == expected),
            "`help` does not list {expected}: {help:?}"
        );
    }

    let start = Instant::now();
    let mut sent = 0u64;
    let mut bytes = 0usize;
    let mut batch = 0u64;
    let mut seen = 0usize;
    while sent < max_lines && start.elapsed() < budget {
        // A batch of lines, then a marker proving the shell took them all.
        let n = 1 + r.below(12);
        let mut chunk = Vec::new();
        for _ in 0..n {
            chunk.extend(malformed_line(&mut r, &names));
        }
        // Ctrl-U clears whatever a binary line left half-typed.
        chunk.extend_from_slice(b"\x15");
        bytes += chunk.len();
        q.send_raw(&chunk).expect("console accepts input");
        sent += n;
        batch += 1;
        // `echo` prints the marker on a line of its own, then the prompt:
        // earlier prompts (one per malformed line) cannot match this.
        let marker = format!("SYNC-{batch}");
        q.send_line(&format!("echo {marker}"))
            .expect("console accepts input");
        q.wait_for(&format!("\n{marker}\r\n=> "), Duration::from_secs(60))
            .unwrap_or_else(|e| {
                panic!("shell lost after {sent} lines (seed {seed:#x}, batch {batch}): {e}")
            });
        // Only what arrived since the last batch: no crash report, no panic.
        let all = q.console_bytes();
        let recent = &all[seen..];
        seen = all.len();
        for bad in [&b"*** EXCEPTION"[..], b"loader stopped", b"panicked"] {
            assert!(
                !recent.windows(bad.len()).any(|w| w == bad),
                "`{}` on the console after {sent} lines (seed {seed:#x})",
                String::from_utf8_lossy(bad)
            );
        }
    }
    eprintln!(
        "torture: seed {seed:#x}: {sent} lines ({bytes} bytes) in {batch} batches, {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        sent >= 1000.min(max_lines),
        "only {sent} lines sent in the time budget"
    );
    let v = q.run("version").expect("version answers");
    assert!(
        v.contains(env!("CARGO_PKG_VERSION")),
        "version printed {v:?}"
    );
}
