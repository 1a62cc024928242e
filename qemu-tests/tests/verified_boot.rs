//! Verified boot on QEMU (issue 14, attack 5 in docs/threat-model.md): the
//! production loader boots only a FIT whose configuration signature
//! verifies against its built-in boot key (here the development key,
//! keys/dev/). What a CM at the console tries: an unsigned Image in the
//! `kernel` partition, an unsigned FIT, a signed FIT with one kernel byte
//! or its command line changed, `bootargs init=/bin/sh`; each is refused
//! and nothing boots. A correctly signed FIT boots.
//!
//! The kernels here are 64 KiB arm64 Images that spin (`b .`): what is
//! tested is whether the loader hands over. Debian's real kernel booting
//! from a signed FIT is in `linux.rs`.

use qemu_tests::mfg::mfgtool_run;
use qemu_tests::{Qemu, QemuOpts, production_loader_image, workspace_root};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PROMPT: Duration = Duration::from_secs(90);

/// A 64 KiB arm64 Image that only branches to itself, 60 bytes longer
/// (so that hashing it takes SHA-256's two-block padding path).
fn spin_kernel() -> Vec<u8> {
    let mut k = vec![0u8; (64 << 10) + 60];
    k[0..4].copy_from_slice(&0x1400_0000u32.to_le_bytes()); // b .
    k[16..24].copy_from_slice(&(64u64 << 10).to_le_bytes()); // image_size
    k[24..32].copy_from_slice(&0xau64.to_le_bytes()); // LE, 4K, anywhere
    k[56..60].copy_from_slice(b"ARM\x64");
    k[0x1000..0x1000 + MARK.len()].copy_from_slice(MARK);
    k
}

/// Bytes only the kernel holds, to find it inside a FIT.
const MARK: &[u8] = b"spin-kernel: the signed payload";

fn dtc(src: &str, out: &Path) {
    let st = Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb", "-o"])
        .arg(out)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(src.as_bytes())?;
            c.wait()
        })
        .expect("dtc runs");
    assert!(st.success());
}

struct Work {
    dir: PathBuf,
}

impl Work {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("qt-vboot-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("Image"), spin_kernel()).unwrap();
        dtc(
            "/dts-v1/; / { #address-cells = <2>; #size-cells = <2>; model = \"test\"; chosen { }; };",
            &dir.join("board.dtb"),
        );
        Work { dir }
    }

    fn p(&self, n: &str) -> PathBuf {
        self.dir.join(n)
    }

    /// `mfgtool image` with `args` appended; returns the disk.
    fn disk(&self, name: &str, args: &[&std::ffi::OsStr]) -> PathBuf {
        let img = self.p(name);
        let mut a: Vec<&std::ffi::OsStr> = vec![
            "image".as_ref(),
            "-o".as_ref(),
            img.as_os_str(),
            "--size".as_ref(),
            "64M".as_ref(),
        ];
        a.extend_from_slice(args);
        mfgtool_run(&a);
        img
    }

    /// A signed FIT of the spinning kernel (development key), as a file.
    fn signed_fit(&self, bootargs: &str) -> Vec<u8> {
        let key = workspace_root().join("keys/dev/dev-boot.pem");
        let (k, d, f) = (self.p("Image"), self.p("board.dtb"), self.p("signed.itb"));
        self.disk(
            "scratch.img",
            &[
                "--kernel".as_ref(),
                k.as_os_str(),
                "--dtb".as_ref(),
                d.as_os_str(),
                "--boot-key".as_ref(),
                key.as_os_str(),
                "--bootargs".as_ref(),
                bootargs.as_ref(),
                "--fit-out".as_ref(),
                f.as_os_str(),
            ],
        );
        fs::read(f).unwrap()
    }

    /// A disk whose `boot` partition holds `fit`.
    fn fit_disk(&self, name: &str, fit: &[u8]) -> PathBuf {
        let f = self.p(&format!("{name}.itb"));
        fs::write(&f, fit).unwrap();
        self.disk(&format!("{name}.img"), &["--fit".as_ref(), f.as_os_str()])
    }
}

/// Boots the production loader on `disk` to its prompt (after autoboot).
fn boot(disk: &Path) -> (Qemu, String) {
    let mut q =
        Qemu::boot(QemuOpts::new(production_loader_image()).disk(disk)).expect("QEMU starts");
    let banner = q.wait_prompt_timeout(PROMPT).expect("prompt");
    (q, banner)
}

fn assert_refused(banner: &str, why: &str) {
    assert!(
        banner.contains("boot: refused: ") && banner.contains(why),
        "expected the refusal '{why}':\n{banner}"
    );
    assert!(!banner.contains("Starting kernel"), "{banner}");
}

/// The OEM's own tooling: `mkimage -f image.its -k keydir` (here with the
/// development key) signs a FIT that the production loader boots.
#[test]
fn production_boots_a_fit_signed_by_mkimage() {
    let w = Work::new("mkimage");
    fs::write(
        w.p("image.its"),
        "/dts-v1/; / { description = \"mkimage-signed\"; #address-cells = <1>; images { \
         kernel-1 { description = \"k\"; data = /incbin/(\"Image\"); type = \"kernel\"; \
         arch = \"arm64\"; os = \"linux\"; compression = \"none\"; hash-1 { algo = \"sha256\"; }; }; \
         fdt-1 { description = \"d\"; data = /incbin/(\"board.dtb\"); type = \"flat_dt\"; \
         arch = \"arm64\"; compression = \"none\"; hash-1 { algo = \"sha256\"; }; }; }; \
         configurations { default = \"conf-1\"; conf-1 { kernel = \"kernel-1\"; fdt = \"fdt-1\"; \
         bootargs = \"console=ttymxc1,115200 signed-by=mkimage\"; \
         signature-1 { algo = \"sha256,ecdsa256\"; key-name-hint = \"dev-boot\"; \
         sign-images = \"kernel\", \"fdt\"; }; }; }; };",
    )
    .unwrap();
    let out = Command::new("mkimage")
        .current_dir(&w.dir)
        .arg("-f")
        .arg("image.its")
        .arg("-k")
        .arg(workspace_root().join("keys/dev"))
        .arg("mkimage.itb")
        .output()
        .expect("mkimage runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fit = fs::read(w.p("mkimage.itb")).unwrap();
    let mut q =
        Qemu::boot(QemuOpts::new(production_loader_image()).disk(w.fit_disk("mkimage-disk", &fit)))
            .expect("QEMU starts");
    let log = q
        .wait_for("Starting kernel ...", PROMPT)
        .expect("the mkimage-signed FIT boots");
    assert!(
        log.contains("Command line (signed): console=ttymxc1,115200 signed-by=mkimage"),
        "{log}"
    );
    drop(q);
    let _ = fs::remove_dir_all(&w.dir);
}

#[test]
fn production_refuses_an_unsigned_kernel_and_console_overrides() {
    let w = Work::new("raw");
    let (k, d) = (w.p("Image"), w.p("board.dtb"));
    // The attack of issue 14: a raw Image in the `kernel` partition.
    let disk = w.disk(
        "raw.img",
        &[
            "--kernel".as_ref(),
            k.as_os_str(),
            "--dtb".as_ref(),
            d.as_os_str(),
        ],
    );
    let (mut q, banner) = boot(&disk);
    assert!(
        banner.contains("boot: no 'boot' partition: this loader boots only a signed FIT"),
        "{banner}"
    );
    assert!(!banner.contains("Starting kernel"), "{banner}");
    // booti does not exist in production; bootargs cannot be set.
    let out = q.run("booti 0x40480000 - 0x47000000").expect("alive");
    assert!(out.contains("Unknown command 'booti'"), "{out}");
    // Locked on the production console; and even with a token naming it
    // (on a chip with fuses, so that it can be unlocked), the command line
    // comes only from the signed configuration.
    let out = q.run("bootargs init=/bin/sh").expect("alive");
    assert!(out.contains("bootargs: locked: `unlock` first"), "{out}");
    drop(q);
    let fuses = w.dir.join("chip.fuses");
    fs::write(&fuses, qemu_tests::chip([0x5b; 16], [0xaa; 32]).to_bytes()).expect("fuses");
    let mut q = Qemu::boot(
        QemuOpts::new(production_loader_image())
            .disk(&disk)
            .fuses(&fuses),
    )
    .expect("QEMU starts");
    q.wait_prompt_timeout(PROMPT).expect("prompt");
    qemu_tests::mfg::unlock(&mut q, "bootargs,boot");
    let out = q.run("bootargs init=/bin/sh").expect("alive");
    assert!(
        out.contains("refused: a production loader takes the kernel command line only from the signed FIT configuration"),
        "{out}"
    );
    let out = q.run("bootargs").expect("alive");
    assert!(!out.contains("init=/bin/sh"), "{out}");
    let out = q.run_timeout("boot", PROMPT).expect("boot returns");
    assert!(out.contains("no 'boot' partition"), "{out}");
    let _ = fs::remove_dir_all(&w.dir);
}

#[test]
fn production_refuses_unsigned_and_tampered_fits_and_boots_a_signed_one() {
    let w = Work::new("fit");
    let good = w.signed_fit("console=ttymxc1,115200 mfg.signed=1");

    // An unsigned FIT: the same, with the signature node's value removed
    // (mkimage without -k leaves it so).
    let its = w.p("unsigned.its");
    fs::write(
        &its,
        "/dts-v1/; / { description = \"u\"; images { kernel-1 { description = \"k\"; \
         data = /incbin/(\"Image\"); type = \"kernel\"; arch = \"arm64\"; os = \"linux\"; \
         compression = \"none\"; hash-1 { algo = \"sha256\"; }; }; fdt-1 { description = \"d\"; \
         data = /incbin/(\"board.dtb\"); type = \"flat_dt\"; arch = \"arm64\"; compression = \"none\"; \
         hash-1 { algo = \"sha256\"; }; }; }; configurations { default = \"conf-1\"; \
         conf-1 { kernel = \"kernel-1\"; fdt = \"fdt-1\"; }; }; };",
    )
    .unwrap();
    let st = Command::new("mkimage")
        .current_dir(&w.dir)
        .args(["-f", "unsigned.its", "unsigned.itb"])
        .output()
        .expect("mkimage runs");
    assert!(st.status.success());
    let unsigned = fs::read(w.p("unsigned.itb")).unwrap();
    let (_q, banner) = boot(&w.fit_disk("unsigned", &unsigned));
    assert_refused(&banner, "FIT configuration is not signed; nothing booted");
    drop(_q);

    // One kernel byte changed.
    let mut tampered = good.clone();
    let at = tampered
        .windows(MARK.len())
        .position(|x| x == MARK)
        .expect("kernel in the FIT");
    tampered[at] ^= 1;
    let (_q, banner) = boot(&w.fit_disk("tampered", &tampered));
    assert_refused(
        &banner,
        "FIT kernel image does not match its hash; nothing booted",
    );
    drop(_q);

    // The signed command line changed (same length, in place).
    let mut shell = good.clone();
    let from = b"mfg.signed=1";
    let at = shell
        .windows(from.len())
        .position(|x| x == from)
        .expect("bootargs in the FIT");
    shell[at..at + from.len()].copy_from_slice(b"init=/bin/sh");
    let (_q, banner) = boot(&w.fit_disk("shell", &shell));
    assert_refused(
        &banner,
        "FIT configuration signature does not verify; nothing booted",
    );
    drop(_q);

    // A FIT that claims more bytes than its partition holds (header
    // `totalsize` raised by 1 MiB): refused before it is read.
    let mut big = good.clone();
    let total = u32::from_be_bytes(big[4..8].try_into().unwrap()) + (1 << 20);
    big[4..8].copy_from_slice(&total.to_be_bytes());
    let (_q, banner) = boot(&w.fit_disk("big", &big));
    assert_refused(
        &banner,
        &format!("FIT is 0x{total:x} bytes, its partition 0x"),
    );
    drop(_q);

    // The signed FIT boots, with its own command line.
    let mut q =
        Qemu::boot(QemuOpts::new(production_loader_image()).disk(w.fit_disk("good", &good)))
            .expect("QEMU starts");
    let log = q
        .wait_for("Starting kernel ...", PROMPT)
        .expect("the signed FIT boots");
    assert!(log.contains("Using 'conf-1' configuration"), "{log}");
    assert!(
        log.contains("Verifying configuration signature ... sha256,ecdsa256:development key OK"),
        "{log}"
    );
    assert!(
        log.contains("Verifying Hash Integrity ... sha256 OK"),
        "{log}"
    );
    assert!(
        log.contains("Command line (signed): console=ttymxc1,115200 mfg.signed=1"),
        "{log}"
    );
    assert!(!log.contains("refused"), "{log}");
    let _ = fs::remove_dir_all(&w.dir);
}
