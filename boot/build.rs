//! Links the loader with its own script (bare-metal target only).
fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "none" {
        let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
        let script = dir.join("../linker/loader.ld").canonicalize().unwrap();
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
        println!("cargo:rerun-if-changed={}", script.display());
    }
}
