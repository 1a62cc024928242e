//! The OEM key set (`mfgtool keys new`) and console unlock tokens
//! (`mfgtool unlock-token`).
//!
//! A key set is a directory:
//! - `keyset.toml`: `format = 1`, `kind = "development" | "production"`,
//!   `oem = "NAME"`. Written last: a directory without it is not a key set.
//! - for each of `record`, `authority`, `boot`: `NAME.pem`, the P-256
//!   private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, mode 0600),
//!   and `NAME.pub`, one line: lowercase hex of the 64-byte uncompressed
//!   public key X || Y (what the loader build takes as
//!   `MFG_<NAME>_PUBKEY`).
//!
//! `boot.pem` is what U-Boot's `mkimage -k DIR` loads for a configuration
//! with `key-name-hint = "boot"` (`tools/ecdsa-libcrypto.c` reads
//! `<keydir>/<hint>.pem` with OpenSSL's `PEM_read_PrivateKey`, which takes
//! PKCS#8).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use mfg_formats::unlock::{self, Challenge, Token};
use p256::ecdsa::{Signature, SigningKey, signature::Signer};
use zeroize::Zeroizing;

use crate::error::{Fail, Result, exit};

/// The three keys of a set, in file-name order.
pub const KEY_NAMES: [&str; 3] = ["record", "authority", "boot"];
/// The key set's description file.
pub const KEYSET_FILE: &str = "keyset.toml";

/// DER of a P-256 PKCS#8 PrivateKeyInfo up to the private scalar:
/// SEQUENCE { INTEGER 0, SEQUENCE { id-ecPublicKey, prime256v1 },
/// OCTET STRING { ECPrivateKey: SEQUENCE { INTEGER 1, OCTET STRING(32) ...
const PKCS8_HEAD: [u8; 36] = [
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02,
    0x01, 0x01, 0x04, 0x20,
];
/// ... then `[1] BIT STRING (0 unused bits) 04 || X || Y`.
const PKCS8_PUB: [u8; 7] = [0xa1, 0x44, 0x03, 0x42, 0x00, 0x04, 0x00];
/// Length of the whole DER.
const PKCS8_LEN: usize = 36 + 32 + 6 + 64;

/// Development or production.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Made for tests and the demo; a production loader build refuses it
    /// unless told (`--allow-dev-keys`).
    Development,
    /// The OEM's.
    Production,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Development => "development",
            Kind::Production => "production",
        }
    }
}

/// The public side of a key set.
#[derive(Clone, Debug)]
pub struct KeySet {
    pub kind: Kind,
    pub oem: String,
    /// X || Y of record, authority, boot (in [`KEY_NAMES`] order).
    pub public: [[u8; 64]; 3],
}

fn public_of(k: &SigningKey) -> [u8; 64] {
    let p = k.verifying_key().to_sec1_point(false);
    let mut out = [0u8; 64];
    out.copy_from_slice(&p.as_bytes()[1..]);
    out
}

/// PKCS#8 PEM of a P-256 private key (with its public key, as OpenSSL
/// writes it).
pub fn private_pem(k: &SigningKey) -> Zeroizing<String> {
    let mut der = Zeroizing::new(Vec::with_capacity(PKCS8_LEN));
    der.extend_from_slice(&PKCS8_HEAD);
    der.extend_from_slice(&k.to_bytes());
    der.extend_from_slice(&PKCS8_PUB[..6]);
    der.extend_from_slice(&public_of(k));
    let mut b64 = Zeroizing::new(vec![0u8; mfg_formats::base64::encoded_len(der.len())]);
    let _ = mfg_formats::base64::encode(&der, &mut b64);
    let mut out = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
    for chunk in b64.chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

/// Reads a private key written by [`private_pem`] (or OpenSSL's
/// `genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`), checking
/// that its embedded public key matches.
pub fn parse_private_pem(text: &str) -> Option<SigningKey> {
    let der = Zeroizing::new(crate::keys::pem_body(text, "PRIVATE KEY")?);
    if der.len() != PKCS8_LEN || der[..36] != PKCS8_HEAD || der[68..74] != PKCS8_PUB[..6] {
        return None;
    }
    let k = SigningKey::from_slice(&der[36..68]).ok()?;
    (public_of(&k)[..] == der[74..]).then_some(k)
}

fn new_key() -> Result<SigningKey> {
    loop {
        let seed = Zeroizing::new(crate::keys::random::<32>()?);
        // A scalar of zero or >= n (probability ~2^-32) is drawn again.
        if let Ok(k) = SigningKey::from_slice(&seed[..]) {
            return Ok(k);
        }
    }
}

/// Writes `data` as `dir/name` atomically (a temporary file with `mode`,
/// synced, then linked to its name, which fails if the name exists: never
/// an overwrite, even against another process); refuses an existing file.
fn write_new(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let what = path.display().to_string();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| Fail::io(&tmp.display().to_string(), e))?;
    let r = f
        .write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| Fail::io(&what, e))
        .and_then(|()| {
            std::fs::hard_link(&tmp, &path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Fail::new(exit::FAILURE, format!("{what} exists: not overwritten"))
                } else {
                    Fail::io(&what, e)
                }
            })
        });
    let _ = std::fs::remove_file(&tmp);
    r
}

/// `mfgtool keys new`: writes a new key set into `dir` (created if
/// missing). Refuses a directory that already holds a key set or any of
/// its files.
pub fn create(dir: &Path, kind: Kind, oem: &str) -> Result<KeySet> {
    crate::ledger::check_label("--oem", oem)?;
    std::fs::create_dir_all(dir).map_err(|e| Fail::io(&dir.display().to_string(), e))?;
    for f in std::iter::once(KEYSET_FILE.to_string()).chain(
        KEY_NAMES
            .iter()
            .flat_map(|n| [format!("{n}.pem"), format!("{n}.pub")]),
    ) {
        if dir.join(&f).exists() {
            return Err(Fail::new(
                exit::FAILURE,
                format!(
                    "{}: already holds {f}: refusing to overwrite a key set (use a new directory)",
                    dir.display()
                ),
            ));
        }
    }
    let mut public = [[0u8; 64]; 3];
    for (name, pubk) in KEY_NAMES.iter().zip(public.iter_mut()) {
        let k = new_key()?;
        *pubk = public_of(&k);
        write_new(
            dir,
            &format!("{name}.pem"),
            private_pem(&k).as_bytes(),
            0o600,
        )?;
        write_new(
            dir,
            &format!("{name}.pub"),
            format!("{}\n", hex::encode(*pubk)).as_bytes(),
            0o644,
        )?;
    }
    let toml = format!(
        "# OEM key set written by mfgtool keys new (docs/formats.md, OEM key set).\nformat = 1\nkind = \"{}\"\noem = \"{oem}\"\n",
        kind.name()
    );
    write_new(dir, KEYSET_FILE, toml.as_bytes(), 0o644)?;
    Ok(KeySet {
        kind,
        oem: oem.to_string(),
        public,
    })
}

fn toml_string(toml: &toml::Table, key: &str, file: &Path) -> Result<String> {
    toml.get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| Fail::format(format!("{}: no {key} = \"...\"", file.display())))
}

/// Reads a key set's description and public keys.
pub fn load(dir: &Path) -> Result<KeySet> {
    let file = dir.join(KEYSET_FILE);
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Fail::io(
            &format!("{} (not a key set: run mfgtool keys new)", file.display()),
            e,
        )
    })?;
    let toml: toml::Table = text
        .parse()
        .map_err(|e| Fail::format(format!("{}: {e}", file.display())))?;
    let kind = match toml_string(&toml, "kind", &file)?.as_str() {
        "development" => Kind::Development,
        "production" => Kind::Production,
        other => {
            return Err(Fail::format(format!(
                "{}: kind \"{other}\" (expected development or production)",
                file.display()
            )));
        }
    };
    let oem = toml_string(&toml, "oem", &file)?;
    let mut public = [[0u8; 64]; 3];
    for (name, pubk) in KEY_NAMES.iter().zip(public.iter_mut()) {
        let p = dir.join(format!("{name}.pub"));
        let text =
            std::fs::read_to_string(&p).map_err(|e| Fail::io(&p.display().to_string(), e))?;
        *pubk = crate::keys::hex_exact::<64>(&p.display().to_string(), &text)
            .map_err(|e| Fail::format(e.msg))?;
    }
    Ok(KeySet { kind, oem, public })
}

/// Loads `dir/NAME.pem`, checking it matches `dir/NAME.pub`.
pub fn load_private(dir: &Path, name: &str) -> Result<SigningKey> {
    let set = load(dir)?;
    let idx = KEY_NAMES
        .iter()
        .position(|&n| n == name)
        .ok_or_else(|| Fail::usage(format!("no key named {name}")))?;
    let p = dir.join(format!("{name}.pem"));
    let text = Zeroizing::new(
        std::fs::read_to_string(&p).map_err(|e| Fail::io(&p.display().to_string(), e))?,
    );
    let k = parse_private_pem(&text).ok_or_else(|| {
        Fail::format(format!(
            "{}: not a P-256 PKCS#8 private key (BEGIN PRIVATE KEY)",
            p.display()
        ))
    })?;
    if public_of(&k) != set.public[idx] {
        return Err(Fail::format(format!(
            "{}: does not match {name}.pub",
            p.display()
        )));
    }
    Ok(k)
}

/// Parses `--commands md,mw,...` into the token's mask.
pub fn parse_commands(list: &str) -> Result<u32> {
    let mut mask = 0;
    for name in list.split(',').map(str::trim) {
        let bit = unlock::command_bit(name).ok_or_else(|| {
            Fail::usage(format!(
                "--commands: unknown command '{name}' (unlockable: {})",
                unlock::UNLOCKABLE.join(", ")
            ))
        })?;
        mask |= bit;
    }
    Ok(mask)
}

/// `mfgtool unlock-token`: the base64 line of a token answering
/// `challenge` with `commands`, signed with the key set's authority key.
pub fn unlock_token(keys: &Path, challenge: &str, commands: &str) -> Result<(Token, String)> {
    let c = Challenge::parse_line(challenge).map_err(|_| {
        Fail::format(format!(
            "--challenge: expected the device's line '{} <UID, 32 hex digits> <nonce, 32 hex digits>'",
            unlock::CHALLENGE_PREFIX
        ))
    })?;
    let mask = parse_commands(commands)?;
    let key = load_private(keys, "authority")?;
    let sig: Signature = key.sign(&Token::signed_bytes(&c, mask));
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&sig.to_bytes());
    let t = Token {
        challenge: c,
        commands: mask,
        signature,
    };
    let mut b64 = [0u8; unlock::TOKEN_B64_LEN];
    mfg_formats::base64::encode(&t.to_bytes(), &mut b64)?;
    Ok((t, String::from_utf8_lossy(&b64).into_owned()))
}

/// Why a token with `mask` reaches provisioned secrets, if it does: with
/// `blob` its holder decapsulates a device's blobs into RAM, and `md`
/// prints the plaintext or `mmc write` puts it on the eMMC, which the CM
/// can read out of the board.
pub fn secret_warning(mask: u32) -> Option<&'static str> {
    let has = |name| unlock::command_bit(name).is_some_and(|b| mask & b != 0);
    (has("blob") && (has("md") || has("mmc"))).then_some(
        "a token naming 'blob' with 'md' or 'mmc' lets its holder decapsulate \
         every secret provisioned on this device and print it or write it to \
         the eMMC: give it only to OEM staff",
    )
}

/// Where `-o` writes: a file, or stdout for `-`.
pub fn output_path(o: &str) -> Option<PathBuf> {
    (o != "-").then(|| PathBuf::from(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_refusals() {
        let k = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let pem = private_pem(&k);
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = parse_private_pem(&pem).unwrap();
        assert_eq!(back.to_bytes(), k.to_bytes());
        // A PEM whose public half was swapped is refused.
        let mut der = crate::keys::pem_body(&pem, "PRIVATE KEY").unwrap();
        der[100] ^= 1;
        let mut b = vec![0u8; mfg_formats::base64::encoded_len(der.len())];
        mfg_formats::base64::encode(&der, &mut b).unwrap();
        let bad = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            String::from_utf8(b).unwrap()
        );
        assert!(parse_private_pem(&bad).is_none());
        assert!(
            parse_private_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_none()
        );
    }

    #[test]
    fn commands_list() {
        assert_eq!(parse_commands("md").unwrap(), 1);
        assert_eq!(parse_commands("md, mw,md").unwrap(), 3);
        let e = parse_commands("md,help").unwrap_err();
        assert!(e.msg.contains("unknown command 'help'"), "{}", e.msg);
        assert!(parse_commands("").is_err());
    }
}
