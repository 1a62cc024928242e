//! Unlock tokens (bytes and base64 line) and challenge lines: never panic;
//! an accepted token re-encodes to its bytes; the only token that verifies
//! is the seed (signed with authority scalar 1, public key G, over the
//! fixed challenge and mask): any other accepted token is a signature
//! bypass; a challenge line re-reads as itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mfg_formats::unlock::{Challenge, Token};

/// The challenge `cargo xtask fuzz` signs its seed token for.
const UID: [u8; 16] = [0xa5; 16];
const NONCE: [u8; 16] = [0x5a; 16];
/// The commands the seed token grants (md, mw).
const SEED_COMMANDS: u32 = 0b11;
/// The P-256 base point G: the public key of private scalar 1.
const AUTHORITY: [u8; 64] = [
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
    0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98,
    0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c,
    0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68,
    0x37, 0xbf, 0x51, 0xf5,
];

fn check(t: &Token) {
    if let Ok(mask) = t.verify(&UID, Some(&NONCE), &AUTHORITY) {
        // Only the seed itself carries a signature by scalar 1: anything
        // else that verifies is a bypass of the signature check.
        assert_eq!(mask, SEED_COMMANDS);
        assert_eq!(t.commands, SEED_COMMANDS);
        assert_eq!((t.challenge.uid, t.challenge.nonce), (UID, NONCE));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Token::parse(data) {
        assert_eq!(&t.to_bytes()[..], data);
        check(&t);
    }
    if let Ok(s) = core::str::from_utf8(data) {
        if let Ok(t) = Token::from_base64(s) {
            check(&t);
        }
        if let Ok(c) = Challenge::parse_line(s) {
            let mut line = String::new();
            c.write_line(&mut line).expect("a String takes any line");
            assert_eq!(Challenge::parse_line(&line).ok(), Some(c));
        }
    }
});
