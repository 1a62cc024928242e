//! The identity message the device signs with the CAAM MP key (sign-ID), and
//! the ID record that carries message, MPMR, message representative and
//! signature to the OEM. The record never leaves the device in clear: it is
//! sealed to the OEM record key ([`crate::sealed`]) before it is stored or
//! printed.
//!
//! The signature is ECDSA P-256 over SHA-256(MPMR || message bytes), with
//! c = r and d = s (32-byte big-endian each), as the CAAM MPSign produces.
//! Version 2 binds everything the identity vouches for: UID, SRK hash, the
//! security state read from the hardware, loader version, product, bundle
//! id and the SHA-256 of the sealed bundle, boot counter, and a nonce when
//! the station or server gave one.

use sha2::{Digest, Sha256};

use crate::rd::{Rd, Wr};
use crate::{FormatError, crc32, sealed};

/// Magic of an identity message.
pub const MESSAGE_MAGIC: [u8; 4] = *b"MFID";
/// Magic of an ID record.
pub const RECORD_MAGIC: [u8; 4] = *b"MFIR";
/// Version of both.
pub const VERSION: u16 = 2;
/// Identity message size.
pub const MESSAGE_LEN: usize = 184;
/// ID record size.
pub const RECORD_LEN: usize = 8 + MESSAGE_LEN + 4 * 32 + 4;
/// Width of the product field (as in the bundle header).
pub const PRODUCT_LEN: usize = 32;
/// Width of the nonce field.
pub const NONCE_LEN: usize = 32;
/// SoC code for the i.MX8M Plus.
pub const SOC_IMX8MP: u16 = 0x8a50;
/// Message flag: `bundle_id` is present.
pub const FLAG_BUNDLE_ID: u8 = 1;
/// Message flag: `station_nonce` is present.
pub const FLAG_STATION_NONCE: u8 = 2;
/// Width of the loader version string field.
pub const LOADER_VERSION_LEN: usize = 16;
/// Prefix of the console line that carries a sealed ID record in base64.
pub const CONSOLE_PREFIX: &str = "mfgprot-id: ";
/// Length of a sealed ID record.
pub const SEALED_LEN: usize = crate::sealed::sealed_len(RECORD_LEN);
/// Length of the base64 text of a sealed ID record.
pub const SEALED_BASE64_LEN: usize = crate::base64::encoded_len(SEALED_LEN);
/// Length of the whole console line (prefix + base64), without newline.
pub const CONSOLE_LINE_LEN: usize = CONSOLE_PREFIX.len() + SEALED_BASE64_LEN;

/// Security state of the part when it signed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SecurityState {
    /// Open (non-secure, fuses not closed): code 1.
    Open,
    /// Closed (trusted or secure): code 2.
    Closed,
    /// Security violation / fail state: code 3.
    Fail,
}

impl SecurityState {
    /// On-wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::Open => 1,
            Self::Closed => 2,
            Self::Fail => 3,
        }
    }
    /// Parses the code.
    pub fn from_code(c: u8) -> Result<Self, FormatError> {
        Ok(match c {
            1 => Self::Open,
            2 => Self::Closed,
            3 => Self::Fail,
            _ => {
                return Err(FormatError::BadField {
                    what: "security state",
                });
            }
        })
    }
    /// `open`, `closed` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Fail => "fail",
        }
    }
}

/// What sign-ID signs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IdentityMessage {
    /// SoC code ([`SOC_IMX8MP`]).
    pub soc: u16,
    /// 128-bit unique ID, big-endian (as the fuse file and `--uid` hex).
    pub uid: [u8; 16],
    /// SRK hash from fuse banks 6 and 7.
    pub srk_hash: [u8; 32],
    /// Security state.
    pub security_state: SecurityState,
    /// Boot counter (or 0).
    pub boot_counter: u32,
    /// Loader version, 1..=16 printable ASCII bytes, NUL-padded on the wire.
    pub loader_version: [u8; LOADER_VERSION_LEN],
    /// Product the loader provisions (1..=32 name bytes, NUL-padded).
    pub product: [u8; PRODUCT_LEN],
    /// Bundle being consumed, if any.
    pub bundle_id: Option<u64>,
    /// SHA-256 of that sealed bundle (zero without a bundle).
    pub bundle_digest: [u8; 32],
    /// Nonce given by the station or server, if any.
    pub station_nonce: Option<[u8; NONCE_LEN]>,
}

impl IdentityMessage {
    /// Sets the loader version from a string (truncated to 16 bytes).
    pub fn set_loader_version(&mut self, v: &str) {
        crate::put_padded(&mut self.loader_version, v.as_bytes());
    }
    /// Sets the product (truncated to 32 bytes).
    pub fn set_product(&mut self, p: &str) {
        crate::put_padded(&mut self.product, p.as_bytes());
    }
    /// The product as text.
    pub fn product_str(&self) -> &str {
        let n = self
            .product
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(PRODUCT_LEN);
        core::str::from_utf8(&self.product[..n]).unwrap_or("?")
    }
    /// The loader version as text.
    pub fn loader_version_str(&self) -> &str {
        let n = self
            .loader_version
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(LOADER_VERSION_LEN);
        core::str::from_utf8(&self.loader_version[..n]).unwrap_or("?")
    }

    /// Serialises the 184-byte message.
    pub fn to_bytes(&self) -> [u8; MESSAGE_LEN] {
        let mut b = [0u8; MESSAGE_LEN];
        let _ = self.write(&mut b);
        b
    }

    fn write(&self, b: &mut [u8]) -> Result<(), FormatError> {
        let mut w = Wr::new(b);
        w.put(&MESSAGE_MAGIC)?;
        w.u16(VERSION)?;
        w.u16(self.soc)?;
        w.put(&self.uid)?;
        w.put(&self.srk_hash)?;
        w.u8(self.security_state.code())?;
        let mut flags = 0;
        if self.bundle_id.is_some() {
            flags |= FLAG_BUNDLE_ID;
        }
        if self.station_nonce.is_some() {
            flags |= FLAG_STATION_NONCE;
        }
        w.u8(flags)?;
        w.u16(0)?;
        w.u32(self.boot_counter)?;
        w.put(&self.loader_version)?;
        w.put(&self.product)?;
        w.u64(self.bundle_id.unwrap_or(0))?;
        w.put(&self.bundle_digest)?;
        w.put(&self.station_nonce.unwrap_or([0; NONCE_LEN]))?;
        Ok(())
    }

    /// Parses and checks a 184-byte message (exactly; longer input is refused).
    pub fn parse(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() != MESSAGE_LEN {
            return Err(if b.len() < MESSAGE_LEN {
                FormatError::Truncated {
                    what: "identity message",
                }
            } else {
                FormatError::BadLength {
                    what: "identity message",
                }
            });
        }
        let mut r = Rd::new(b, "identity message");
        r.magic_version(&MESSAGE_MAGIC, VERSION)?;
        let soc = r.u16()?;
        if soc != SOC_IMX8MP {
            return Err(FormatError::BadField {
                what: "identity SoC",
            });
        }
        let uid = r.arr()?;
        let srk_hash = r.arr()?;
        let security_state = SecurityState::from_code(r.u8()?)?;
        let flags = r.u8()?;
        if flags & !(FLAG_BUNDLE_ID | FLAG_STATION_NONCE) != 0 || r.u16()? != 0 {
            return Err(FormatError::BadField {
                what: "identity flags",
            });
        }
        let boot_counter = r.u32()?;
        let loader_version: [u8; LOADER_VERSION_LEN] = r.arr()?;
        let n = loader_version
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(LOADER_VERSION_LEN);
        if n == 0
            || !loader_version[..n].iter().all(|c| c.is_ascii_graphic())
            || loader_version[n..].iter().any(|&c| c != 0)
        {
            return Err(FormatError::BadField {
                what: "identity loader version",
            });
        }
        let product: [u8; PRODUCT_LEN] = r.arr()?;
        let n = product.iter().position(|&c| c == 0).unwrap_or(PRODUCT_LEN);
        if n == 0
            || !product[..n]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
            || product[n..].iter().any(|&c| c != 0)
        {
            return Err(FormatError::BadField {
                what: "identity product",
            });
        }
        let bundle_id = r.u64()?;
        let bundle_digest: [u8; 32] = r.arr()?;
        let nonce: [u8; NONCE_LEN] = r.arr()?;
        let bundle_id = if flags & FLAG_BUNDLE_ID != 0 {
            Some(bundle_id)
        } else if bundle_id != 0 || bundle_digest != [0; 32] {
            return Err(FormatError::BadField {
                what: "identity bundle id",
            });
        } else {
            None
        };
        #[cfg(test)]
        crate::reach::hit(crate::reach::IDENTITY);
        let station_nonce = if flags & FLAG_STATION_NONCE != 0 {
            Some(nonce)
        } else if nonce != [0; NONCE_LEN] {
            return Err(FormatError::BadField {
                what: "identity station nonce",
            });
        } else {
            None
        };
        Ok(Self {
            soc,
            uid,
            srk_hash,
            security_state,
            boot_counter,
            loader_version,
            product,
            bundle_id,
            bundle_digest,
            station_nonce,
        })
    }
}

/// The signed identity as stored on eMMC and sent to the OEM.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IdRecord {
    /// The signed message (its bytes are `message.to_bytes()`).
    pub message: IdentityMessage,
    /// The MPMR content at signing time (b[0..31] in hash order).
    pub mpmr: [u8; 32],
    /// The CAAM's message representative: SHA-256(MPMR || message).
    pub mes_rep: [u8; 32],
    /// Signature r, big-endian.
    pub c: [u8; 32],
    /// Signature s, big-endian.
    pub d: [u8; 32],
}

impl IdRecord {
    /// The bytes the CAAM hashes and signs: MPMR || message.
    pub fn signed_bytes(&self) -> [u8; 32 + MESSAGE_LEN] {
        let mut b = [0u8; 32 + MESSAGE_LEN];
        b[..32].copy_from_slice(&self.mpmr);
        b[32..].copy_from_slice(&self.message.to_bytes());
        b
    }

    /// SHA-256(MPMR || message): what `mes_rep` must equal.
    pub fn digest(&self) -> [u8; 32] {
        let d = Sha256::digest(self.signed_bytes());
        let mut o = [0u8; 32];
        o.copy_from_slice(&d);
        o
    }

    /// Serialises the record: magic, version, message length, message,
    /// MPMR, message representative, c, d, CRC-32 of what precedes.
    pub fn to_bytes(&self) -> [u8; RECORD_LEN] {
        const M: usize = 8 + MESSAGE_LEN;
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&RECORD_MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&(MESSAGE_LEN as u16).to_le_bytes());
        b[8..M].copy_from_slice(&self.message.to_bytes());
        b[M..M + 32].copy_from_slice(&self.mpmr);
        b[M + 32..M + 64].copy_from_slice(&self.mes_rep);
        b[M + 64..M + 96].copy_from_slice(&self.c);
        b[M + 96..M + 128].copy_from_slice(&self.d);
        let crc = crc32(&b[..RECORD_LEN - 4]);
        b[RECORD_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses a record (exactly [`RECORD_LEN`] bytes, as a sealed record
    /// holds it). Does not verify the signature.
    pub fn parse(b: &[u8]) -> Result<Self, FormatError> {
        let mut r = Rd::new(b, "ID record");
        r.magic_version(&RECORD_MAGIC, VERSION)?;
        if usize::from(r.u16()?) != MESSAGE_LEN {
            return Err(FormatError::BadLength {
                what: "ID record message length",
            });
        }
        if b.len() != RECORD_LEN {
            return Err(if b.len() < RECORD_LEN {
                FormatError::Truncated { what: "ID record" }
            } else {
                FormatError::BadLength { what: "ID record" }
            });
        }
        let (body, crc) = b.split_at(RECORD_LEN - 4);
        if crc32(body).to_le_bytes() != crc {
            return Err(FormatError::BadCrc { what: "ID record" });
        }
        let message = IdentityMessage::parse(r.take(MESSAGE_LEN)?)?;
        Ok(Self {
            message,
            mpmr: r.arr()?,
            mes_rep: r.arr()?,
            c: r.arr()?,
            d: r.arr()?,
        })
    }

    /// Seals the record to the OEM record key (`recipient`, x || y) with a
    /// fresh `ephemeral_secret`: the only form the device stores or prints.
    pub fn seal(
        &self,
        recipient: &[u8; 64],
        ephemeral_secret: &[u8; 32],
    ) -> Result<[u8; SEALED_LEN], FormatError> {
        let mut out = [0u8; SEALED_LEN];
        sealed::seal(
            &mut out,
            sealed::Kind::IdRecord,
            &self.to_bytes(),
            recipient,
            ephemeral_secret,
        )?;
        Ok(out)
    }

    /// Opens a sealed ID record with the record private key.
    pub fn open(sealed_record: &[u8], record_secret: &[u8; 32]) -> Result<Self, FormatError> {
        let mut b = [0u8; SEALED_LEN];
        let src = sealed_record
            .get(..SEALED_LEN)
            .ok_or(FormatError::Truncated {
                what: "sealed record",
            })?;
        b.copy_from_slice(src);
        let (h, pt) = sealed::open(&mut b, record_secret)?;
        if h.kind != sealed::Kind::IdRecord {
            return Err(FormatError::BadField {
                what: "sealed record kind",
            });
        }
        Self::parse(pt)
    }
}

/// A sealed ID record in a 512-byte eMMC block (rest zero), as stored in an
/// ID slot of the provisioning area.
pub fn sealed_block(sealed_record: &[u8; SEALED_LEN]) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..SEALED_LEN].copy_from_slice(sealed_record);
    b
}

/// The sealed record in an ID slot block, if the block holds one (its
/// header parses); what it says is only known to the record key's holder.
pub fn sealed_from_block(b: &[u8]) -> Result<[u8; SEALED_LEN], FormatError> {
    let s = b.get(..SEALED_LEN).ok_or(FormatError::Truncated {
        what: "sealed record",
    })?;
    let h = sealed::Header::parse(s)?;
    if h.kind != sealed::Kind::IdRecord {
        return Err(FormatError::BadField {
            what: "sealed record kind",
        });
    }
    let mut o = [0u8; SEALED_LEN];
    o.copy_from_slice(s);
    Ok(o)
}

/// Writes the console line `mfgprot-id: <base64 of the sealed record>` (no
/// newline) into `out`; returns its length.
pub fn console_line(
    sealed_record: &[u8; SEALED_LEN],
    out: &mut [u8],
) -> Result<usize, FormatError> {
    let p = CONSOLE_PREFIX.len();
    let out = out
        .get_mut(..CONSOLE_LINE_LEN)
        .ok_or(FormatError::BufferTooSmall)?;
    out[..p].copy_from_slice(CONSOLE_PREFIX.as_bytes());
    crate::base64::encode(sealed_record, &mut out[p..])?;
    Ok(CONSOLE_LINE_LEN)
}

/// The sealed record of a console line (surrounding whitespace allowed).
pub fn sealed_from_console_line(line: &[u8]) -> Result<[u8; SEALED_LEN], FormatError> {
    let line = line.trim_ascii();
    let b64 = line
        .strip_prefix(CONSOLE_PREFIX.as_bytes())
        .ok_or(FormatError::BadMagic {
            what: "ID record console line",
        })?;
    let mut raw = [0u8; SEALED_LEN];
    let n = crate::base64::decode(b64, &mut raw)?;
    if n != SEALED_LEN {
        return Err(FormatError::BadLength {
            what: "ID record console line",
        });
    }
    sealed::Header::parse(&raw)?;
    Ok(raw)
}
