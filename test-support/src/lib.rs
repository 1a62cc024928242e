//! Test-only helpers shared by the crates' property tests: a dev-dependency
//! of `fdt-edit`, `block` and `mfg-formats`, never linked into the loader.

use core::cell::Cell;
use proptest::prelude::*;
use proptest::test_runner::{TestError, TestRunner};

/// Runs a property like `proptest!` does, with `cfg` (whose `source_file`
/// is set to `file`, where proptest keeps the property's regressions),
/// counting the cases after which `take` (the crate's reach probes, read
/// and cleared) has `probe` set; fails on a failing case (proptest's
/// minimal input in the message) or when fewer cases reach it than
/// `min_share` allows, less four standard deviations of sampling noise (so
/// a property whose true reach is `min_share` or more fails less than once
/// in 30,000 runs, whatever the case count); prints `fuzz-reach: <name> <reached> <cases>` with
/// `FUZZ_REACH=1` (`cargo xtask fuzz`).
#[allow(clippy::too_many_arguments)]
pub fn fuzz_property<S>(
    name: &str,
    mut cfg: ProptestConfig,
    file: &'static str,
    probe: u32,
    min_share: f64,
    strategy: S,
    take: impl Fn() -> u32,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: core::fmt::Debug,
{
    cfg.source_file = Some(file);
    let cases = Cell::new(0u64);
    let reached = Cell::new(0u64);
    let result = TestRunner::new(cfg).run(&strategy, |v| {
        take();
        let r = test(v);
        cases.set(cases.get() + 1);
        if take() & probe != 0 {
            reached.set(reached.get() + 1);
        }
        r
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, v)) => panic!("{name}: {why}; minimal failing input: {v:?}"),
        Err(e) => panic!("{name}: {e}"),
    }
    let (n, r) = (cases.get(), reached.get());
    if std::env::var("FUZZ_REACH").is_ok_and(|v| v == "1") {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "fuzz-reach: {name} {r} {n}");
    }
    let (nf, rf) = (n as f64, r as f64);
    let noise = 4.0 * (nf * min_share * (1.0 - min_share)).sqrt();
    assert!(
        n > 0 && rf >= min_share * nf - noise,
        "{name}: only {r} of {n} cases reached the deepest check (want at least {min_share})"
    );
}
