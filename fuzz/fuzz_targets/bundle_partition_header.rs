//! The `mfg-bundle` partition header: never panics; an accepted header
//! re-encodes to the same 20 bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mfg_formats::area::{BUNDLE_PART_HEADER_LEN, BundlePartitionHeader};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = BundlePartitionHeader::parse(data) {
        let n = BUNDLE_PART_HEADER_LEN;
        assert_eq!(&h.to_block()[..n], &data[..n]);
        let _ = h.check(&data[n..]);
    }
});
