//! Verified boot: a `no_std`, allocation-free verifier of U-Boot FIT images
//! signed with `mkimage -f image.its -k keydir` (configuration signatures,
//! `algo = "sha256,ecdsa256"`).
//!
//! [`Fit::open`] checks the blob and picks the default configuration and
//! its kernel, device tree and ramdisk; [`Fit::check_signature`] verifies the
//! configuration signature over the regions U-Boot hashes (see
//! [`regions`](crate::regions) for the algorithm and its source) against a
//! [`Keyring`]; only then [`Signed::check_images`] checks each image's
//! `hash` node against its data and the load addresses against the memory
//! map, and hands out the data. Every refusal is a specific [`FitError`].
//!
//! What this verifier is stricter about than U-Boot (each refuses a FIT
//! U-Boot might boot): a signature is always needed (U-Boot boots unsigned
//! FITs when no key is marked required); no `@` in any image, configuration
//! or image subnode name and no two such nodes with the same name (libfdt
//! matches `kernel` to `kernel@1`: the CVE-2021-27138 class); only inline
//! image data (`mkimage` without `-E`); only SHA-256 image hashes, all of
//! which must match; no compression, no ciphered images.
#![no_std]

#[cfg(test)]
extern crate std;

mod keys;
mod regions;
mod sha;

pub use keys::{BootKey, Keyring, MAX_KEYS};

use fdt_edit::{FdtError, FdtRef};
use p256::ecdsa::Signature;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use regions::Config;

/// The only signature algorithm accepted.
pub const ALGO: &str = "sha256,ecdsa256";

/// Which image of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `kernel`.
    Kernel,
    /// `fdt`.
    Fdt,
    /// `ramdisk`.
    Ramdisk,
    /// Any other image the configuration names (`loadables`, ...).
    Other,
}

impl Kind {
    /// The configuration property naming it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Kernel => "kernel",
            Kind::Fdt => "fdt",
            Kind::Ramdisk => "ramdisk",
            Kind::Other => "image",
        }
    }
}

/// Why a FIT was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitError {
    /// The FIT is larger than the partition or buffer holding it.
    TooLarge {
        /// `totalsize` of the FIT.
        size: usize,
        /// Bytes available.
        limit: usize,
    },
    /// Not a well-formed device tree.
    Malformed(FdtError),
    /// No `/configurations`, no `default`, or no such configuration.
    NoConfiguration,
    /// A configuration, image or image subnode name contains `@`, or two
    /// such sibling nodes have the same name.
    BadName,
    /// No `/images`, or the configuration names no image.
    NoImages,
    /// The configuration has no `kernel`.
    NoKernel,
    /// The configuration names an image that does not exist (renamed).
    ImageMissing(Kind),
    /// A signed image has no `hash` subnode.
    HashMissing(Kind),
    /// The configuration has no signature (no `signature*` node or no
    /// `value`).
    Unsigned,
    /// Signed with another algorithm than `sha256,ecdsa256`.
    WrongAlgorithm,
    /// Signed by a key not in the ring (`key-name-hint` names none of ours
    /// and no key of ours verifies).
    UnknownKey,
    /// The signature does not verify: the configuration, an image's hash,
    /// or a node the signature covers was changed.
    BadSignature,
    /// The signed regions cannot be computed as U-Boot does (too deep, too
    /// many nodes or regions, bad `hashed-strings`).
    Regions,
    /// An image hash uses an algorithm other than SHA-256.
    HashAlgorithm(Kind),
    /// An image's data does not match its hash.
    ImageChanged(Kind),
    /// An image without inline `data` (external data is not supported).
    NoData(Kind),
    /// A compressed or ciphered image.
    Unsupported(Kind),
    /// A `load` or `entry` property that is not one or two cells.
    BadAddress(Kind),
    /// An image would be loaded outside DRAM.
    OutsideDram(Kind),
    /// An image would be loaded over memory the loader uses.
    Reserved(Kind),
    /// Two images would be loaded over each other.
    Overlap(Kind, Kind),
    /// The key ring is malformed (control DTB without a P-256 key, ...).
    BadKey,
}

impl core::fmt::Display for FitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLarge { size, limit } => {
                write!(f, "FIT is 0x{size:x} bytes, its partition 0x{limit:x}")
            }
            Self::Malformed(e) => write!(f, "not a FIT: {e}"),
            Self::NoConfiguration => write!(f, "FIT has no default configuration"),
            Self::BadName => write!(f, "FIT node name with '@' or duplicated"),
            Self::NoImages => write!(f, "FIT configuration names no image"),
            Self::NoKernel => write!(f, "FIT configuration has no kernel"),
            Self::ImageMissing(k) => write!(f, "FIT {} image node not found", k.as_str()),
            Self::HashMissing(k) => write!(f, "FIT {} image has no hash node", k.as_str()),
            Self::Unsigned => write!(f, "FIT configuration is not signed"),
            Self::WrongAlgorithm => write!(f, "FIT signature algorithm is not {ALGO}"),
            Self::UnknownKey => write!(f, "FIT signed by an unknown key"),
            Self::BadSignature => write!(f, "FIT configuration signature does not verify"),
            Self::Regions => write!(f, "FIT signed regions cannot be computed"),
            Self::HashAlgorithm(k) => {
                write!(f, "FIT {} image hash is not sha256", k.as_str())
            }
            Self::ImageChanged(k) => {
                write!(f, "FIT {} image does not match its hash", k.as_str())
            }
            Self::NoData(k) => write!(f, "FIT {} image has no inline data", k.as_str()),
            Self::Unsupported(k) => {
                write!(f, "FIT {} image is compressed or ciphered", k.as_str())
            }
            Self::BadAddress(k) => write!(f, "FIT {} image load/entry malformed", k.as_str()),
            Self::OutsideDram(k) => {
                write!(f, "FIT {} image load range is outside DRAM", k.as_str())
            }
            Self::Reserved(k) => {
                write!(f, "FIT {} image load range overlaps the loader", k.as_str())
            }
            Self::Overlap(a, b) => write!(
                f,
                "FIT {} and {} images overlap where they load",
                a.as_str(),
                b.as_str()
            ),
            Self::BadKey => write!(f, "boot key ring malformed"),
        }
    }
}

/// Where images may be loaded: DRAM banks and the ranges the loader keeps
/// (itself, the FIT's own buffer), each `(base, size)`.
#[derive(Clone, Copy, Debug)]
pub struct Memory<'r> {
    /// DRAM banks.
    pub dram: &'r [(u64, u64)],
    /// Ranges no image may be loaded over.
    pub reserved: &'r [(u64, u64)],
}

/// An opened FIT and its default configuration, not yet trusted.
#[derive(Clone, Copy, Debug)]
pub struct Fit<'a> {
    fdt: FdtRef<'a>,
    conf: usize,
    conf_name: &'a str,
    images: [Option<usize>; 3],
}

/// A FIT whose configuration signature verified.
#[derive(Clone, Copy, Debug)]
pub struct Signed<'a> {
    fit: Fit<'a>,
}

/// One verified image.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    /// Its data, checked against its hash.
    pub data: &'a [u8],
    /// `load` address, if given.
    pub load: Option<u64>,
    /// `entry` address, if given.
    pub entry: Option<u64>,
    /// Bytes it occupies once loaded: the data, or for an arm64 Linux
    /// Image its header's `image_size` if larger (BSS).
    pub footprint: u64,
}

/// Everything the loader may boot.
#[derive(Clone, Copy, Debug)]
pub struct Verified<'a> {
    /// The configuration's name.
    pub config: &'a str,
    /// The kernel.
    pub kernel: Image<'a>,
    /// The device tree.
    pub fdt: Option<Image<'a>>,
    /// The initramfs.
    pub ramdisk: Option<Image<'a>>,
    /// The configuration's `bootargs` (covered by the signature).
    pub bootargs: Option<&'a str>,
}

const KINDS: [Kind; 3] = [Kind::Kernel, Kind::Fdt, Kind::Ramdisk];

fn has_at(n: &[u8]) -> bool {
    n.contains(&b'@')
}

/// No `@` and no duplicate among the subnodes of `node`.
fn check_names(t: &FdtRef<'_>, node: usize) -> Result<(), FitError> {
    for (i, (_, a)) in t.subnodes(node).enumerate() {
        if has_at(a) || t.subnodes(node).skip(i + 1).any(|(_, b)| a == b) {
            return Err(FitError::BadName);
        }
    }
    Ok(())
}

fn cells(v: &[u8], k: Kind) -> Result<u64, FitError> {
    match v.len() {
        4 => Ok(u64::from(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))),
        8 => Ok(u64::from_be_bytes([
            v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
        ])),
        _ => Err(FitError::BadAddress(k)),
    }
}

/// A more specific refusal wins when several signatures fail.
fn rank(e: &FitError) -> u8 {
    match e {
        FitError::Unsigned => 0,
        FitError::WrongAlgorithm => 1,
        FitError::UnknownKey => 2,
        _ => 3,
    }
}

impl<'a> Fit<'a> {
    /// Checks the blob (at most `limit` bytes: its partition) and resolves
    /// the default configuration's images.
    pub fn open(blob: &'a [u8], limit: usize) -> Result<Self, FitError> {
        let size = fdt_edit::total_size(blob).map_err(FitError::Malformed)?;
        if size > limit {
            return Err(FitError::TooLarge { size, limit });
        }
        let t = FdtRef::new(blob).map_err(FitError::Malformed)?;
        let root = t.root();
        check_names(&t, root)?;
        let images = t.subnode(root, "images").ok_or(FitError::NoImages)?;
        let confs = t
            .subnode(root, "configurations")
            .ok_or(FitError::NoConfiguration)?;
        check_names(&t, images)?;
        for (img, _) in t.subnodes(images) {
            check_names(&t, img)?;
        }
        check_names(&t, confs)?;
        let conf_name = t
            .prop_str(confs, "default")
            .ok_or(FitError::NoConfiguration)?;
        let conf = t
            .subnode(confs, conf_name)
            .ok_or(FitError::NoConfiguration)?;
        // Every image the configuration names must exist with a hash.
        let mut refs = 0;
        for (p, v) in t.props(conf) {
            if !regions::names_images(p) {
                continue;
            }
            let kind = KINDS
                .into_iter()
                .find(|k| k.as_str().as_bytes() == p)
                .unwrap_or(Kind::Other);
            for name in regions::strings(v) {
                let Some(img) = t.subnodes(images).find(|(_, n)| *n == name).map(|(o, _)| o) else {
                    if kind != Kind::Other {
                        return Err(FitError::ImageMissing(kind));
                    }
                    continue;
                };
                refs += 1;
                if !t.subnodes(img).any(|(_, n)| n.starts_with(b"hash")) {
                    return Err(FitError::HashMissing(kind));
                }
                if t.subnode(img, "cipher").is_some() {
                    return Err(FitError::Unsupported(kind));
                }
            }
        }
        if refs == 0 {
            return Err(FitError::NoImages);
        }
        let mut found = [None; 3];
        for (slot, k) in found.iter_mut().zip(KINDS) {
            if let Some(v) = t.prop(conf, k.as_str()) {
                let name = regions::strings(v)
                    .next()
                    .ok_or(FitError::ImageMissing(k))?;
                *slot = t.subnodes(images).find(|(_, n)| *n == name).map(|(o, _)| o);
            }
        }
        if found[0].is_none() {
            return Err(FitError::NoKernel);
        }
        Ok(Fit {
            fdt: t,
            conf,
            conf_name,
            images: found,
        })
    }

    /// The default configuration's name.
    pub fn config_name(&self) -> &'a str {
        self.conf_name
    }

    fn config(&self) -> Config<'a> {
        Config {
            fit: self.fdt,
            node: self.conf,
            name: self.conf_name.as_bytes(),
        }
    }

    /// The SHA-256 the signature node `sig_name` of the default
    /// configuration signs (for a signer that adds `value` afterwards).
    pub fn config_digest(&self, sig_name: &str) -> Result<[u8; 32], FitError> {
        let sig = self
            .fdt
            .subnode(self.conf, sig_name)
            .ok_or(FitError::Unsigned)?;
        regions::config_digest(&self.config(), sig)
    }

    /// The digest a signature node covers, after its own checks.
    fn sig_digest(&self, sig: usize) -> Result<(&'a [u8], [u8; 32]), FitError> {
        let t = self.fdt;
        if t.prop_str(sig, "algo") != Some(ALGO) {
            return Err(FitError::WrongAlgorithm);
        }
        let value = t.prop(sig, "value").ok_or(FitError::Unsigned)?;
        Ok((value, regions::config_digest(&self.config(), sig)?))
    }

    /// Whether one signature node verifies with `key`.
    fn check_one(&self, sig: usize, key: &BootKey<'_>) -> Result<(), FitError> {
        let (value, digest) = self.sig_digest(sig)?;
        let hint = self.fdt.prop_str(sig, "key-name-hint");
        let mismatch = if hint.is_some_and(|h| h != key.name) {
            FitError::UnknownKey
        } else {
            FitError::BadSignature
        };
        let s = Signature::from_slice(value).map_err(|_| mismatch)?;
        key.key.verify_prehash(&digest, &s).map_err(|_| mismatch)
    }

    /// Whether some signature node of the configuration verifies with `key`.
    fn check_key(&self, key: &BootKey<'_>) -> Result<(), FitError> {
        let mut worst = FitError::Unsigned;
        for (sig, name) in self.fdt.subnodes(self.conf) {
            if !name.starts_with(b"signature") {
                continue;
            }
            match self.check_one(sig, key) {
                Ok(()) => return Ok(()),
                Err(FitError::Regions) => return Err(FitError::Regions),
                Err(e) if rank(&e) >= rank(&worst) => worst = e,
                Err(_) => {}
            }
        }
        Err(worst)
    }

    /// Verifies the configuration signature against `ring` (see
    /// [`Keyring`] for which keys must verify).
    pub fn check_signature(&self, ring: &Keyring<'_>) -> Result<Signed<'a>, FitError> {
        let (all, keys) = ring.policy();
        let mut worst = None;
        let mut any_ok = false;
        for key in keys {
            match self.check_key(key) {
                Ok(()) => {
                    any_ok = true;
                    if !all {
                        break;
                    }
                }
                Err(e) => {
                    if all {
                        return Err(e);
                    }
                    if worst.is_none_or(|w| rank(&e) >= rank(&w)) {
                        worst = Some(e);
                    }
                }
            }
        }
        if any_ok {
            Ok(Signed { fit: *self })
        } else {
            Err(worst.unwrap_or(FitError::BadKey))
        }
    }
}

impl<'a> Signed<'a> {
    /// The FIT this signature covers.
    pub fn fit(&self) -> &Fit<'a> {
        &self.fit
    }

    fn image(&self, node: usize, k: Kind) -> Result<Image<'a>, FitError> {
        let t = self.fit.fdt;
        if t.prop_str(node, "compression").is_some_and(|c| c != "none") {
            return Err(FitError::Unsupported(k));
        }
        let data = t.prop(node, "data").ok_or(FitError::NoData(k))?;
        let digest = sha::sha256(data);
        let mut hashes = 0;
        for (h, name) in t.subnodes(node) {
            if !name.starts_with(b"hash") {
                continue;
            }
            if t.prop_str(h, "algo") != Some("sha256") {
                return Err(FitError::HashAlgorithm(k));
            }
            if t.prop(h, "value") != Some(&digest[..]) {
                return Err(FitError::ImageChanged(k));
            }
            hashes += 1;
        }
        if hashes == 0 {
            return Err(FitError::HashMissing(k));
        }
        let addr = |p: &str| t.prop(node, p).map(|v| cells(v, k)).transpose();
        let mut footprint = data.len() as u64;
        if k == Kind::Kernel && data.len() >= 64 && data[56..60] == *b"ARM\x64" {
            let mut size = [0u8; 8];
            size.copy_from_slice(&data[16..24]);
            footprint = footprint.max(u64::from_le_bytes(size));
        }
        Ok(Image {
            data,
            load: addr("load")?,
            entry: addr("entry")?,
            footprint,
        })
    }

    /// Checks every image of the configuration against its hash and their
    /// load ranges against `mem`; returns them.
    pub fn check_images(&self, mem: &Memory<'_>) -> Result<Verified<'a>, FitError> {
        let mut out: [Option<Image<'a>>; 3] = [None; 3];
        for ((slot, node), k) in out.iter_mut().zip(self.fit.images).zip(KINDS) {
            if let Some(n) = node {
                *slot = Some(self.image(n, k)?);
            }
        }
        let range = |i: &Image<'_>| i.load.map(|a| (a, a.checked_add(i.footprint)));
        for (img, k) in out.iter().zip(KINDS) {
            let Some((a, end)) = img.as_ref().and_then(range) else {
                continue;
            };
            let end = end.ok_or(FitError::OutsideDram(k))?;
            if !mem
                .dram
                .iter()
                .any(|&(b, s)| a >= b && b.checked_add(s).is_some_and(|e| end <= e))
            {
                return Err(FitError::OutsideDram(k));
            }
            if mem
                .reserved
                .iter()
                .any(|&(b, s)| a < b.saturating_add(s) && b < end)
            {
                return Err(FitError::Reserved(k));
            }
        }
        for i in 0..3 {
            for j in i + 1..3 {
                let (Some((a0, Some(e0))), Some((a1, Some(e1)))) = (
                    out[i].as_ref().and_then(range),
                    out[j].as_ref().and_then(range),
                ) else {
                    continue;
                };
                if a0 < e1 && a1 < e0 {
                    return Err(FitError::Overlap(KINDS[i], KINDS[j]));
                }
            }
        }
        let [kernel, fdt, ramdisk] = out;
        let t = self.fit.fdt;
        let bootargs = match t.prop(self.fit.conf, "bootargs") {
            None => None,
            Some(_) => Some(
                t.prop_str(self.fit.conf, "bootargs")
                    .ok_or(FitError::Malformed(FdtError::BadStructure))?,
            ),
        };
        Ok(Verified {
            config: self.fit.conf_name,
            kernel: kernel.ok_or(FitError::NoKernel)?,
            fdt,
            ramdisk,
            bootargs,
        })
    }
}

/// Opens, verifies the signature, checks the images: the whole check.
pub fn verify<'a>(
    blob: &'a [u8],
    limit: usize,
    ring: &Keyring<'_>,
    mem: &Memory<'_>,
) -> Result<Verified<'a>, FitError> {
    Fit::open(blob, limit)?
        .check_signature(ring)?
        .check_images(mem)
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
