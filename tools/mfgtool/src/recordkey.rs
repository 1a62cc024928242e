//! The OEM record key: opens the ID records the devices seal to it
//! (`formats::sealed`, ECIES over P-256).
//!
//! Opening a record is two steps: the ECDH step `Z` = x(`r*E`) with the
//! record private key `r` and the record's ephemeral key `E`, which is
//! the only step that needs the private key, and the HKDF/AES-GCM step
//! ([`mfg_formats::sealed::open_with_shared`]), which needs only `Z` and
//! the public key. The ECDH step is behind [`RecordKey`]: today a PEM file
//! ([`FileRecordKey`]); an HSM (PKCS#11 `C_DeriveKey` with
//! `CKM_ECDH1_DERIVE`, a later issue) implements the same trait and
//! replaces the file key without touching the callers, and then the private
//! key never enters this process (only `Z` of one record does).

use std::path::Path;

use mfg_formats::FormatError;
use mfg_formats::identity::{IdRecord, SEALED_LEN};
use mfg_formats::sealed::{self, Header, Kind};
use p256::pkcs8::DecodePrivateKey;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Fail, Result, exit};

/// What a record is refused with when it does not open.
pub const DOES_NOT_OPEN: &str =
    "sealed record does not open: sealed for another record key or altered";

/// Whoever holds the record private key: computes the ECDH shared secret
/// of one record. Implementations: [`FileRecordKey`] (a PEM file); an HSM
/// later (same interface, the private key stays in the token).
pub trait RecordKey {
    /// The record public key R (x || y), as built into the loader.
    fn public(&self) -> [u8; 64];
    /// `Z` = x(`r*E`) for a record's ephemeral public key `E` (x || y).
    fn shared(&self, ephemeral: &[u8; 64]) -> Result<Zeroizing<[u8; 32]>>;
}

/// The record private key read from a file (PKCS#8 `PRIVATE KEY` or SEC1
/// `EC PRIVATE KEY` PEM, P-256). The scalar is zeroized on drop.
pub struct FileRecordKey {
    secret: Zeroizing<[u8; 32]>,
    public: [u8; 64],
}

impl FileRecordKey {
    /// Loads `--record-key FILE`. A directory is taken as an OEM key set:
    /// its `record.pem`, checked against its `record.pub` when there is one.
    pub fn load(path: &Path) -> Result<Self> {
        let (file, public) = if path.is_dir() {
            let p = path.join("record.pub");
            let public = match std::fs::read_to_string(&p) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Fail::io(&p.display().to_string(), e)),
            };
            (path.join("record.pem"), public)
        } else {
            (path.to_path_buf(), None)
        };
        let text = Zeroizing::new(
            std::fs::read_to_string(&file)
                .map_err(|e| Fail::io(&format!("--record-key {}", file.display()), e))?,
        );
        let key = Self::from_pem(&text).map_err(|why| {
            Fail::format(format!(
                "--record-key {}: {why} (expected a P-256 private key in PEM: PKCS#8 'BEGIN PRIVATE KEY' or SEC1 'BEGIN EC PRIVATE KEY')",
                file.display()
            ))
        })?;
        if let Some(t) = public
            && hex::decode(t.trim()).ok().as_deref() != Some(&key.public[..])
        {
            return Err(Fail::format(format!(
                "--record-key {}: record.pub is not the public key of record.pem",
                path.display()
            )));
        }
        Ok(key)
    }

    /// The key of a raw scalar (tests, bench, examples).
    pub fn from_secret(secret: [u8; 32]) -> std::result::Result<Self, FormatError> {
        let public = sealed::public_key(&secret)?;
        Ok(Self {
            secret: Zeroizing::new(secret),
            public,
        })
    }

    /// Parses a PEM private key (PKCS#8 or SEC1).
    pub fn from_pem(text: &str) -> std::result::Result<Self, &'static str> {
        let key = if let Some(der) = pem_der(text, "PRIVATE KEY") {
            p256::SecretKey::from_pkcs8_der(&der).map_err(|_| "not a PKCS#8 P-256 private key")?
        } else if let Some(der) = pem_der(text, "EC PRIVATE KEY") {
            p256::SecretKey::from_sec1_der(&der).map_err(|_| "not a SEC1 P-256 private key")?
        } else {
            return Err("no PEM private key found");
        };
        let mut secret = Zeroizing::new([0u8; 32]);
        let mut fb = key.to_bytes();
        secret.copy_from_slice(&fb);
        fb.as_mut_slice().zeroize();
        let public = sealed::public_key(&secret).map_err(|_| "invalid private scalar")?;
        Ok(Self { secret, public })
    }
}

/// The DER body of a PEM block, every copy zeroized on drop.
fn pem_der(text: &str, label: &str) -> Option<Zeroizing<Vec<u8>>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: Zeroizing<Vec<u8>> = Zeroizing::new(
        text[start..stop]
            .bytes()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    let mut out = Zeroizing::new(vec![0u8; b64.len() / 4 * 3 + 3]);
    let n = mfg_formats::base64::decode(&b64, &mut out).ok()?;
    out.truncate(n);
    Some(out)
}

impl RecordKey for FileRecordKey {
    fn public(&self) -> [u8; 64] {
        self.public
    }
    fn shared(&self, ephemeral: &[u8; 64]) -> Result<Zeroizing<[u8; 32]>> {
        sealed::shared_secret(&self.secret, ephemeral)
            .map(Zeroizing::new)
            .map_err(|e| Fail::format(format!("sealed record: {e}")))
    }
}

/// Opens a sealed ID record with the record key and parses the record in
/// it. A record that does not authenticate is refused with
/// [`DOES_NOT_OPEN`] (exit 3); a malformed one with exit 5. The signature
/// is not checked here.
pub fn open_record(key: &dyn RecordKey, sealed_record: &[u8; SEALED_LEN]) -> Result<IdRecord> {
    let h = Header::parse(sealed_record)?;
    if h.kind != Kind::IdRecord {
        return Err(Fail::format("sealed record: not an ID record"));
    }
    let z = key.shared(&h.ephemeral)?;
    let mut buf = Zeroizing::new(*sealed_record);
    let (_, pt) = match sealed::open_with_shared(&mut buf[..], &z, &key.public()) {
        Ok(x) => x,
        Err(FormatError::AuthenticationFailed) => return Err(Fail::new(exit::AUTH, DOES_NOT_OPEN)),
        Err(e) => return Err(e.into()),
    };
    IdRecord::parse(pt).map_err(|e| Fail::format(format!("sealed ID record opened, but {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfg_formats::identity::{IdentityMessage, SOC_IMX8MP, SecurityState};
    use p256::pkcs8::EncodePrivateKey;

    fn pem(label: &str, der: &[u8]) -> String {
        let mut b = vec![0u8; mfg_formats::base64::encoded_len(der.len())];
        mfg_formats::base64::encode(der, &mut b).unwrap();
        let body: Vec<String> = b
            .chunks(64)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            body.join("\n")
        )
    }

    fn record() -> IdRecord {
        let mut m = IdentityMessage {
            soc: SOC_IMX8MP,
            uid: [1; 16],
            srk_hash: [2; 32],
            security_state: SecurityState::Closed,
            boot_counter: 1,
            loader_version: [0; 16],
            product: [0; 32],
            bundle_id: Some(1),
            bundle_digest: [3; 32],
            station_nonce: None,
        };
        m.set_loader_version("0.1.0");
        m.set_product("widget");
        crate::verify::sign_record(&crate::bench::test_key(), m, [4; 32])
    }

    #[test]
    fn pkcs8_and_sec1_pem_give_the_same_key_and_open_the_record() {
        let sk = p256::SecretKey::from_slice(&[0x77; 32]).unwrap();
        let k8 =
            FileRecordKey::from_pem(&pem("PRIVATE KEY", sk.to_pkcs8_der().unwrap().as_bytes()))
                .unwrap();
        let k1 =
            FileRecordKey::from_pem(&pem("EC PRIVATE KEY", &sk.to_sec1_der().unwrap())).unwrap();
        assert_eq!(k8.public(), k1.public());
        assert_eq!(k8.public(), sealed::public_key(&[0x77; 32]).unwrap());
        let r = record();
        let s = r.seal(&k8.public(), &[0x55; 32]).unwrap();
        assert_eq!(open_record(&k1, &s).unwrap(), r);
        // Another record key: refused as not opening, exit 3.
        let other = FileRecordKey::from_pem(&pem(
            "PRIVATE KEY",
            p256::SecretKey::from_slice(&[0x78; 32])
                .unwrap()
                .to_pkcs8_der()
                .unwrap()
                .as_bytes(),
        ))
        .unwrap();
        let e = open_record(&other, &s).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (exit::AUTH, DOES_NOT_OPEN));
        assert!(
            FileRecordKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .is_err()
        );
        assert!(FileRecordKey::from_pem(&pem("PRIVATE KEY", &[0x30, 0x00])).is_err());
    }
}
