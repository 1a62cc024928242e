//! ID records (binary and console line) and identity messages: never
//! panic; an accepted record re-encodes to the bytes it was read from.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mfg_formats::identity::{IdRecord, IdentityMessage, MESSAGE_LEN, RECORD_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = IdRecord::parse(data) {
        assert_eq!(&r.to_bytes()[..], &data[..RECORD_LEN]);
    }
    if let Ok(m) = IdentityMessage::parse(&data[..data.len().min(MESSAGE_LEN)]) {
        assert_eq!(&m.to_bytes()[..], &data[..MESSAGE_LEN]);
    }
    let _ = IdRecord::from_console_line(data);
});
