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

/// Section and image size rows for one build.
fn size_rows(opts: BuildOpts, out: &build::Outputs, rows: &mut Vec<Row>) -> Result<()> {
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
            "sign-ID: loader measurement (SHA-256)",
            get_emu("measure")?,
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
        BuildOpts {
            board: Board::Imx8mpEvk,
            production: false,
        },
        BuildOpts {
            board: Board::Imx8mpEvk,
            production: true,
        },
        BuildOpts {
            board: Board::Qemu,
            production: false,
        },
    ];
    let mut outs = Vec::new();
    for b in builds {
        outs.push((b, build::build(b)?));
    }
    let mut rows = Vec::new();
    let qemu = &outs[2].1;
    boot_rows(qemu, &mut rows)?;
    flow_rows(qemu, &mut rows)?;
    for (b, out) in &outs {
        size_rows(*b, out, &mut rows)?;
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
    fn parses_the_flow_line() {
        let log = "0.5 INFO flow: journal seq 1\n\
                   0.9 INFO bench flow sign=10 decrypt=20 blob=30 consume=4 emmc=5 emu=6 total=70\n";
        let m = flow_marks(log).expect("parses");
        assert_eq!(m.len(), 7);
        assert_eq!(m[0], ("sign".to_string(), 10));
        assert_eq!(m[6], ("total".to_string(), 70));
        assert!(flow_marks("bench prompt=5").is_none());
        assert!(flow_marks("bench flow sign=x").is_none());
        let e = tagged_marks("x bench flowemu sign=1 measure=2\n", "bench flowemu ").expect("emu");
        assert_eq!(e[1], ("measure".to_string(), 2));
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
