//! Links the loader with its own script (bare-metal target only), and
//! embeds the FIT boot public key: the U-Boot control DTB named by
//! `MFG_BOOT_KEY`, or the development key `keys/dev/dev-boot.dtb`, which a
//! production build accepts only with `MFG_ALLOW_DEV_BOOT_KEY=1`.
fn main() {
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "none" {
        let script = dir.join("../linker/loader.ld").canonicalize().unwrap();
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
        println!("cargo:rerun-if-changed={}", script.display());
    }

    println!("cargo:rerun-if-env-changed=MFG_BOOT_KEY");
    println!("cargo:rerun-if-env-changed=MFG_ALLOW_DEV_BOOT_KEY");
    let (key, dev) = match std::env::var_os("MFG_BOOT_KEY") {
        Some(p) => (std::path::PathBuf::from(p), false),
        None => (dir.join("../keys/dev/dev-boot.dtb"), true),
    };
    println!("cargo:rerun-if-changed={}", key.display());
    let production = std::env::var_os("CARGO_FEATURE_PRODUCTION").is_some();
    let allowed = std::env::var("MFG_ALLOW_DEV_BOOT_KEY").is_ok_and(|v| v == "1");
    if production && dev && !allowed {
        panic!(
            "a production loader needs the OEM boot key: set MFG_BOOT_KEY to the U-Boot \
             control DTB holding it (mkimage -K), or MFG_ALLOW_DEV_BOOT_KEY=1 to build with \
             the development key keys/dev/dev-boot.dtb"
        );
    }
    let bytes =
        std::fs::read(&key).unwrap_or_else(|e| panic!("MFG_BOOT_KEY {}: {e}", key.display()));
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("boot-key.dtb"), bytes).unwrap();
    println!(
        "cargo:rustc-env=MFG_BOOT_KEY_KIND={}",
        if dev { "development" } else { "OEM" }
    );
}
