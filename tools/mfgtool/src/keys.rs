//! The MP public key as the OEM holds it: U-Boot's `mfgprot pubk` hex (128
//! digits X||Y, optionally with a `04` prefix), a file holding that hex (or
//! U-Boot's whole output), or a PEM SubjectPublicKeyInfo.

use crate::error::{Fail, Result};

/// DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point:
/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING 04||X||Y }.
pub const SPKI_P256_PREFIX: [u8; 27] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
];

fn from_hex(s: &str) -> Option<[u8; 64]> {
    let s = s.trim();
    let s = if s.len() == 130 {
        s.strip_prefix("04")?
    } else {
        s
    };
    if s.len() != 128 {
        return None;
    }
    let v = hex::decode(s).ok()?;
    v.try_into().ok()
}

/// Decodes a PEM block's base64 body (any label given).
pub fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].split_whitespace().collect();
    let mut out = vec![0u8; b64.len() / 4 * 3 + 3];
    let n = mfg_formats::base64::decode(b64.as_bytes(), &mut out).ok()?;
    out.truncate(n);
    Some(out)
}

/// Parses the key from text (hex, U-Boot output or PEM).
pub fn parse_pubkey_text(text: &str) -> Option<[u8; 64]> {
    if text.contains("-----BEGIN PUBLIC KEY-----") {
        let der = pem_body(text, "PUBLIC KEY")?;
        if der.len() != 91 || der[..27] != SPKI_P256_PREFIX {
            return None;
        }
        return der[27..].try_into().ok();
    }
    if let Some(k) = from_hex(text) {
        return Some(k);
    }
    // U-Boot's output: "Public key:" then the hex on the next line.
    text.lines().rev().find_map(from_hex)
}

/// Resolves `--mp-pubkey`: hex on the command line, else a file.
pub fn load_pubkey(arg: &str) -> Result<[u8; 64]> {
    if let Some(k) = from_hex(arg) {
        return check_point(k);
    }
    let path = std::path::Path::new(arg);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Fail::usage(format!(
            "--mp-pubkey: neither 128 hex digits nor a readable file ({arg}: {e})"
        ))
    })?;
    let k = parse_pubkey_text(&text).ok_or_else(|| {
        Fail::format(format!(
            "{arg}: no MP public key found (expected 128 hex digits X||Y, optionally 04-prefixed, or a PEM P-256 public key)"
        ))
    })?;
    check_point(k)
}

/// Refuses a value that is not a point on P-256.
fn check_point(k: [u8; 64]) -> Result<[u8; 64]> {
    let mut sec1 = [0u8; 65];
    sec1[0] = 4;
    sec1[1..].copy_from_slice(&k);
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| Fail::format("MP public key is not a valid P-256 point"))?;
    Ok(k)
}

/// PEM SubjectPublicKeyInfo of the key.
pub fn to_pem(k: &[u8; 64]) -> String {
    let mut der = SPKI_P256_PREFIX.to_vec();
    der.extend_from_slice(k);
    let mut b = vec![0u8; mfg_formats::base64::encoded_len(der.len())];
    let _ = mfg_formats::base64::encode(&der, &mut b);
    let s = String::from_utf8_lossy(&b).into_owned();
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in s.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

/// Parses exactly `n` bytes of hex (for --uid, --srk-hash, key modifiers).
pub fn hex_exact<const N: usize>(what: &str, s: &str) -> Result<[u8; N]> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let v = hex::decode(s).map_err(|_| Fail::usage(format!("{what}: not hexadecimal")))?;
    v.try_into()
        .map_err(|_| Fail::usage(format!("{what}: need exactly {} hex digits", N * 2)))
}

/// Random bytes from the OS.
pub fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Fail::new(1, format!("random source: {e}")))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "480011fd860eae308cc4291ee974eaa40ded6e99e1a51cca5d1e694fdb855afbbf66413c95d399ca88e58c6238166dcb3c07f6c17509af8ed1b8bb15ce4a49fd";

    #[test]
    fn key_forms() {
        let k = parse_pubkey_text(K).unwrap();
        assert_eq!(parse_pubkey_text(&format!("04{K}")), Some(k));
        assert_eq!(
            parse_pubkey_text(&format!("Public key:\n{}\n", K.to_uppercase())),
            Some(k)
        );
        assert_eq!(parse_pubkey_text(&to_pem(&k)), Some(k));
        assert_eq!(parse_pubkey_text(&format!("05{K}")), None);
        assert_eq!(parse_pubkey_text(&K[2..]), None);
        assert!(load_pubkey(K).is_ok());
        let mut off = k;
        off[63] ^= 1;
        assert!(check_point(off).is_err(), "point off the curve accepted");
    }
}
