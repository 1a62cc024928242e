//! ID records, identity messages, sealed records (binary, eMMC slot and
//! console line): never panic; an accepted record re-encodes to the bytes
//! it was read from; a sealed record opens only with the record key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mfg_formats::identity::{self, IdRecord, IdentityMessage, MESSAGE_LEN};

/// A fixed record key: the fuzzer cannot make a valid GCM tag, so opening
/// exercises the header checks and the ECDH on arbitrary points.
const RECORD_SECRET: [u8; 32] = [0x3c; 32];

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = IdRecord::parse(data) {
        assert_eq!(&r.to_bytes()[..], data);
    }
    if let Ok(m) = IdentityMessage::parse(&data[..data.len().min(MESSAGE_LEN)]) {
        assert_eq!(&m.to_bytes()[..], &data[..MESSAGE_LEN]);
    }
    let _ = identity::sealed_from_console_line(data);
    let _ = identity::sealed_from_block(data);
    let _ = IdRecord::open(data, &RECORD_SECRET);
});
