//! Blob tables: never panic; an accepted table is written back to the same
//! bytes by the writer (which checks the same rules).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mfg_formats::area::{BlobEntry, BlobTable, TABLE_MAX_LEN, write_blob_table};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = BlobTable::parse(data) {
        let es: Vec<BlobEntry> = t.iter().collect();
        assert_eq!(es.len(), t.len());
        let mut out = [0u8; TABLE_MAX_LEN];
        let (n, crc) = write_blob_table(&mut out, &es).expect("accepted table rewrites");
        assert_eq!(&out[..n], &data[..n]);
        assert_eq!(crc, t.crc());
    }
});
