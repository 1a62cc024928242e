//! The verifier against FITs signed by U-Boot's `mkimage` (u-boot-tools),
//! each tamper case a CM could try, and the independent Python verifier
//! (`check/fit_check_sign.py`) on every image: both must accept or refuse
//! alike (address and size policy aside, which only the loader has).

use super::*;
use std::format;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::string::{String, ToString};
use std::vec::Vec;

const DRAM: [(u64, u64); 1] = [(0x4000_0000, 0x8000_0000)];
const LOADER: [(u64, u64); 1] = [(0x4020_0000, 0x20_0000)];
pub(crate) const MEM: Memory<'static> = Memory {
    dram: &DRAM,
    reserved: &LOADER,
};
/// No address policy: what the independent verifier checks.
const ANYWHERE: Memory<'static> = Memory {
    dram: &[(0, u64::MAX)],
    reserved: &[],
};

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn python() -> &'static str {
    // Debian's interpreter has python3-libfdt; a pyenv one may not.
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A scratch directory with the keys: `keys/dev-boot.pem` (the ring's),
/// `other/dev-boot.pem` (same name, another key), `keys/stranger.pem` and
/// an RSA key `keys/rsa.pem`; `ctl.dtb` holds dev-boot's public half as
/// `mkimage -K` writes it.
pub(crate) struct Env {
    dir: PathBuf,
    ctl: Vec<u8>,
}

pub(crate) fn env(tag: &str) -> Env {
    let dir = std::env::temp_dir().join(format!("fit-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["keys", "other"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for key in ["keys/dev-boot", "other/dev-boot", "keys/stranger"] {
        run(Command::new("openssl").args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &format!("{}/{key}.pem", dir.display()),
        ]));
    }
    run(Command::new("openssl").args([
        "genrsa",
        "-out",
        &format!("{}/keys/rsa.pem", dir.display()),
        "2048",
    ]));
    std::fs::write(dir.join("Image"), kernel()).unwrap();
    std::fs::write(dir.join("board.dtb"), board_dtb()).unwrap();
    std::fs::write(dir.join("initrd"), [0x5a; 3000]).unwrap();
    let mut e = Env {
        dir,
        ctl: Vec::new(),
    };
    // The control DTB: mkimage adds the key of the FIT it signs.
    std::fs::write(
        e.dir.join("ctl.dtb"),
        dtc("/dts-v1/; / { signature { }; };"),
    )
    .unwrap();
    e.mkimage(&its(&Opts::default()), Sign::With("keys"), true);
    e.ctl = std::fs::read(e.dir.join("ctl.dtb")).unwrap();
    e
}

fn dtc(src: &str) -> Vec<u8> {
    let mut child = Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("dtc is installed");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(src.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A small arm64 Image: real header (magic, image_size 64 KiB) + payload.
pub(crate) fn kernel() -> Vec<u8> {
    let mut k = std::vec![0u8; 8192];
    k[16..24].copy_from_slice(&0x1_0000u64.to_le_bytes());
    k[24..32].copy_from_slice(&0xau64.to_le_bytes());
    k[56..60].copy_from_slice(b"ARM\x64");
    for (i, b) in k[64..].iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    k
}

fn board_dtb() -> Vec<u8> {
    dtc("/dts-v1/; / { model = \"board\"; chosen { }; };")
}

#[derive(Clone)]
pub(crate) struct Opts {
    pub(crate) algo: &'static str,
    pub(crate) hint: &'static str,
    pub(crate) signature: bool,
    pub(crate) ramdisk: bool,
    pub(crate) kernel_load: u64,
    pub(crate) fdt_load: Option<u64>,
    pub(crate) bootargs: Option<&'static str>,
    pub(crate) kernel_hash: bool,
    pub(crate) second_conf: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            algo: ALGO,
            hint: "dev-boot",
            signature: true,
            ramdisk: false,
            kernel_load: 0x4048_0000,
            fdt_load: None,
            bootargs: Some("console=ttymxc1,115200 root=/dev/mmcblk2p5"),
            kernel_hash: true,
            second_conf: false,
        }
    }
}

fn its(o: &Opts) -> String {
    let mut s = String::from(
        "/dts-v1/;\n/ {\n description = \"test FIT\";\n #address-cells = <1>;\n images {\n",
    );
    s += &format!(
        "  kernel-1 {{ description = \"Linux\"; data = /incbin/(\"Image\"); type = \"kernel\"; \
         arch = \"arm64\"; os = \"linux\"; compression = \"none\"; load = <{:#x}>; entry = <{:#x}>;\n",
        o.kernel_load, o.kernel_load
    );
    if o.kernel_hash {
        s += "   hash-1 { algo = \"sha256\"; };\n";
    }
    s += "  };\n";
    s += "  evil-1 { data = /incbin/(\"initrd\"); type = \"kernel\"; arch = \"arm64\"; os = \"linux\"; \
          compression = \"none\"; load = <0x40480000>; hash-1 { algo = \"sha256\"; }; };\n";
    let fdt_load = o
        .fdt_load
        .map(|a| format!("load = <{a:#x}>;"))
        .unwrap_or_default();
    s += &format!(
        "  fdt-1 {{ data = /incbin/(\"board.dtb\"); type = \"flat_dt\"; arch = \"arm64\"; \
         compression = \"none\"; {fdt_load} hash-1 {{ algo = \"sha256\"; }}; }};\n"
    );
    if o.ramdisk {
        s += "  ramdisk-1 { data = /incbin/(\"initrd\"); type = \"ramdisk\"; arch = \"arm64\"; \
              os = \"linux\"; compression = \"none\"; hash-1 { algo = \"sha256\"; }; };\n";
    }
    s += " };\n configurations {\n  default = \"conf-1\";\n  conf-1 {\n   kernel = \"kernel-1\"; fdt = \"fdt-1\";\n";
    if o.ramdisk {
        s += "   ramdisk = \"ramdisk-1\";\n";
    }
    if let Some(b) = o.bootargs {
        s += &format!("   bootargs = \"{b}\";\n");
    }
    if o.signature {
        s += &format!(
            "   signature-1 {{ algo = \"{}\"; key-name-hint = \"{}\"; sign-images = \"kernel\", \"fdt\"{}; }};\n",
            o.algo,
            o.hint,
            if o.ramdisk { ", \"ramdisk\"" } else { "" }
        );
    }
    s += "  };\n";
    if o.second_conf {
        s += "  conf-2 { kernel = \"evil-1\"; fdt = \"fdt-1\"; };\n";
    }
    s += " };\n};\n";
    s
}

enum Sign {
    No,
    With(&'static str),
}

impl Env {
    fn mkimage(&self, its: &str, sign: Sign, add_key: bool) -> Vec<u8> {
        std::fs::write(self.dir.join("image.its"), its).unwrap();
        let mut cmd = Command::new("mkimage");
        cmd.current_dir(&self.dir)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["-f", "image.its"]);
        if let Sign::With(keydir) = sign {
            cmd.args(["-k", keydir]);
            if add_key {
                cmd.args(["-K", "ctl.dtb"]);
            }
        }
        cmd.arg("out.itb");
        run(&mut cmd);
        std::fs::read(self.dir.join("out.itb")).unwrap()
    }

    pub(crate) fn signed(&self, o: &Opts) -> Vec<u8> {
        self.mkimage(&its(o), Sign::With("keys"), false)
    }

    /// Edits a FIT with python3-libfdt: `code` sees `f` (a libfdt.Fdt with
    /// 4 KiB of room) and `node(path)`.
    fn edit(&self, fit: &[u8], code: &str) -> Vec<u8> {
        let inp = self.dir.join("edit-in.itb");
        let outp = self.dir.join("edit-out.itb");
        std::fs::write(&inp, fit).unwrap();
        let script = format!(
            "import libfdt\nb = bytearray(open('{}', 'rb').read())\n\
             f = libfdt.Fdt(b)\nf.resize(len(b) + 4096)\n\
             node = lambda p: f.path_offset(p)\n{code}\nf.pack()\n\
             open('{}', 'wb').write(f.as_bytearray())\n",
            inp.display(),
            outp.display()
        );
        run(Command::new(python()).arg("-c").arg(script));
        std::fs::read(outp).unwrap()
    }

    /// The independent verifier's verdict.
    fn independent(&self, fit: &[u8]) -> Result<(), String> {
        let f = self.dir.join("check.itb");
        std::fs::write(&f, fit).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("check/fit_check_sign.py");
        let out = Command::new(python())
            .arg(script)
            .arg("-f")
            .arg(&f)
            .arg("-k")
            .arg(self.dir.join("ctl.dtb"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => Ok(()),
            Some(1) => Err(text),
            _ => panic!("independent verifier crashed: {text}"),
        }
    }

    pub(crate) fn ring(&self) -> Keyring<'_> {
        Keyring::from_control_dtb(&self.ctl).unwrap()
    }

    /// The loader's verdict with its memory policy; asserts the
    /// independent verifier agrees on the signature and hashes.
    fn check(&self, fit: &[u8]) -> Result<Verified<'static>, FitError> {
        let ring = self.ring();
        let leaked: &'static [u8] = Vec::leak(fit.to_vec());
        let crypto = verify(leaked, leaked.len(), &ring, &ANYWHERE);
        let other = self.independent(fit);
        // Overlap between images is address policy, not signature.
        let policy = matches!(crypto, Err(FitError::Overlap(..)));
        assert_eq!(
            crypto.is_ok() || policy,
            other.is_ok(),
            "loader says {:?}, independent verifier says {:?}",
            crypto.map(|_| ()),
            other
        );
        verify(leaked, leaked.len(), &ring, &MEM)
    }
}

#[test]
fn mkimage_signed_fit_verifies_and_every_tamper_is_refused() {
    let e = env("tamper");
    let good = e.signed(&Opts::default());
    let v = e.check(&good).expect("a mkimage-signed FIT verifies");
    assert_eq!(v.config, "conf-1");
    assert_eq!(v.kernel.data, &kernel()[..]);
    assert_eq!(v.kernel.load, Some(0x4048_0000));
    assert_eq!(
        v.kernel.footprint, 0x1_0000,
        "image_size, not the file length"
    );
    assert_eq!(v.fdt.unwrap().data, &board_dtb()[..]);
    assert_eq!(v.fdt.unwrap().load, None);
    assert!(v.ramdisk.is_none());
    assert_eq!(
        v.bootargs,
        Some("console=ttymxc1,115200 root=/dev/mmcblk2p5")
    );

    // Unsigned: no signature node at all, or one mkimage left unsigned.
    let o = Opts {
        signature: false,
        ..Opts::default()
    };
    assert_eq!(e.check(&e.signed(&o)).unwrap_err(), FitError::Unsigned);
    let unsigned = e.mkimage(&its(&Opts::default()), Sign::No, false);
    assert_eq!(e.check(&unsigned).unwrap_err(), FitError::Unsigned);

    // Unknown key: signed by a key the ring does not hold.
    let o = Opts {
        hint: "stranger",
        ..Opts::default()
    };
    assert_eq!(e.check(&e.signed(&o)).unwrap_err(), FitError::UnknownKey);
    // Another key under our key's name.
    let forged = e.mkimage(&its(&Opts::default()), Sign::With("other"), false);
    assert_eq!(e.check(&forged).unwrap_err(), FitError::BadSignature);

    // Wrong algorithm (a real RSA signature).
    let o = Opts {
        algo: "sha256,rsa2048",
        hint: "rsa",
        ..Opts::default()
    };
    assert_eq!(
        e.check(&e.signed(&o)).unwrap_err(),
        FitError::WrongAlgorithm
    );

    // Bad signature: one bit of the value.
    let bad = e.edit(
        &good,
        "s = node('/configurations/conf-1/signature-1')\n\
         v = bytearray(f.getprop(s, 'value'))\nv[7] ^= 1\nf.setprop(s, 'value', bytes(v))",
    );
    assert_eq!(e.check(&bad).unwrap_err(), FitError::BadSignature);

    // Image bytes changed: the data is outside the signed regions, its hash
    // is inside.
    let changed = e.edit(
        &good,
        "k = node('/images/kernel-1')\nd = bytearray(f.getprop(k, 'data'))\n\
         d[4000] ^= 0x80\nf.setprop(k, 'data', bytes(d))",
    );
    assert_eq!(
        e.check(&changed).unwrap_err(),
        FitError::ImageChanged(Kind::Kernel)
    );
    let fdt_changed = e.edit(
        &good,
        "k = node('/images/fdt-1')\nd = bytearray(f.getprop(k, 'data'))\n\
         d[-1] ^= 1\nf.setprop(k, 'data', bytes(d))",
    );
    assert_eq!(
        e.check(&fdt_changed).unwrap_err(),
        FitError::ImageChanged(Kind::Fdt)
    );
    // ... and its hash updated to match: the signature catches it.
    let rehashed = e.edit(
        &good,
        "import hashlib\nk = node('/images/kernel-1')\nd = bytearray(f.getprop(k, 'data'))\n\
         d[4000] ^= 0x80\nf.setprop(k, 'data', bytes(d))\n\
         f.setprop(node('/images/kernel-1/hash-1'), 'value', hashlib.sha256(d).digest())",
    );
    assert_eq!(e.check(&rehashed).unwrap_err(), FitError::BadSignature);
    // A whole other kernel with its own hash, in place of the signed one.
    let swapped_kernel = e.edit(
        &good,
        "k = node('/images/kernel-1')\nf.setprop(k, 'data', bytes(f.getprop(node('/images/evil-1'), 'data')))\n\
         f.setprop(node('/images/kernel-1/hash-1'), 'value', bytes(f.getprop(node('/images/evil-1/hash-1'), 'value')))",
    );
    assert_eq!(
        e.check(&swapped_kernel).unwrap_err(),
        FitError::BadSignature
    );

    // The command line of the signed configuration.
    let shell = e.edit(
        &good,
        "f.setprop_str(node('/configurations/conf-1'), 'bootargs', 'init=/bin/sh')",
    );
    assert_eq!(e.check(&shell).unwrap_err(), FitError::BadSignature);

    // Configuration swapped: default to an unsigned configuration, the
    // signed configuration pointed at another kernel, the signature moved
    // to a configuration of the CM's.
    let o = Opts {
        second_conf: true,
        ..Opts::default()
    };
    let two = e.signed(&o);
    assert!(e.check(&two).is_ok());
    let to_conf2 = e.edit(
        &two,
        "f.setprop_str(node('/configurations'), 'default', 'conf-2')",
    );
    assert_eq!(e.check(&to_conf2).unwrap_err(), FitError::Unsigned);
    let repointed = e.edit(
        &good,
        "f.setprop_str(node('/configurations/conf-1'), 'kernel', 'evil-1')",
    );
    assert_eq!(e.check(&repointed).unwrap_err(), FitError::BadSignature);
    let moved = e.edit(
        &two,
        "c2 = node('/configurations/conf-2')\ns = node('/configurations/conf-1/signature-1')\n\
         n = f.add_subnode(c2, 'signature-1')\ns = node('/configurations/conf-1/signature-1')\n\
         for p in ['algo', 'key-name-hint', 'value', 'hashed-strings', 'hashed-nodes']:\n    \
         f.setprop(node('/configurations/conf-2/signature-1'), p, bytes(f.getprop(s, p)))\n\
         f.setprop_str(node('/configurations'), 'default', 'conf-2')",
    );
    assert_eq!(e.check(&moved).unwrap_err(), FitError::BadSignature);
    let renamed_conf = e.edit(
        &good,
        "f.set_name(node('/configurations/conf-1'), 'conf-9')\n\
         f.setprop_str(node('/configurations'), 'default', 'conf-9')",
    );
    assert_eq!(e.check(&renamed_conf).unwrap_err(), FitError::BadSignature);

    // Signature node removed.
    let removed = e.edit(
        &good,
        "f.del_node(node('/configurations/conf-1/signature-1'))",
    );
    assert_eq!(e.check(&removed).unwrap_err(), FitError::Unsigned);

    // Image node renamed (the configuration still names kernel-1).
    let renamed = e.edit(&good, "f.set_name(node('/images/kernel-1'), 'kernel-2')");
    assert_eq!(
        e.check(&renamed).unwrap_err(),
        FitError::ImageMissing(Kind::Kernel)
    );
    // libfdt would find `kernel-1` as `kernel-1@0` (CVE-2021-27138).
    let at = e.edit(&good, "f.set_name(node('/images/kernel-1'), 'kernel-1@0')");
    assert_eq!(e.check(&at).unwrap_err(), FitError::BadName);
    // Both nodes: the signed one and the CM's `kernel-1@0`.
    let shadow = e.edit(
        &good,
        "n = f.add_subnode(node('/images'), 'kernel-1@0')\n\
         f.setprop(n, 'data', bytes(f.getprop(node('/images/evil-1'), 'data')))",
    );
    assert_eq!(e.check(&shadow).unwrap_err(), FitError::BadName);

    // Hash node missing: removed, or never there.
    let nohash = e.edit(&good, "f.del_node(node('/images/kernel-1/hash-1'))");
    assert_eq!(
        e.check(&nohash).unwrap_err(),
        FitError::HashMissing(Kind::Kernel)
    );
    let o = Opts {
        kernel_hash: false,
        ..Opts::default()
    };
    let unhashed = e.mkimage(&its(&o), Sign::No, false);
    assert_eq!(
        e.check(&unhashed).unwrap_err(),
        FitError::HashMissing(Kind::Kernel)
    );
    // A hash of another algorithm: crc32 cannot vouch for anything.
    let crc = e.edit(
        &good,
        "f.setprop_str(node('/images/kernel-1/hash-1'), 'algo', 'crc32')",
    );
    assert!(e.check(&crc).is_err());
    // External data is refused, not followed.
    let external = e.edit(&good, "f.delprop(node('/images/kernel-1'), 'data')");
    assert_eq!(
        e.check(&external).unwrap_err(),
        FitError::NoData(Kind::Kernel)
    );
}

#[test]
fn load_addresses_and_size_are_policed() {
    let e = env("policy");
    let sign = |o: Opts| e.signed(&o);
    // Overlapping: the DTB loads inside the kernel's image_size.
    let fit = sign(Opts {
        fdt_load: Some(0x4048_8000),
        ..Opts::default()
    });
    assert_eq!(
        e.check(&fit).unwrap_err(),
        FitError::Overlap(Kind::Kernel, Kind::Fdt)
    );
    // Just past the kernel's footprint is fine.
    let fit = sign(Opts {
        fdt_load: Some(0x4049_0000),
        ..Opts::default()
    });
    assert_eq!(e.check(&fit).unwrap().fdt.unwrap().load, Some(0x4049_0000));
    // Below DRAM, and running off its end.
    let fit = sign(Opts {
        kernel_load: 0x3000_0000,
        ..Opts::default()
    });
    assert_eq!(
        e.check(&fit).unwrap_err(),
        FitError::OutsideDram(Kind::Kernel)
    );
    let fit = sign(Opts {
        kernel_load: 0xbfff_8000,
        ..Opts::default()
    });
    assert_eq!(
        e.check(&fit).unwrap_err(),
        FitError::OutsideDram(Kind::Kernel)
    );
    // Over the loader.
    let fit = sign(Opts {
        kernel_load: 0x4030_0000,
        ..Opts::default()
    });
    assert_eq!(e.check(&fit).unwrap_err(), FitError::Reserved(Kind::Kernel));
    // Larger than its partition.
    let good = sign(Opts::default());
    let ring = e.ring();
    assert_eq!(
        verify(&good, good.len() - 1, &ring, &MEM).unwrap_err(),
        FitError::TooLarge {
            size: good.len(),
            limit: good.len() - 1
        }
    );
    // Truncated in its buffer.
    assert!(matches!(
        verify(&good[..good.len() - 1], usize::MAX, &ring, &MEM),
        Err(FitError::Malformed(_))
    ));
}

#[test]
fn ramdisk_and_raw_key_and_required_semantics() {
    let e = env("keys");
    let fit = e.signed(&Opts {
        ramdisk: true,
        ..Opts::default()
    });
    let v = e.check(&fit).unwrap();
    assert_eq!(v.ramdisk.unwrap().data, &[0x5a; 3000][..]);
    let changed = e.edit(
        &fit,
        "k = node('/images/ramdisk-1')\nf.setprop(k, 'data', bytes(2999) + b'Z')",
    );
    assert_eq!(
        e.check(&changed).unwrap_err(),
        FitError::ImageChanged(Kind::Ramdisk)
    );

    // The same key built in as raw coordinates.
    let t = FdtRef::new(&e.ctl).unwrap();
    let k = t.path("/signature/dev-boot").unwrap();
    let x: [u8; 32] = t.prop(k, "ecdsa,x-point").unwrap().try_into().unwrap();
    let y: [u8; 32] = t.prop(k, "ecdsa,y-point").unwrap().try_into().unwrap();
    let raw = Keyring::one(BootKey::from_xy("dev-boot", &x, &y).unwrap());
    assert!(verify(&fit, fit.len(), &raw, &MEM).is_ok());
    let mut bad_y = y;
    bad_y[31] ^= 1;
    assert_eq!(
        BootKey::from_xy("dev-boot", &x, &bad_y).unwrap_err(),
        FitError::BadKey,
        "a point off the curve"
    );

    // `required = "conf"` on a second key the FIT is not signed with: with
    // the default mode (all) the FIT is refused, with "any" it boots.
    let ctl2 = e.edit(
        &e.ctl,
        "s = node('/signature')\nd = node('/signature/dev-boot')\n\
         n = f.add_subnode(s, 'key-second')\n\
         for p in ['ecdsa,curve', 'ecdsa,x-point', 'ecdsa,y-point']:\n    \
         f.setprop(node('/signature/key-second'), p, bytes(f.getprop(node('/signature/dev-boot'), p)[::-1] if p != 'ecdsa,curve' else f.getprop(node('/signature/dev-boot'), p)))",
    );
    // Reversed coordinates are not on the curve: such a ring is refused.
    assert_eq!(
        Keyring::from_control_dtb(&ctl2).unwrap_err(),
        FitError::BadKey
    );
    let stranger = e.signed(&Opts {
        hint: "stranger",
        ..Opts::default()
    });
    // Add the stranger's key, as `mkimage -K` would, then mark it required.
    std::fs::write(e.dir.join("ctl.dtb"), &e.ctl).unwrap();
    e.mkimage(
        &its(&Opts {
            hint: "stranger",
            ..Opts::default()
        }),
        Sign::With("keys"),
        true,
    );
    let both = std::fs::read(e.dir.join("ctl.dtb")).unwrap();
    let ring = Keyring::from_control_dtb(&both).unwrap();
    assert_eq!(ring.keys().count(), 2);
    // No key marked required: either one will do.
    assert!(verify(&fit, fit.len(), &ring, &MEM).is_ok());
    assert!(verify(&stranger, stranger.len(), &ring, &MEM).is_ok());
    let req = e.edit(
        &both,
        "f.setprop_str(node('/signature/stranger'), 'required', 'conf')",
    );
    let ring = Keyring::from_control_dtb(&req).unwrap();
    assert_eq!(
        verify(&fit, fit.len(), &ring, &MEM).unwrap_err(),
        FitError::UnknownKey,
        "signed by dev-boot, stranger required"
    );
    assert!(verify(&stranger, stranger.len(), &ring, &MEM).is_ok());
    let all = e.edit(
        &req,
        "f.setprop_str(node('/signature/dev-boot'), 'required', 'conf')",
    );
    let ring = Keyring::from_control_dtb(&all).unwrap();
    assert!(verify(&stranger, stranger.len(), &ring, &MEM).is_err());
    let any = e.edit(
        &all,
        "f.setprop_str(node('/signature'), 'required-mode', 'any')",
    );
    let ring = Keyring::from_control_dtb(&any).unwrap();
    assert!(verify(&stranger, stranger.len(), &ring, &MEM).is_ok());
    assert!(verify(&fit, fit.len(), &ring, &MEM).is_ok());
    // Per-image signatures are not supported: refused, not ignored.
    let image = e.edit(
        &both,
        "f.setprop_str(node('/signature/stranger'), 'required', 'image')",
    );
    assert_eq!(
        Keyring::from_control_dtb(&image).unwrap_err(),
        FitError::BadKey
    );
}

#[test]
fn the_signer_digest_is_what_mkimage_signs() {
    // `Fit::config_digest` on a mkimage-signed FIT: the signature verifies
    // over it with the public key, so a native signer using it produces
    // the same signature format.
    let e = env("digest");
    let good = e.signed(&Opts::default());
    let fit = Fit::open(&good, good.len()).unwrap();
    let digest = fit.config_digest("signature-1").unwrap();
    let t = FdtRef::new(&good).unwrap();
    let v = t
        .prop(
            t.path("/configurations/conf-1/signature-1").unwrap(),
            "value",
        )
        .unwrap();
    let ring = e.ring();
    let key = ring.keys().next().unwrap();
    key.key
        .verify_prehash(&digest, &Signature::from_slice(v).unwrap())
        .unwrap();
    // Reproducible: the same inputs and SOURCE_DATE_EPOCH give the same
    // unsigned FIT (ECDSA signatures from mkimage are randomised).
    let a = e.mkimage(&its(&Opts::default()), Sign::No, false);
    let b = e.mkimage(&its(&Opts::default()), Sign::No, false);
    assert_eq!(a, b);
}
