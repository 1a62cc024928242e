//! `cargo xtask test`, `clippy` and `fmt`.

use crate::args::{Board, BuildOpts};
use crate::build::{self, TARGET};
use crate::prereq::{self, Need};
use crate::{Result, cargo, run_cmd, show};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Workspace packages that only build for the host (std).
pub const HOST_ONLY: &[&str] = &["xtask", "qemu-tests", "mfgtool", "test-support"];
/// The loader binary (target only, built per board feature).
pub const LOADER: &str = "loader";
/// Parallel QEMU tests: the machine has two cores.
pub const QEMU_TEST_THREADS: &str = "2";

/// Test counts from cargo test's `test result:` lines.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Counts {
    /// Passed tests.
    pub passed: u64,
    /// Failed tests.
    pub failed: u64,
    /// Ignored tests.
    pub ignored: u64,
}

impl Counts {
    /// Adds the counts of one `test result: ...` line, if `line` is one.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split([';', '.']) {
            let mut w = part.split_whitespace();
            let (Some(n), Some(what)) = (w.next(), w.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Runs `cmd`, echoing its stdout while counting test results.
pub fn run_counting(cmd: &mut Command, counts: &mut Counts) -> Result<()> {
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
    }
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", show(cmd)).into())
    }
}

fn exclude_args(pkgs: &[&str]) -> Vec<String> {
    let mut a = vec!["--workspace".to_string()];
    for p in pkgs {
        a.push("--exclude".into());
        a.push((*p).to_string());
    }
    a
}

/// Clippy for the host (every crate, all targets; the loader's portable
/// parts build on the host for their unit tests) with `-D warnings`.
pub fn clippy_host() -> Result<()> {
    run_cmd(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

/// Clippy for `aarch64-unknown-none`: the no_std crates, then the loader
/// for each board (and the production EVK build). Runs every variant and
/// reports all that failed.
pub fn clippy_target() -> Result<()> {
    let mut skip: Vec<&str> = HOST_ONLY.to_vec();
    skip.push(LOADER);
    let mut failed = Vec::new();
    if let Err(e) = run_cmd(
        cargo()
            .arg("clippy")
            .args(exclude_args(&skip))
            .args(["--target", TARGET, "--", "-D", "warnings"]),
    ) {
        eprintln!("xtask: {e}");
        failed.push("no_std crates".to_string());
    }
    let loader_builds = [
        BuildOpts::for_tests(Board::Qemu, false),
        BuildOpts::for_tests(Board::Imx8mpEvk, false),
        BuildOpts::for_tests(Board::Imx8mpEvk, true),
    ];
    let keys = match crate::keys::for_build(None, false, true) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("xtask: {e}");
            return Err("loader clippy: no key set".into());
        }
    };
    for b in loader_builds {
        let mut cmd = cargo();
        keys.apply(&mut cmd);
        let r = run_cmd(cmd.args([
            "clippy",
            "--release",
            "-p",
            LOADER,
            "--target",
            TARGET,
            "--no-default-features",
            "--features",
            &build::features(&b),
            "--",
            "-D",
            "warnings",
        ]));
        if let Err(e) = r {
            eprintln!("xtask: {e}");
            failed.push(format!("loader {}", b.out_name()));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("clippy (target) failed for: {}", failed.join(", ")).into())
    }
}

/// `cargo xtask clippy`.
pub fn clippy_all() -> Result<()> {
    prereq::ensure(Need::Qemu)?;
    clippy_host()?;
    clippy_target()
}

/// `cargo xtask fmt [--check]`.
pub fn fmt(check: bool) -> Result<()> {
    let mut c = cargo();
    c.args(["fmt", "--all"]);
    if check {
        c.args(["--", "--check"]);
    }
    run_cmd(&mut c)
}

struct Step {
    name: &'static str,
    result: Result<()>,
    took: Duration,
}

/// Prerequisites, host tests, QEMU tests, clippy, fmt; runs every step,
/// prints a summary and fails if any step failed.
pub fn test() -> Result<()> {
    let started = Instant::now();
    if let Err(e) = prereq::ensure(Need::All) {
        return Err(format!("prerequisites: {e}").into());
    }
    let mut counts = Counts::default();
    let mut steps: Vec<Step> = Vec::new();
    let mut step = |name: &'static str, f: &mut dyn FnMut(&mut Counts) -> Result<()>| {
        eprintln!("\n===== xtask test: {name}");
        let t = Instant::now();
        let result = f(&mut counts);
        if let Err(e) = &result {
            eprintln!("xtask: {name}: FAILED: {e}");
        }
        steps.push(Step {
            name,
            result,
            took: t.elapsed(),
        });
    };

    step("host tests", &mut |c| {
        run_counting(
            cargo()
                .args(["test", "--no-fail-fast"])
                .args(exclude_args(&["qemu-tests"]))
                // sgdisk is a prerequisite here: its cross-check must run.
                .env("REQUIRE_SGDISK", "1"),
            c,
        )
    });
    let mut image = None;
    step("build qemu loader", &mut |_| {
        image = Some(build::build(&BuildOpts::default())?);
        Ok(())
    });
    step("qemu tests", &mut |c| {
        let out = image.as_ref().ok_or("no loader image (its build failed)")?;
        run_counting(
            cargo()
                .args(["test", "--no-fail-fast", "-p", "qemu-tests"])
                .args(["--", "--test-threads"])
                .arg(QEMU_TEST_THREADS)
                .env("LOADER_BIN", &out.bin),
            c,
        )
    });
    step("clippy host", &mut |_| clippy_host());
    step("clippy target", &mut |_| clippy_target());
    step("fmt --check", &mut |_| fmt(true));

    eprintln!("\n===== xtask test summary");
    for s in &steps {
        eprintln!(
            "{:<20} {:>7.1?}  {}",
            s.name,
            s.took,
            match &s.result {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("FAILED: {}", e.to_string().lines().next().unwrap_or("")),
            }
        );
    }
    eprintln!("total {:.1?}", started.elapsed());
    let failed_steps = steps.iter().filter(|s| s.result.is_err()).count();
    println!(
        "tests: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.ignored
    );
    if failed_steps == 0 && counts.failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed_steps} step(s) failed").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cargo_test_result_lines() {
        let mut c = Counts::default();
        c.add_line("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        c.add_line(
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        c.add_line("test foo ... ok");
        c.add_line("running 5 tests");
        assert_eq!(
            c,
            Counts {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
    }

    #[test]
    fn excludes_packages() {
        assert_eq!(
            exclude_args(&["loader", "qemu-tests"]),
            [
                "--workspace",
                "--exclude",
                "loader",
                "--exclude",
                "qemu-tests"
            ]
        );
    }
}
