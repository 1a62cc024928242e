//! `mfgtool seal` and `mfgtool open`.

use std::path::{Path, PathBuf};

use mfg_formats::bundle::{
    self, KeyModifier, LINUX_TRUSTED_KEY_LEN, SealParams, SecretSpec, SecretType,
};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Fail, Result, read_file};
use crate::keys;

/// The secrets manifest (TOML).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// One table per secret.
    pub secret: Vec<ManifestSecret>,
}

/// One `[[secret]]` table.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ManifestSecret {
    pub name: String,
    pub file: PathBuf,
    #[serde(rename = "type")]
    pub kind: String,
    pub key_modifier: Option<String>,
    /// A Linux trusted key (`trusted.source=caam`): key modifier
    /// `SECURE_KEY`, a raw payload of 32..=128 bytes (docs/formats.md 3.3).
    #[serde(default)]
    pub linux_trusted_key: bool,
}

/// A secret loaded from disk; the bytes are zeroized on drop.
pub struct Loaded {
    pub name: String,
    pub kind: SecretType,
    pub key_modifier: Option<KeyModifier>,
    pub data: Zeroizing<Vec<u8>>,
}

/// Checks that `data` is one DER element (SEQUENCE) spanning the whole file.
pub fn der_sane(data: &[u8]) -> bool {
    if data.len() < 2 || data[0] != 0x30 {
        return false;
    }
    let (len, hdr) = match data[1] {
        n @ 0..=0x7f => (usize::from(n), 2),
        0x81..=0x84 => {
            let k = usize::from(data[1] & 0x7f);
            let Some(bytes) = data.get(2..2 + k) else {
                return false;
            };
            (
                bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)),
                2 + k,
            )
        }
        _ => return false,
    };
    hdr + len == data.len()
}

/// Checks PEM armour: BEGIN/END lines with matching labels and a base64
/// body that decodes to a DER SEQUENCE.
pub fn pem_sane(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Some(rest) = text.trim_start().strip_prefix("-----BEGIN ") else {
        return false;
    };
    let Some(label_end) = rest.find("-----") else {
        return false;
    };
    let label = &rest[..label_end];
    match keys::pem_body(text, label) {
        Some(der) => der_sane(&der),
        None => false,
    }
}

/// Reads and checks the manifest and every secret file.
pub fn load_manifest(path: &Path) -> Result<Vec<Loaded>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Fail::io(&path.display().to_string(), e))?;
    let m: Manifest = toml::from_str(&text)
        .map_err(|e| Fail::format(format!("{}: {}", path.display(), e.message())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for s in m.secret {
        let kind = SecretType::parse(&s.kind).ok_or_else(|| {
            Fail::format(format!(
                "secret '{}': type '{}' unknown (raw, der, pem or opaque)",
                s.name, s.kind
            ))
        })?;
        let key_modifier = match (&s.key_modifier, s.linux_trusted_key) {
            (Some(_), true) => {
                return Err(Fail::format(format!(
                    "secret '{}': linux_trusted_key sets the key modifier (SECURE_KEY); remove key_modifier",
                    s.name
                )));
            }
            (Some(h), false) => Some(KeyModifier::full(
                keys::hex_exact::<16>(&format!("secret '{}': key_modifier", s.name), h)
                    .map_err(|e| Fail::format(e.msg))?,
            )),
            (None, true) => Some(KeyModifier::LINUX_TRUSTED),
            (None, false) => None,
        };
        if s.linux_trusted_key && kind != SecretType::Raw {
            return Err(Fail::format(format!(
                "secret '{}': a Linux trusted key is type = \"raw\" (its payload is the key), not '{}'",
                s.name,
                kind.as_str()
            )));
        }
        let file = base.join(&s.file);
        let data = Zeroizing::new(read_file(&file)?);
        if s.linux_trusted_key && !LINUX_TRUSTED_KEY_LEN.contains(&data.len()) {
            return Err(Fail::format(format!(
                "secret '{}': {} holds {} bytes; a Linux trusted key is {}..={} bytes \
                 (MIN_KEY_SIZE..MAX_KEY_SIZE of Linux include/keys/trusted-type.h)",
                s.name,
                file.display(),
                data.len(),
                LINUX_TRUSTED_KEY_LEN.start(),
                LINUX_TRUSTED_KEY_LEN.end()
            )));
        }
        let ok = match kind {
            SecretType::Der => der_sane(&data),
            SecretType::Pem => pem_sane(&data),
            SecretType::Raw | SecretType::Opaque => true,
        };
        if !ok {
            return Err(Fail::format(format!(
                "secret '{}': {} is not valid {}",
                s.name,
                file.display(),
                kind.as_str().to_uppercase()
            )));
        }
        out.push(Loaded {
            name: s.name,
            kind,
            key_modifier,
            data,
        });
    }
    Ok(out)
}

/// Seals loaded secrets; returns the bundle bytes.
pub fn seal_secrets(
    secrets: &[Loaded],
    product: &str,
    bundle_id: u64,
    mp_pubkey: &[u8; 64],
) -> Result<Vec<u8>> {
    let specs: Vec<SecretSpec<'_>> = secrets
        .iter()
        .map(|s| SecretSpec {
            name: &s.name,
            kind: s.kind,
            key_modifier: s.key_modifier,
            data: &s.data,
        })
        .collect();
    let params = SealParams {
        product,
        bundle_id,
        label: bundle::DEFAULT_LABEL,
        salt: keys::random()?,
        nonce: keys::random()?,
    };
    let mut out = vec![0u8; bundle::sealed_len(&specs)?];
    let n = bundle::seal(&mut out, &params, &specs, mp_pubkey)?;
    out.truncate(n);
    Ok(out)
}

/// What `open` reports per secret.
#[derive(serde::Serialize)]
pub struct OpenedSecret {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub size: usize,
    pub key_modifier: String,
    pub key_modifier_given: bool,
    /// Its key modifier is Linux trusted keys' `SECURE_KEY`.
    pub linux_trusted_key: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_hex: Option<String>,
}

/// What `open` reports.
#[derive(serde::Serialize)]
pub struct Opened {
    pub product: String,
    pub bundle_id: u64,
    pub label: String,
    pub size: usize,
    pub secrets: Vec<OpenedSecret>,
}

/// Opens a bundle; contents only with `reveal`.
pub fn open(bundle_bytes: &[u8], mp_pubkey: &[u8; 64], reveal: bool) -> Result<Opened> {
    let mut buf = Zeroizing::new(bundle_bytes.to_vec());
    let header = bundle::BundleHeader::parse(&buf)?;
    if buf.len() != header.total_len() {
        return Err(Fail::format(format!(
            "bundle: length {} does not match its header ({} bytes)",
            buf.len(),
            header.total_len()
        )));
    }
    let view = bundle::open_in_place(&mut buf, mp_pubkey)?;
    let h = view.header();
    Ok(Opened {
        product: h.product().to_string(),
        bundle_id: h.bundle_id,
        label: h.label().to_string(),
        size: h.total_len(),
        secrets: view
            .secrets()
            .map(|s| OpenedSecret {
                name: s.name.to_string(),
                kind: s.kind.as_str(),
                size: s.data.len(),
                key_modifier: hex::encode(s.key_modifier.as_bytes()),
                key_modifier_given: s.key_modifier_given,
                linux_trusted_key: s.key_modifier == KeyModifier::LINUX_TRUSTED,
                content_hex: reveal.then(|| hex::encode(s.data)),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_and_pem_sanity() {
        assert!(der_sane(&[0x30, 0x03, 0x02, 0x01, 0x05]));
        assert!(
            !der_sane(&[0x30, 0x04, 0x02, 0x01, 0x05]),
            "length mismatch"
        );
        assert!(!der_sane(&[0x31, 0x03, 0x02, 0x01, 0x05]), "not a SEQUENCE");
        let mut long = vec![0x30, 0x82, 0x01, 0x00];
        long.extend(vec![0u8; 256]);
        assert!(der_sane(&long));
        assert!(!der_sane(&long[..100]));
        assert!(!der_sane(&[0x30, 0x85, 1, 1, 1, 1, 1]));
        assert!(pem_sane(
            b"-----BEGIN CERTIFICATE-----\nMAMCAQU=\n-----END CERTIFICATE-----\n"
        ));
        assert!(!pem_sane(
            b"-----BEGIN CERTIFICATE-----\nMAMCAQU=\n-----END KEY-----\n"
        ));
        assert!(!pem_sane(
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"
        ));
        assert!(!pem_sane(b"just text"));
    }
}
