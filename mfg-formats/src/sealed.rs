//! Records sealed to the OEM: everything the device emits that carries an
//! MP signature is encrypted to the OEM's record key, so the contract
//! manufacturer relays opaque bytes and never sees a signature (from which
//! the MP public key, the bundle key's input, could be recovered).
//!
//! ECIES over P-256: the device draws an ephemeral key `e` (from the CAAM
//! RNG), computes `E = e*G` and the shared secret `Z` = x(`e*R`) with the
//! OEM record public key `R`; HKDF-SHA256 (salt `E || R`, info
//! [`KDF_INFO`] || kind) gives a 32-byte AES-256-GCM key and its 12-byte
//! nonce (one key per record, so one nonce per key). The header is the
//! AAD. The OEM computes `Z` = x(`r*E`) (in an HSM: only `Z` of one record
//! leaves it) and opens the record with [`open_with_shared`].
//!
//! Layout (little-endian), [`HEADER_LEN`] bytes then ciphertext then tag:
//! magic `MFSR` (4) | version u16 | kind u16 | E (x || y, 64) |
//! payload length u16 | reserved u16 (0) | ciphertext | tag (16).

use crate::FormatError;
use crate::rd::Rd;
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{AffinePoint, NonZeroScalar, PublicKey};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Magic of a sealed record.
pub const MAGIC: [u8; 4] = *b"MFSR";
/// Its version.
pub const VERSION: u16 = 1;
/// Header (AAD) length.
pub const HEADER_LEN: usize = 76;
/// GCM tag length.
pub const TAG_LEN: usize = 16;
/// HKDF info prefix (the kind follows, little-endian).
pub const KDF_INFO: &[u8] = b"imx-mfg sealed record v1";
/// Largest payload a sealed record carries.
pub const MAX_PAYLOAD: usize = 1024;

/// What a sealed record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An ID record ([`crate::identity::IdRecord`]).
    IdRecord,
}

impl Kind {
    /// On-wire code.
    pub fn code(self) -> u16 {
        match self {
            Self::IdRecord => 1,
        }
    }

    fn from_code(c: u16) -> Result<Self, FormatError> {
        match c {
            1 => Ok(Self::IdRecord),
            _ => Err(FormatError::BadField {
                what: "sealed record kind",
            }),
        }
    }
}

/// Length of a sealed record carrying `payload_len` bytes.
pub const fn sealed_len(payload_len: usize) -> usize {
    HEADER_LEN + payload_len + TAG_LEN
}

/// The parsed header of a sealed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What it holds.
    pub kind: Kind,
    /// The device's ephemeral public key E (x || y).
    pub ephemeral: [u8; 64],
    /// Plaintext length.
    pub payload_len: usize,
}

impl Header {
    /// Parses and checks the header at the start of `b`, and that `b` is
    /// exactly as long as the header says.
    pub fn parse(b: &[u8]) -> Result<Self, FormatError> {
        let mut r = Rd::new(b, "sealed record");
        r.magic_version(&MAGIC, VERSION)?;
        let kind = Kind::from_code(r.u16()?)?;
        let ephemeral: [u8; 64] = r.arr()?;
        let payload_len = usize::from(r.u16()?);
        if r.u16()? != 0 {
            return Err(FormatError::BadField {
                what: "sealed record reserved",
            });
        }
        if payload_len == 0 || payload_len > MAX_PAYLOAD {
            return Err(FormatError::BadLength {
                what: "sealed record payload",
            });
        }
        if b.len() != sealed_len(payload_len) {
            return Err(if b.len() < sealed_len(payload_len) {
                FormatError::Truncated {
                    what: "sealed record",
                }
            } else {
                FormatError::BadLength {
                    what: "sealed record",
                }
            });
        }
        Ok(Self {
            kind,
            ephemeral,
            payload_len,
        })
    }

    fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&VERSION.to_le_bytes());
        out[6..8].copy_from_slice(&self.kind.code().to_le_bytes());
        out[8..72].copy_from_slice(&self.ephemeral);
        out[72..74].copy_from_slice(&(self.payload_len as u16).to_le_bytes());
        out[74..76].fill(0);
    }
}

fn point(xy: &[u8; 64], what: &'static str) -> Result<PublicKey, FormatError> {
    let mut sec1 = [4u8; 65];
    sec1[1..].copy_from_slice(xy);
    PublicKey::from_sec1_bytes(&sec1).map_err(|_| FormatError::BadField { what })
}

fn xy(p: &AffinePoint) -> [u8; 64] {
    let enc = p.to_sec1_point(false);
    let mut o = [0u8; 64];
    o.copy_from_slice(&enc.as_bytes()[1..65]);
    o
}

/// Key and nonce of one record.
fn derive(
    shared_x: &[u8; 32],
    ephemeral: &[u8; 64],
    recipient: &[u8; 64],
    kind: Kind,
) -> Zeroizing<[u8; 44]> {
    let mut salt = [0u8; 128];
    salt[..64].copy_from_slice(ephemeral);
    salt[64..].copy_from_slice(recipient);
    let mut info = [0u8; KDF_INFO.len() + 2];
    info[..KDF_INFO.len()].copy_from_slice(KDF_INFO);
    info[KDF_INFO.len()..].copy_from_slice(&kind.code().to_le_bytes());
    let mut okm = Zeroizing::new([0u8; 44]);
    // 44 bytes is far below HKDF-SHA256's limit: `expand` cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(&salt), shared_x).expand(&info, okm.as_mut_slice());
    okm
}

/// Seals `payload` for the holder of `recipient` (the OEM record public
/// key, x || y) into `out`; returns the sealed length. `ephemeral_secret`
/// must be fresh random bytes (the CAAM RNG on the device): it is the only
/// randomness, and a value that is not a valid scalar is refused (draw
/// again).
pub fn seal(
    out: &mut [u8],
    kind: Kind,
    payload: &[u8],
    recipient: &[u8; 64],
    ephemeral_secret: &[u8; 32],
) -> Result<usize, FormatError> {
    if payload.is_empty() || payload.len() > MAX_PAYLOAD {
        return Err(FormatError::BadLength {
            what: "sealed record payload",
        });
    }
    let total = sealed_len(payload.len());
    let out = out.get_mut(..total).ok_or(FormatError::BufferTooSmall)?;
    let r = point(recipient, "record public key")?;
    let e: NonZeroScalar = Option::from(NonZeroScalar::from_repr((*ephemeral_secret).into()))
        .ok_or(FormatError::BadField {
            what: "ephemeral secret",
        })?;
    let ephemeral = xy(&PublicKey::from_secret_scalar(&e).as_affine().clone());
    let shared = p256::ecdh::diffie_hellman(e, r.as_affine());
    let mut z = Zeroizing::new([0u8; 32]);
    z.copy_from_slice(shared.raw_secret_bytes());
    let okm = derive(&z, &ephemeral, recipient, kind);
    let h = Header {
        kind,
        ephemeral,
        payload_len: payload.len(),
    };
    let (head, rest) = out.split_at_mut(HEADER_LEN);
    h.write(head);
    let (ct, tag) = rest.split_at_mut(payload.len());
    ct.copy_from_slice(payload);
    let cipher = Aes256Gcm::new_from_slice(&okm[..32])
        .map_err(|_| FormatError::BadLength { what: "record key" })?;
    let nonce = Nonce::try_from(&okm[32..44]).map_err(|_| FormatError::BadLength {
        what: "record nonce",
    })?;
    let t = cipher
        .encrypt_inout_detached(&nonce, head, ct.into())
        .map_err(|_| FormatError::BadLength {
            what: "sealed record payload",
        })?;
    tag.copy_from_slice(&t);
    Ok(total)
}

/// Opens a sealed record in place given `Z` = x(`r*E`), computed by whoever
/// holds the record private key (an HSM), and the record public key `R`.
/// Returns the header and the plaintext (inside `sealed`).
pub fn open_with_shared<'a>(
    sealed: &'a mut [u8],
    shared_x: &[u8; 32],
    recipient: &[u8; 64],
) -> Result<(Header, &'a [u8]), FormatError> {
    let h = Header::parse(sealed)?;
    let okm = derive(shared_x, &h.ephemeral, recipient, h.kind);
    let (head, rest) = sealed.split_at_mut(HEADER_LEN);
    let (ct, tag) = rest.split_at_mut(h.payload_len);
    let cipher =
        Aes256Gcm::new_from_slice(&okm[..32]).map_err(|_| FormatError::AuthenticationFailed)?;
    let nonce = Nonce::try_from(&okm[32..44]).map_err(|_| FormatError::AuthenticationFailed)?;
    let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| FormatError::AuthenticationFailed)?;
    cipher
        .decrypt_inout_detached(&nonce, head, ct.into(), &tag)
        .map_err(|_| FormatError::AuthenticationFailed)?;
    Ok((h, &*ct))
}

/// `Z` = x(`secret * E`) for a record's ephemeral key: the OEM side's ECDH
/// step (what an HSM does with the record private key).
pub fn shared_secret(secret: &[u8; 32], ephemeral: &[u8; 64]) -> Result<[u8; 32], FormatError> {
    let e = point(ephemeral, "sealed record ephemeral key")?;
    let d: NonZeroScalar =
        Option::from(NonZeroScalar::from_repr((*secret).into())).ok_or(FormatError::BadField {
            what: "record private key",
        })?;
    let shared = p256::ecdh::diffie_hellman(d, e.as_affine());
    let mut z = [0u8; 32];
    z.copy_from_slice(shared.raw_secret_bytes());
    Ok(z)
}

/// The public key (x || y) of a P-256 private scalar.
pub fn public_key(secret: &[u8; 32]) -> Result<[u8; 64], FormatError> {
    let d: NonZeroScalar =
        Option::from(NonZeroScalar::from_repr((*secret).into())).ok_or(FormatError::BadField {
            what: "private key",
        })?;
    Ok(xy(PublicKey::from_secret_scalar(&d).as_affine()))
}

/// Opens with the record private key itself (file keys, tests).
pub fn open<'a>(
    sealed: &'a mut [u8],
    secret: &[u8; 32],
) -> Result<(Header, &'a [u8]), FormatError> {
    let h = Header::parse(sealed)?;
    let z = Zeroizing::new(shared_secret(secret, &h.ephemeral)?);
    let recipient = public_key(secret)?;
    open_with_shared(sealed, &z, &recipient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    const OEM_SECRET: [u8; 32] = [0x11; 32];
    const EPHEMERAL: [u8; 32] = [0x22; 32];

    fn sealed(payload: &[u8]) -> std::vec::Vec<u8> {
        let r = public_key(&OEM_SECRET).unwrap();
        let mut out = vec![0u8; sealed_len(payload.len())];
        let n = seal(&mut out, Kind::IdRecord, payload, &r, &EPHEMERAL).unwrap();
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn round_trip_and_opaque() {
        let payload = b"MFIR an ID record with its signature";
        let mut s = sealed(payload);
        assert!(!s.windows(4).any(|w| w == b"MFIR"), "plaintext visible");
        let (h, pt) = open(&mut s, &OEM_SECRET).unwrap();
        assert_eq!(h.kind, Kind::IdRecord);
        assert_eq!(h.payload_len, payload.len());
        assert_eq!(pt, payload);
    }

    #[test]
    fn only_the_record_key_opens_it() {
        let mut s = sealed(b"payload");
        assert_eq!(
            open(&mut s, &[0x33; 32]).unwrap_err(),
            FormatError::AuthenticationFailed
        );
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let good = sealed(b"0123456789abcdef");
        for i in 0..good.len() {
            let mut s = good.clone();
            s[i] ^= 0x01;
            assert!(
                open(&mut s, &OEM_SECRET).is_err(),
                "byte {i} changed, still opens"
            );
        }
    }

    #[test]
    fn fresh_ephemeral_keys_give_unrelated_records() {
        let r = public_key(&OEM_SECRET).unwrap();
        let mut a = vec![0u8; sealed_len(8)];
        let mut b = vec![0u8; sealed_len(8)];
        seal(&mut a, Kind::IdRecord, b"same msg", &r, &[0x44; 32]).unwrap();
        seal(&mut b, Kind::IdRecord, b"same msg", &r, &[0x45; 32]).unwrap();
        assert_ne!(a[8..72], b[8..72]);
        assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
    }

    #[test]
    fn refusals_are_specific() {
        let r = public_key(&OEM_SECRET).unwrap();
        let mut out = [0u8; 256];
        assert_eq!(
            seal(&mut out, Kind::IdRecord, b"x", &[0; 64], &EPHEMERAL),
            Err(FormatError::BadField {
                what: "record public key"
            })
        );
        assert_eq!(
            seal(&mut out, Kind::IdRecord, b"x", &r, &[0; 32]),
            Err(FormatError::BadField {
                what: "ephemeral secret"
            })
        );
        assert_eq!(
            seal(&mut out, Kind::IdRecord, &[], &r, &EPHEMERAL),
            Err(FormatError::BadLength {
                what: "sealed record payload"
            })
        );
        let mut s = sealed(b"payload");
        s.push(0);
        assert_eq!(
            Header::parse(&s),
            Err(FormatError::BadLength {
                what: "sealed record"
            })
        );
        s.truncate(20);
        assert!(matches!(
            Header::parse(&s),
            Err(FormatError::Truncated { .. })
        ));
        let mut s = sealed(b"payload");
        s[6] = 9;
        assert_eq!(
            Header::parse(&s),
            Err(FormatError::BadField {
                what: "sealed record kind"
            })
        );
    }
}
