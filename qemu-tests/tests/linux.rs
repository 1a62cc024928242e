//! The Linux handoff proven with Debian's real arm64 kernel: a fresh chip
//! provisions from its disk image, autoboots Linux, and the kernel's own
//! `/init` prints the `/chosen` values and the blob table it read from the
//! eMMC. Corrupt kernel and DTB partitions give the loader's clear errors.
//!
//! The kernel and busybox packages are fetched on first use and cached under
//! `target/linux-cache/` (see `qemu_tests::linux`).

use qemu_tests::linux::{self, inspect};
use qemu_tests::mfg::{hex, mfgtool_run};
use qemu_tests::{Qemu, QemuOpts, loader_image};
use std::fs;
use std::path::Path;
use std::time::Duration;

/// Provisioning with the emulated CAAM plus a 33 MB kernel load, on a busy
/// 2-core machine.
const TO_KERNEL: Duration = Duration::from_secs(240);
/// Linux from entry to `poweroff` (about 30 s wall when the machine is busy).
const LINUX: Duration = Duration::from_secs(300);

/// Values after `prefix` on lines that start with it (console `\r\n` lines).
fn lines_with<'a>(log: &'a str, prefix: &str) -> Vec<&'a str> {
    log.lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix(prefix))
        .collect()
}

fn chosen(log: &str, name: &str) -> String {
    let key = format!("mfgprot,{name}=");
    let v: Vec<&str> = lines_with(log, "chosen: ")
        .into_iter()
        .filter_map(|l| l.strip_prefix(key.as_str()))
        .collect();
    assert_eq!(
        v.len(),
        1,
        "exactly one chosen {name} line expected in:\n{log}"
    );
    v[0].to_string()
}

/// SHA-256 of `len` bytes at `offset` of the disk's `mfg-data` partition.
fn sha256_in_disk(disk: &Path, first_lba: u64, offset: u64, len: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open(disk).expect("disk");
    f.seek(SeekFrom::Start(first_lba * 512 + offset)).unwrap();
    let mut b = vec![0u8; len];
    f.read_exact(&mut b).unwrap();
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&b)?;
            c.wait_with_output()
        })
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_fresh_chip_provisions_and_boots_debian_linux_which_finds_its_blobs() {
    let s = linux::provision_disk("linux-boot", &loader_image()).expect("setup");
    let mut q = Qemu::boot(
        QemuOpts::new(loader_image())
            .fuses(&s.fuses)
            .disk(&s.disk)
            .no_reboot(true),
    )
    .expect("QEMU starts");
    let before = q
        .wait_for("Starting kernel ...", TO_KERNEL)
        .expect("loader boots Linux");
    assert!(
        before.contains("Hit any key to stop autoboot:"),
        "no autoboot countdown:\n{before}"
    );
    assert!(
        before.contains("Loaded kernel (") && before.contains("initrd from mmc 2"),
        "{before}"
    );
    q.wait_for("Linux version 6.", LINUX)
        .expect("the kernel runs");
    let log = q.wait_for("init: done", LINUX).expect("/init finishes");
    let status = q
        .wait_exit(Duration::from_secs(60))
        .expect("QEMU exits after poweroff");
    assert!(
        status.success(),
        "QEMU exit status {status} after poweroff -f"
    );
    let log = log.replace('\r', "");

    // /chosen, as Linux sees it.
    assert_eq!(chosen(&log, "state"), "done", "{log}");
    assert_eq!(chosen(&log, "uid"), hex(&s.uid));
    assert_eq!(chosen(&log, "partition"), "mfg-data");
    let parts = s.partitions.as_array().expect("partition list");
    let data = parts
        .iter()
        .find(|p| p["name"] == "mfg-data")
        .expect("mfg-data partition");
    assert_eq!(
        chosen(&log, "partition-index"),
        data["index"].to_string(),
        "{log}"
    );
    assert_eq!(chosen(&log, "blob-table-offset"), "4096");
    let cmdline = lines_with(&log, "cmdline: ");
    assert!(
        cmdline.len() == 1 && cmdline[0].contains("console=ttymxc1,115200"),
        "{log}"
    );

    // The blob table, read by Linux from /dev/mmcblk*, equals what mfgtool
    // decodes from the disk image the loader wrote.
    let found = lines_with(&log, "init: mfg-data is /dev/mmcblk");
    assert_eq!(found.len(), 1, "Linux did not find mfg-data:\n{log}");
    assert!(
        found[0].ends_with(&format!("(partition {})", data["index"])),
        "{log}"
    );
    let j = inspect(&s.disk);
    assert_eq!(j["state"], "done");
    let table = j["blob_table"].as_array().expect("blob table");
    assert_eq!(table.len(), 3);
    assert_eq!(chosen(&log, "blob-count"), "3");
    let first_lba = data["first_lba"].as_u64().expect("first_lba");
    let want: Vec<String> = table
        .iter()
        .map(|b| {
            assert_eq!(b["crc_ok"], true);
            let len = b["blob_length"].as_u64().unwrap();
            format!(
                "{} {} {} sha256={}",
                b["name"].as_str().unwrap(),
                len,
                b["crc"].as_str().unwrap(),
                sha256_in_disk(
                    &s.disk,
                    first_lba,
                    b["offset"].as_u64().unwrap(),
                    usize::try_from(len).unwrap()
                )
            )
        })
        .collect();
    let got = lines_with(&log, "blob: ");
    assert_eq!(got, want, "{log}");
    let names: Vec<&str> = want.iter().map(|w| w.split(' ').next().unwrap()).collect();
    assert_eq!(names, ["wifi-key", "device-cert", "app-token"]);
    // Blob length = secret + 48.
    assert!(want[0].starts_with("wifi-key 80 "), "{want:?}");
    let _ = fs::remove_dir_all(&s.dir);
}

/// The production loader boots Debian's kernel only through the signed FIT
/// (`boot` partition), with the command line of the signed configuration.
#[test]
fn a_production_loader_boots_debian_linux_from_a_signed_fit() {
    let s = linux::provision_disk_signed("linux-fit", &loader_image()).expect("setup");
    let mut q = Qemu::boot(
        QemuOpts::new(qemu_tests::production_loader_image())
            .fuses(&s.fuses)
            .disk(&s.disk)
            .no_reboot(true),
    )
    .expect("QEMU starts");
    let before = q
        .wait_for("Starting kernel ...", TO_KERNEL)
        .expect("the production loader boots the signed FIT");
    assert!(
        before.contains("Verifying configuration signature ... sha256,ecdsa256:development key OK")
            && before.contains("Verifying Hash Integrity ... sha256 OK"),
        "{before}"
    );
    assert!(
        !before.contains("Loaded kernel ("),
        "no raw partitions: {before}"
    );
    q.wait_for("Linux version 6.", LINUX)
        .expect("the kernel runs");
    let log = q.wait_for("init: done", LINUX).expect("/init finishes");
    let status = q
        .wait_exit(Duration::from_secs(60))
        .expect("QEMU exits after poweroff");
    assert!(status.success(), "QEMU exit status {status}");
    let log = log.replace('\r', "");
    let cmdline = lines_with(&log, "cmdline: ");
    assert_eq!(cmdline, [linux::SIGNED_BOOTARGS], "{log}");
    assert_eq!(chosen(&log, "state"), "done", "{log}");
    assert_eq!(chosen(&log, "blob-count"), "3", "{log}");
    let _ = fs::remove_dir_all(&s.dir);
}

/// A disk with a small fake kernel and the given DTB, no bundle.
fn disk_with(dir: &Path, kernel: &[u8], dtb: &[u8]) -> std::path::PathBuf {
    fs::create_dir_all(dir).unwrap();
    let (kp, dp, img) = (dir.join("Image"), dir.join("dtb"), dir.join("disk.img"));
    fs::write(&kp, kernel).unwrap();
    fs::write(&dp, dtb).unwrap();
    mfgtool_run(&[
        "image".as_ref(),
        "-o".as_ref(),
        img.as_os_str(),
        "--size".as_ref(),
        "64M".as_ref(),
        "--kernel".as_ref(),
        kp.as_os_str(),
        "--dtb".as_ref(),
        dp.as_os_str(),
    ]);
    img
}

/// A 64 KiB arm64 Image that only branches to itself, `magic` at 0x38.
fn fake_kernel(magic: u32) -> Vec<u8> {
    let mut k = vec![0u8; 64 << 10];
    k[0..4].copy_from_slice(&0x1400_0000u32.to_le_bytes()); // b .
    k[8..16].copy_from_slice(&0u64.to_le_bytes()); // text_offset
    k[16..24].copy_from_slice(&(64u64 << 10).to_le_bytes()); // image_size
    k[24..32].copy_from_slice(&0xau64.to_le_bytes()); // LE, 4K, anywhere
    k[56..60].copy_from_slice(&magic.to_le_bytes());
    k
}

fn boot_disk(disk: &Path) -> (Qemu, String) {
    let mut q = Qemu::boot(QemuOpts::new(loader_image()).disk(disk)).expect("QEMU starts");
    let banner = q
        .wait_prompt_timeout(Duration::from_secs(60))
        .expect("prompt");
    (q, banner)
}

#[test]
fn a_corrupt_kernel_partition_gives_a_clear_error_and_the_prompt() {
    let dir = std::env::temp_dir().join(format!("qt-linux-{}-badk", std::process::id()));
    let dtb = fs::read(linux::kernel_files().dtb).expect("dtb");
    let disk = disk_with(&dir, &fake_kernel(0x1234_5678), &dtb);
    let (mut q, banner) = boot_disk(&disk);
    assert!(
        !banner.contains("Hit any key") && !banner.contains("Starting kernel"),
        "autoboot must not start for a bad Image header:\n{banner}"
    );
    let out = q
        .run_timeout("boot", Duration::from_secs(60))
        .expect("boot returns");
    assert!(
        out.contains("partition 'kernel': bad Linux ARM64 Image magic! (0x12345678)"),
        "{out}"
    );
    assert!(q.run("version").expect("alive").contains("loader"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn an_arrow_key_stops_autoboot_and_leaves_nothing_in_the_first_line() {
    let dir = std::env::temp_dir().join(format!("qt-linux-{}-arrow", std::process::id()));
    let dtb = fs::read(linux::kernel_files().dtb).expect("dtb");
    // A kernel autoboot would start (a `b .` loop): only the key stops it.
    let disk = disk_with(&dir, &fake_kernel(0x644d_5241), &dtb);
    let mut q = Qemu::boot(QemuOpts::new(loader_image()).disk(&disk)).expect("QEMU starts");
    q.wait_for("Hit any key to stop autoboot:", Duration::from_secs(60))
        .expect("countdown");
    // Up arrow: autoboot takes the Esc; `[A` must not reach the line.
    q.send_raw(b"\x1b[A").expect("send");
    let banner = q
        .wait_prompt_timeout(Duration::from_secs(60))
        .expect("prompt");
    assert!(!banner.contains("Starting kernel"), "{banner}");
    let out = q.run("version").expect("version answers");
    assert!(
        out.contains(env!("CARGO_PKG_VERSION")) && !out.contains("Unknown command"),
        "{out}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_dtb_partition_gives_a_clear_error_and_the_prompt() {
    let dir = std::env::temp_dir().join(format!("qt-linux-{}-badd", std::process::id()));
    let mut dtb = fs::read(linux::kernel_files().dtb).expect("dtb");
    dtb[0] ^= 0xff; // FDT magic
    let disk = disk_with(&dir, &fake_kernel(0x644d_5241), &dtb);
    let (mut q, banner) = boot_disk(&disk);
    // Autoboot starts (the kernel header is fine) and reports the DTB.
    assert!(banner.contains("Hit any key to stop autoboot:"), "{banner}");
    assert!(
        banner.contains("boot: partition 'dtb': not a device tree (bad magic)"),
        "{banner}"
    );
    assert!(!banner.contains("Starting kernel"), "{banner}");
    let out = q
        .run_timeout("boot", Duration::from_secs(60))
        .expect("boot returns");
    assert!(
        out.contains("partition 'dtb': not a device tree (bad magic)"),
        "{out}"
    );
    assert!(q.run("version").expect("alive").contains("loader"));
    let _ = fs::remove_dir_all(&dir);
}
