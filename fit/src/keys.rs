//! The boot keys a FIT configuration must be signed with.
//!
//! U-Boot keeps public keys in its control device tree under `/signature`,
//! one subnode per key (`key-<name>` for RSA; for ECDSA `mkimage -K` 2023.01
//! names the node after `key-name-hint`), with `ecdsa,curve = "prime256v1"`
//! and `ecdsa,x-point`/`ecdsa,y-point` as 32-byte big-endian coordinates
//! (`lib/ecdsa/ecdsa-libcrypto.c`, `do_add`; `lib/ecdsa/ecdsa-verify.c`,
//! `fdt_get_key`). A key with `required = "conf"` must verify every
//! configuration; `/signature/required-mode = "any"` relaxes "every
//! required key" to "one of them" (`fit_config_verify_required_keys`).
//!
//! One deliberate difference: U-Boot boots an unsigned FIT when no key is
//! marked required. This loader always requires at least one valid
//! configuration signature from a key in its ring: with no `required`
//! marking, any key of the ring will do.

use crate::FitError;
use fdt_edit::FdtRef;
use p256::ecdsa::VerifyingKey;

/// How many keys a ring holds.
pub const MAX_KEYS: usize = 4;

/// One ECDSA P-256 boot public key.
#[derive(Clone, Debug)]
pub struct BootKey<'a> {
    /// The name signatures give in `key-name-hint`.
    pub name: &'a str,
    pub(crate) key: VerifyingKey,
    pub(crate) required: bool,
}

impl<'a> BootKey<'a> {
    /// A key from its affine coordinates (32 bytes each, big-endian).
    pub fn from_xy(name: &'a str, x: &[u8; 32], y: &[u8; 32]) -> Result<Self, FitError> {
        let mut sec1 = [0u8; 65];
        sec1[0] = 4;
        sec1[1..33].copy_from_slice(x);
        sec1[33..].copy_from_slice(y);
        let key = VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| FitError::BadKey)?;
        Ok(Self {
            name,
            key,
            required: false,
        })
    }
}

/// The keys a production loader trusts.
#[derive(Clone, Debug)]
pub struct Keyring<'a> {
    keys: [Option<BootKey<'a>>; MAX_KEYS],
    require_all: bool,
}

impl<'a> Keyring<'a> {
    /// A ring of one key.
    pub fn one(key: BootKey<'a>) -> Self {
        Self {
            keys: [Some(key), None, None, None],
            require_all: false,
        }
    }

    /// The ECDSA keys of a U-Boot control device tree. Refused: no key, a
    /// key that is not P-256, more than [`MAX_KEYS`], or a key required for
    /// images (per-image signatures are not supported).
    pub fn from_control_dtb(dtb: &'a [u8]) -> Result<Self, FitError> {
        let t = FdtRef::new(dtb).map_err(|_| FitError::BadKey)?;
        let sig = t.path("/signature").ok_or(FitError::BadKey)?;
        let mut ring = Keyring {
            keys: [None, None, None, None],
            require_all: t.prop_str(sig, "required-mode") != Some("any"),
        };
        let mut n = 0;
        let mut any_required = false;
        for (node, name) in t.subnodes(sig) {
            if t.prop_str(node, "ecdsa,curve") != Some("prime256v1") {
                return Err(FitError::BadKey);
            }
            let required = match t.prop_str(node, "required") {
                None => false,
                Some("conf") => true,
                Some(_) => return Err(FitError::BadKey),
            };
            any_required |= required;
            let coord = |p: &str| -> Result<[u8; 32], FitError> {
                t.prop(node, p)
                    .and_then(|v| v.try_into().ok())
                    .ok_or(FitError::BadKey)
            };
            let name = match t.prop_str(node, "key-name-hint") {
                Some(h) => h,
                None => {
                    let n = core::str::from_utf8(name).map_err(|_| FitError::BadKey)?;
                    n.strip_prefix("key-").unwrap_or(n)
                }
            };
            let mut key =
                BootKey::from_xy(name, &coord("ecdsa,x-point")?, &coord("ecdsa,y-point")?)?;
            key.required = required;
            *ring.keys.get_mut(n).ok_or(FitError::BadKey)? = Some(key);
            n += 1;
        }
        if n == 0 {
            return Err(FitError::BadKey);
        }
        if !any_required {
            ring.require_all = false;
        }
        Ok(ring)
    }

    /// The keys.
    pub fn keys(&self) -> impl Iterator<Item = &BootKey<'a>> {
        self.keys.iter().flatten()
    }

    /// The keys that must verify: every `required` key when the ring has
    /// some and its mode is "all"; otherwise one of them suffices.
    pub(crate) fn policy(&self) -> (bool, impl Iterator<Item = &BootKey<'a>>) {
        let any_required = self.keys().any(|k| k.required);
        let all = self.require_all && any_required;
        (
            all,
            self.keys().filter(move |k| !any_required || k.required),
        )
    }
}
