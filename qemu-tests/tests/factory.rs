//! `cargo xtask factory`: the FIT lists the expected images and addresses,
//! the eMMC image (sparse, the size of the eMMC) has the expected GPT
//! partitions with the backup GPT in the eMMC's last sector and carries the
//! sealed bundle, and `uuu -dry` accepts both scripts (and refuses them
//! when a file they name is missing).
//!
//! One factory run (with a freshly sealed bundle) is shared by the tests.
//! The two inputs the CM supplies and this project cannot build, NXP's
//! stock `flash.bin` (booted over USB) and the imx-mkimage `flash.bin`
//! (SPL + DDR firmware + our FIT), are stood in by placeholder files:
//! `uuu -dry` checks script syntax, parameters and that every named file
//! opens, not what the files hold.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use qemu_tests::{target_dir, workspace_root};

/// The eMMC user area the test builds for: a 32 GB-class size that is not
/// a power of two (the test's own figure, not a particular part's).
const EMMC_SECTORS: u64 = 61_071_360;

struct Factory {
    dir: PathBuf,
    bundle: Vec<u8>,
    scratch: PathBuf,
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// Seals a bundle for a throw-away MP public key and runs the factory.
fn factory() -> &'static Factory {
    static F: OnceLock<Factory> = OnceLock::new();
    F.get_or_init(|| {
        let scratch = target_dir().join("factory-test");
        let _ = fs::remove_dir_all(&scratch);
        fs::create_dir_all(scratch.join("sec")).expect("scratch dir");
        run(Command::new("openssl")
            .current_dir(&scratch)
            .args(["ecparam", "-name", "prime256v1", "-genkey", "-noout"])
            .args(["-out", "mp.key"]));
        run(Command::new("openssl")
            .current_dir(&scratch)
            .args(["ec", "-in", "mp.key", "-pubout", "-out", "mp.pub"]));
        fs::write(scratch.join("sec/wifi.bin"), [0x5a; 32]).expect("secret");
        fs::write(
            scratch.join("secrets.toml"),
            "[[secret]]\nname = \"wifi-key\"\nfile = \"sec/wifi.bin\"\ntype = \"raw\"\n",
        )
        .expect("manifest");
        run(cargo()
            .args(["run", "--quiet", "-p", "mfgtool", "--", "seal"])
            .arg("--mp-pubkey")
            .arg(scratch.join("mp.pub"))
            .arg("--secrets")
            .arg(scratch.join("secrets.toml"))
            .args(["--product", "factory-test", "-o"])
            .arg(scratch.join("bundle.bin")));
        let dir = scratch.join("out");
        run(cargo()
            .args(["run", "--quiet", "-p", "xtask", "--", "factory", "-o"])
            .arg(&dir)
            .arg("--bundle")
            .arg(scratch.join("bundle.bin"))
            .args(["--emmc-sectors", &EMMC_SECTORS.to_string()])
            // The loader is built with the development key set.
            .arg("--allow-dev-keys"));
        // Stand-ins for the two flash.bin files the CM gets elsewhere.
        fs::write(
            scratch.join("stock-flash.bin"),
            b"PLACEHOLDER: NXP stock flash.bin (U-Boot with fastboot) for uuu -dry\n",
        )
        .expect("placeholder");
        fs::write(
            scratch.join("flash.bin"),
            b"PLACEHOLDER: imx-mkimage flash.bin made from loader.itb, for uuu -dry\n",
        )
        .expect("placeholder");
        let bundle = fs::read(scratch.join("bundle.bin")).expect("bundle");
        Factory {
            dir,
            bundle,
            scratch,
        }
    })
}

/// The lines of `mkimage -l` for one image, from its ` Image N (name)` line
/// to the next image or configuration.
fn image_block<'a>(listing: &'a str, name: &str) -> &'a str {
    let head = format!("({name})");
    let start = listing
        .match_indices(" Image ")
        .map(|(i, _)| i)
        .find(|&i| {
            listing[i..]
                .lines()
                .next()
                .is_some_and(|l| l.trim_end().ends_with(&head))
        })
        .unwrap_or_else(|| panic!("no image {name} in:\n{listing}"));
    let rest = &listing[start + 1..];
    let end = rest
        .find("\n Image ")
        .or_else(|| rest.find("\n Default Configuration"))
        .unwrap_or(rest.len());
    &rest[..end]
}

fn field<'a>(block: &'a str, key: &str) -> Option<&'a str> {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim())
}

#[test]
fn fit_lists_loader_atf_and_fdt_at_their_addresses() {
    let f = factory();
    let itb = f.dir.join("loader.itb");
    let listing = stdout(Command::new("mkimage").arg("-l").arg(&itb));

    let loader = image_block(&listing, "loader");
    assert_eq!(
        field(loader, "Type"),
        Some("Standalone Program"),
        "{loader}"
    );
    assert_eq!(field(loader, "Architecture"), Some("AArch64"), "{loader}");
    assert_eq!(
        field(loader, "Load Address"),
        Some("0x40200000"),
        "{loader}"
    );
    assert_eq!(field(loader, "Entry Point"), Some("0x40200000"), "{loader}");
    let loader_len = fs::metadata(f.dir.join("loader.bin")).unwrap().len();
    assert!(
        field(loader, "Data Size").is_some_and(|s| s.starts_with(&format!("{loader_len} Bytes"))),
        "{loader}"
    );

    let atf = image_block(&listing, "atf");
    assert_eq!(field(atf, "Type"), Some("Firmware"), "{atf}");
    assert_eq!(field(atf, "Load Address"), Some("0x00970000"), "{atf}");

    let fdt = image_block(&listing, "fdt");
    assert_eq!(field(fdt, "Type"), Some("Flat Device Tree"), "{fdt}");
    assert_eq!(field(fdt, "Load Address"), Some("0x43000000"), "{fdt}");

    let conf = &listing[listing.find("Default Configuration").expect("config")..];
    assert!(conf.contains("'conf-1'"), "{conf}");
    assert_eq!(field(conf, "Firmware"), Some("atf"), "{conf}");
    assert_eq!(field(conf, "Loadables"), Some("loader"), "{conf}");
    assert_eq!(field(conf, "FDT"), Some("fdt"), "{conf}");
    // Three images, no more.
    assert_eq!(listing.matches("\n Image ").count(), 3, "{listing}");
}

#[test]
fn fit_images_hold_the_loader_placeholder_and_dtb_bytes() {
    let f = factory();
    let itb = f.dir.join("loader.itb");
    // External data (mkimage -E), as imx-mkimage's u-boot.itb.
    let raw = fs::read(&itb).unwrap();
    assert_eq!(&raw[..4], &[0xd0, 0x0d, 0xfe, 0xed], "not an FDT/FIT");
    let extract = |index: &str, name: &str| -> Vec<u8> {
        let o = f.scratch.join(name);
        run(Command::new("dumpimage")
            .args(["-T", "flat_dt", "-p", index, "-o"])
            .arg(&o)
            .arg(&itb));
        fs::read(o).unwrap()
    };
    let loader = fs::read(f.dir.join("loader.bin")).unwrap();
    assert_eq!(extract("0", "x-loader.bin"), loader);
    // The loader is an arm64 Image: magic "ARM\x64" at 0x38.
    assert_eq!(&loader[0x38..0x3c], b"ARM\x64");
    let atf = extract("1", "x-atf.bin");
    assert_eq!(atf, fs::read(f.dir.join("bl31-PLACEHOLDER.bin")).unwrap());
    // `b .`: a FIT booted with the placeholder hangs at BL31's entry.
    assert_eq!(&atf[..4], &0x1400_0000u32.to_le_bytes());
    assert!(String::from_utf8_lossy(&atf).contains("PLACEHOLDER for TF-A bl31.bin"));
    let dtb = extract("2", "x-fdt.dtb");
    assert_eq!(dtb, fs::read(f.dir.join("board.dtb")).unwrap());
    let dts = stdout(
        Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts"])
            .arg(f.scratch.join("x-fdt.dtb")),
    );
    assert!(dts.contains("fsl,imx8mp-evk"), "{dts}");
}

/// Expands an Android sparse image into a raw file (holes for DONT_CARE),
/// decoded here from the format (AOSP `sparse_format.h`), independently of
/// `mfgtool`'s writer. Returns the raw file and the image's block count.
fn expand_sparse(simg: &Path, raw: &Path) -> u64 {
    let b = fs::read(simg).unwrap();
    let le16 = |at: usize| u64::from(u16::from_le_bytes([b[at], b[at + 1]]));
    let le32 = |at: usize| u64::from(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()));
    assert_eq!(
        le32(0),
        0xed26_ff3a,
        "{}: not a sparse image",
        simg.display()
    );
    let (hdr, blk, total, chunks) = (le16(8) as usize, le32(12), le32(16), le32(20));
    let mut f = fs::File::create(raw).unwrap();
    f.set_len(total * blk).unwrap();
    let (mut pos, mut at) = (hdr, 0u64);
    for _ in 0..chunks {
        let (kind, n, size) = (le16(pos), le32(pos + 4), le32(pos + 8) as usize);
        let data = &b[pos + 12..pos + size];
        match kind {
            0xcac1 => f.write_all_at(data, at * blk).unwrap(),
            0xcac2 => {
                f.seek(SeekFrom::Start(at * blk)).unwrap();
                let piece: Vec<u8> = data.iter().copied().cycle().take(1 << 20).collect();
                let mut left = n * blk;
                while left > 0 {
                    let k = left.min(1 << 20);
                    f.write_all(&piece[..k as usize]).unwrap();
                    left -= k;
                }
            }
            0xcac3 => {}
            k => panic!("chunk type {k:#x}"),
        }
        at += n;
        pos += size;
    }
    assert_eq!((at, pos), (total, b.len()), "chunks do not cover the image");
    total
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn disk_image_has_the_gpt_partitions_and_the_bundle() {
    let f = factory();
    let simg = f.dir.join("disk.simg");
    // Sparse: a few hundred KiB for the whole eMMC.
    assert!(fs::metadata(&simg).unwrap().len() < 16 << 20);
    let disk = f.scratch.join("disk.raw");
    assert_eq!(expand_sparse(&simg, &disk), EMMC_SECTORS);
    assert_eq!(fs::metadata(&disk).unwrap().len(), EMMC_SECTORS * 512);
    let p = stdout(Command::new("sgdisk").arg("-p").arg(&disk));
    let rows: Vec<Vec<&str>> = p
        .lines()
        .skip_while(|l| !l.starts_with("Number"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let names: Vec<&str> = rows.iter().filter_map(|r| r.last().copied()).collect();
    assert_eq!(
        names,
        ["mfg-data", "mfg-bundle", "kernel", "dtb", "loader"],
        "{p}"
    );
    // mfg-data and mfg-bundle: 8 MiB each, from the first 1 MiB boundary.
    assert_eq!(rows[0][1..5], ["2048", "18431", "8.0", "MiB"], "{p}");
    assert_eq!(rows[1][1..5], ["18432", "34815", "8.0", "MiB"], "{p}");
    // sgdisk finds both GPT copies consistent, the backup where a disk of
    // this size has it.
    let v = stdout(Command::new("sgdisk").arg("-v").arg(&disk));
    assert!(v.contains("No problems found"), "{v}");

    // Issue 15 item 8: the backup header is in the eMMC's last sector, and
    // the primary's AlternateLBA points at it.
    let raw = fs::File::open(&disk).unwrap();
    let mut h = [0u8; 512];
    raw.read_exact_at(&mut h, 512).unwrap();
    assert_eq!(&h[..8], b"EFI PART");
    assert_eq!(le64(&h, 32), EMMC_SECTORS - 1, "primary AlternateLBA");
    raw.read_exact_at(&mut h, (EMMC_SECTORS - 1) * 512).unwrap();
    assert_eq!(&h[..8], b"EFI PART", "no GPT header in the last sector");
    assert_eq!(le64(&h, 24), EMMC_SECTORS - 1, "backup MyLBA");
    assert_eq!(le64(&h, 32), 1, "backup AlternateLBA");

    let mut part = vec![0u8; 8 << 20];
    raw.read_exact_at(&mut part, 18432 * 512).unwrap();
    let bundle_img = fs::read(f.dir.join("mfg-bundle.img")).unwrap();
    assert_eq!(bundle_img.len(), 8 << 20);
    assert!(
        bundle_img == part,
        "mfg-bundle.img differs from the partition"
    );
    // The sealed bundle sits after the partition's one-block header.
    assert_eq!(&bundle_img[512..512 + f.bundle.len()], &f.bundle[..]);

    // mfgtool reads the sparse image itself.
    let inspect = stdout(
        cargo()
            .args(["run", "--quiet", "-p", "mfgtool", "--", "inspect"])
            .arg(&simg),
    );
    assert!(inspect.contains("factory-test"), "{inspect}");
}

fn uuu_dry(script: &str, args: &[&Path]) -> Output {
    let f = factory();
    let mut c = Command::new("timeout");
    c.current_dir(&f.dir)
        .args(["60", "uuu", "-dry", "-b", script])
        .args(args);
    c.output().expect("run uuu")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn uuu_dry_accepts_both_scripts_with_the_produced_files() {
    let f = factory();
    let stock = f.scratch.join("stock-flash.bin");
    let flash = f.scratch.join("flash.bin");
    let disk = f.dir.join("disk.simg");
    let o = uuu_dry("flash-emmc.uuu", &[&stock, &flash, &disk]);
    let t = text(&o);
    assert!(o.status.success(), "uuu -dry flash-emmc.uuu failed:\n{t}");
    // The parameters were substituted in order; the SPL fetches the rest
    // of the stock flash.bin over SDPV.
    for want in [
        format!(
            "SDPS: boot -scanterm -f {} -scanlimited 0x800000",
            stock.display()
        ),
        format!(
            "SDPV: write -f {} -skipspl -scanterm -scanlimited 0x800000",
            stock.display()
        ),
        "SDPV: jump -scanlimited 0x800000".to_string(),
        format!("FB: flash all {}", disk.display()),
        format!(
            "FB: flash -scanterm -scanlimited 0x800000 bootloader {}",
            flash.display()
        ),
        "FB: ucmd mmc partconf ${emmc_dev} ${emmc_ack} 1 0".to_string(),
    ] {
        assert!(t.lines().any(|l| l.trim() == want), "{want}:\n{t}");
    }
    // The sparse image goes as it is (-raw2sparse only in the comment).
    assert!(
        !t.lines()
            .any(|l| l.trim().starts_with("FB: flash -raw2sparse")),
        "{t}"
    );

    let part = f.dir.join("mfg-bundle.img");
    let o = uuu_dry("flash-bundle.uuu", &[&stock, &part]);
    let t = text(&o);
    assert!(o.status.success(), "uuu -dry flash-bundle.uuu failed:\n{t}");
    assert!(
        t.contains(&format!("FB: flash mfg-bundle {}", part.display())),
        "{t}"
    );
    assert!(
        !t.contains("raw2sparse all"),
        "bundle script writes more: {t}"
    );
}

#[test]
fn uuu_dry_refuses_a_script_whose_file_is_missing() {
    let f = factory();
    let stock = f.scratch.join("stock-flash.bin");
    let missing = f.scratch.join("no-such-flash.bin");
    let disk = f.dir.join("disk.simg");
    let o = uuu_dry("flash-emmc.uuu", &[&stock, &missing, &disk]);
    let t = text(&o);
    assert!(
        !o.status.success(),
        "uuu -dry accepted a missing file:\n{t}"
    );
    assert!(t.contains("fail open file"), "{t}");
    // And a script missing its parameters is refused too.
    let o = uuu_dry("flash-bundle.uuu", &[]);
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn scripts_declare_their_parameters_like_uuu_built_ins() {
    let f = factory();
    for (script, params) in [
        ("flash-emmc.uuu", &["_flash.bin", "_boot.bin", "_image"][..]),
        ("flash-bundle.uuu", &["_flash.bin", "_bundle"][..]),
    ] {
        let s = fs::read_to_string(f.dir.join(script)).unwrap();
        assert!(s.starts_with("uuu_version 1.4.149\n"), "{script}: {s}");
        let declared: Vec<&str> = s
            .lines()
            .filter_map(|l| l.strip_prefix("# @"))
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect();
        assert_eq!(declared, params, "{script}");
        for step in [
            "SDPS: boot -scanterm -f _flash.bin -scanlimited 0x800000",
            "SDPV: write -f _flash.bin -skipspl -scanterm -scanlimited 0x800000",
        ] {
            assert!(s.lines().any(|l| l == step), "{script}: {step}");
        }
        assert!(s.trim_end().ends_with("FB: done"), "{script}");
    }
}

/// Issue 15 item 10: the same inputs give the same factory FITs (mkimage
/// stamps the time unless SOURCE_DATE_EPOCH is set, which the factory
/// does). With --kernel and --dtb the disk also gets the signed boot FIT,
/// whose deterministic signature keeps it identical too.
#[test]
fn factory_fits_are_reproducible_and_the_boot_fit_is_signed() {
    let f = factory();
    let kernel = f.scratch.join("Image");
    let mut k = vec![0u8; 64 << 10];
    k[16..24].copy_from_slice(&(64u64 << 10).to_le_bytes());
    k[56..60].copy_from_slice(b"ARM\x64");
    fs::write(&kernel, &k).expect("kernel");
    let dtb = f.dir.join("board.dtb");
    let mut outs = Vec::new();
    for n in ["repro-a", "repro-b"] {
        let dir = f.scratch.join(n);
        let _ = fs::remove_dir_all(&dir);
        run(cargo()
            .args(["run", "--quiet", "-p", "xtask", "--", "factory", "-o"])
            .arg(&dir)
            .arg("--allow-dev-keys")
            .args(["--emmc-sectors", &EMMC_SECTORS.to_string()])
            .arg("--bundle")
            .arg(f.scratch.join("bundle.bin"))
            .arg("--kernel")
            .arg(&kernel)
            .arg("--dtb")
            .arg(&dtb));
        outs.push(dir);
    }
    for name in ["loader.itb", "boot.itb"] {
        let a = fs::read(outs[0].join(name)).expect(name);
        let b = fs::read(outs[1].join(name)).expect(name);
        assert!(a == b, "{name} differs between two identical factory runs");
    }
    // The same loader.itb as the first run (no --kernel): only the disk
    // differs.
    assert_eq!(
        fs::read(outs[0].join("loader.itb")).unwrap(),
        fs::read(f.dir.join("loader.itb")).unwrap()
    );
    // The boot FIT is in the disk's `boot` partition and carries a
    // sha256,ecdsa256 configuration signature by the development key.
    let disk = f.scratch.join("repro-a.raw");
    expand_sparse(&outs[0].join("disk.simg"), &disk);
    let p = stdout(Command::new("sgdisk").arg("-p").arg(&disk));
    assert!(p.contains(" boot"), "{p}");
    let listing = stdout(
        Command::new("mkimage")
            .arg("-l")
            .arg(outs[0].join("boot.itb")),
    );
    assert!(
        listing.contains("Sign algo:    sha256,ecdsa256:dev-boot"),
        "{listing}"
    );
    assert!(!p.contains(" initrd"), "{p}");
}

/// The CM's loader is never built with the development key set by
/// accident: without `--allow-dev-keys` (and without `--keys DIR`) the
/// factory refuses before building anything.
#[test]
fn factory_refuses_the_development_key_set_unless_allowed() {
    let dir = target_dir().join("factory-test-devkeys");
    let o = cargo()
        .args(["run", "--quiet", "-p", "xtask", "--", "factory", "-o"])
        .arg(&dir)
        .args(["--emmc-sectors", &EMMC_SECTORS.to_string()])
        .output()
        .expect("cargo runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "factory built with development keys");
    assert!(
        err.contains("refusing a production build with the development key set"),
        "{err}"
    );
    assert!(!dir.join("loader.itb").exists());
}

/// The eMMC's size decides where the backup GPT goes: the factory refuses
/// to guess it, before building anything.
#[test]
fn factory_requires_the_emmc_size() {
    let dir = target_dir().join("factory-test-no-emmc-size");
    let _ = fs::remove_dir_all(&dir);
    let o = cargo()
        .args(["run", "--quiet", "-p", "xtask", "--", "factory", "-o"])
        .arg(&dir)
        .arg("--allow-dev-keys")
        .output()
        .expect("cargo runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "factory ran without --emmc-sectors");
    assert!(
        err.contains("--emmc-sectors N is required") && err.contains("cat /sys/block/mmcblk2/size"),
        "{err}"
    );
    assert!(!dir.exists());
}
