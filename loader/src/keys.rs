//! The OEM public keys the loader is built with: `cargo xtask build` passes
//! the key set's public halves (`mfgtool keys new`, or `--keys DIR`) as
//! `MFG_RECORD_PUBKEY`, `MFG_AUTHORITY_PUBKEY` and `MFG_BOOT_PUBKEY`, 128
//! hex digits X || Y each. A malformed value fails the build; a target
//! build without them fails too (build the loader with `cargo xtask
//! build`). Host unit tests build without them.

/// Parses 128 hex digits into X || Y at compile time; panics (a build
/// error when evaluated in a `const`) on anything else.
pub const fn parse_pubkey(hex: Option<&str>) -> Option<[u8; 64]> {
    let Some(s) = hex else {
        return None;
    };
    let b = s.as_bytes();
    if b.len() != 128 {
        panic!("MFG_*_PUBKEY: expected 128 hex digits (X || Y of a P-256 public key)");
    }
    let mut out = [0u8; 64];
    let mut i = 0;
    while i < 128 {
        let d = match b[i] {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'a'..=b'f' => c - b'a' + 10,
            c @ b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("MFG_*_PUBKEY: not a hex digit"),
        };
        out[i / 2] = if i % 2 == 0 { d << 4 } else { out[i / 2] | d };
        i += 1;
    }
    Some(out)
}

/// The OEM record key (ECIES recipient of the sealed records).
pub const RECORD_PUBKEY: Option<[u8; 64]> = parse_pubkey(option_env!("MFG_RECORD_PUBKEY"));
/// The OEM authority key: signs console unlock tokens.
pub const AUTHORITY_PUBKEY: Option<[u8; 64]> = parse_pubkey(option_env!("MFG_AUTHORITY_PUBKEY"));
/// The OEM boot key (signed FIT).
pub const BOOT_PUBKEY: Option<[u8; 64]> = parse_pubkey(option_env!("MFG_BOOT_PUBKEY"));

// Every loader build has all three (other crates read them from the same
// variables).
#[cfg(target_os = "none")]
const _: () = assert!(
    RECORD_PUBKEY.is_some() && AUTHORITY_PUBKEY.is_some() && BOOT_PUBKEY.is_some(),
    "MFG_RECORD_PUBKEY, MFG_AUTHORITY_PUBKEY and MFG_BOOT_PUBKEY must be set: build the loader with `cargo xtask build [--keys DIR]`"
);

/// The record key of a target build (ID records are sealed to it).
#[cfg(target_os = "none")]
pub const RECORD: [u8; 64] = match RECORD_PUBKEY {
    Some(k) => k,
    None => panic!("MFG_RECORD_PUBKEY must be set"),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_or_nothing() {
        assert_eq!(parse_pubkey(None), None);
        let h = "00ff".repeat(32);
        let k = parse_pubkey(Some(&h)).unwrap();
        assert_eq!(k[0], 0x00);
        assert_eq!(k[1], 0xff);
        assert_eq!(k[63], 0xff);
        let k2 = parse_pubkey(Some(&"0A".repeat(64))).unwrap();
        assert_eq!(k2, [0x0a; 64]);
    }

    #[test]
    #[should_panic(expected = "expected 128 hex digits")]
    fn short_value_is_refused() {
        let _ = parse_pubkey(Some("abcd"));
    }

    #[test]
    #[should_panic(expected = "not a hex digit")]
    fn non_hex_is_refused() {
        let _ = parse_pubkey(Some(&"g".repeat(128)));
    }
}
