//! The sealed bundle: what the OEM's build server makes from the product
//! secrets and the CM flashes into the `mfg-bundle` partition.
//!
//! ```text
//! header (128 bytes, the AES-GCM AAD) | ciphertext (len bytes) | tag (16)
//! ```
//!
//! Key = HKDF-SHA256(IKM = MP public key X||Y (64 bytes), salt = header salt,
//! info = label || product id || format version as u16 LE), 32 bytes, used as
//! the AES-256-GCM key with the header's 12-byte nonce.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::rd::{Rd, Wr};
use crate::{FormatError, check_name, padded_name};

/// Magic at offset 0 of a sealed bundle.
pub const MAGIC: [u8; 8] = *b"MFGBUNDL";
/// The bundle format version this crate reads and writes.
pub const VERSION: u16 = 1;
/// Size of the bundle header (also the AAD).
pub const HEADER_LEN: usize = 128;
/// AES-GCM nonce size.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag size.
pub const TAG_LEN: usize = 16;
/// HKDF salt size.
pub const SALT_LEN: usize = 32;
/// Width of the product id field; a product id is 1..=32 name bytes.
pub const MAX_PRODUCT_LEN: usize = 32;
/// Width of the KDF label field; a label is 1..=24 name bytes.
pub const MAX_LABEL_LEN: usize = 24;
/// The label `mfgtool` uses.
pub const DEFAULT_LABEL: &str = "mfgprot-bundle";
/// At most this many secrets in a bundle.
pub const MAX_SECRETS: usize = 64;
/// A secret name is 1..=32 bytes of `[A-Za-z0-9._-]`.
pub const MAX_NAME_LEN: usize = 32;
/// A secret is 1..=65536 bytes.
pub const MAX_SECRET_LEN: usize = 64 * 1024;
/// The plaintext (secret list) is at most 4 MiB + 8 KiB.
pub const MAX_PLAINTEXT_LEN: usize = 4 * 1024 * 1024 + 8 * 1024;
/// Largest sealed bundle.
pub const MAX_BUNDLE_LEN: usize = HEADER_LEN + MAX_PLAINTEXT_LEN + TAG_LEN;
/// Magic of the plaintext secret list.
pub const LIST_MAGIC: [u8; 4] = *b"SECL";
/// Size of the secret list header.
pub const LIST_HEADER_LEN: usize = 8;
/// Size of one secret entry before its data.
pub const ENTRY_HEADER_LEN: usize = 56;
/// Entry flag: the key modifier was given explicitly (else it is derived from
/// the name and the parser checks that it is).
pub const FLAG_KM_GIVEN: u8 = 1;
/// Entry flag: the key modifier is shorter than 16 bytes; the byte after the
/// flags holds its length (1..=15). Only with [`FLAG_KM_GIVEN`]. A reader
/// that predates it refuses the entry (unknown flag bit).
pub const FLAG_KM_SHORT: u8 = 2;
/// Domain-separation prefix of the derived key modifier.
pub const KM_DERIVATION_PREFIX: &[u8] = b"mfgprot key modifier v1\0";

/// What kind of secret an entry holds (the loader treats all alike; Linux
/// uses it to know how to load the blob's content).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SecretType {
    /// A raw symmetric key or other raw bytes (code 1).
    Raw,
    /// A DER certificate or key (code 2).
    Der,
    /// A PEM certificate or key (code 3).
    Pem,
    /// Opaque application data (code 4).
    Opaque,
}

impl SecretType {
    /// The on-wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::Raw => 1,
            Self::Der => 2,
            Self::Pem => 3,
            Self::Opaque => 4,
        }
    }
    /// Parses an on-wire code.
    pub fn from_code(c: u8) -> Result<Self, FormatError> {
        Ok(match c {
            1 => Self::Raw,
            2 => Self::Der,
            3 => Self::Pem,
            4 => Self::Opaque,
            _ => {
                return Err(FormatError::BadField {
                    what: "secret type",
                });
            }
        })
    }
    /// The manifest/console name: `raw`, `der`, `pem`, `opaque`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Der => "der",
            Self::Pem => "pem",
            Self::Opaque => "opaque",
        }
    }
    /// Parses the manifest name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "raw" => Self::Raw,
            "der" => Self::Der,
            "pem" => Self::Pem,
            "opaque" => Self::Opaque,
            _ => return None,
        })
    }
}

/// A CAAM blob key modifier: 1..=16 bytes. The KEY command that loads it
/// carries its length, so a short one is not its zero padding to 16 bytes
/// (Linux `blob_gen.c`: at most `CAAM_BLOB_KEYMOD_LENGTH` = 16 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KeyModifier {
    /// The bytes, zero after `len`.
    field: [u8; KeyModifier::MAX_LEN],
    len: u8,
}

impl KeyModifier {
    /// Longest key modifier.
    pub const MAX_LEN: usize = 16;

    /// The key modifier Linux trusted keys use with `trusted.source=caam`:
    /// the 10 bytes `SECURE_KEY` (`security/keys/trusted-keys/trusted_caam.c`,
    /// `KEYMOD`, its length without the NUL).
    pub const LINUX_TRUSTED: Self = Self::from_const(b"SECURE_KEY");

    const fn from_const<const N: usize>(b: &[u8; N]) -> Self {
        assert!(N >= 1 && N <= Self::MAX_LEN);
        let mut field = [0u8; Self::MAX_LEN];
        let mut i = 0;
        while i < N {
            field[i] = b[i];
            i += 1;
        }
        Self {
            field,
            len: N as u8,
        }
    }

    /// A key modifier of 1..=16 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, FormatError> {
        if !(1..=Self::MAX_LEN).contains(&bytes.len()) {
            return Err(FormatError::BadLength {
                what: "key modifier",
            });
        }
        let mut field = [0u8; Self::MAX_LEN];
        field[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            field,
            len: bytes.len() as u8,
        })
    }

    /// A 16-byte key modifier.
    pub const fn full(field: [u8; Self::MAX_LEN]) -> Self {
        Self {
            field,
            len: Self::MAX_LEN as u8,
        }
    }

    /// The key modifier derived from a secret's name ([`derive_key_modifier`]).
    pub fn derived(name: &[u8]) -> Self {
        Self::full(derive_key_modifier(name))
    }

    /// Its bytes (1..=16), as the CAAM's KEY command loads them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.field[..usize::from(self.len)]
    }

    /// The 16-byte field of an entry: the bytes, then zeros.
    pub(crate) fn field(&self) -> &[u8; Self::MAX_LEN] {
        &self.field
    }

    fn is_short(&self) -> bool {
        usize::from(self.len) < Self::MAX_LEN
    }

    /// The entry's flags byte for this key modifier.
    pub(crate) fn flags(&self, given: bool) -> u8 {
        let short = if self.is_short() { FLAG_KM_SHORT } else { 0 };
        short | if given { FLAG_KM_GIVEN } else { 0 }
    }

    /// The entry's length byte: the length of a short key modifier, else 0.
    pub(crate) fn len_byte(&self) -> u8 {
        if self.is_short() { self.len } else { 0 }
    }

    /// Reads an entry's key modifier from its flags byte (other bits already
    /// checked), length byte and 16-byte field: without [`FLAG_KM_SHORT`]
    /// the length byte is 0 and all 16 bytes count; with it (and
    /// [`FLAG_KM_GIVEN`]) the length is 1..=15 and the rest of the field
    /// zero. Anything else is `BadField { what }`.
    pub(crate) fn decode(
        flags: u8,
        len_byte: u8,
        field: [u8; Self::MAX_LEN],
        what: &'static str,
    ) -> Result<Self, FormatError> {
        let bad = FormatError::BadField { what };
        if flags & FLAG_KM_SHORT == 0 {
            return if len_byte == 0 {
                Ok(Self::full(field))
            } else {
                Err(bad)
            };
        }
        let n = usize::from(len_byte);
        if flags & FLAG_KM_GIVEN == 0
            || !(1..Self::MAX_LEN).contains(&n)
            || field[n..].iter().any(|&b| b != 0)
        {
            return Err(bad);
        }
        Ok(Self {
            field,
            len: len_byte,
        })
    }
}

impl From<[u8; KeyModifier::MAX_LEN]> for KeyModifier {
    fn from(field: [u8; KeyModifier::MAX_LEN]) -> Self {
        Self::full(field)
    }
}

/// Payload lengths Linux's trusted keys take, in bytes: `MIN_KEY_SIZE` to
/// `MAX_KEY_SIZE` of `include/keys/trusted-type.h`
/// (`Documentation/security/keys/trusted-encrypted.rst`: "Trusted Keys can
/// be 32 - 128 bytes"); `caam_decap_blob` refuses a blob whose payload does
/// not fit the 128-byte key (`include/soc/fsl/caam-blob.h`).
pub const LINUX_TRUSTED_KEY_LEN: core::ops::RangeInclusive<usize> = 32..=128;

/// The key modifier derived from a secret's name when none is given:
/// the first 16 bytes of SHA-256(`"mfgprot key modifier v1\0"` || name).
pub fn derive_key_modifier(name: &[u8]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(KM_DERIVATION_PREFIX);
    h.update(name);
    let d = h.finalize();
    let mut km = [0u8; 16];
    km.copy_from_slice(&d[..16]);
    km
}

/// The parsed bundle header (public data: it is the AAD, not encrypted).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BundleHeader {
    product: [u8; MAX_PRODUCT_LEN],
    product_len: usize,
    /// Bundle id chosen by the OEM (goes into the identity message).
    pub bundle_id: u64,
    /// HKDF salt.
    pub salt: [u8; SALT_LEN],
    label: [u8; MAX_LABEL_LEN],
    label_len: usize,
    /// AES-GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext length (= plaintext length).
    pub ciphertext_len: usize,
}

impl BundleHeader {
    /// Parses and checks the 128-byte header at the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Self, FormatError> {
        let mut r = Rd::new(b, "bundle header");
        r.magic_version(&MAGIC, VERSION)?;
        if usize::from(r.u16()?) != HEADER_LEN {
            return Err(FormatError::BadLength {
                what: "bundle header length",
            });
        }
        if r.u32()? != 0 {
            return Err(FormatError::BadField {
                what: "bundle flags",
            });
        }
        let product_field = r.take(MAX_PRODUCT_LEN)?;
        let product = padded_name(product_field, "bundle product id")?;
        let bundle_id = r.u64()?;
        let salt = r.arr()?;
        let label_field = r.take(MAX_LABEL_LEN)?;
        let label = padded_name(label_field, "bundle KDF label")?;
        let nonce = r.arr()?;
        let ct = usize::try_from(r.u32()?).map_err(|_| FormatError::BadLength {
            what: "bundle ciphertext length",
        })?;
        if !(LIST_HEADER_LEN..=MAX_PLAINTEXT_LEN).contains(&ct) {
            return Err(FormatError::BadLength {
                what: "bundle ciphertext length",
            });
        }
        let mut h = Self {
            product: [0; MAX_PRODUCT_LEN],
            product_len: product.len(),
            bundle_id,
            salt,
            label: [0; MAX_LABEL_LEN],
            label_len: label.len(),
            nonce,
            ciphertext_len: ct,
        };
        h.product[..product.len()].copy_from_slice(product.as_bytes());
        h.label[..label.len()].copy_from_slice(label.as_bytes());
        Ok(h)
    }

    /// The product id (validated ASCII).
    pub fn product(&self) -> &str {
        core::str::from_utf8(&self.product[..self.product_len]).unwrap_or("")
    }

    /// The KDF label (validated ASCII).
    pub fn label(&self) -> &str {
        core::str::from_utf8(&self.label[..self.label_len]).unwrap_or("")
    }

    /// Total sealed length: header + ciphertext + tag.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.ciphertext_len + TAG_LEN
    }

    fn write(&self, out: &mut [u8]) -> Result<(), FormatError> {
        let mut w = Wr::new(out);
        w.put(&MAGIC)?;
        w.u16(VERSION)?;
        w.u16(HEADER_LEN as u16)?;
        w.u32(0)?;
        w.padded(self.product().as_bytes(), MAX_PRODUCT_LEN)?;
        w.u64(self.bundle_id)?;
        w.put(&self.salt)?;
        w.padded(self.label().as_bytes(), MAX_LABEL_LEN)?;
        w.put(&self.nonce)?;
        let ct = u32::try_from(self.ciphertext_len).map_err(|_| FormatError::BadLength {
            what: "bundle ciphertext length",
        })?;
        w.u32(ct)
    }
}

/// Derives the 32-byte bundle key. The caller holds it in a zeroizing box.
pub fn derive_bundle_key(mp_pubkey: &[u8; 64], header: &BundleHeader) -> Zeroizing<[u8; 32]> {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(&header.salt), mp_pubkey);
    let mut key = Zeroizing::new([0u8; 32]);
    let version = VERSION.to_le_bytes();
    let info: [&[u8]; 3] = [
        header.label().as_bytes(),
        header.product().as_bytes(),
        &version,
    ];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit: cannot fail.
    let _ = hk.expand_multi_info(&info, key.as_mut_slice());
    key
}

/// One secret inside an opened bundle.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Secret<'a> {
    /// Name (1..=32 bytes of `[A-Za-z0-9._-]`).
    pub name: &'a str,
    /// Type.
    pub kind: SecretType,
    /// The CAAM key modifier for its blob (1..=16 bytes).
    pub key_modifier: KeyModifier,
    /// True when the OEM gave the key modifier; false when derived from the name.
    pub key_modifier_given: bool,
    /// The secret bytes (plaintext: never print them).
    pub data: &'a [u8],
}

/// Parses one entry at the start of `b`; returns it and the bytes it used.
fn parse_entry(b: &[u8]) -> Result<(Secret<'_>, usize), FormatError> {
    let mut r = Rd::new(b, "bundle secret entry");
    let name = padded_name(r.take(MAX_NAME_LEN)?, "secret name")?;
    let kind = SecretType::from_code(r.u8()?)?;
    let flags = r.u8()?;
    let km_len = r.u8()?;
    if flags & !(FLAG_KM_GIVEN | FLAG_KM_SHORT) != 0 || r.u8()? != 0 {
        return Err(FormatError::BadField {
            what: "secret flags",
        });
    }
    let len = usize::try_from(r.u32()?).map_err(|_| FormatError::BadLength {
        what: "secret length",
    })?;
    if !(1..=MAX_SECRET_LEN).contains(&len) {
        return Err(FormatError::BadLength {
            what: "secret length",
        });
    }
    let key_modifier = KeyModifier::decode(flags, km_len, r.arr()?, "secret key modifier")?;
    let given = flags & FLAG_KM_GIVEN != 0;
    if !given && key_modifier != KeyModifier::derived(name.as_bytes()) {
        return Err(FormatError::BadField {
            what: "derived key modifier",
        });
    }
    let data = r.take(len)?;
    Ok((
        Secret {
            name,
            kind,
            key_modifier,
            key_modifier_given: given,
            data,
        },
        r.pos(),
    ))
}

/// Validates a whole decrypted secret list; returns the count.
pub fn check_secret_list(pt: &[u8]) -> Result<usize, FormatError> {
    let mut r = Rd::new(pt, "bundle secret list");
    if r.take(4)? != LIST_MAGIC {
        return Err(FormatError::BadMagic {
            what: "bundle secret list",
        });
    }
    let v = r.u16()?;
    if v != VERSION {
        return Err(FormatError::UnsupportedVersion {
            what: "bundle secret list",
            version: v,
        });
    }
    let count = usize::from(r.u16()?);
    if !(1..=MAX_SECRETS).contains(&count) {
        return Err(FormatError::BadLength {
            what: "secret count",
        });
    }
    let mut rest = pt.get(LIST_HEADER_LEN..).unwrap_or(&[]);
    let mut names: [&str; MAX_SECRETS] = [""; MAX_SECRETS];
    for i in 0..count {
        let (s, used) = parse_entry(rest)?;
        if names[..i].contains(&s.name) {
            return Err(FormatError::DuplicateName);
        }
        names[i] = s.name;
        rest = rest.get(used..).unwrap_or(&[]);
    }
    #[cfg(test)]
    crate::reach::hit(crate::reach::SECRET_LIST);
    if !rest.is_empty() {
        return Err(FormatError::BadLength {
            what: "bundle secret list (trailing bytes)",
        });
    }
    Ok(count)
}

/// An authenticated, decrypted bundle, decrypted in the caller's buffer. The
/// plaintext is zeroized when the view is dropped.
pub struct BundleView<'a> {
    header: BundleHeader,
    plaintext: &'a mut [u8],
    count: usize,
}

impl core::fmt::Debug for BundleView<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BundleView")
            .field("header", &self.header)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl<'a> BundleView<'a> {
    /// The (public) header.
    pub fn header(&self) -> &BundleHeader {
        &self.header
    }
    /// Number of secrets (1..=64).
    pub fn len(&self) -> usize {
        self.count
    }
    /// Never true: a bundle holds at least one secret.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Iterates the secrets in bundle order.
    pub fn secrets(&self) -> SecretIter<'_> {
        SecretIter {
            rest: self.plaintext.get(LIST_HEADER_LEN..).unwrap_or(&[]),
            left: self.count,
        }
    }
}

impl Drop for BundleView<'_> {
    fn drop(&mut self) {
        self.plaintext.zeroize();
    }
}

/// Iterator over the secrets of a [`BundleView`].
pub struct SecretIter<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for SecretIter<'a> {
    type Item = Secret<'a>;
    fn next(&mut self) -> Option<Secret<'a>> {
        if self.left == 0 {
            return None;
        }
        // The list was validated when the view was made: this cannot fail.
        let (s, used) = parse_entry(self.rest).ok()?;
        self.rest = self.rest.get(used..).unwrap_or(&[]);
        self.left -= 1;
        Some(s)
    }
}

/// Authenticates and decrypts a sealed bundle in place.
///
/// `buf` starts with the bundle; bytes after [`BundleHeader::total_len`] are
/// ignored. The derived key is zeroized before returning. On any failure
/// after decryption the plaintext is zeroized. A wrong key, another product's
/// bundle or any changed byte gives [`FormatError::AuthenticationFailed`].
pub fn open_in_place<'a>(
    buf: &'a mut [u8],
    mp_pubkey: &[u8; 64],
) -> Result<BundleView<'a>, FormatError> {
    let header = BundleHeader::parse(buf)?;
    let total = header.total_len();
    let bundle = buf
        .get_mut(..total)
        .ok_or(FormatError::Truncated { what: "bundle" })?;
    let (aad, rest) = bundle.split_at_mut(HEADER_LEN);
    let (ct, tag) = rest.split_at_mut(header.ciphertext_len);
    let tag = Tag::try_from(&*tag).map_err(|_| FormatError::Truncated { what: "bundle" })?;
    let key = derive_bundle_key(mp_pubkey, &header);
    let cipher = Aes256Gcm::new_from_slice(key.as_slice())
        .map_err(|_| FormatError::BadLength { what: "bundle key" })?;
    let nonce = Nonce::from(header.nonce);
    cipher
        .decrypt_inout_detached(&nonce, aad, ct.into(), &tag)
        .map_err(|_| FormatError::AuthenticationFailed)?;
    drop(cipher);
    drop(key);
    match check_secret_list(ct) {
        Ok(count) => Ok(BundleView {
            header,
            plaintext: ct,
            count,
        }),
        Err(e) => {
            ct.zeroize();
            Err(e)
        }
    }
}

/// Like [`open_in_place`], but first refuses (before any key derivation or
/// decryption) a bundle whose header names another product than `product`.
pub fn open_for_product<'a>(
    buf: &'a mut [u8],
    mp_pubkey: &[u8; 64],
    product: &str,
) -> Result<BundleView<'a>, FormatError> {
    if BundleHeader::parse(buf)?.product() != product {
        return Err(FormatError::WrongProduct);
    }
    open_in_place(buf, mp_pubkey)
}

/// One secret to seal.
#[derive(Clone, Copy, Debug)]
pub struct SecretSpec<'a> {
    /// Name.
    pub name: &'a str,
    /// Type.
    pub kind: SecretType,
    /// Key modifier, or `None` to derive it from the name.
    pub key_modifier: Option<KeyModifier>,
    /// Secret bytes.
    pub data: &'a [u8],
}

/// Public parameters of a bundle to seal.
#[derive(Clone, Copy, Debug)]
pub struct SealParams<'a> {
    /// Product id (1..=32 name bytes).
    pub product: &'a str,
    /// Bundle id.
    pub bundle_id: u64,
    /// KDF label (1..=24 name bytes), normally [`DEFAULT_LABEL`].
    pub label: &'a str,
    /// Fresh random salt.
    pub salt: [u8; SALT_LEN],
    /// Fresh random nonce (never reuse one with the same key).
    pub nonce: [u8; NONCE_LEN],
}

/// Plaintext length of a secret list, after checking every limit.
pub fn plaintext_len(secrets: &[SecretSpec<'_>]) -> Result<usize, FormatError> {
    if !(1..=MAX_SECRETS).contains(&secrets.len()) {
        return Err(FormatError::BadLength {
            what: "secret count",
        });
    }
    let mut n = LIST_HEADER_LEN;
    for (i, s) in secrets.iter().enumerate() {
        check_name(s.name.as_bytes(), MAX_NAME_LEN, "secret name")?;
        if !(1..=MAX_SECRET_LEN).contains(&s.data.len()) {
            return Err(FormatError::BadLength {
                what: "secret length",
            });
        }
        if secrets[..i].iter().any(|o| o.name == s.name) {
            return Err(FormatError::DuplicateName);
        }
        n += ENTRY_HEADER_LEN + s.data.len();
    }
    if n > MAX_PLAINTEXT_LEN {
        return Err(FormatError::BadLength {
            what: "bundle plaintext",
        });
    }
    Ok(n)
}

/// Writes the plaintext secret list (what gets encrypted) into `out`;
/// returns its length. Checks every limit first.
pub fn write_secret_list(out: &mut [u8], secrets: &[SecretSpec<'_>]) -> Result<usize, FormatError> {
    let len = plaintext_len(secrets)?;
    let out = out.get_mut(..len).ok_or(FormatError::BufferTooSmall)?;
    let mut w = Wr::new(out);
    w.put(&LIST_MAGIC)?;
    w.u16(VERSION)?;
    w.u16(
        u16::try_from(secrets.len()).map_err(|_| FormatError::BadLength {
            what: "secret count",
        })?,
    )?;
    for s in secrets {
        let km = s
            .key_modifier
            .unwrap_or_else(|| KeyModifier::derived(s.name.as_bytes()));
        w.padded(s.name.as_bytes(), MAX_NAME_LEN)?;
        w.u8(s.kind.code())?;
        w.u8(km.flags(s.key_modifier.is_some()))?;
        w.u8(km.len_byte())?;
        w.u8(0)?;
        w.u32(
            u32::try_from(s.data.len()).map_err(|_| FormatError::BadLength {
                what: "secret length",
            })?,
        )?;
        w.put(km.field())?;
        w.put(s.data)?;
    }
    Ok(len)
}

/// Length of the sealed bundle for these secrets.
pub fn sealed_len(secrets: &[SecretSpec<'_>]) -> Result<usize, FormatError> {
    Ok(HEADER_LEN + plaintext_len(secrets)? + TAG_LEN)
}

/// Seals `secrets` into `out` (at least [`sealed_len`] bytes); returns the
/// length written. The plaintext only ever exists inside `out` and is
/// encrypted in place there.
pub fn seal(
    out: &mut [u8],
    params: &SealParams<'_>,
    secrets: &[SecretSpec<'_>],
    mp_pubkey: &[u8; 64],
) -> Result<usize, FormatError> {
    check_name(
        params.product.as_bytes(),
        MAX_PRODUCT_LEN,
        "bundle product id",
    )?;
    check_name(params.label.as_bytes(), MAX_LABEL_LEN, "bundle KDF label")?;
    let pt_len = plaintext_len(secrets)?;
    let total = HEADER_LEN + pt_len + TAG_LEN;
    let out = out.get_mut(..total).ok_or(FormatError::BufferTooSmall)?;
    let mut header = BundleHeader {
        product: [0; MAX_PRODUCT_LEN],
        product_len: params.product.len(),
        bundle_id: params.bundle_id,
        salt: params.salt,
        label: [0; MAX_LABEL_LEN],
        label_len: params.label.len(),
        nonce: params.nonce,
        ciphertext_len: pt_len,
    };
    header.product[..params.product.len()].copy_from_slice(params.product.as_bytes());
    header.label[..params.label.len()].copy_from_slice(params.label.as_bytes());
    let (aad, rest) = out.split_at_mut(HEADER_LEN);
    header.write(aad)?;
    let (pt, tag_out) = rest.split_at_mut(pt_len);
    write_secret_list(pt, secrets)?;
    let key = derive_bundle_key(mp_pubkey, &header);
    let cipher = Aes256Gcm::new_from_slice(key.as_slice())
        .map_err(|_| FormatError::BadLength { what: "bundle key" })?;
    let nonce = Nonce::from(header.nonce);
    let tag = cipher
        .encrypt_inout_detached(&nonce, aad, pt.into())
        .map_err(|_| FormatError::BadLength {
            what: "bundle plaintext",
        })?;
    tag_out.copy_from_slice(&tag);
    Ok(total)
}
