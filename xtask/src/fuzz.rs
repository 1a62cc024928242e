//! `cargo xtask fuzz`: the long run of every property test, then
//! coverage-guided fuzzing of the parsers with libFuzzer.
//!
//! Properties: `cargo xtask test` runs each property with its default case
//! count (bounded); this runs exactly the property tests (the names come
//! from the sources: the functions inside `proptest!` blocks and the tests
//! that call `fuzz_property`, not plain tests) with `PROPTEST_CASES=N` in
//! release mode, and reports executions (properties x N), time per target,
//! and for the structure-aware properties the share of cases that reached
//! their parser's deepest check (`fuzz-reach:` lines, `FUZZ_REACH=1`).
//!
//! Engine: `cargo fuzz` (libFuzzer) on stable Rust with `--sanitizer none`
//! (no sanitizer needs nightly; Rust's own bounds and overflow checks are
//! on), the targets in `fuzz/fuzz_targets/`, each seeded from the worked
//! examples of `docs/formats.md` (formats targets), a `dtc`-compiled tree
//! (FDT) and an `sgdisk`-made disk (GPT), run for a bounded time. It
//! reports the executions, edges covered (after loading the corpus: the
//! seeds plus what earlier runs kept in `target/fuzz-corpus/`; and at the
//! end) and new inputs as libFuzzer counts them, and crashes (the input is
//! kept under `target/fuzz-artifacts/<target>/`).

use crate::testcmd::Counts;
use crate::{Result, cargo, root, run_cmd, show};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// A property-test target: what it covers, its package, and the source
/// files holding its properties with the module path of each.
struct Target {
    what: &'static str,
    package: &'static str,
    sources: &'static [(&'static str, &'static str)],
}

const TARGETS: &[Target] = &[
    Target {
        what: "console line editor, argument parser",
        package: "loader",
        sources: &[("loader/src/console/props.rs", "console::props::")],
    },
    Target {
        what: "command arguments",
        package: "loader",
        sources: &[("loader/src/requests/props.rs", "requests::props::")],
    },
    Target {
        what: "A64 data-abort decoder, emulated CAAM descriptor interpreter",
        package: "imx-emu",
        sources: &[("imx-emu/src/props.rs", "props::")],
    },
    Target {
        what: "FDT editor",
        package: "fdt-edit",
        sources: &[("fdt-edit/src/props.rs", "props::")],
    },
    Target {
        what: "FIT verifier (malformed and damaged signed FITs)",
        package: "fit",
        sources: &[("fit/src/props.rs", "props::")],
    },
    Target {
        what: "GPT reader",
        package: "block",
        sources: &[("drivers/block/src/gpt/tests.rs", "gpt::tests::props::")],
    },
    Target {
        what: "bundle, ID record, journal, blob table, partition header, unlock token parsers",
        package: "mfg-formats",
        sources: &[
            ("mfg-formats/src/tests.rs", "tests::"),
            ("mfg-formats/src/structure_props.rs", "structure_props::"),
            ("mfg-formats/src/unlock.rs", "unlock::tests::"),
        ],
    },
];

/// A libFuzzer target in `fuzz/fuzz_targets/` and how to seed it.
struct EngineTarget {
    name: &'static str,
    what: &'static str,
    seeds: Seeds,
    max_len: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Seeds {
    /// The hex dumps of the worked examples in docs/formats.md.
    WorkedExamples,
    /// A small tree compiled by dtc.
    Dtb,
    /// A 128-block disk partitioned by sgdisk.
    GptDisk,
    /// An unlock token signed for the target's challenge, its base64 line
    /// and the challenge line.
    UnlockToken,
    /// A kernel + DTB FIT made by `mkimage -f auto`.
    Fit,
}

const ENGINE_TARGETS: &[EngineTarget] = &[
    EngineTarget {
        name: "journal",
        what: "journal copies and selection",
        seeds: Seeds::WorkedExamples,
        max_len: 1024,
    },
    EngineTarget {
        name: "id_record",
        what: "ID record, identity message, console line",
        seeds: Seeds::WorkedExamples,
        max_len: 512,
    },
    EngineTarget {
        name: "blob_table",
        what: "blob table",
        seeds: Seeds::WorkedExamples,
        max_len: 4096 + 16,
    },
    EngineTarget {
        name: "bundle_partition_header",
        what: "bundle partition header",
        seeds: Seeds::WorkedExamples,
        max_len: 1024,
    },
    EngineTarget {
        name: "bundle",
        what: "sealed bundle, secret list",
        seeds: Seeds::WorkedExamples,
        max_len: 4096,
    },
    EngineTarget {
        name: "fdt",
        what: "FDT editor",
        seeds: Seeds::Dtb,
        max_len: 4096,
    },
    EngineTarget {
        name: "gpt",
        what: "GPT reader",
        seeds: Seeds::GptDisk,
        max_len: 128 * 512,
    },
    EngineTarget {
        name: "unlock",
        what: "unlock token, challenge line",
        seeds: Seeds::UnlockToken,
        max_len: 512,
    },
    EngineTarget {
        name: "fit",
        what: "FIT verifier",
        seeds: Seeds::Fit,
        max_len: 8192,
    },
];

/// Runs every property with `cases` cases, then (unless `secs` is 0) every
/// engine target for `secs` seconds.
pub fn fuzz(cases: u64, secs: u64) -> Result<()> {
    let props = run_properties(cases)?;
    let engine = if secs > 0 {
        Some(run_engine(secs)?)
    } else {
        None
    };
    print_property_tables(cases, &props);
    if let Some(rows) = &engine {
        print_engine_table(secs, rows);
        let crashed: Vec<&str> = rows
            .iter()
            .filter(|r| r.crashes > 0)
            .map(|r| r.name)
            .collect();
        if !crashed.is_empty() {
            return Err(format!(
                "crash in {} (inputs under target/fuzz-artifacts/; turn each into a regression test)",
                crashed.join(", ")
            )
            .into());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties

struct PropRow {
    target: &'static Target,
    properties: usize,
    secs: f64,
    reach: Vec<(String, u64, u64)>,
}

fn run_properties(cases: u64) -> Result<Vec<PropRow>> {
    let mut rows = Vec::new();
    for t in TARGETS {
        let mut names = Vec::new();
        for (file, module) in t.sources {
            let src =
                std::fs::read_to_string(root().join(file)).map_err(|e| format!("{file}: {e}"))?;
            for n in property_names(&src) {
                names.push(format!("{module}{n}"));
            }
        }
        if names.is_empty() {
            return Err(format!("{}: no property found in {:?}", t.what, t.sources).into());
        }
        let mut cmd = cargo();
        cmd.args(["test", "--release", "-p", t.package, "--", "--exact"])
            .args(&names)
            .env("PROPTEST_CASES", cases.to_string())
            .env("FUZZ_REACH", "1");
        eprint!("PROPTEST_CASES={cases} FUZZ_REACH=1 ");
        let start = Instant::now();
        let mut counts = Counts::default();
        let mut reach = Vec::new();
        let ran = run_capturing(&mut cmd, &mut counts, &mut reach);
        let secs = start.elapsed().as_secs_f64();
        if ran.is_err() || counts.failed > 0 {
            return Err(format!(
                "{}: property failure (proptest prints the minimal input and saves it under \
                 proptest-regressions/; turn it into a regression test)",
                t.what
            )
            .into());
        }
        if counts.passed != names.len() as u64 {
            return Err(format!(
                "{}: {} of {} properties ran ({})",
                t.what,
                counts.passed,
                names.len(),
                names.join(" ")
            )
            .into());
        }
        // At least N cases each (proptest first replays the failures saved
        // under proptest-regressions/).
        for (name, _, n) in &reach {
            if *n < cases {
                return Err(format!("{name}: ran {n} cases, fewer than {cases}").into());
            }
        }
        rows.push(PropRow {
            target: t,
            properties: names.len(),
            secs,
            reach,
        });
    }
    Ok(rows)
}

/// Like `testcmd::run_counting`, also collecting `fuzz-reach: NAME REACHED CASES`.
fn run_capturing(
    cmd: &mut Command,
    counts: &mut Counts,
    reach: &mut Vec<(String, u64, u64)>,
) -> Result<()> {
    eprintln!("$ {}", show(cmd));
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", show(cmd)))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        counts.add_line(&line);
        if let Some(r) = parse_reach(&line) {
            reach.push(r);
        }
    }
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", show(cmd)).into())
    }
}

fn parse_reach(line: &str) -> Option<(String, u64, u64)> {
    let rest = line.trim().strip_prefix("fuzz-reach: ")?;
    let mut w = rest.split_whitespace();
    let name = w.next()?.to_string();
    let reached = w.next()?.parse().ok()?;
    let cases = w.next()?.parse().ok()?;
    Some((name, reached, cases))
}

/// The property tests in a source file: the functions directly inside
/// `proptest! { ... }` blocks, and the test functions whose body calls
/// `fuzz_property("<their own name>", ...)`.
pub fn property_names(src: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = src.as_bytes();
    let mut from = 0;
    while let Some(p) = src[from..].find("proptest! {") {
        let start = from + p + "proptest! {".len();
        let mut depth = 1usize;
        let mut i = start;
        while i < bytes.len() && depth > 0 {
            match bytes[i] {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                b'f' if depth == 1 && src[i..].starts_with("fn ") && is_word_start(bytes, i) => {
                    if let Some(n) = ident_at(&src[i + 3..]) {
                        names.push(n.to_string());
                    }
                }
                _ => {}
            }
            i += 1;
        }
        from = i;
    }
    for (i, _) in src.match_indices("fuzz_property(") {
        if src[..i].trim_end().ends_with("fn") {
            continue; // the helper's own definition
        }
        let after = src[i + "fuzz_property(".len()..].trim_start();
        let Some(q) = after.strip_prefix('"') else {
            continue;
        };
        let Some(name) = q.split('"').next() else {
            continue;
        };
        // The enclosing test function must carry the same name.
        let Some(f) = src[..i].rfind("fn ") else {
            continue;
        };
        if ident_at(&src[f + 3..]) == Some(name) {
            names.push(name.to_string());
        }
    }
    names
}

fn is_word_start(b: &[u8], i: usize) -> bool {
    i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

fn print_property_tables(cases: u64, rows: &[PropRow]) {
    println!("\nfuzz: properties, {cases} cases each");
    println!("| target | package | properties | executions | seconds |");
    println!("|---|---|---|---|---|");
    for r in rows {
        // Counted by the properties that report (fuzz_property), N for the
        // others (`proptest!` runs exactly N new cases each).
        let reported: u64 = r.reach.iter().map(|x| x.2).sum();
        let executions = (r.properties - r.reach.len()) as u64 * cases + reported;
        println!(
            "| {} | {} | {} | {} | {:.0} |",
            r.target.what, r.target.package, r.properties, executions, r.secs
        );
    }
    println!("\nfuzz: reach of the structure-aware properties (cases reaching the deepest check)");
    println!("| property | package | cases | reached | share |");
    println!("|---|---|---|---|---|");
    for r in rows {
        for (name, reached, n) in &r.reach {
            println!(
                "| {name} | {} | {n} | {reached} | {:.2} |",
                r.target.package,
                *reached as f64 / (*n).max(1) as f64
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Coverage-guided engine (libFuzzer through cargo fuzz)

struct EngineRow {
    name: &'static str,
    what: &'static str,
    seeds: usize,
    executions: u64,
    secs: f64,
    cov_start: u64,
    cov_end: u64,
    new_units: u64,
    crashes: u64,
}

fn ensure_cargo_fuzz() -> Result<()> {
    let ok = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok(cargo().args(["fuzz", "--version"])) {
        return Ok(());
    }
    let mut c = cargo();
    c.args(["install", "cargo-fuzz", "--locked"]);
    run_cmd(&mut c).map_err(|e| format!("{e}; run `{}` by hand", show(&c)))?;
    if ok(cargo().args(["fuzz", "--version"])) {
        Ok(())
    } else {
        Err("cargo-fuzz installed but `cargo fuzz` does not run".into())
    }
}

fn run_engine(secs: u64) -> Result<Vec<EngineRow>> {
    ensure_cargo_fuzz()?;
    let target_dir = root().join("target/fuzz");
    let fuzz_cmd = |sub: &str| {
        let mut c = cargo();
        c.args(["fuzz", sub, "--sanitizer", "none", "--fuzz-dir", "fuzz"])
            .arg("--target-dir")
            .arg(&target_dir);
        c
    };
    run_cmd(&mut fuzz_cmd("build"))?;
    let examples = worked_examples(&std::fs::read_to_string(root().join("docs/formats.md"))?);
    if examples.is_empty() {
        return Err("docs/formats.md: no worked-example hex dumps found".into());
    }
    let mut rows = Vec::new();
    for t in ENGINE_TARGETS {
        let corpus = root().join("target/fuzz-corpus").join(t.name);
        let artifacts = root().join("target/fuzz-artifacts").join(t.name);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        let seeds = write_seeds(t.seeds, &examples, &corpus)?;
        let mut c = fuzz_cmd("run");
        c.arg(t.name)
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .arg(format!("-max_len={}", t.max_len))
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        eprintln!("$ {}", show(&c));
        let start = Instant::now();
        let out = c.stdout(Stdio::inherit()).stderr(Stdio::piped()).spawn()?;
        let log = read_lines(out.stderr)?;
        let crashes = std::fs::read_dir(&artifacts)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("crash-"))
            .count() as u64;
        let stats = libfuzzer_stats(&log);
        rows.push(EngineRow {
            name: t.name,
            what: t.what,
            seeds,
            executions: stats.executions,
            secs: start.elapsed().as_secs_f64(),
            cov_start: stats.cov_start,
            cov_end: stats.cov_end,
            new_units: stats.new_units,
            crashes,
        });
    }
    Ok(rows)
}

/// Reads a child's stderr to the end, echoing it, and waits for it.
fn read_lines(stderr: Option<std::process::ChildStderr>) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    if let Some(e) = stderr {
        for line in BufReader::new(e).lines() {
            let line = line?;
            eprintln!("{line}");
            lines.push(line);
        }
    }
    Ok(lines)
}

/// What libFuzzer counted: executions and new units from its final stats
/// (`-print_final_stats=1`), edge coverage after the seeds (`INITED`) and
/// at the end (the last status line).
#[derive(Default, Debug, PartialEq, Eq)]
pub struct LibFuzzerStats {
    /// `stat::number_of_executed_units`.
    pub executions: u64,
    /// `stat::new_units_added`.
    pub new_units: u64,
    /// `cov:` on the `INITED` line.
    pub cov_start: u64,
    /// `cov:` on the last status line.
    pub cov_end: u64,
}

/// Parses libFuzzer's output.
pub fn libfuzzer_stats(lines: &[String]) -> LibFuzzerStats {
    let mut s = LibFuzzerStats::default();
    let num = |l: &str, key: &str| -> Option<u64> {
        let rest = &l[l.find(key)? + key.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    for l in lines {
        if let Some(v) = num(l, "stat::number_of_executed_units:") {
            s.executions = v;
        }
        if let Some(v) = num(l, "stat::new_units_added:") {
            s.new_units = v;
        }
        if l.starts_with('#')
            && let Some(c) = num(l, " cov: ")
        {
            if l.contains("INITED") {
                s.cov_start = c;
            }
            s.cov_end = c;
        }
    }
    s
}

/// The byte strings of the hex dumps (`0000: xx xx ...` lines) and one-line
/// hex values in the worked examples section of docs/formats.md.
pub fn worked_examples(doc: &str) -> Vec<Vec<u8>> {
    let section = doc.find("## 8. Worked examples").map_or("", |i| &doc[i..]);
    let mut out = Vec::new();
    let mut in_block = false;
    let mut cur: Vec<u8> = Vec::new();
    for line in section.lines() {
        if line.starts_with("```") {
            if in_block && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let body = match line.split_once(':') {
            Some((off, rest)) if off.len() == 4 && off.bytes().all(|c| c.is_ascii_hexdigit()) => {
                rest.split_whitespace().collect::<String>()
            }
            _ => line.trim().to_string(),
        };
        if body.len() % 2 == 0 && body.bytes().all(|c| c.is_ascii_hexdigit()) {
            for i in (0..body.len()).step_by(2) {
                if let Ok(b) = u8::from_str_radix(&body[i..i + 2], 16) {
                    cur.push(b);
                }
            }
        } else {
            // Not a hex block: drop it.
            cur.clear();
            in_block = false;
        }
    }
    out
}

fn write_seeds(kind: Seeds, examples: &[Vec<u8>], dir: &Path) -> Result<usize> {
    let seeds: Vec<Vec<u8>> = match kind {
        Seeds::WorkedExamples => examples.to_vec(),
        Seeds::Dtb => vec![dtc_seed()?],
        Seeds::GptDisk => vec![gpt_seed()?],
        Seeds::UnlockToken => unlock_seeds(),
        Seeds::Fit => vec![fit_seed()?],
    };
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), s)?;
    }
    Ok(seeds.len())
}

fn scratch(name: &str) -> Result<PathBuf> {
    let d = root().join("target/fuzz-seeds");
    std::fs::create_dir_all(&d)?;
    Ok(d.join(name))
}

/// A small tree with what the loader edits: `/chosen`, a memory
/// reservation, a nested node.
fn dtc_seed() -> Result<Vec<u8>> {
    let dts = scratch("seed.dts")?;
    std::fs::write(
        &dts,
        "/dts-v1/;\n/memreserve/ 0x48000000 0x1000;\n/ { model = \"seed\"; \
         #address-cells = <2>; #size-cells = <2>;\n chosen { stdout-path = \"serial1:115200n8\"; };\n \
         soc@0 { mmc@30b60000 { status = \"okay\"; }; };\n};\n",
    )?;
    let out = Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb"])
        .arg(&dts)
        .output()
        .map_err(|e| format!("dtc (Debian package device-tree-compiler): {e}"))?;
    if !out.status.success() {
        return Err(format!("dtc: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(out.stdout)
}

/// A token granting `md` and `mw` for the challenge the `unlock` target
/// checks (UID a5.., nonce 5a..), signed with private scalar 1 (the
/// target's authority key is G); its base64 line; the challenge line.
fn unlock_seeds() -> Vec<Vec<u8>> {
    use mfg_formats::unlock::{Challenge, Token};
    use p256::ecdsa::{Signature, signature::Signer};
    let challenge = Challenge {
        uid: [0xa5; 16],
        nonce: [0x5a; 16],
    };
    let sig: Signature = seed_authority().sign(&Token::signed_bytes(&challenge, 0b11));
    let token = Token {
        challenge,
        commands: 0b11,
        signature: sig.to_bytes().into(),
    }
    .to_bytes();
    let mut b64 = [0u8; mfg_formats::unlock::TOKEN_B64_LEN];
    let n = mfg_formats::base64::encode(&token, &mut b64).expect("the buffer holds a token");
    let mut line = String::new();
    challenge
        .write_line(&mut line)
        .expect("a String takes any line");
    vec![token.to_vec(), b64[..n].to_vec(), line.into_bytes()]
}

/// The authority key of the `unlock` target's seed: private scalar 1, whose
/// public key is the base point G the target verifies with.
fn seed_authority() -> p256::ecdsa::SigningKey {
    let mut one = [0u8; 32];
    one[31] = 1;
    p256::ecdsa::SigningKey::from_slice(&one).expect("1 is a valid scalar")
}

/// Runs a seed-making tool (from Debian package `package`); its failure
/// says the command and the tool's own message.
fn run_tool(c: &mut Command, package: &str) -> Result<()> {
    let name = c.get_program().to_string_lossy().into_owned();
    let out = c
        .output()
        .map_err(|e| format!("{name} (Debian package {package}): {e}"))?;
    if !out.status.success() {
        return Err(format!("{}: {}", show(c), String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// A FIT with a kernel and the DTB seed, made by `mkimage -f auto`.
fn fit_seed() -> Result<Vec<u8>> {
    let kernel = scratch("seed-kernel")?;
    std::fs::write(&kernel, (0..2048u32).map(|i| i as u8).collect::<Vec<u8>>())?;
    let dtb = scratch("seed-fit.dtb")?;
    std::fs::write(&dtb, dtc_seed()?)?;
    let out = scratch("seed.itb")?;
    let mut c = Command::new("mkimage");
    c.args([
        "-f", "auto", "-A", "arm64", "-O", "linux", "-T", "kernel", "-C", "none",
    ])
    .args(["-a", "0x40480000", "-e", "0x40480000", "-d"])
    .arg(&kernel)
    .arg("-b")
    .arg(&dtb)
    .arg(&out);
    run_tool(&mut c, "u-boot-tools")?;
    Ok(std::fs::read(&out)?)
}

/// A 128-block disk with two partitions, made by sgdisk.
fn gpt_seed() -> Result<Vec<u8>> {
    let img = scratch("seed-gpt.img")?;
    std::fs::write(&img, vec![0u8; 128 * 512])?;
    let mut c = Command::new("sgdisk");
    c.args(["-n", "1:34:60", "-c", "1:loader", "-t", "1:EF00"])
        .args(["-n", "2:61:94", "-c", "2:mfg-data"])
        .arg(&img);
    run_tool(&mut c, "gdisk")?;
    Ok(std::fs::read(&img)?)
}

fn print_engine_table(secs: u64, rows: &[EngineRow]) {
    println!(
        "\nfuzz: coverage-guided (libFuzzer via cargo fuzz, --sanitizer none), {secs} s per target"
    );
    println!(
        "| target | covers | seeds | executions | exec/s | edges at start | edges at end | new inputs | crashes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut total: BTreeMap<&str, u64> = BTreeMap::new();
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} |",
            r.name,
            r.what,
            r.seeds,
            r.executions,
            r.executions as f64 / r.secs.max(1.0),
            r.cov_start,
            r.cov_end,
            r.new_units,
            r.crashes
        );
        *total.entry("executions").or_default() += r.executions;
    }
    println!(
        "total executions: {}",
        total.get("executions").copied().unwrap_or(0)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_properties_not_plain_tests() {
        let src = r#"
#[test]
fn plain() {}
proptest! {
    #![proptest_config(config(8))]
    #[test]
    fn a(x in 0u8..3) { if x > 1 { let f = |y: u8| y; f(x); } }
    /// doc
    #[test]
    fn b_2(v in any::<u8>()) {}
}
fn fuzz_property(name: &str) {}
#[test]
fn c() {
    fuzz_property("c", 1);
}
#[test]
fn d() {
    fuzz_property(
        "not_d",
        1,
    );
}
"#;
        assert_eq!(property_names(src), ["a", "b_2", "c"]);
    }

    #[test]
    fn the_unlock_seed_verifies_with_the_targets_key() {
        use mfg_formats::unlock::Token;
        // The `unlock` target's authority key is G, the public key of
        // scalar 1; the seed must verify with it, or the engine starts
        // from a refused token.
        let seeds = unlock_seeds();
        let t = Token::parse(&seeds[0]).unwrap();
        let g = seed_authority().verifying_key().to_sec1_point(false);
        let g: [u8; 64] = g.as_bytes()[1..].try_into().unwrap();
        assert_eq!(&g[..4], &[0x6b, 0x17, 0xd1, 0xf2]);
        assert_eq!(t.verify(&[0xa5; 16], Some(&[0x5a; 16]), &g), Ok(0b11));
        assert_eq!(
            Token::from_base64(std::str::from_utf8(&seeds[1]).unwrap()),
            Ok(t)
        );
        let line = std::str::from_utf8(&seeds[2]).unwrap();
        assert!(line.starts_with("unlock-challenge: a5a5"), "{line}");
    }

    #[test]
    fn every_target_has_its_properties() {
        // The counts the docs state (docs/hardening.md); a property added or
        // removed changes them here first.
        let want = [
            ("loader/src/console/props.rs", 9),
            ("loader/src/requests/props.rs", 14),
            ("imx-emu/src/props.rs", 6),
            ("fdt-edit/src/props.rs", 4),
            ("drivers/block/src/gpt/tests.rs", 3),
            ("mfg-formats/src/tests.rs", 8),
            ("mfg-formats/src/structure_props.rs", 5),
            ("mfg-formats/src/unlock.rs", 2),
            ("fit/src/props.rs", 3),
        ];
        for (file, n) in want {
            let src = std::fs::read_to_string(root().join(file)).unwrap();
            assert_eq!(property_names(&src).len(), n, "{file}");
        }
        let listed: Vec<&str> = TARGETS
            .iter()
            .flat_map(|t| t.sources.iter().map(|s| s.0))
            .collect();
        assert_eq!(listed.len(), want.len());
    }

    #[test]
    fn parses_reach_and_libfuzzer_lines() {
        assert_eq!(
            parse_reach("fuzz-reach: prop_x 300 512"),
            Some(("prop_x".to_string(), 300, 512))
        );
        assert_eq!(parse_reach("test x ... ok"), None);
        let log: Vec<String> = [
            "INFO: Seed: 1",
            "#2\tINITED cov: 40 ft: 41 corp: 3/120b exec/s: 0 rss: 27Mb",
            "#1024\tpulse  cov: 55 ft: 60 corp: 5/200b lim: 4 exec/s: 512 rss: 27Mb",
            "#52345\tREDUCE cov: 61 ft: 70 corp: 6/49b lim: 517 exec/s: 0 rss: 27Mb",
            "Done 60000 runs in 2 second(s)",
            "stat::number_of_executed_units: 60000",
            "stat::new_units_added:           4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            libfuzzer_stats(&log),
            LibFuzzerStats {
                executions: 60000,
                new_units: 4,
                cov_start: 40,
                cov_end: 61
            }
        );
    }

    #[test]
    fn extracts_the_worked_examples() {
        let doc = std::fs::read_to_string(root().join("docs/formats.md")).unwrap();
        let ex = worked_examples(&doc);
        assert!(ex.len() >= 5, "{}", ex.len());
        // The first is the 64-byte test MP public key; a journal record
        // (magic MFJR) is among them.
        assert_eq!(ex[0].len(), 64);
        assert!(ex.iter().any(|e| e.starts_with(b"MFJR")));
        assert!(ex.iter().any(|e| e.starts_with(b"MFGBUNDL")));
    }
}
