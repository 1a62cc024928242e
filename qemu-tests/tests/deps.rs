//! Dependency review, enforced: nothing in the loader's target build
//! (either board, development or production) has a `std` or `alloc`
//! feature enabled. The list of crates and why each is there is in
//! `docs/dependencies.md`. No QEMU needed: this runs `cargo tree`.

use std::collections::BTreeSet;
use std::process::Command;

/// `cargo tree` for the loader's bare-metal build with `features`, feature
/// edges included, proc-macro dependencies (which run on the host) left out.
fn target_tree(package: &str, target: Option<&str>, features: &[&str]) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(qemu_tests::workspace_root())
        .args(["tree", "-p", package, "--no-default-features"])
        .args(["-e", "normal,features,no-proc-macro", "--prefix", "none"]);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let out = cmd.output().expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cargo tree prints UTF-8")
}

/// Every `crate feature "std"` / `"alloc"` line in a feature tree.
fn std_or_alloc(tree: &str) -> BTreeSet<String> {
    tree.lines()
        .map(|l| l.trim_end_matches(" (*)").trim())
        .filter(|l| l.ends_with("feature \"std\"") || l.ends_with("feature \"alloc\""))
        .map(String::from)
        .collect()
}

/// Package names in the tree (lines `name vX.Y.Z ...`).
fn packages(tree: &str) -> BTreeSet<String> {
    tree.lines()
        .filter(|l| !l.contains(" feature \""))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

const VARIANTS: [&[&str]; 4] = [
    &["board-qemu"],
    &["board-qemu", "production"],
    &["board-imx8mp-evk"],
    &["board-imx8mp-evk", "production"],
];

#[test]
fn the_loader_target_build_has_no_std_or_alloc() {
    for features in VARIANTS {
        let tree = target_tree("loader", Some("aarch64-unknown-none"), features);
        let pkgs = packages(&tree);
        assert!(
            pkgs.contains("loader") && pkgs.contains("heapless") && pkgs.contains("sha2"),
            "unexpected tree for {features:?}: {tree}"
        );
        for dev_only in ["proptest", "std", "alloc"] {
            assert!(!pkgs.contains(dev_only), "{dev_only} in {features:?}");
        }
        let bad = std_or_alloc(&tree);
        assert!(
            bad.is_empty(),
            "std/alloc enabled in the loader's target build {features:?}: {bad:?}"
        );
    }
}

/// The EVK image has no emulator; P-256 comes in only through the FIT
/// verifier (verified boot, docs/verified-boot.md) and the formats (ECDH to
/// seal ID records to the OEM record key, ECDSA to verify console unlock
/// tokens): no private key, no signing.
#[test]
fn the_evk_build_has_no_emulator_and_p256_only_for_fit_and_formats() {
    for features in &VARIANTS[2..] {
        let tree = target_tree("loader", Some("aarch64-unknown-none"), features);
        let pkgs = packages(&tree);
        assert!(
            !pkgs.contains("imx-emu"),
            "imx-emu in the EVK build {features:?}"
        );
        assert!(
            pkgs.contains("fit") && pkgs.contains("p256"),
            "the EVK build {features:?} must verify FITs: {tree}"
        );
        // Who pulls p256 in: the FIT verifier (ECDSA) and the formats
        // (ECDH, to seal ID records to the OEM record key).
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(qemu_tests::workspace_root())
            .args(["tree", "-p", "loader", "--no-default-features"])
            .args(["--target", "aarch64-unknown-none", "--features"])
            .arg(features.join(","))
            .args([
                "-e", "normal", "-i", "p256", "--depth", "1", "--prefix", "none",
            ])
            .output()
            .expect("cargo tree runs");
        let inverted = String::from_utf8_lossy(&out.stdout);
        let users: Vec<&str> = inverted.lines().skip(1).collect();
        assert!(
            !users.is_empty()
                && users
                    .iter()
                    .all(|u| u.starts_with("fit v") || u.starts_with("mfg-formats v")),
            "p256 pulled in by {users:?}"
        );
    }
}

/// The check can fail: a host tool's tree does have std.
#[test]
fn the_std_check_sees_std_in_a_host_tree() {
    let tree = target_tree("mfgtool", None, &[]);
    assert!(
        !std_or_alloc(&tree).is_empty(),
        "mfgtool's tree shows no std feature: the check is blind"
    );
}
