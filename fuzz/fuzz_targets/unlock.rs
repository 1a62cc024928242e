//! Unlock tokens (bytes and base64 line) and challenge lines: never panic;
//! an accepted token re-encodes to its bytes; the only token that verifies
//! is the seed (signed with authority scalar 1, public key G, over the
//! fixed challenge and mask): any other accepted token is a signature
//! bypass; a challenge line re-reads as itself.
#![no_main]
use imx_mfg_fuzz::G as AUTHORITY;
use libfuzzer_sys::fuzz_target;
use mfg_formats::unlock::{Challenge, Token};

/// The challenge `cargo xtask fuzz` signs its seed token for.
const UID: [u8; 16] = [0xa5; 16];
const NONCE: [u8; 16] = [0x5a; 16];
/// The commands the seed token grants (md, mw).
const SEED_COMMANDS: u32 = 0b11;

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
