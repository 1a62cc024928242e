//! `cargo xtask build`: the loader for one board, as ELF and raw Image.

use crate::args::BuildOpts;
use crate::{Result, cargo, image, run_cmd};
use std::fs;
use std::path::{Path, PathBuf};

/// The bare-metal target triple.
pub const TARGET: &str = "aarch64-unknown-none";

/// The files one build produced.
#[derive(Clone, Debug)]
pub struct Outputs {
    /// The raw arm64 Image (`-kernel`).
    pub bin: PathBuf,
    /// The ELF (gdb, defmt-print).
    pub elf: PathBuf,
}

/// `target/out/<board>[-production]`.
pub fn out_dir(opts: &BuildOpts) -> PathBuf {
    qemu_tests::target_dir().join("out").join(opts.out_name())
}

/// The cargo features for a build.
pub fn features(opts: &BuildOpts) -> String {
    let mut f = opts.board.feature().to_string();
    if opts.production {
        f.push_str(",production");
    }
    f
}

/// Builds the loader and writes `loader.bin` and `loader.elf` into
/// [`out_dir`], printing their paths and sizes. The loader gets the key
/// set's public keys as `MFG_*_PUBKEY` ([`crate::keys`]).
pub fn build(opts: &BuildOpts) -> Result<Outputs> {
    let keys = crate::keys::for_build(opts.keys.as_deref(), opts.production, opts.allow_dev_keys)?;
    // Every variant is built to the same `target/<triple>/release/loader`:
    // two builds running at once (a test process's development and
    // production images) could each copy the other's ELF. One build at a
    // time, across processes, from `cargo build` to the copy.
    let lock_path = qemu_tests::target_dir().join("out").join(".build.lock");
    fs::create_dir_all(qemu_tests::target_dir().join("out"))?;
    let lock = fs::File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    let mut cmd = cargo();
    keys.apply(&mut cmd);
    run_cmd(cmd.args([
        "build",
        "--release",
        "-p",
        "loader",
        "--target",
        TARGET,
        "--no-default-features",
        "--features",
        &features(opts),
    ]))?;
    if keys.development && opts.production {
        println!(
            "warning: production build with the DEVELOPMENT key set {} (--allow-dev-keys)",
            keys.dir.display()
        );
    }
    let built = qemu_tests::target_dir()
        .join(TARGET)
        .join("release")
        .join("loader");
    let elf = fs::read(&built).map_err(|e| format!("cannot read {}: {e}", built.display()))?;
    let bin = image::elf_to_image(&elf).map_err(|e| format!("{}: {e}", built.display()))?;
    let dir = out_dir(opts);
    fs::create_dir_all(&dir)?;
    let out = Outputs {
        bin: dir.join("loader.bin"),
        elf: dir.join("loader.elf"),
    };
    replace_file(&out.elf, &elf)?;
    replace_file(&out.bin, &bin)?;
    println!("{}: {} bytes", out.bin.display(), bin.len());
    println!("{}: {} bytes", out.elf.display(), elf.len());
    Ok(out)
}

/// Writes `data` to `path` so that a reader (a QEMU started by a test in
/// another process) sees the old file or the new one, never a partly
/// written one: a temporary file renamed over it, and nothing at all when
/// the content is already there.
fn replace_file(path: &Path, data: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|old| old == data) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    fs::write(&tmp, data).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path)
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))?;
    Ok(())
}

/// Converts `elf` into the raw Image `bin` (the step [`build`] does).
pub fn elf2bin(elf: &Path, bin: &Path) -> Result<()> {
    let e = fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let img = image::elf_to_image(&e).map_err(|e| format!("{}: {e}", elf.display()))?;
    fs::write(bin, &img).map_err(|e| format!("cannot write {}: {e}", bin.display()))?;
    println!("{}: {} bytes", bin.display(), img.len());
    Ok(())
}
