//! A real Debian arm64 kernel for the Linux handoff tests and the bench.
//!
//! [`kernel_files`] fetches Debian's `linux-image-arm64:arm64` (the kernel
//! Image, the i.MX8MP EVK device tree and the i.MX uSDHC driver modules) and
//! `busybox-static:arm64` once and caches the extracted files under
//! `target/linux-cache/`. [`initramfs`] builds a tiny newc cpio whose `/init`
//! prints the `/chosen` properties the loader set, reads the blob table from
//! the eMMC's `mfg-data` partition and powers off. [`provision_disk`] makes a
//! fresh virtual chip and a disk image with a sealed bundle, kernel, DTB and
//! initramfs with `mfgtool`.

use crate::mfg::mfgtool_run;
use crate::{Error, Qemu, QemuOpts, chip, target_dir};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// The uSDHC driver modules, in load order (dependencies first).
pub const MODULES: [&str; 4] = ["sdhci", "sdhci-pltfm", "cqhci", "sdhci-esdhc-imx"];

/// The product id the tests seal bundles for.
pub const PRODUCT: &str = "imx8mp-demo";

/// Files extracted from the Debian packages.
#[derive(Clone, Debug)]
pub struct KernelFiles {
    /// The uncompressed arm64 Image (`/boot/vmlinuz-*`).
    pub image: PathBuf,
    /// `freescale/imx8mp-evk.dtb`.
    pub dtb: PathBuf,
    /// Static busybox.
    pub busybox: PathBuf,
    /// The [`MODULES`], same order.
    pub modules: Vec<PathBuf>,
}

impl KernelFiles {
    fn at(cache: &Path) -> Self {
        Self {
            image: cache.join("Image"),
            dtb: cache.join("imx8mp-evk.dtb"),
            busybox: cache.join("busybox"),
            modules: MODULES
                .iter()
                .map(|m| cache.join(format!("{m}.ko")))
                .collect(),
        }
    }

    fn complete(&self) -> bool {
        [&self.image, &self.dtb, &self.busybox]
            .into_iter()
            .chain(&self.modules)
            .all(|p| p.is_file())
    }
}

/// The cache directory (`target/linux-cache`).
pub fn cache_dir() -> PathBuf {
    target_dir().join("linux-cache")
}

/// The kernel files, fetched on first use (once per process).
///
/// Panics with a clear message when they are not cached and cannot be
/// fetched (not root, not Debian, no network).
pub fn kernel_files() -> KernelFiles {
    static FILES: OnceLock<Result<KernelFiles, String>> = OnceLock::new();
    match FILES.get_or_init(|| prepare(&cache_dir())) {
        Ok(k) => k.clone(),
        Err(e) => panic!(
            "the Debian arm64 kernel is not available: {e}\n(needed in {}: Image, \
             imx8mp-evk.dtb, busybox and {}.ko)",
            cache_dir().display(),
            MODULES.join(".ko, ")
        ),
    }
}

fn prepare(cache: &Path) -> Result<KernelFiles, String> {
    let k = KernelFiles::at(cache);
    if k.complete() {
        return Ok(k);
    }
    fetch(cache)?;
    if k.complete() {
        Ok(k)
    } else {
        Err("the packages did not contain every expected file".into())
    }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn apt_download(dir: &Path, pkgs: &[&str]) -> Result<String, String> {
    run(Command::new("apt-get")
        .current_dir(dir)
        .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
        .args(pkgs))
}

/// Downloads and extracts the two packages (root on Debian only).
fn fetch(cache: &Path) -> Result<(), String> {
    if !Path::new("/etc/debian_version").is_file() {
        return Err("not a Debian host: cannot apt-get the arm64 packages".into());
    }
    if run(Command::new("id").arg("-u"))?.trim() != "0" {
        return Err("fetching needs root (dpkg --add-architecture, apt-get)".into());
    }
    let foreign = run(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    let mut updated = false;
    if !foreign.split_whitespace().any(|a| a == "arm64") {
        run(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
        run(Command::new("apt-get").args(["-q", "update"]))?;
        updated = true;
    }
    let work = cache.join("fetch");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let meta = "linux-image-arm64:arm64";
    if apt_download(&work, &[meta]).is_err() && !updated {
        run(Command::new("apt-get").args(["-q", "update"]))?;
    }
    if find_deb(&work, "linux-image-arm64_").is_none() {
        apt_download(&work, &[meta])?;
    }
    let meta_deb = find_deb(&work, "linux-image-arm64_").ok_or("no linux-image-arm64 .deb")?;
    let depends = run(Command::new("dpkg-deb")
        .arg("-f")
        .arg(&meta_deb)
        .arg("Depends"))?;
    let versioned = depends
        .split([',', '|'])
        .map(|d| d.split_whitespace().next().unwrap_or(""))
        .find(|d| d.starts_with("linux-image-") && d != &"linux-image-arm64")
        .ok_or_else(|| format!("no versioned kernel in Depends: {depends}"))?
        .to_string();
    apt_download(
        &work,
        &[&format!("{versioned}:arm64"), "busybox-static:arm64"],
    )?;
    let root = work.join("root");
    for prefix in [format!("{versioned}_"), "busybox-static_".to_string()] {
        let deb = find_deb(&work, &prefix).ok_or_else(|| format!("no {prefix}*.deb"))?;
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    }
    let one = |dir: &Path, pred: &dyn Fn(&str) -> bool| -> Result<PathBuf, String> {
        fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(pred))
            .ok_or_else(|| format!("nothing expected in {}", dir.display()))
    };
    let copy = |from: &Path, to: PathBuf| {
        fs::copy(from, &to)
            .map(drop)
            .map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))
    };
    let image = one(&root.join("boot"), &|n| n.starts_with("vmlinuz-"))?;
    let libdir = one(&root.join("usr/lib"), &|n| n.starts_with("linux-image-"))?;
    let mods = one(&root.join("lib/modules"), &|_| true)?.join("kernel/drivers/mmc/host");
    copy(&image, cache.join("Image"))?;
    copy(
        &libdir.join("freescale/imx8mp-evk.dtb"),
        cache.join("imx8mp-evk.dtb"),
    )?;
    copy(&root.join("bin/busybox"), cache.join("busybox"))?;
    for m in MODULES {
        copy(&mods.join(format!("{m}.ko")), cache.join(format!("{m}.ko")))?;
    }
    fs::write(cache.join("PACKAGE"), format!("{versioned}\n")).map_err(|e| e.to_string())?;
    let _ = fs::remove_dir_all(&work);
    Ok(())
}

fn find_deb(dir: &Path, prefix: &str) -> Option<PathBuf> {
    fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n.starts_with(prefix) && n.ends_with(".deb")).then(|| e.path())
        })
}

/// One newc (`070701`) cpio archive being built.
#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let namesize = name.len() + 1;
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            if mode & 0o170000 == 0o040000 { 2 } else { 1 },
            0, // mtime
            u32::try_from(data.len()).expect("cpio entries are < 4 GiB"),
            0, // dev major
            0, // dev minor
            rdev.0,
            rdev.1,
            u32::try_from(namesize).expect("short names"),
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// A directory (mode 0755).
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, 0o040755, (0, 0), &[]);
        self
    }

    /// A regular file with permission bits `perm`.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(name, 0o100000 | (perm & 0o7777), (0, 0), data);
        self
    }

    /// A character device node.
    pub fn chardev(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        self.entry(name, 0o020600, (major, minor), &[]);
        self
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

/// `/init` of the test initramfs (busybox `sh`).
///
/// Prints `chosen: NAME=VALUE` for every `/chosen/mfgprot,*` property
/// (numbers in decimal), `cmdline: ...`, loads the uSDHC modules, waits (at
/// most 30 s) for the block device whose uevent says `PARTNAME=mfg-data`,
/// reads the blob table at `mfgprot,blob-table-offset` and prints
/// `blob: NAME LENGTH CRC sha256=HEX` per entry (CRC: the table's CRC-32
/// field, 8 hex digits; sha256 of the blob bytes read by Linux), then
/// `init: done` and powers off.
pub const INIT: &str = r#"#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
C=/proc/device-tree/chosen
num() { h=$($B od -A n -v -t x1 "$1" | $B tr -d ' \n'); echo $((0x$h)); }
found=0
for f in $C/mfgprot,*; do
  [ -e "$f" ] || continue
  found=1
  n=${f##*/}
  case $n in
    mfgprot,partition-index|mfgprot,blob-count|mfgprot,blob-table-offset) v=$(num "$f");;
    *) v=$($B tr -d '\000' < "$f");;
  esac
  echo "chosen: $n=$v"
done
[ $found = 1 ] || echo "init: no mfgprot,* properties in /chosen"
echo "cmdline: $($B cat /proc/cmdline)"
for m in sdhci sdhci-pltfm cqhci sdhci-esdhc-imx; do
  $B insmod /lib/modules/$m.ko || echo "init: insmod $m failed"
done
dev=
i=0
while [ -z "$dev" ] && [ $i -lt 300 ]; do
  for u in /sys/class/block/*/uevent; do
    [ -e "$u" ] || continue
    if $B grep -qx 'PARTNAME=mfg-data' "$u"; then dev=$($B sed -n 's/^DEVNAME=//p' "$u"); fi
  done
  [ -n "$dev" ] || $B sleep 0.1
  i=$((i+1))
done
if [ -z "$dev" ]; then
  echo "init: no block device with PARTNAME=mfg-data after 30 s"
  $B cat /proc/partitions
elif [ ! -e $C/mfgprot,blob-table-offset ]; then
  echo "init: /dev/$dev is mfg-data, but /chosen has no blob-table offset"
else
  echo "init: mfg-data is /dev/$dev (partition $($B cat /sys/class/block/$dev/partition))"
  off=$(num $C/mfgprot,blob-table-offset)
  $B dd if=/dev/$dev of=/table bs=512 skip=$((off / 512)) count=9 2>/dev/null
  magic=$($B head -c 4 /table)
  cnt=$($B od -A n -t u2 -j 6 -N 2 /table | $B tr -d ' ')
  if [ "$magic" != MFBT ]; then
    echo "init: no blob table at offset $off of /dev/$dev"
  else
    echo "init: blob table with $cnt entries"
    k=0
    while [ $k -lt $cnt ]; do
      e=$((16 + 64 * k))
      name=$($B dd if=/table bs=1 skip=$e count=32 2>/dev/null | $B tr -d '\000')
      boff=$($B od -A n -t u4 -j $((e + 52)) -N 4 /table | $B tr -d ' ')
      len=$($B od -A n -t u4 -j $((e + 56)) -N 4 /table | $B tr -d ' ')
      crc=$($B od -A n -t x4 -j $((e + 60)) -N 4 /table | $B tr -d ' ')
      sum=$($B dd if=/dev/$dev bs=512 skip=$((boff / 512)) count=$(((len + 511) / 512)) 2>/dev/null | $B head -c $len | $B sha256sum)
      echo "blob: $name $len $crc sha256=${sum%% *}"
      k=$((k + 1))
    done
  fi
fi
echo "init: done"
$B poweroff -f
"#;

/// The test initramfs: busybox, the uSDHC modules and [`INIT`].
pub fn initramfs(k: &KernelFiles) -> io::Result<Vec<u8>> {
    let mut c = Cpio::new();
    for d in ["bin", "dev", "proc", "sys", "lib", "lib/modules"] {
        c.dir(d);
    }
    c.chardev("dev/console", 5, 1);
    c.file("bin/busybox", 0o755, &fs::read(&k.busybox)?);
    for (name, path) in MODULES.iter().zip(&k.modules) {
        c.file(&format!("lib/modules/{name}.ko"), 0o644, &fs::read(path)?);
    }
    c.file("init", 0o755, INIT.as_bytes());
    Ok(c.finish())
}

/// A provisioning setup: a chip, a disk image with the bundle and Linux.
#[derive(Debug)]
pub struct Setup {
    /// Work directory (removed by the caller when it likes).
    pub dir: PathBuf,
    /// The chip's UID.
    pub uid: [u8; 16],
    /// The fuse file.
    pub fuses: PathBuf,
    /// The MP public key file (`mfgprot pubk` output).
    pub pubkey: PathBuf,
    /// The disk image.
    pub disk: PathBuf,
    /// `mfgtool image --json`'s partition table.
    pub partitions: serde_json::Value,
}

/// Makes a fresh chip named `name` (its UID from the name), reads its MP
/// public key from a dev boot of `loader` (`mfgprot pubk`), seals three secrets for
/// [`PRODUCT`] and builds a 128 MiB disk image with the bundle, the Debian
/// kernel, DTB and the test initramfs.
pub fn provision_disk(name: &str, loader: &Path) -> Result<Setup, Error> {
    provision(name, loader, None)
}

/// The command line [`provision_disk_signed`] signs into the FIT.
pub const SIGNED_BOOTARGS: &str = "console=ttymxc1,115200 earlycon mfg.boot=signed-fit";

/// As [`provision_disk`], but the kernel, DTB and initramfs go into one FIT
/// signed with the development boot key (`keys/dev/dev-boot.pem`) in the
/// `boot` partition, with [`SIGNED_BOOTARGS`]: what a production loader
/// boots. `loader` (a development build) reads the MP public key.
pub fn provision_disk_signed(name: &str, loader: &Path) -> Result<Setup, Error> {
    provision(name, loader, Some(SIGNED_BOOTARGS))
}

fn provision(name: &str, loader: &Path, signed: Option<&str>) -> Result<Setup, Error> {
    let k = kernel_files();
    let dir = std::env::temp_dir().join(format!("qt-linux-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("sec"))?;
    let mut uid = [0u8; 16];
    for (d, s) in uid.iter_mut().zip(format!("{name:-<16}").bytes()) {
        *d = s;
    }
    let fuses = dir.join("chip.fuses");
    fs::write(&fuses, chip(uid, [0x5a; 32]).to_bytes())?;

    let mut q = Qemu::boot(QemuOpts::new(loader).fuses(&fuses))?;
    q.wait_prompt()?;
    let pk = q.run("mfgprot pubk")?;
    q.send_line("poweroff")?;
    let _ = q.wait_exit(Duration::from_secs(10));
    drop(q);
    let pubkey = dir.join("pubk.txt");
    fs::write(&pubkey, &pk)?;

    let secrets: [(&str, &str, Vec<u8>); 3] = [
        ("wifi-key", "raw", (0..32u8).collect()),
        (
            "device-cert",
            "opaque",
            (0..700u32).map(|i| (i * 7) as u8).collect(),
        ),
        ("app-token", "raw", b"linux handoff test token".to_vec()),
    ];
    let mut manifest = String::new();
    for (n, t, data) in &secrets {
        fs::write(dir.join("sec").join(n), data)?;
        manifest.push_str(&format!(
            "[[secret]]\nname = \"{n}\"\nfile = \"sec/{n}\"\ntype = \"{t}\"\n\n"
        ));
    }
    fs::write(dir.join("secrets.toml"), manifest)?;
    let bundle = dir.join("bundle.bin");
    mfgtool_run(&[
        "seal".as_ref(),
        "--mp-pubkey".as_ref(),
        pubkey.as_os_str(),
        "--secrets".as_ref(),
        dir.join("secrets.toml").as_os_str(),
        "--product".as_ref(),
        PRODUCT.as_ref(),
        "-o".as_ref(),
        bundle.as_os_str(),
    ]);
    let initrd = dir.join("initrd.cpio");
    fs::write(&initrd, initramfs(&k)?)?;
    let disk = dir.join("disk.img");
    let key = crate::workspace_root().join("keys/dev/dev-boot.pem");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "image".as_ref(),
        "--json".as_ref(),
        "-o".as_ref(),
        disk.as_os_str(),
        "--size".as_ref(),
        "128M".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--kernel".as_ref(),
        k.image.as_os_str(),
        "--dtb".as_ref(),
        k.dtb.as_os_str(),
        "--initrd".as_ref(),
        initrd.as_os_str(),
    ];
    if let Some(b) = signed {
        args.extend::<[&std::ffi::OsStr; 4]>([
            "--boot-key".as_ref(),
            key.as_os_str(),
            "--bootargs".as_ref(),
            b.as_ref(),
        ]);
    }
    let parts = mfgtool_run(&args);
    let partitions = serde_json::from_str(&parts)
        .map_err(|e| Error::Io(io::Error::other(format!("mfgtool image --json: {e}"))))?;
    Ok(Setup {
        dir,
        uid,
        fuses,
        pubkey,
        disk,
        partitions,
    })
}

/// `mfgtool inspect --json` of a disk image.
pub fn inspect(disk: &Path) -> serde_json::Value {
    let out = mfgtool_run(&["inspect".as_ref(), "--json".as_ref(), disk.as_os_str()]);
    serde_json::from_str(&out).expect("inspect prints JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_entries_are_newc_and_aligned() {
        let mut c = Cpio::new();
        c.dir("bin").file("init", 0o755, b"#!x\n");
        let a = c.finish();
        assert!(a.starts_with(b"070701"));
        // "bin" entry: 110-byte header + "bin\0" = 114, padded to 116.
        assert_eq!(&a[116..122], b"070701");
        let hdr = std::str::from_utf8(&a[116..116 + 110]).unwrap();
        let field = |i: usize| u32::from_str_radix(&hdr[6 + 8 * i..14 + 8 * i], 16).unwrap();
        assert_eq!(field(1), 0o100755);
        assert_eq!(field(6), 4); // file size
        assert_eq!(field(11), 5); // "init\0"
        // header 110 + name 5 = 115 -> 116; data 4 -> 120.
        assert_eq!(&a[116 + 116..116 + 120], b"#!x\n");
        assert_eq!(&a[236..242], b"070701");
        assert!(a[236..].windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(a.len() % 4, 0);
    }

    #[test]
    fn init_script_prints_what_the_test_parses() {
        for s in [
            "chosen: $n=$v",
            "blob: $name $len $crc sha256=",
            "poweroff -f",
        ] {
            assert!(INIT.contains(s), "{s}");
        }
        for m in MODULES {
            assert!(INIT.contains(m));
        }
    }
}
