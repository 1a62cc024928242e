//! `cargo xtask bench`: deterministic instruction counts and image sizes.
//!
//! Every measurement is a [`Row`]; later issues add rows by pushing more of
//! them in [`bench`] (or in a function it calls). The table goes to stdout,
//! the same rows as JSON to `target/bench/bench.json`.

use crate::args::{Board, BuildOpts};
use crate::prereq::{self, Need};
use crate::{Result, build, image};
use qemu_tests::{Qemu, QemuOpts, bench_marks};
use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, Instant};

/// How a measured value is judged.
#[derive(Clone, Copy, PartialEq, Debug)]
#[allow(dead_code, reason = "AtMost/Above are for the rows later issues add")]
pub enum Goal {
    /// The value must be below this.
    Below(f64),
    /// The value must be at most this.
    AtMost(f64),
    /// The value must be above this.
    Above(f64),
}

impl Goal {
    /// Whether `v` meets the goal.
    pub fn met(self, v: f64) -> bool {
        match self {
            Goal::Below(g) => v < g,
            Goal::AtMost(g) => v <= g,
            Goal::Above(g) => v > g,
        }
    }

    fn text(self) -> String {
        match self {
            Goal::Below(g) => format!("< {}", num(g)),
            Goal::AtMost(g) => format!("<= {}", num(g)),
            Goal::Above(g) => format!("> {}", num(g)),
        }
    }
}

/// One benchmark result.
#[derive(Clone, PartialEq, Debug)]
pub struct Row {
    /// Group, e.g. `boot`, `console`, `image/qemu`.
    pub group: String,
    /// What was measured.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit, e.g. `instructions`, `bytes`.
    pub unit: String,
    /// The goal, if the issue sets one.
    pub goal: Option<Goal>,
}

impl Row {
    /// A row without a goal.
    pub fn new(group: &str, name: &str, value: f64, unit: &str) -> Self {
        Self {
            group: group.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            goal: None,
        }
    }

    /// Sets the goal.
    pub fn goal(mut self, g: Goal) -> Self {
        self.goal = Some(g);
        self
    }

    /// `Some(true/false)` when there is a goal.
    pub fn met(&self) -> Option<bool> {
        self.goal.map(|g| g.met(self.value))
    }
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Renders the rows as an aligned text table.
pub fn table(rows: &[Row]) -> String {
    let head = ["group", "name", "value", "unit", "goal", "ok"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.group.clone(),
                r.name.clone(),
                num(r.value),
                r.unit.clone(),
                r.goal.map(Goal::text).unwrap_or_default(),
                match r.met() {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let mut w = head.map(str::len);
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.len());
        }
    }
    let mut out = String::new();
    let mut line = |c: &[String]| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {:<w4$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        );
    };
    line(&head.map(String::from));
    for c in &cells {
        line(c);
    }
    out.trim_end_matches('\n')
        .lines()
        .fold(String::new(), |mut acc, l| {
            acc.push_str(l.trim_end());
            acc.push('\n');
            acc
        })
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", u32::from(c));
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Renders the rows as JSON: `{"rows": [{group, name, value, unit, goal, met}]}`.
pub fn json(rows: &[Row]) -> String {
    let mut o = String::from("{\n  \"rows\": [\n");
    for (i, r) in rows.iter().enumerate() {
        let goal = match r.goal {
            None => "null".to_string(),
            Some(g) => {
                let (op, v) = match g {
                    Goal::Below(v) => ("<", v),
                    Goal::AtMost(v) => ("<=", v),
                    Goal::Above(v) => (">", v),
                };
                format!("{{\"op\": {}, \"value\": {}}}", json_str(op), num(v))
            }
        };
        let met = match r.met() {
            None => "null",
            Some(true) => "true",
            Some(false) => "false",
        };
        let _ = writeln!(
            o,
            "    {{\"group\": {}, \"name\": {}, \"value\": {}, \"unit\": {}, \"goal\": {goal}, \
             \"met\": {met}}}{}",
            json_str(&r.group),
            json_str(&r.name),
            num(r.value),
            json_str(&r.unit),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    o.push_str("  ]\n}\n");
    o
}

/// Goal for reset to prompt (issue 2).
pub const PROMPT_GOAL: f64 = 200_000.0;
/// Goal for the production EVK image (issue 2).
pub const EVK_PRODUCTION_GOAL: f64 = 48.0 * 1024.0;
/// Commands in the scripted session.
pub const SESSION_COMMANDS: usize = 1000;
/// A RAM scratch address for the session's md/mw (1 GiB of RAM, far from the loader).
const SCRATCH: u32 = 0x5000_0000;

/// The i-th command of the scripted session: a fixed mix of the console's
/// cheap and costly commands.
pub fn session_command(i: usize) -> String {
    let addr = SCRATCH + u32::try_from(i % 64).unwrap_or(0) * 4;
    match i % 5 {
        0 => "version".into(),
        1 => format!("mw.l {addr:x} {:x}", 0x1000_0000 + i),
        2 => format!("md.l {addr:x} 4"),
        3 => format!("echo bench {i}"),
        _ => "help".into(),
    }
}

fn defmt_marks(q: &Qemu, want_cmds: usize, timeout: Duration) -> Result<Vec<(String, u64)>> {
    // The last command's mark can trail its prompt: poll briefly.
    let deadline = Instant::now() + timeout;
    loop {
        let marks = bench_marks(&q.defmt_log()?);
        let cmds = marks.iter().filter(|(n, _)| n == "cmd").count();
        if cmds >= want_cmds || Instant::now() >= deadline {
            return Ok(marks);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mark(marks: &[(String, u64)], name: &str) -> Result<u64> {
    marks
        .iter()
        .find(|(n, _)| n == name)
        .map(|m| m.1)
        .ok_or_else(|| format!("the defmt log has no `bench {name}=` line").into())
}

/// Boot and console rows, measured under `-icount shift=0,sleep=off`.
fn boot_rows(out: &build::Outputs, rows: &mut Vec<Row>) -> Result<()> {
    let mut q = Qemu::boot(QemuOpts::new(&out.bin).elf(&out.elf).icount(true))?;
    q.wait_prompt()?;
    let marks = defmt_marks(&q, 0, Duration::ZERO)?;
    let first = mark(&marks, "first_console_byte")?;
    let prompt = mark(&marks, "prompt")?;
    rows.push(Row::new(
        "boot",
        "reset -> first console byte",
        first as f64,
        "instructions",
    ));
    rows.push(
        Row::new("boot", "reset -> prompt", prompt as f64, "instructions")
            .goal(Goal::Below(PROMPT_GOAL)),
    );
    let started = Instant::now();
    for i in 0..SESSION_COMMANDS {
        q.run(&session_command(i))?;
    }
    let wall = started.elapsed();
    let marks = defmt_marks(&q, SESSION_COMMANDS, Duration::from_secs(5))?;
    let cmds: Vec<u64> = marks
        .iter()
        .filter(|(n, _)| n == "cmd")
        .map(|m| m.1)
        .collect();
    if cmds.len() != SESSION_COMMANDS {
        return Err(format!(
            "expected {SESSION_COMMANDS} `bench cmd=` lines, the defmt log has {}",
            cmds.len()
        )
        .into());
    }
    let total: u64 = cmds.iter().sum();
    rows.push(Row::new(
        "console",
        &format!("{SESSION_COMMANDS}-command session"),
        total as f64,
        "instructions",
    ));
    rows.push(Row::new(
        "console",
        "per command (mean)",
        total as f64 / SESSION_COMMANDS as f64,
        "instructions",
    ));
    eprintln!("xtask: {SESSION_COMMANDS}-command session took {wall:.1?} wall");
    q.send_line("poweroff")?;
    let _ = q.wait_exit(Duration::from_secs(10));
    Ok(())
}

/// Goal: ADMA2 multi-block write at most this fraction of single-block PIO (issue 3).
pub const ADMA2_VS_PIO_GOAL: f64 = 1.0 / 20.0;
/// Goal: ADMA2 multi-block write instructions per MiB (issue 3).
pub const ADMA2_PER_MIB_GOAL: f64 = 20_000.0;
/// The bench disk (a power of two, as QEMU's SD card wants).
const BENCH_DISK_BYTES: u64 = 32 << 20;
/// Blocks per MiB.
const MIB_BLOCKS: u32 = 2048;

/// Runs `cmds` in one QEMU session (booted by `opts`, icount on) and
/// returns the `bench cmd=` count of each, in order.
fn session_counts(opts: QemuOpts, cmds: &[String]) -> Result<Vec<u64>> {
    let mut q = Qemu::boot(opts.icount(true))?;
    q.wait_prompt()?;
    let before = defmt_marks(&q, 0, Duration::ZERO)?
        .iter()
        .filter(|(n, _)| n == "cmd")
        .count();
    for c in cmds {
        let out = q.run_timeout(c, Duration::from_secs(300))?;
        // Every measured command must have succeeded: a refused command
        // would be measured as cheap.
        let failed = out.contains("ERROR")
            || out.contains(": refused")
            || out
                .lines()
                .any(|l| l.starts_with(&format!("{}: ", c.split(' ').next().unwrap_or_default())));
        if failed {
            return Err(format!("bench command `{c}` failed: {out}").into());
        }
    }
    let want = before + cmds.len();
    let marks = defmt_marks(&q, want, Duration::from_secs(5))?;
    let counts: Vec<u64> = marks
        .iter()
        .filter(|(n, _)| n == "cmd")
        .map(|m| m.1)
        .skip(before)
        .collect();
    q.send_line("poweroff")?;
    let _ = q.wait_exit(Duration::from_secs(10));
    if counts.len() != cmds.len() {
        return Err(format!(
            "expected {} `bench cmd=` lines after boot, the defmt log has {}",
            cmds.len(),
            counts.len()
        )
        .into());
    }
    Ok(counts)
}

/// The storage commands measured by [`storage_rows`]: `mmc rescan`, then
/// for each mode a `mmc mode`, a 1 MiB write and a 1 MiB read.
pub fn storage_commands() -> (Vec<String>, [(&'static str, &'static str); 4]) {
    let modes = [
        ("adma2", "multi"),
        ("adma2", "single"),
        ("pio", "multi"),
        ("pio", "single"),
    ];
    let mut cmds = vec!["mmc rescan".to_string()];
    for (i, (mode, blocks)) in modes.iter().enumerate() {
        let lba = u32::try_from(i).unwrap_or(0) * MIB_BLOCKS;
        cmds.push(format!("mmc mode {mode} {blocks}"));
        cmds.push(format!("mmc write {SCRATCH:x} {lba:x} {MIB_BLOCKS:x}"));
        cmds.push(format!("mmc read {SCRATCH:x} {lba:x} {MIB_BLOCKS:x}"));
    }
    (cmds, modes)
}

/// Storage rows (issue 3): instructions per MiB written and read in each
/// transfer mode (a whole 1 MiB `mmc write`/`mmc read` command, console
/// overhead included), and card initialisation (`mmc rescan`).
fn storage_rows(out: &build::Outputs, rows: &mut Vec<Row>) -> Result<()> {
    let dir = qemu_tests::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let disk = dir.join("bench-disk.img");
    fs::File::create(&disk)?.set_len(BENCH_DISK_BYTES)?;
    let (cmds, modes) = storage_commands();
    let opts = QemuOpts::new(&out.bin).elf(&out.elf).disk(&disk);
    let c = session_counts(opts, &cmds)?;
    rows.push(Row::new(
        "storage",
        "card init (mmc rescan)",
        c[0] as f64,
        "instructions",
    ));
    let mut write = Vec::new();
    for (i, (mode, blocks)) in modes.iter().enumerate() {
        let (w, r) = (c[2 + 3 * i] as f64, c[3 + 3 * i] as f64);
        write.push(w);
        let mut wr = Row::new(
            "storage",
            &format!("write {mode} {blocks}-block"),
            w,
            "instructions/MiB",
        );
        if i == 0 {
            wr = wr.goal(Goal::Below(ADMA2_PER_MIB_GOAL));
        }
        rows.push(wr);
        rows.push(Row::new(
            "storage",
            &format!("read {mode} {blocks}-block"),
            r,
            "instructions/MiB",
        ));
    }
    rows.push(
        Row::new(
            "storage",
            "write adma2 multi / pio single",
            write[0] / write[3],
            "ratio",
        )
        .goal(Goal::AtMost(ADMA2_VS_PIO_GOAL)),
    );
    Ok(())
}

/// The CAAM commands measured by [`caam_rows`].
pub fn caam_commands() -> Vec<String> {
    let msg = SCRATCH;
    let km = SCRATCH + 0x1000;
    let blob = SCRATCH + 0x2000;
    let plain = SCRATCH + 0x4000;
    vec![
        format!("mw.l {msg:x} 600dcafe 400"),
        format!("mw.l {km:x} 4b4d4b4d 4"),
        // 2: sign 32 bytes.
        format!("mfgprot sign {msg:x} 32"),
        // 3, 4: encapsulate 64 B and 4 KiB.
        format!("blob enc {msg:x} {blob:x} 40 {km:x}"),
        format!("blob enc {msg:x} {blob:x} 1000 {km:x}"),
        // 5: decapsulate the 4 KiB blob.
        format!("blob dec {blob:x} {plain:x} 1000 {km:x}"),
        // 6, 7: 16 trapped reads (TRNG registers) vs 16 RAM reads.
        "md.l 30900600 10".into(),
        format!("md.l {msg:x} 10"),
    ]
}

/// CAAM rows (issue 4). On QEMU the CAAM model runs inside the guest's
/// data-abort handler, so these counts include the model's software crypto;
/// the per-access trap overhead is reported on its own row.
fn caam_rows(out: &build::Outputs, rows: &mut Vec<Row>) -> Result<()> {
    let dir = qemu_tests::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let fuses = dir.join("bench-chip.fuses");
    let chip = qemu_tests::chip(*b"bench-chip-uid-1", [0x5a; 32]);
    fs::write(&fuses, chip.to_bytes())?;
    let opts = QemuOpts::new(&out.bin).elf(&out.elf).fuses(&fuses);
    let c = session_counts(opts, &caam_commands())?;
    let f = |i: usize| c[i] as f64;
    rows.push(Row::new(
        "caam",
        "mfgprot sign (32 B)",
        f(2),
        "instructions",
    ));
    rows.push(Row::new("caam", "blob enc 64 B", f(3), "instructions"));
    rows.push(Row::new("caam", "blob enc 4 KiB", f(4), "instructions"));
    rows.push(Row::new("caam", "blob dec 4 KiB", f(5), "instructions"));
    rows.push(Row::new(
        "caam",
        "trapped register read (overhead)",
        (f(6) - f(7)) / 16.0,
        "instructions/access",
    ));
    Ok(())
}

/// Goal for the loader's own work before Linux (issue 7).
pub const LINUX_LOADER_GOAL: f64 = 1_000_000.0;

/// Instructions `linux_enter` executes after the `bench linux_entry` mark
/// up to the kernel's first instruction: 82 fixed ones (loader/src/arch) plus
/// 4 per 16 scrubbed bytes.
pub fn linux_enter_instructions(scrub_bytes: u64) -> u64 {
    82 + scrub_bytes / 16 * 4
}

/// Linux handoff rows (issue 7): a chip provisions from a disk image with
/// Debian's kernel (first boot, not measured), then a second boot of the
/// already-provisioned device runs under `-icount shift=0,sleep=off` to
/// the kernel's entry. The loader's own work excludes the autoboot
/// countdown (a busy poll: 1 s of virtual time is ~10^9 instructions under
/// icount), the read of the Image from the eMMC and its move into place.
fn linux_rows(out: &build::Outputs, rows: &mut Vec<Row>) -> Result<()> {
    let s = qemu_tests::linux::provision_disk("bench", &out.bin)?;
    let opts = QemuOpts::new(&out.bin)
        .elf(&out.elf)
        .fuses(&s.fuses)
        .disk(&s.disk)
        .no_reboot(true);
    {
        let mut q = Qemu::boot(opts.clone())?;
        q.wait_for("Starting kernel ...", Duration::from_secs(300))?;
    }
    let mut q = Qemu::boot(opts.icount(true))?;
    q.wait_for("Starting kernel ...", Duration::from_secs(600))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let marks = loop {
        let m = bench_marks(&q.defmt_log()?);
        if m.iter().any(|(n, _)| n == "linux_entry") || Instant::now() >= deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(q);
    let _ = fs::remove_dir_all(&s.dir);
    let m = |n: &str| mark(&marks, n);
    let entry = m("linux_entry")? + linux_enter_instructions(m("linux_scrub_bytes")?);
    let (wait, read, moved) = (
        m("autoboot_wait")?,
        m("linux_image_read")?,
        m("linux_image_move")?,
    );
    let clean = m("linux_image_clean")?;
    for (name, v) in [
        ("reset -> kernel entry (provisioned)", entry),
        ("reset -> autoboot countdown", m("autoboot_start")?),
        ("autoboot countdown (busy poll, 1 s)", wait),
        ("load partitions (all eMMC reads)", m("linux_load")?),
        ("Image read from eMMC", read),
        ("provisioning summary for /chosen", m("linux_summary")?),
        ("DTB copy and fix-up", m("linux_fdt")?),
        ("Image move", moved),
        ("Image cache clean to PoC", clean),
    ] {
        rows.push(Row::new("linux", name, v as f64, "instructions"));
    }
    let own = entry.saturating_sub(wait + read + moved);
    rows.push(
        Row::new(
            "linux",
            "loader's own work (excl. countdown, Image read/move)",
            own as f64,
            "instructions",
        )
        .goal(Goal::Below(LINUX_LOADER_GOAL)),
    );
    rows.push(Row::new(
        "linux",
        "same, also excl. the Image cache clean",
        own.saturating_sub(clean) as f64,
        "instructions",
    ));
    Ok(())
}

/// Goal for the FIT configuration signature check (issue 14).
pub const FIT_SIGNATURE_GOAL: f64 = 2_000_000.0;
// Issue 14 asks for image hashing at <= 1 instruction per byte; the
// SHA-256 instructions need at least 72 per 64-byte block (16 x ADD K,
// SHA256H, SHA256H2 plus 12 x SHA256SU0, SHA256SU1) = 1.125 per byte, so
// that goal cannot be met; the row has none and docs/verified-boot.md
// gives the figure.

/// Verified-boot rows (issue 14): the Debian kernel, DTB and initramfs in
/// a FIT signed with the development key; a development QEMU build boots
/// it from the `boot` partition (as production does). Measured under
/// `-icount` on the second boot of the provisioned chip.
fn fit_rows(out: &build::Outputs, rows: &mut Vec<Row>) -> Result<()> {
    let s = qemu_tests::linux::provision_disk_signed("bench-fit", &out.bin)?;
    let opts = QemuOpts::new(&out.bin)
        .elf(&out.elf)
        .fuses(&s.fuses)
        .disk(&s.disk)
        .no_reboot(true);
    {
        let mut q = Qemu::boot(opts.clone())?;
        q.wait_for("Starting kernel ...", Duration::from_secs(300))?;
    }
    let mut q = Qemu::boot(opts.icount(true))?;
    q.wait_for("Starting kernel ...", Duration::from_secs(600))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let marks = loop {
        let m = bench_marks(&q.defmt_log()?);
        if m.iter().any(|(n, _)| n == "fit_hashed_bytes") || Instant::now() >= deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(q);
    let _ = fs::remove_dir_all(&s.dir);
    let m = |n: &str| mark(&marks, n);
    let (sig, hash, bytes) = (m("fit_signature")?, m("fit_hash")?, m("fit_hashed_bytes")?);
    rows.push(Row::new(
        "fit",
        "FIT read from eMMC",
        m("fit_read")? as f64,
        "instructions",
    ));
    rows.push(
        Row::new(
            "fit",
            "configuration signature (signed regions SHA-256 + P-256 verify)",
            sig as f64,
            "instructions",
        )
        .goal(Goal::Below(FIT_SIGNATURE_GOAL)),
    );
    rows.push(Row::new(
        "fit",
        "image hashes (SHA-256 of kernel, DTB, initramfs) + load checks",
        hash as f64,
        "instructions",
    ));
    rows.push(Row::new("fit", "FIT size", bytes as f64, "bytes"));
    rows.push(Row::new(
        "fit",
        "image hashing per FIT byte",
        hash as f64 / bytes.max(1) as f64,
        "instructions/byte",
    ));
    Ok(())
}

/// Section and image size rows for one build.
fn size_rows(opts: &BuildOpts, out: &build::Outputs, rows: &mut Vec<Row>) -> Result<()> {
    let elf = fs::read(&out.elf)?;
    let s = image::section_sizes(&elf)?;
    let group = format!("image/{}", opts.out_name());
    for (name, v) in [
        (".text", s.text),
        (".rodata", s.rodata),
        (".data", s.data),
        (".bss", s.bss),
        ("stacks and other NOBITS", s.other_nobits),
    ] {
        rows.push(Row::new(&group, name, v as f64, "bytes"));
    }
    let bin = fs::metadata(&out.bin)?.len() as f64;
    let mut r = Row::new(&group, "loader.bin", bin, "bytes");
    if opts.board == Board::Imx8mpEvk && opts.production {
        r = r.goal(Goal::Below(EVK_PRODUCTION_GOAL));
    }
    rows.push(r);
    Ok(())
}

/// Goal for the loader's own work (total - emulated CAAM) in an 8-secret
/// provisioning flow (issue 6).
pub const FLOW_8_GOAL: f64 = 2_000_000.0;

/// The `bench flow k=v ...` line of a decoded `defmt` log, as pairs.
pub fn flow_marks(log: &str) -> Option<Vec<(String, u64)>> {
    tagged_marks(log, "bench flow ")
}

/// The pairs of the first line holding `tag` followed by `k=v` words.
fn tagged_marks(log: &str, tag: &str) -> Option<Vec<(String, u64)>> {
    let line = log.lines().find(|l| l.contains(tag))?;
    let rest = &line[line.find(tag)? + tag.len()..];
    let mut out = Vec::new();
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=')?;
        let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
        out.push((k.to_string(), digits.parse().ok()?));
    }
    Some(out)
}

/// The provisioning cases: (row group, secrets as (name, length)).
fn flow_cases() -> Vec<(String, Vec<(String, usize)>)> {
    let n64 = |n: usize| -> Vec<(String, usize)> {
        (0..n).map(|i| (format!("secret-{i:02}"), 64)).collect()
    };
    vec![
        ("flow/1x64B".into(), n64(1)),
        ("flow/8x64B".into(), n64(8)),
        ("flow/64x64B".into(), n64(64)),
        (
            "flow/1x64KiB".into(),
            vec![("big-secret".into(), 64 * 1024)],
        ),
    ]
}

/// Provisioning-flow rows: a fresh chip provisions at boot under `-icount`
/// with 1, 8 and 64 secrets of 64 bytes and one of 64 KiB. The steps
/// include the eMMC I/O and emulated-CAAM work done inside them; `eMMC
/// I/O` and `emulated CAAM/OCOTP` are those parts over the whole flow, and
/// `loader's own work` is the total without the emulation.
fn flow_rows(out: &build::Outputs, rows: &mut Vec<Row>) -> Result<()> {
    use qemu_tests::mfg;
    let dir = qemu_tests::target_dir().join("bench/flow");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let chip = qemu_tests::chip(*b"bench-flow-chip1", [0x3c; 32]);
    let fuses = dir.join("chip.fuses");
    fs::write(&fuses, chip.to_bytes())?;
    let mfgtool = |args: &[&str]| -> Result<()> {
        let o = mfg::mfgtool(args).map_err(|e| format!("cannot run mfgtool: {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!(
                "mfgtool {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr)
            )
            .into())
        }
    };
    let mut q = Qemu::boot(QemuOpts::new(&out.bin).elf(&out.elf).fuses(&fuses))?;
    q.wait_prompt()?;
    let pubk = q.run("mfgprot pubk")?;
    q.send_line("poweroff")?;
    let _ = q.wait_exit(Duration::from_secs(10));
    drop(q);
    let pubk_file = dir.join("pubk.txt");
    fs::write(&pubk_file, &pubk)?;
    let p = |x: &std::path::Path| x.display().to_string();
    for (group, secrets) in flow_cases() {
        let case = dir.join(group.replace('/', "-"));
        fs::create_dir_all(&case)?;
        let mut manifest = String::new();
        for (i, (name, len)) in secrets.iter().enumerate() {
            let data: Vec<u8> = (0..*len)
                .map(|j| u8::try_from((i * 131 + j * 7 + 1) % 251).unwrap_or(0))
                .collect();
            fs::write(case.join(format!("{name}.bin")), data)?;
            let _ = write!(
                manifest,
                "[[secret]]\nname = \"{name}\"\nfile = \"{name}.bin\"\ntype = \"opaque\"\n\n"
            );
        }
        fs::write(case.join("secrets.toml"), manifest)?;
        let bundle = case.join("bundle.bin");
        let img = case.join("disk.img");
        mfgtool(&[
            "seal",
            "--mp-pubkey",
            &p(&pubk_file),
            "--secrets",
            &p(&case.join("secrets.toml")),
            "--product",
            "imx8mp-demo",
            "-o",
            &p(&bundle),
        ])?;
        mfgtool(&[
            "image",
            "-o",
            &p(&img),
            "--size",
            "32M",
            "--bundle",
            &p(&bundle),
        ])?;
        let mut q = Qemu::boot(
            QemuOpts::new(&out.bin)
                .elf(&out.elf)
                .fuses(&fuses)
                .disk(&img)
                .icount(true),
        )?;
        let banner = q.wait_prompt_timeout(Duration::from_secs(120))?;
        if !banner.contains("provision: device provisioned") {
            return Err(format!("{group}: the flow did not provision:\n{banner}").into());
        }
        q.send_line("poweroff")?;
        let _ = q.wait_exit(Duration::from_secs(10));
        let log = q.defmt_log()?;
        let marks = flow_marks(&log)
            .ok_or_else(|| format!("{group}: no `bench flow` line in the defmt log"))?;
        let emu_marks = tagged_marks(&log, "bench flowemu ")
            .ok_or_else(|| format!("{group}: no `bench flowemu` line in the defmt log"))?;
        drop(q);
        let get = |k: &str| -> Result<f64> {
            marks
                .iter()
                .find(|(n, _)| n == k)
                .map(|m| m.1 as f64)
                .ok_or_else(|| format!("{group}: `bench flow` has no {k}=").into())
        };
        let get_emu = |k: &str| -> Result<f64> {
            emu_marks
                .iter()
                .find(|(n, _)| n == k)
                .map(|m| m.1 as f64)
                .ok_or_else(|| format!("{group}: `bench flowemu` has no {k}=").into())
        };
        let (total, emu) = (get("total")?, get("emu")?);
        for (name, key) in [
            ("sign-ID", "sign"),
            ("decrypt", "decrypt"),
            ("blob", "blob"),
            ("consume", "consume"),
            ("eMMC I/O", "emmc"),
            ("emulated CAAM/OCOTP", "emu"),
            ("total", "total"),
        ] {
            rows.push(Row::new(&group, name, get(key)?, "instructions"));
        }
        for (name, key) in [
            ("sign-ID: emulated CAAM", "sign"),
            ("decrypt: emulated CAAM", "decrypt"),
            ("blob: emulated CAAM", "blob"),
        ] {
            rows.push(Row::new(&group, name, get_emu(key)?, "instructions"));
        }
        rows.push(Row::new(
            &group,
            "sign-ID: seal to the OEM record key (ECDH P-256)",
            get_emu("seal")?,
            "instructions",
        ));
        let measure = mark(&bench_marks(&log), "measure")?;
        rows.push(Row::new(
            &group,
            "boot: loader measurement for the MPMR (SHA-256)",
            measure as f64,
            "instructions",
        ));
        let mut own = Row::new(
            &group,
            "loader's own work (total - emu)",
            total - emu,
            "instructions",
        );
        if group == "flow/8x64B" {
            own = own.goal(Goal::Below(FLOW_8_GOAL));
        }
        rows.push(own);
    }
    Ok(())
}

/// Runs every benchmark, prints the table, writes the JSON.
pub fn bench() -> Result<()> {
    prereq::ensure(Need::Qemu)?;
    let builds = [
        BuildOpts::for_tests(Board::Imx8mpEvk, false),
        BuildOpts::for_tests(Board::Imx8mpEvk, true),
        BuildOpts::for_tests(Board::Qemu, false),
    ];
    let mut outs = Vec::new();
    for b in builds {
        let out = build::build(&b)?;
        outs.push((b, out));
    }
    let mut rows = Vec::new();
    let qemu = &outs[2].1;
    boot_rows(qemu, &mut rows)?;
    storage_rows(qemu, &mut rows)?;
    caam_rows(qemu, &mut rows)?;
    linux_rows(qemu, &mut rows)?;
    fit_rows(qemu, &mut rows)?;
    flow_rows(qemu, &mut rows)?;
    for (b, out) in &outs {
        size_rows(b, out, &mut rows)?;
    }
    let dir = qemu_tests::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let path = dir.join("bench.json");
    fs::write(&path, json(&rows))?;
    print!("{}", table(&rows));
    println!("JSON: {}", path.display());
    let missed: Vec<&Row> = rows.iter().filter(|r| r.met() == Some(false)).collect();
    if missed.is_empty() {
        Ok(())
    } else {
        for r in &missed {
            eprintln!("xtask: goal missed: {} {}", r.group, r.name);
        }
        Err(format!("{} goal(s) missed", missed.len()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row::new("boot", "reset -> prompt", 150_000.0, "instructions")
                .goal(Goal::Below(PROMPT_GOAL)),
            Row::new(
                "image/imx8mp-evk-production",
                "loader.bin",
                50_000.0,
                "bytes",
            )
            .goal(Goal::Below(EVK_PRODUCTION_GOAL)),
            Row::new("console", "per \"cmd\"", 12.5, "instructions"),
        ]
    }

    #[test]
    fn goals_are_judged() {
        let r = rows();
        assert_eq!(r[0].met(), Some(true));
        assert_eq!(r[1].met(), Some(false));
        assert_eq!(r[2].met(), None);
        assert!(Goal::AtMost(5.0).met(5.0));
        assert!(!Goal::Below(5.0).met(5.0));
        assert!(Goal::Above(1.0).met(2.0));
    }

    #[test]
    fn table_shows_values_goals_and_verdicts() {
        let t = table(&rows());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("group"));
        assert!(
            lines[1].contains("150000")
                && lines[1].contains("< 200000")
                && lines[1].ends_with("yes")
        );
        assert!(lines[2].contains("< 49152") && lines[2].ends_with("NO"));
        assert!(lines[3].contains("12.50"));
    }

    #[test]
    fn json_is_well_formed_and_escaped() {
        let j = json(&rows());
        assert!(j.contains(
            "{\"group\": \"boot\", \"name\": \"reset -> prompt\", \"value\": 150000, \"unit\": \
             \"instructions\", \"goal\": {\"op\": \"<\", \"value\": 200000}, \"met\": true},"
        ));
        assert!(j.contains("\"name\": \"per \\\"cmd\\\"\""));
        assert!(j.contains("\"goal\": null, \"met\": null}\n  ]"));
        assert_eq!(j.matches('{').count(), j.matches('}').count());
    }

    #[test]
    fn storage_bench_moves_one_mib_per_mode_in_separate_ranges() {
        let (cmds, modes) = storage_commands();
        assert_eq!(cmds.len(), 1 + 3 * modes.len());
        assert_eq!(cmds[0], "mmc rescan");
        assert_eq!(cmds[1], "mmc mode adma2 multi");
        assert_eq!(cmds[2], "mmc write 50000000 0 800");
        assert_eq!(cmds[3], "mmc read 50000000 0 800");
        assert_eq!(cmds[10], "mmc mode pio single");
        assert_eq!(cmds[11], "mmc write 50000000 1800 800");
        // Four MiB fit the bench disk.
        assert!(4 * u64::from(MIB_BLOCKS) * 512 <= BENCH_DISK_BYTES);
    }

    #[test]
    fn caam_bench_indices_match_the_rows() {
        let c = caam_commands();
        assert!(c[2].starts_with("mfgprot sign "));
        assert!(c[3].starts_with("blob enc ") && c[3].contains(" 40 "));
        assert!(c[4].starts_with("blob enc ") && c[4].contains(" 1000 "));
        assert!(c[5].starts_with("blob dec ") && c[5].contains(" 1000 "));
        assert_eq!(c[6], "md.l 30900600 10");
        assert_eq!(c[7], "md.l 50000000 10");
    }

    #[test]
    fn linux_enter_cost_counts_the_scrub_loop() {
        assert_eq!(linux_enter_instructions(0), 82);
        assert_eq!(linux_enter_instructions(0x8_0000), 82 + 0x8000 * 4);
    }

    #[test]
    fn parses_the_flow_line() {
        let log = "0.5 INFO flow: journal seq 1\n\
                   0.9 INFO bench flow sign=10 decrypt=20 blob=30 consume=4 emmc=5 emu=6 total=70\n";
        let m = flow_marks(log).expect("parses");
        assert_eq!(m.len(), 7);
        assert_eq!(m[0], ("sign".to_string(), 10));
        assert_eq!(m[6], ("total".to_string(), 70));
        assert!(flow_marks("bench prompt=5").is_none());
        assert!(flow_marks("bench flow sign=x").is_none());
        let e = tagged_marks("x bench flowemu sign=1 seal=2\n", "bench flowemu ").expect("emu");
        assert_eq!(e[1], ("seal".to_string(), 2));
        assert!(tagged_marks(log, "bench flowemu ").is_none());
        let cases = flow_cases();
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[1].1.len(), 8);
        assert_eq!(cases[3].1[0].1, 65_536);
    }

    #[test]
    fn session_mixes_commands_and_stays_in_scratch() {
        let cmds: Vec<String> = (0..10).map(session_command).collect();
        assert_eq!(cmds[0], "version");
        assert_eq!(cmds[1], "mw.l 50000004 10000001");
        assert_eq!(cmds[2], "md.l 50000008 4");
        assert_eq!(cmds[3], "echo bench 3");
        assert_eq!(cmds[4], "help");
        assert_eq!(
            session_command(127),
            format!("md.l {:x} 4", SCRATCH + 63 * 4)
        );
    }
}
