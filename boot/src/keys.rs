//! The OEM's public keys, built into the loader: `cargo xtask build` passes
//! them from the OEM key set (`--keys DIR`, or the development set) as
//! 128-hex-digit environment variables; a build without them fails.

/// The OEM record key: ID records are sealed to it.
pub const RECORD: [u8; 64] = parse(option_env!("MFG_RECORD_PUBKEY"));

/// The 64 bytes (x || y) of a public key given as 128 hex digits.
const fn parse(hex: Option<&str>) -> [u8; 64] {
    let Some(hex) = hex else {
        panic!("a public key of the OEM key set is not set: build with `cargo xtask build`");
    };
    let b = hex.as_bytes();
    if b.len() != 128 {
        panic!("an OEM public key is not 128 hex digits");
    }
    let mut out = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        out[i] = (digit(b[2 * i]) << 4) | digit(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn digit(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("an OEM public key holds a non-hex character"),
    }
}
