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
//! - `disk.img`: the eMMC user-area GPT image with the sealed bundle, written
//!   by `mfgtool image`; with `--kernel` and `--dtb`, its `boot` partition
//!   holds them as a FIT signed with the boot key (`MFG_BOOT_SIGNING_KEY`,
//!   a P-256 PEM; else the development key `keys/dev/dev-boot.pem`, with a
//!   warning), the only thing the production loader boots;
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
/// U-Boot's mmc device number of the eMMC (USDHC3) on the i.MX8M Plus EVK.
pub const EMMC_DEV: u32 = 2;
/// Minimum `uuu` version the scripts declare (that of NXP's built-in
/// eMMC scripts; Debian bookworm ships 1.4.193).
pub const UUU_VERSION: &str = "1.4.149";
/// Smallest disk image written.
pub const MIN_DISK: u64 = 64 << 20;

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
    let bundle_img = out.join("mfg-bundle.img");
    if opts.bundle.is_some() {
        let disk = fs::read(out.join("disk.img"))?;
        let part =
            partition(&disk, "mfg-bundle").ok_or("disk.img: no mfg-bundle partition in its GPT")?;
        fs::write(&bundle_img, part)?;
    } else {
        let _ = fs::remove_file(&bundle_img);
        eprintln!(
            "factory: WARNING: no --bundle: disk.img has an empty mfg-bundle partition \
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

/// Runs `mfgtool image` for `disk.img`, sized to hold every partition.
fn write_disk(mfgtool: &Path, opts: &FactoryOpts) -> Result<()> {
    let out = &opts.out;
    let len = |p: &Option<PathBuf>| -> Result<Option<u64>> {
        p.as_ref().map(|p| Ok(fs::metadata(p)?.len())).transpose()
    };
    let loader_len = fs::metadata(out.join("loader.bin"))?.len();
    let size = disk_size(&[
        Some(mfg_formats::area::MFG_DATA_BYTES),
        Some(mfg_formats::area::MFG_BUNDLE_BYTES),
        Some(len(&opts.kernel)?.unwrap_or(1 << 20)),
        Some(len(&opts.dtb)?.unwrap_or(1 << 20)),
        // The signed FIT: kernel + DTB + its own tree.
        Some(len(&opts.kernel)?.unwrap_or(0) + len(&opts.dtb)?.unwrap_or(0) + (64 << 10)),
        Some(loader_len),
    ]);
    let mut c = Command::new(mfgtool);
    c.arg("image")
        .arg("-o")
        .arg(out.join("disk.img"))
        .args(["--size", &size.to_string()])
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

/// The power-of-two disk size (at least [`MIN_DISK`]) that holds the given
/// partitions, each starting on a 1 MiB boundary, plus the GPT at both ends.
pub fn disk_size(parts: &[Option<u64>]) -> u64 {
    const MIB: u64 = 1 << 20;
    let body: u64 = parts
        .iter()
        .flatten()
        .map(|s| s.div_ceil(MIB).max(1) * MIB)
        .sum();
    // 1 MiB before the first partition, 1 MiB for the backup GPT.
    (body + 2 * MIB).next_power_of_two().max(MIN_DISK)
}

/// The bytes of the named partition in a GPT disk image.
pub fn partition<'a>(disk: &'a [u8], name: &str) -> Option<&'a [u8]> {
    disk.get(block::gpt::partition_range(disk, name)?)
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

/// `flash-emmc.uuu`: boot NXP's stock U-Boot over USB, then write the
/// user-area disk image and the product boot image (boot partition 0) with
/// fastboot and make boot partition 0 the boot source.
pub fn flash_emmc_script() -> String {
    let d = EMMC_DEV;
    format!(
        "\
uuu_version {UUU_VERSION}

# Flash one i.MX8M Plus device's eMMC: the user area (GPT disk image with the
# sealed bundle) and boot partition 0 (flash.bin with our loader).
# Generated by `cargo xtask factory`; see docs/factory.md.
#
# usage: uuu -b flash-emmc.uuu STOCK-FLASH.BIN FLASH.BIN disk.img
#
# @_flash.bin  | NXP stock flash.bin for the board (U-Boot with fastboot and uuu support); booted over USB, never written
# @_boot.bin   | product boot image: imx-mkimage flash.bin made from loader.itb; written to eMMC boot partition 0
# @_image      | eMMC user-area disk image (disk.img)

# ROM serial download (stream mode) boots the programming U-Boot.
SDPS: boot -f _flash.bin

FB: ucmd setenv fastboot_dev mmc
FB: ucmd setenv mmcdev {d}
FB: ucmd mmc dev {d}
FB: flash -raw2sparse all _image
FB: flash bootloader _boot.bin
FB: ucmd if env exists emmc_ack; then ; else setenv emmc_ack 0; fi;
FB: ucmd mmc partconf {d} ${{emmc_ack}} 1 0
FB: done
"
    )
}

/// `flash-bundle.uuu`: boot NXP's stock U-Boot over USB and write only the
/// `mfg-bundle` partition.
pub fn flash_bundle_script() -> String {
    let d = EMMC_DEV;
    format!(
        "\
uuu_version {UUU_VERSION}

# Write a new sealed bundle into the mfg-bundle partition of a device whose
# eMMC was flashed with flash-emmc.uuu. Nothing else on the eMMC changes.
# Generated by `cargo xtask factory`; see docs/factory.md.
#
# usage: uuu -b flash-bundle.uuu STOCK-FLASH.BIN mfg-bundle.img
#
# @_flash.bin  | NXP stock flash.bin for the board (U-Boot with fastboot and uuu support); booted over USB, never written
# @_bundle     | mfg-bundle partition image (mfg-bundle.img from cargo xtask factory --bundle)

SDPS: boot -f _flash.bin

FB: ucmd setenv fastboot_dev mmc
FB: ucmd setenv mmcdev {d}
FB: ucmd mmc dev {d}
FB: flash mfg-bundle _bundle
FB: done
"
    )
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

    const MIB: u64 = 1 << 20;

    #[test]
    fn disk_size_is_a_power_of_two_holding_every_partition() {
        let base = [Some(8 * MIB), Some(8 * MIB), None, None, Some(111 * 1024)];
        assert_eq!(disk_size(&base), MIN_DISK);
        // A 33 MB kernel still fits in 64 MiB (8+8+32+1+1 MiB + 2 MiB of GPT).
        let k = [Some(8 * MIB), Some(8 * MIB), Some(33_000_000), Some(MIB)];
        assert_eq!(disk_size(&k), 64 * MIB);
        // 62 MiB of partitions + 2 MiB is exactly 64 MiB; one byte more doubles.
        let exact = [Some(60 * MIB), Some(2 * MIB)];
        assert_eq!(disk_size(&exact), 64 * MIB);
        let over = [Some(60 * MIB), Some(2 * MIB + 1)];
        assert_eq!(disk_size(&over), 128 * MIB);
    }

    fn fake_disk(name: &str, first: u64, last: u64) -> Vec<u8> {
        let mut d = vec![0u8; 1024 * 512];
        let p = block::gpt::NewPartition {
            type_guid: [1; 16],
            unique_guid: [2; 16],
            first_lba: first,
            last_lba: last,
            name,
        };
        block::gpt::write_table(&mut block::MemDisk::new(&mut d, 512), &[3; 16], &[p])
            .expect("table");
        for (i, b) in d
            [usize::try_from(first).unwrap() * 512..(usize::try_from(last).unwrap() + 1) * 512]
            .iter_mut()
            .enumerate()
        {
            *b = u8::try_from(i % 251).unwrap();
        }
        d
    }

    #[test]
    fn partition_finds_the_named_entry() {
        let d = fake_disk("mfg-bundle", 40, 41);
        let p = partition(&d, "mfg-bundle").expect("found");
        assert_eq!(p.len(), 1024);
        assert_eq!(p.as_ptr(), d[40 * 512..].as_ptr());
        assert_eq!(partition(&d, "mfg-bundl"), None);
        assert_eq!(partition(&d, "mfg-bundle-2"), None);
        // Neither table valid: refused, not a panic.
        let mut bad = d.clone();
        bad[512] = b'X';
        let last = bad.len() - 512;
        bad[last] = b'X';
        assert_eq!(partition(&bad, "mfg-bundle"), None);
    }

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

    #[test]
    fn emmc_script_follows_the_stock_flow() {
        let s = flash_emmc_script();
        params_consistent(&s);
        let cmds: Vec<&str> = s
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(
            cmds,
            [
                "uuu_version 1.4.149",
                "SDPS: boot -f _flash.bin",
                "FB: ucmd setenv fastboot_dev mmc",
                "FB: ucmd setenv mmcdev 2",
                "FB: ucmd mmc dev 2",
                "FB: flash -raw2sparse all _image",
                "FB: flash bootloader _boot.bin",
                "FB: ucmd if env exists emmc_ack; then ; else setenv emmc_ack 0; fi;",
                "FB: ucmd mmc partconf 2 ${emmc_ack} 1 0",
                "FB: done",
            ]
        );
    }

    #[test]
    fn bundle_script_writes_only_the_bundle_partition() {
        let s = flash_bundle_script();
        params_consistent(&s);
        let writes: Vec<&str> = s
            .lines()
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
