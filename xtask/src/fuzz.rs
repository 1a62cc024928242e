//! `cargo xtask fuzz`: the long run of every property-test target.
//!
//! `cargo fuzz` needs a nightly toolchain; the parsers are fuzzed with
//! proptest instead. `cargo xtask test` runs each property with its default
//! case count (bounded); this runs them with `PROPTEST_CASES=N` in release
//! mode and reports executions (properties x N) and time per target.

use crate::testcmd::{Counts, run_counting};
use crate::{Result, cargo};
use std::time::Instant;

/// A property-test target: what it covers, its package and test filter.
struct Target {
    what: &'static str,
    package: &'static str,
    filter: &'static str,
}

const TARGETS: &[Target] = &[
    Target {
        what: "console line editor, argument parser, command arguments",
        package: "loader",
        filter: "props",
    },
    Target {
        what: "A64 data-abort decoder, emulated CAAM descriptor interpreter",
        package: "imx-emu",
        filter: "props",
    },
    Target {
        what: "FDT editor",
        package: "fdt-edit",
        filter: "props",
    },
    Target {
        what: "FIT verifier (malformed and damaged signed FITs)",
        package: "fit",
        filter: "props",
    },
    Target {
        what: "GPT reader",
        package: "block",
        filter: "props",
    },
    Target {
        what: "bundle, ID record, journal parsers",
        package: "mfg-formats",
        filter: "prop_",
    },
];

/// Runs every target with `cases` cases per property.
pub fn fuzz(cases: u64) -> Result<()> {
    let mut rows = Vec::new();
    for t in TARGETS {
        let mut cmd = cargo();
        cmd.args(["test", "--release", "-p", t.package, "--", t.filter])
            .env("PROPTEST_CASES", cases.to_string());
        eprint!("PROPTEST_CASES={cases} ");
        let start = Instant::now();
        let mut counts = Counts::default();
        let ran = run_counting(&mut cmd, &mut counts);
        let secs = start.elapsed().as_secs_f64();
        if ran.is_err() || counts.failed > 0 {
            return Err(format!(
                "{}: property failure (proptest prints the minimal input and saves it under \
                 proptest-regressions/; turn it into a regression test)",
                t.what
            )
            .into());
        }
        if counts.passed == 0 {
            return Err(format!("{}: no property ran (filter '{}')", t.what, t.filter).into());
        }
        rows.push((t, counts.passed, secs));
    }
    println!("\nfuzz: {cases} cases per property");
    println!("| target | package | properties | executions | seconds |");
    println!("|---|---|---|---|---|");
    for (t, n, secs) in &rows {
        println!(
            "| {} | {} | {n} | {} | {secs:.0} |",
            t.what,
            t.package,
            n * cases
        );
    }
    Ok(())
}
