//! The signed boot FIT: kernel + DTB (+ initramfs) + command line, in
//! U-Boot's format, signed with the OEM boot key (`docs/verified-boot.md`).
//!
//! `mkimage` (u-boot-tools) builds the FIT and its image hashes from a
//! generated `.its`; the configuration signature is then added here, with
//! the same regions (`fit::Fit::config_digest`) and the same
//! `sha256,ecdsa256` format as `mkimage -k`, but with deterministic ECDSA
//! (RFC 6979) so that the same inputs and `SOURCE_DATE_EPOCH` give the same
//! bytes (`mkimage`'s OpenSSL signatures are randomised). The result is
//! checked with the loader's verifier before it is returned; the tests also
//! check it with the independent verifier (`fit/check/fit_check_sign.py`).

use std::path::Path;
use std::process::Command;

use p256::ecdsa::{Signature, SigningKey, signature::hazmat::PrehashSigner};

use crate::error::{Fail, Result};

/// What goes in the FIT. No `load` addresses: the loader places the
/// images as `booti` does.
pub struct FitSpec<'a> {
    pub kernel: &'a [u8],
    pub dtb: &'a [u8],
    pub initrd: Option<&'a [u8]>,
    pub bootargs: &'a str,
    /// The signing key and its name (`key-name-hint`).
    pub key: &'a SigningKey,
    pub key_name: &'a str,
    /// `SOURCE_DATE_EPOCH`: the FIT's timestamps.
    pub epoch: u64,
}

/// The signature node `mkimage` would sign.
const SIG: &str = "/configurations/conf-1/signature-1";

fn its(spec: &FitSpec<'_>) -> Result<String> {
    let quoted = |s: &str, what: &str| {
        if s.contains(['"', '\\', '\n']) {
            Err(Fail::usage(format!(
                "{what} must not contain quotes, backslashes or newlines"
            )))
        } else {
            Ok(s.to_string())
        }
    };
    let bootargs = quoted(spec.bootargs, "--bootargs")?;
    let name = quoted(spec.key_name, "the key name")?;
    let mut s = String::from(
        "/dts-v1/;\n/ {\n\tdescription = \"signed boot FIT (mfgtool)\";\n\t#address-cells = <1>;\n\timages {\n",
    );
    s += "\t\tkernel-1 {\n\t\t\tdescription = \"Linux kernel\";\n\t\t\tdata = /incbin/(\"Image\");\n\
          \t\t\ttype = \"kernel\";\n\t\t\tarch = \"arm64\";\n\t\t\tos = \"linux\";\n\
          \t\t\tcompression = \"none\";\n\t\t\thash-1 { algo = \"sha256\"; };\n\t\t};\n";
    s += "\t\tfdt-1 {\n\t\t\tdescription = \"device tree\";\n\t\t\tdata = /incbin/(\"board.dtb\");\n\
          \t\t\ttype = \"flat_dt\";\n\t\t\tarch = \"arm64\";\n\t\t\tcompression = \"none\";\n\
          \t\t\thash-1 { algo = \"sha256\"; };\n\t\t};\n";
    if spec.initrd.is_some() {
        s += "\t\tramdisk-1 {\n\t\t\tdescription = \"initramfs\";\n\t\t\tdata = /incbin/(\"initrd\");\n\
              \t\t\ttype = \"ramdisk\";\n\t\t\tarch = \"arm64\";\n\t\t\tos = \"linux\";\n\
              \t\t\tcompression = \"none\";\n\t\t\thash-1 { algo = \"sha256\"; };\n\t\t};\n";
    }
    s += "\t};\n\tconfigurations {\n\t\tdefault = \"conf-1\";\n\t\tconf-1 {\n\t\t\tkernel = \"kernel-1\";\n\t\t\tfdt = \"fdt-1\";\n";
    let mut signs = String::from("\"kernel\", \"fdt\"");
    if spec.initrd.is_some() {
        s += "\t\t\tramdisk = \"ramdisk-1\";\n";
        signs += ", \"ramdisk\"";
    }
    s += &format!("\t\t\tbootargs = \"{bootargs}\";\n");
    s += &format!(
        "\t\t\tsignature-1 {{\n\t\t\t\talgo = \"{}\";\n\t\t\t\tkey-name-hint = \"{name}\";\n\
         \t\t\t\tsign-images = {signs};\n\t\t\t}};\n\t\t}};\n\t}};\n}};\n",
        fit::ALGO
    );
    Ok(s)
}

/// Builds and signs the FIT.
pub fn build_signed_fit(spec: &FitSpec<'_>) -> Result<Vec<u8>> {
    let dir = tempdir()?;
    let w = |n: &str, d: &[u8]| std::fs::write(dir.path().join(n), d).map_err(|e| Fail::io(n, e));
    w("Image", spec.kernel)?;
    w("board.dtb", spec.dtb)?;
    if let Some(i) = spec.initrd {
        w("initrd", i)?;
    }
    w("image.its", its(spec)?.as_bytes())?;
    let out = Command::new("mkimage")
        .current_dir(dir.path())
        .env("SOURCE_DATE_EPOCH", spec.epoch.to_string())
        .args(["-f", "image.its", "unsigned.itb"])
        .output()
        .map_err(|e| Fail::io("mkimage (u-boot-tools)", e))?;
    if !out.status.success() {
        return Err(Fail::format(format!(
            "mkimage failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let unsigned =
        std::fs::read(dir.path().join("unsigned.itb")).map_err(|e| Fail::io("unsigned.itb", e))?;
    sign(&unsigned, spec)
}

/// Adds the configuration signature to a FIT `mkimage` built unsigned.
fn sign(unsigned: &[u8], spec: &FitSpec<'_>) -> Result<Vec<u8>> {
    let bad = |e: fdt_edit::FdtError| Fail::format(format!("FIT: {e}"));
    let mut buf = vec![0u8; unsigned.len() + 4096];
    let mut t = fdt_edit::Fdt::open_into(unsigned, &mut buf).map_err(bad)?;
    let sig = t.find_node(SIG).map_err(bad)?;
    // Every property first (placeholders), so that every name is in the
    // strings block before its size is fixed in `hashed-strings`.
    let mut nodes = vec![
        "/",
        "/configurations/conf-1",
        "/images/kernel-1",
        "/images/kernel-1/hash-1",
        "/images/fdt-1",
        "/images/fdt-1/hash-1",
    ];
    if spec.initrd.is_some() {
        nodes.extend(["/images/ramdisk-1", "/images/ramdisk-1/hash-1"]);
    }
    let list: Vec<u8> = nodes.iter().flat_map(|n| n.bytes().chain([0])).collect();
    let epoch = u32::try_from(spec.epoch)
        .map_err(|_| Fail::usage("SOURCE_DATE_EPOCH does not fit a FIT timestamp"))?;
    t.set_prop(sig, "value", &[0; 64]).map_err(bad)?;
    t.set_prop(sig, "hashed-nodes", &list).map_err(bad)?;
    t.set_prop_u32s(sig, "hashed-strings", &[0, 0])
        .map_err(bad)?;
    t.set_prop_u32s(sig, "timestamp", &[epoch]).map_err(bad)?;
    t.set_prop_str(sig, "signer-name", "mfgtool").map_err(bad)?;
    t.set_prop_str(sig, "signer-version", env!("CARGO_PKG_VERSION"))
        .map_err(bad)?;
    let strings = fdt_edit::Header::read(t.as_bytes())
        .map_err(bad)?
        .size_strings;
    let strings = u32::try_from(strings).map_err(|_| Fail::format("FIT strings too large"))?;
    t.set_prop_u32s(sig, "hashed-strings", &[0, strings])
        .map_err(bad)?;
    let digest = {
        let f = fit::Fit::open(t.as_bytes(), usize::MAX)
            .map_err(|e| Fail::format(format!("FIT: {e}")))?;
        f.config_digest("signature-1")
            .map_err(|e| Fail::format(format!("FIT: {e}")))?
    };
    let s: Signature = PrehashSigner::<Signature>::sign_prehash(spec.key, &digest)
        .map_err(|e| Fail::format(format!("signing: {e}")))?;
    t.set_prop(sig, "value", &s.to_bytes()).map_err(bad)?;
    let out = t.as_bytes().to_vec();
    // Check it as the loader will.
    let point = spec.key.verifying_key().to_sec1_point(false);
    let sec1 = point.as_bytes();
    let coord = |r: std::ops::Range<usize>| -> Result<[u8; 32]> {
        sec1.get(r)
            .and_then(|c| c.try_into().ok())
            .ok_or_else(|| Fail::format("boot key: bad public point"))
    };
    let key = fit::BootKey::from_xy(spec.key_name, &coord(1..33)?, &coord(33..65)?)
        .map_err(|e| Fail::format(format!("boot key: {e}")))?;
    let anywhere = [(0, u64::MAX)];
    fit::verify(
        &out,
        out.len(),
        &fit::Keyring::one(key),
        &fit::Memory {
            dram: &anywhere,
            reserved: &[],
        },
    )
    .map_err(|e| Fail::format(format!("the signed FIT does not verify: {e}")))?;
    Ok(out)
}

/// A boot signing key from a PEM file: SEC1 (`EC PRIVATE KEY`, as
/// `openssl ecparam -genkey` and the `mkimage -k` key directory use) for
/// P-256. Returns the key and its name (the file name without `.pem`).
pub fn read_key(path: &Path) -> Result<(SigningKey, String)> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Fail::io(&path.display().to_string(), e))?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN EC PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let bad = || {
        Fail::format(format!(
            "{}: not a P-256 SEC1 private key (-----BEGIN EC PRIVATE KEY-----)",
            path.display()
        ))
    };
    let der = base64(&body).ok_or_else(bad)?;
    // SEQUENCE { INTEGER 1, OCTET STRING (32) d, ... }
    if der.len() < 39 || der[0] != 0x30 || der[2..5] != [2, 1, 1] || der[5..7] != [4, 32] {
        return Err(bad());
    }
    let key = SigningKey::from_slice(&der[7..39]).map_err(|_| bad())?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(bad)?
        .to_string();
    Ok((key, name))
}

fn base64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let s = s.trim_end_matches('=');
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        acc = (acc << 6) | u32::from(val(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> Result<TempDir> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let p = std::env::temp_dir().join(format!(
        "mfgtool-fit-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&p).map_err(|e| Fail::io("temporary directory", e))?;
    Ok(TempDir(p))
}
