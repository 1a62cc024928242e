//! `cargo xtask factory -o DIR`: what the contract manufacturer needs to
//! flash a device with NXP's `uuu`.
//!
//! DIR receives:
//! - `loader.bin`: the production loader for the board (raw arm64 Image);
//! - `loader.its` / `loader.itb`: the FIT U-Boot SPL on i.MX8M loads
//!   (images `loader` at 0x40200000, `atf` = TF-A BL31 at 0x970000, `fdt`),
//!   built with `mkimage -E -p 0x3000` as imx-mkimage builds `u-boot.itb`;
//! - `bl31-PLACEHOLDER.bin` (or `bl31.bin` with `--bl31`): we do not build
//!   TF-A; the placeholder is a branch-to-self followed by a marker text;
//! - `board.dtb` (from `--dtb`, else compiled with `dtc` from `board.dts`);
//! - `disk.simg`: the eMMC user area (`--emmc-sectors` sectors) as an
//!   Android sparse image, GPT and sealed bundle, written by `mfgtool image`
//!   (the backup GPT in the eMMC's last sector); with `--kernel` and
//!   `--dtb`, its `boot` partition holds them as a FIT signed with the boot
//!   key (`MFG_BOOT_SIGNING_KEY`, a P-256 PEM; else the development key
//!   `keys/dev/dev-boot.pem`, with a warning), the only thing the
//!   production loader boots;
//! - `mfg-bundle.img` (with `--bundle`): the `mfg-bundle` partition alone;
//! - `flash-emmc.uuu`, `flash-bundle.uuu`: the CM's `uuu` scripts;
//! - `MANIFEST.txt`: every file with its size.
//!
//! `flash.bin` (SPL + DDR firmware + this FIT) is made by the OEM with
//! imx-mkimage; see docs/factory.md.

use crate::args::{Board, BuildOpts};
use crate::{Result, build, cargo, image, run_cmd};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where U-Boot SPL loads BL33 and TF-A enters it (`PLAT_NS_IMAGE_OFFSET`
/// of TF-A's imx8m platforms; U-Boot's `CONFIG_TEXT_BASE`).
pub const LOADER_ADDR: u64 = image::LOAD_ADDR;
/// TF-A BL31 load and entry address on i.MX8M Plus (OCRAM).
pub const ATF_ADDR: u64 = 0x0097_0000;
/// Where SPL puts the FIT's DTB. Explicit, because without a `load`
/// property SPL appends it right after the firmware image, which here is
/// BL31 in OCRAM. 0x43000000 is NXP's `fdt_addr_r` for the board.
pub const FDT_ADDR: u64 = 0x4300_0000;
/// `mkimage -p`: external data position, as imx-mkimage's `u-boot.itb`.
pub const FIT_DATA_POSITION: &str = "0x3000";
/// Minimum `uuu` version the scripts declare (that of NXP's built-in
/// eMMC scripts; Debian bookworm ships 1.4.193).
pub const UUU_VERSION: &str = "1.4.149";

/// Why `--emmc-sectors` is needed, and where to read it.
const EMMC_SECTORS_REQUIRED: &str = "--emmc-sectors N is required: the size of the \
    device's eMMC user area in 512-byte sectors, where the backup GPT goes \
    (`cat /sys/block/mmcblk2/size` on the board's Linux; docs/factory.md)";

/// The placeholder's file name, and the real file that replaces it.
pub const BL31_PLACEHOLDER: &str = "bl31-PLACEHOLDER.bin";

/// Options of `cargo xtask factory`.
#[derive(clap::Args, Clone, PartialEq, Eq, Debug)]
pub struct FactoryOpts {
    /// Output directory.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub out: PathBuf,
    /// Board (only the i.MX8M Plus EVK has a factory image).
    #[arg(long, value_enum, default_value_t = Board::Imx8mpEvk)]
    pub board: Board,
    /// Sealed bundle for the `mfg-bundle` partition.
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Kernel Image for the `kernel` partition.
    #[arg(long, value_name = "Image")]
    pub kernel: Option<PathBuf>,
    /// DTB for the FIT and the `dtb` partition.
    #[arg(long, value_name = "DTB")]
    pub dtb: Option<PathBuf>,
    /// A real TF-A `bl31.bin` instead of the placeholder.
    #[arg(long, value_name = "FILE")]
    pub bl31: Option<PathBuf>,
    /// The OEM key set the loader is built with (`--keys DIR`).
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// Allow the development key set (demos only).
    #[arg(long)]
    pub allow_dev_keys: bool,
    /// The eMMC user area's size in 512-byte sectors (required: the backup
    /// GPT goes in its last sector).
    #[arg(long, value_name = "N")]
    pub emmc_sectors: Option<u64>,
}

/// `cargo xtask factory`: builds the production loader, then [`package`]s it.
pub fn factory(opts: &FactoryOpts) -> Result<()> {
    if opts.board != Board::Imx8mpEvk {
        return Err(format!(
            "factory: no factory image for board '{}' (QEMU boots loader.bin directly); \
             use --board imx8mp-evk",
            opts.board.name()
        )
        .into());
    }
    if opts.emmc_sectors.is_none() {
        return Err(format!("factory: {EMMC_SECTORS_REQUIRED}").into());
    }
    for p in [&opts.bundle, &opts.kernel, &opts.dtb, &opts.bl31]
        .into_iter()
        .flatten()
    {
        if !p.is_file() {
            return Err(format!("factory: {}: no such file", p.display()).into());
        }
    }
    let built = build::build(&BuildOpts {
        board: opts.board,
        production: true,
        keys: opts.keys.clone(),
        allow_dev_keys: opts.allow_dev_keys,
    })?;
    let mfgtool = build_mfgtool()?;
    package(&built.bin, &mfgtool, opts)
}

/// Builds `mfgtool` and returns the binary's path.
fn build_mfgtool() -> Result<PathBuf> {
    run_cmd(cargo().args(["build", "--quiet", "-p", "mfgtool"]))?;
    Ok(qemu_tests::target_dir().join("debug").join("mfgtool"))
}

/// Packages an already built `loader` into `opts.out` (every file listed in
/// the module documentation), using the `mfgtool` binary for the disk.
pub fn package(loader: &Path, mfgtool: &Path, opts: &FactoryOpts) -> Result<()> {
    let out = &opts.out;
    fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let copy = |from: &Path, name: &str| -> Result<()> {
        fs::copy(from, out.join(name))
            .map(|_| ())
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), out.display()).into())
    };
    copy(loader, "loader.bin")?;

    let atf_name = match &opts.bl31 {
        Some(b) => {
            copy(b, "bl31.bin")?;
            "bl31.bin"
        }
        None => {
            fs::write(out.join(BL31_PLACEHOLDER), bl31_placeholder())?;
            eprintln!(
                "factory: WARNING: {BL31_PLACEHOLDER} stands in for TF-A; \
                 pass --bl31 with imx-atf's build/imx8mp/release/bl31.bin for a bootable FIT"
            );
            BL31_PLACEHOLDER
        }
    };
    // Leave no stale file of the other kind behind.
    let stale = if opts.bl31.is_some() {
        BL31_PLACEHOLDER
    } else {
        "bl31.bin"
    };
    let _ = fs::remove_file(out.join(stale));

    match &opts.dtb {
        Some(d) => {
            copy(d, "board.dtb")?;
            let _ = fs::remove_file(out.join("board.dts"));
        }
        None => {
            fs::write(out.join("board.dts"), minimal_dts())?;
            run_cmd(Command::new("dtc").current_dir(out).args([
                "-I",
                "dts",
                "-O",
                "dtb",
                "-o",
                "board.dtb",
                "board.dts",
            ]))?;
        }
    }

    fs::write(out.join("loader.its"), fit_source(atf_name))?;
    let _ = fs::remove_file(out.join("loader.itb"));
    // mkimage stamps the FIT with the time unless SOURCE_DATE_EPOCH is set:
    // set it, so the same inputs give the same loader.itb.
    run_cmd(
        Command::new("mkimage")
            .current_dir(out)
            .env("SOURCE_DATE_EPOCH", source_date_epoch())
            .args([
                "-E",
                "-p",
                FIT_DATA_POSITION,
                "-f",
                "loader.its",
                "loader.itb",
            ]),
    )?;

    write_disk(mfgtool, opts)?;
    if opts.bundle.is_none() {
        let _ = fs::remove_file(out.join("mfg-bundle.img"));
        eprintln!(
            "factory: WARNING: no --bundle: disk.simg has an empty mfg-bundle partition \
             and no mfg-bundle.img is written"
        );
    }

    fs::write(out.join("flash-emmc.uuu"), flash_emmc_script())?;
    fs::write(out.join("flash-bundle.uuu"), flash_bundle_script())?;
    let manifest = manifest(out)?;
    fs::write(out.join("MANIFEST.txt"), &manifest)?;
    print!("{manifest}");
    Ok(())
}

/// `SOURCE_DATE_EPOCH` if set, else the time of the last commit, else 0:
/// the timestamp of every FIT the factory writes.
pub fn source_date_epoch() -> String {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v;
    }
    Command::new("git")
        .current_dir(crate::root())
        .args(["log", "-1", "--format=%ct"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "0".into())
}

/// The boot signing key: `MFG_BOOT_SIGNING_KEY`, else the development key.
fn boot_signing_key() -> PathBuf {
    match std::env::var_os("MFG_BOOT_SIGNING_KEY") {
        Some(k) => PathBuf::from(k),
        None => {
            eprintln!(
                "factory: WARNING: signing the boot FIT with the DEVELOPMENT key \
                 keys/dev/dev-boot.pem; set MFG_BOOT_SIGNING_KEY (and MFG_BOOT_KEY for the loader)"
            );
            crate::root().join("keys/dev/dev-boot.pem")
        }
    }
}

/// Runs `mfgtool image` for `disk.simg` (and `mfg-bundle.img`).
fn write_disk(mfgtool: &Path, opts: &FactoryOpts) -> Result<()> {
    let out = &opts.out;
    let sectors = opts
        .emmc_sectors
        .ok_or_else(|| format!("factory: {EMMC_SECTORS_REQUIRED}"))?;
    let mut c = Command::new(mfgtool);
    c.arg("image")
        .arg("-o")
        .arg(out.join("disk.simg"))
        .args(["--emmc-sectors", &sectors.to_string()])
        .arg("--loader")
        .arg(out.join("loader.bin"));
    for (flag, p) in [
        ("--bundle", &opts.bundle),
        ("--kernel", &opts.kernel),
        ("--dtb", &opts.dtb),
    ] {
        if let Some(p) = p {
            c.arg(flag).arg(p);
        }
    }
    if opts.bundle.is_some() {
        c.arg("--bundle-out").arg(out.join("mfg-bundle.img"));
    }
    if opts.kernel.is_some() && opts.dtb.is_some() {
        c.arg("--boot-key")
            .arg(boot_signing_key())
            .arg("--fit-out")
            .arg(out.join("boot.itb"))
            .env("SOURCE_DATE_EPOCH", source_date_epoch());
    } else {
        let _ = fs::remove_file(out.join("boot.itb"));
    }
    run_cmd(&mut c)
}

/// The stand-in for TF-A's `bl31.bin`: `b .` (so a FIT built with it hangs
/// at 0x970000 rather than running garbage) and a marker text.
pub fn bl31_placeholder() -> Vec<u8> {
    let mut v = 0x1400_0000u32.to_le_bytes().to_vec();
    v.extend_from_slice(
        b"\nPLACEHOLDER for TF-A bl31.bin (i.MX8M Plus, PLAT=imx8mp): not firmware. \
          Rebuild with `cargo xtask factory --bl31 build/imx8mp/release/bl31.bin`.\n",
    );
    v
}

/// A minimal DTB source for the FIT when no board DTB is given.
pub fn minimal_dts() -> String {
    "\
/*
 * Minimal device tree for the FIT's fdt image, generated by
 * `cargo xtask factory` because no --dtb was given. The loader does not
 * read it; pass the board's DTB (imx8mp-evk.dtb) for a product image.
 */
/dts-v1/;

/ {
\tmodel = \"NXP i.MX8MPlus EVK board\";
\tcompatible = \"fsl,imx8mp-evk\", \"fsl,imx8mp\";
\t#address-cells = <2>;
\t#size-cells = <2>;

\tchosen {
\t};

\tmemory@40000000 {
\t\tdevice_type = \"memory\";
\t\treg = <0x0 0x40000000 0 0xc0000000>,
\t\t      <0x1 0x00000000 0 0xc0000000>;
\t};
};
"
    .to_string()
}

/// The FIT source: images `loader`, `atf` (data from `atf_file`) and `fdt`
/// (`board.dtb`), one configuration. SPL loads the `firmware` (BL31) and
/// the `loadables` (the loader), then jumps to the firmware's entry; BL31
/// enters BL33 at 0x40200000 at EL2.
pub fn fit_source(atf_file: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "\
/*
 * FIT for U-Boot SPL on i.MX8M Plus (imx8mp-evk), generated by
 * `cargo xtask factory`. Build: mkimage -E -p {FIT_DATA_POSITION} -f loader.its loader.itb
 */
/dts-v1/;

/ {{
\tdescription = \"i.MX8MP manufacturing-protection loader (BL33) with TF-A BL31\";
\t#address-cells = <1>;

\timages {{
\t\tloader {{
\t\t\tdescription = \"MP loader (BL33, entered by BL31 at EL2)\";
\t\t\tdata = /incbin/(\"loader.bin\");
\t\t\ttype = \"standalone\";
\t\t\tarch = \"arm64\";
\t\t\tcompression = \"none\";
\t\t\tload = <{LOADER_ADDR:#x}>;
\t\t\tentry = <{LOADER_ADDR:#x}>;
\t\t\thash-1 {{
\t\t\t\talgo = \"sha256\";
\t\t\t}};
\t\t}};

\t\tatf {{
\t\t\tdescription = \"TF-A BL31 ({atf_file})\";
\t\t\tdata = /incbin/(\"{atf_file}\");
\t\t\ttype = \"firmware\";
\t\t\tarch = \"arm64\";
\t\t\tcompression = \"none\";
\t\t\tload = <{ATF_ADDR:#x}>;
\t\t\tentry = <{ATF_ADDR:#x}>;
\t\t\thash-1 {{
\t\t\t\talgo = \"sha256\";
\t\t\t}};
\t\t}};

\t\tfdt {{
\t\t\tdescription = \"board device tree\";
\t\t\tdata = /incbin/(\"board.dtb\");
\t\t\ttype = \"flat_dt\";
\t\t\tarch = \"arm64\";
\t\t\tcompression = \"none\";
\t\t\tload = <{FDT_ADDR:#x}>;
\t\t\thash-1 {{
\t\t\t\talgo = \"sha256\";
\t\t\t}};
\t\t}};
\t}};

\tconfigurations {{
\t\tdefault = \"conf-1\";

\t\tconf-1 {{
\t\t\tdescription = \"imx8mp-evk: BL31 then the MP loader as BL33\";
\t\t\tfirmware = \"atf\";
\t\t\tloadables = \"loader\";
\t\t\tfdt = \"fdt\";
\t\t}};
\t}};
}};
"
    );
    s
}

/// Where `flash-emmc.uuu` differs from uuu's built-in `emmc_all`
/// (`uuu -bshow emmc_all`, mfgtools `uuu/emmc_burn_all.lst`): (its line,
/// ours, why). Every other line is the same, in the same order.
pub const EMMC_ALL_CHANGES: &[(&str, &str, &str)] = &[
    (
        "FB: flash -raw2sparse all _image",
        "FB: flash all _image",
        "_image is already an Android sparse image of the whole eMMC; \
         -raw2sparse would send every block of a raw image, zeros included",
    ),
    (
        "FB: flash -scanterm -scanlimited 0x800000 bootloader _flash.bin",
        "FB: flash -scanterm -scanlimited 0x800000 bootloader _boot.bin",
        "boot partition 0 gets the product flash.bin with our loader, \
         not the programming one",
    ),
];

/// The boot steps of `emmc_all`, as uuu runs them: each line runs only on
/// a device that enumerates with its protocol. On the i.MX8M Plus the ROM
/// (SDPS) loads only the SPL of `_flash.bin`; that SPL (SDPV) fetches the
/// rest of `_flash.bin` (TF-A, U-Boot) and jumps to it; U-Boot then
/// answers fastboot (FB).
fn boot_steps() -> &'static str {
    "\
# i.MX6/7, i.MX8MM, i.MX8MQ ROM (SDP):
SDP: boot -f _flash.bin -scanlimited 0x800000

# ROM in stream mode (SDPS; the i.MX8M Plus): loads the SPL of _flash.bin.
SDPS: boot -scanterm -f _flash.bin -scanlimited 0x800000

# That SPL, older protocol (SDPU, deprecated by uuu):
SDPU: delay 1000
SDPU: write -f _flash.bin -offset 0x57c00
SDPU: jump -scanlimited 0x800000

# That SPL (SDPV): fetches the rest of _flash.bin (TF-A, U-Boot) and runs it.
SDPV: delay 1000
SDPV: write -f _flash.bin -skipspl -scanterm -scanlimited 0x800000
SDPV: jump -scanlimited 0x800000

# U-Boot's fastboot (FB); ${emmc_dev} is its environment's eMMC (2 on the EVK).
FB: ucmd setenv fastboot_dev mmc
FB: ucmd setenv mmcdev ${emmc_dev}
FB: ucmd mmc dev ${emmc_dev}
"
}

/// The header shared by both scripts: version, what it does, usage and
/// parameters.
fn script_head(what: &str, usage: &str, params: &[(&str, &str)]) -> String {
    let mut s = format!("uuu_version {UUU_VERSION}\n\n");
    for l in what.lines() {
        let _ = writeln!(s, "# {l}");
    }
    let _ = writeln!(
        s,
        "# Generated by `cargo xtask factory`; see docs/factory.md.\n#\n# usage: {usage}\n#"
    );
    for (name, text) in params {
        let _ = writeln!(s, "# @{name:<11} | {text}");
    }
    s
}

const STOCK_FLASH_BIN: (&str, &str) = (
    "_flash.bin",
    "NXP stock flash.bin for the board (U-Boot with fastboot and uuu support); \
     booted over USB, never written",
);

/// `flash-emmc.uuu`: uuu's `emmc_all` with [`EMMC_ALL_CHANGES`]: boot NXP's
/// stock U-Boot over USB, write the user-area image and the product boot
/// image (boot partition 0) with fastboot, make boot partition 0 the boot
/// source.
pub fn flash_emmc_script() -> String {
    let mut s = script_head(
        "Flash one i.MX8M Plus device's eMMC: the user area (sparse image of the\n\
         whole user area, GPT and sealed bundle) and boot partition 0 (flash.bin\n\
         with our loader). The part must be open; close it after this, before\n\
         its first boot from the eMMC (docs/factory.md, \"What to run\").",
        "uuu -b flash-emmc.uuu STOCK-FLASH.BIN FLASH.BIN disk.simg",
        &[
            STOCK_FLASH_BIN,
            (
                "_boot.bin",
                "product boot image: imx-mkimage flash.bin made from loader.itb; \
                 written to eMMC boot partition 0",
            ),
            (
                "_image",
                "eMMC user area: disk.simg, an Android sparse image of the whole user area",
            ),
        ],
    );
    s.push_str("#\n# The steps of uuu's built-in emmc_all (`uuu -bshow emmc_all`), except:\n");
    for (theirs, ours, why) in EMMC_ALL_CHANGES {
        let _ = writeln!(
            s,
            "#   emmc_all: {theirs}\n#   here:     {ours}\n#     ({why})"
        );
    }
    s.push('\n');
    s.push_str(boot_steps());
    s.push_str(
        "\
FB: flash all _image
FB: flash -scanterm -scanlimited 0x800000 bootloader _boot.bin
FB: ucmd if env exists emmc_ack; then ; else setenv emmc_ack 0; fi;
FB: ucmd mmc partconf ${emmc_dev} ${emmc_ack} 1 0
FB: done
",
    );
    s
}

/// `flash-bundle.uuu`: the boot steps of `emmc_all`, then only the
/// `mfg-bundle` partition is written.
pub fn flash_bundle_script() -> String {
    let mut s = script_head(
        "Write a new sealed bundle into the mfg-bundle partition of a device whose\n\
         eMMC was flashed with flash-emmc.uuu. Nothing else on the eMMC changes.\n\
         Open parts only: a closed part cannot boot the stock programming U-Boot.",
        "uuu -b flash-bundle.uuu STOCK-FLASH.BIN mfg-bundle.img",
        &[
            STOCK_FLASH_BIN,
            (
                "_bundle",
                "mfg-bundle partition image (mfg-bundle.img from cargo xtask factory --bundle)",
            ),
        ],
    );
    s.push_str(
        "#\n# The boot steps of uuu's built-in emmc_all (`uuu -bshow emmc_all`), then\n\
         # one partition written by its GPT name.\n\n",
    );
    s.push_str(boot_steps());
    s.push_str("FB: flash mfg-bundle _bundle\nFB: done\n");
    s
}

fn manifest(out: &Path) -> Result<String> {
    let mut names: Vec<String> = fs::read_dir(out)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "MANIFEST.txt")
        .collect();
    names.sort();
    let mut s = format!("factory output in {}:\n", out.display());
    for n in names {
        let len = fs::metadata(out.join(&n))?.len();
        let _ = writeln!(s, "  {n:<24} {len:>10} bytes");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `_name` token a command line uses is declared in a `# @` line,
    /// and every declared parameter is used.
    fn params_consistent(script: &str) {
        let declared: Vec<&str> = script
            .lines()
            .filter_map(|l| l.strip_prefix("# @"))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let used: Vec<&str> = script
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(str::split_whitespace)
            .filter(|w| w.starts_with('_'))
            .collect();
        for u in &used {
            assert!(declared.contains(u), "{u} used but not declared:\n{script}");
        }
        for d in &declared {
            assert!(used.contains(d), "{d} declared but unused:\n{script}");
        }
    }

    /// The command lines of a uuu script (no comments, no blank lines).
    fn commands(script: &str) -> Vec<&str> {
        script
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    /// Why `ours` is not `emmc_all` (the text of `uuu -bshow emmc_all`)
    /// with [`EMMC_ALL_CHANGES`], or `None` if it is.
    fn emmc_script_mismatch(emmc_all: &str, ours: &str) -> Option<String> {
        let want: Vec<&str> = commands(emmc_all)
            .into_iter()
            .map(|l| {
                EMMC_ALL_CHANGES
                    .iter()
                    .find(|c| c.0 == l)
                    .map_or(l, |c| c.1)
            })
            .collect();
        let got = commands(ours);
        (want != got).then(|| format!("emmc_all with the changes:\n{want:#?}\nours:\n{got:#?}"))
    }

    /// The bundle script: `emmc_all`'s steps up to selecting the eMMC, then
    /// one partition written.
    fn bundle_script_mismatch(emmc_all: &str, ours: &str) -> Option<String> {
        let all = commands(emmc_all);
        let Some(dev) = all.iter().position(|l| l.starts_with("FB: ucmd mmc dev ")) else {
            return Some(format!("no `mmc dev` step in emmc_all:\n{emmc_all}"));
        };
        let mut want = all[..=dev].to_vec();
        want.extend(["FB: flash mfg-bundle _bundle", "FB: done"]);
        let got = commands(ours);
        (want != got).then(|| format!("want:\n{want:#?}\nours:\n{got:#?}"))
    }

    /// `uuu -bshow emmc_all`, or `None` (test skipped) without `uuu`.
    fn uuu_emmc_all() -> Option<String> {
        match Command::new("uuu").args(["-bshow", "emmc_all"]).output() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "SKIPPED: uuu is not installed (Debian package uuu; `cargo xtask prereqs`), \
                     so the scripts were not compared with its emmc_all"
                );
                None
            }
            Err(e) => panic!("cannot run uuu: {e}"),
            Ok(o) => {
                assert!(o.status.success(), "uuu -bshow emmc_all: {o:?}");
                Some(String::from_utf8(o.stdout).expect("UTF-8 script"))
            }
        }
    }

    /// Issue 15 item 8: both scripts run uuu's own eMMC steps, the SPL's
    /// SDPV download included, with only the documented changes.
    #[test]
    fn scripts_are_uuus_emmc_all_with_the_documented_changes() {
        let Some(emmc_all) = uuu_emmc_all() else {
            return;
        };
        // What the comparison relies on is in uuu's text.
        for l in [
            "SDPS: boot -scanterm -f _flash.bin -scanlimited 0x800000",
            "SDPV: write -f _flash.bin -skipspl -scanterm -scanlimited 0x800000",
            "FB: done",
        ] {
            assert!(commands(&emmc_all).contains(&l), "{l}:\n{emmc_all}");
        }
        for (theirs, _, _) in EMMC_ALL_CHANGES {
            assert!(
                commands(&emmc_all).contains(theirs),
                "{theirs}:\n{emmc_all}"
            );
        }
        let emmc = flash_emmc_script();
        let bundle = flash_bundle_script();
        assert_eq!(emmc_script_mismatch(&emmc_all, &emmc), None);
        assert_eq!(bundle_script_mismatch(&emmc_all, &bundle), None);
        // The comparison fails without the SPL's SDPV steps (what the
        // scripts lacked before), or with -raw2sparse on the sparse image.
        for bad in [
            emmc.replace("SDPV: ", "# SDPV: "),
            emmc.replace("FB: flash all", "FB: flash -raw2sparse all"),
        ] {
            assert!(emmc_script_mismatch(&emmc_all, &bad).is_some(), "{bad}");
        }
        let bad = bundle.replace("SDPV: jump", "# SDPV: jump");
        assert!(bundle_script_mismatch(&emmc_all, &bad).is_some(), "{bad}");
    }

    #[test]
    fn emmc_script_states_its_changes_and_parameters() {
        let s = flash_emmc_script();
        params_consistent(&s);
        assert!(s.starts_with("uuu_version 1.4.149\n"), "{s}");
        for (theirs, ours, _) in EMMC_ALL_CHANGES {
            assert!(s.contains(&format!("#   emmc_all: {theirs}\n")), "{s}");
            assert!(commands(&s).contains(ours), "{ours}:\n{s}");
            assert!(!commands(&s).contains(theirs), "{theirs}:\n{s}");
        }
        // In order: ROM, SPL (SDPV), then fastboot writes and partconf.
        let at = |l: &str| commands(&s).iter().position(|c| c.starts_with(l)).expect(l);
        assert!(at("SDPS: boot") < at("SDPV: delay"));
        assert!(at("SDPV: jump") < at("FB: ucmd setenv fastboot_dev"));
        assert!(at("FB: flash all _image") < at("FB: ucmd mmc partconf ${emmc_dev}"));
        assert_eq!(commands(&s).last(), Some(&"FB: done"));
    }

    #[test]
    fn bundle_script_writes_only_the_bundle_partition() {
        let s = flash_bundle_script();
        params_consistent(&s);
        let writes: Vec<&str> = commands(&s)
            .into_iter()
            .filter(|l| l.starts_with("FB: flash") || l.contains("mmc write"))
            .collect();
        assert_eq!(writes, ["FB: flash mfg-bundle _bundle"]);
        assert!(!s.contains("partconf"));
    }

    #[test]
    fn fit_source_names_images_addresses_and_configuration() {
        let s = fit_source("bl31.bin");
        for want in [
            "data = /incbin/(\"loader.bin\");",
            "data = /incbin/(\"bl31.bin\");",
            "data = /incbin/(\"board.dtb\");",
            "load = <0x40200000>;",
            "entry = <0x40200000>;",
            "load = <0x970000>;",
            "entry = <0x970000>;",
            "load = <0x43000000>;",
            "firmware = \"atf\";",
            "loadables = \"loader\";",
            "fdt = \"fdt\";",
        ] {
            assert!(s.contains(want), "{want} missing:\n{s}");
        }
        // BL31 is entered first: the loader must not be the firmware.
        assert!(!s.contains("firmware = \"loader\""));
    }

    #[test]
    fn placeholder_is_a_branch_to_self_and_says_so() {
        let p = bl31_placeholder();
        assert_eq!(p[..4], [0x00, 0x00, 0x00, 0x14]);
        let t = String::from_utf8_lossy(&p[4..]);
        assert!(t.contains("PLACEHOLDER") && t.contains("--bl31"), "{t}");
    }
}
