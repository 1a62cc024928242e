//! Journal copies and selection: never panics; an accepted record
//! re-encodes to the bytes it was read from.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mfg_formats::area::{BLOCK, JOURNAL_LEN, JournalRecord, select_journal};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = JournalRecord::parse(data) {
        assert_eq!(&r.to_block()[..JOURNAL_LEN], &data[..JOURNAL_LEN]);
        assert!(r.sequence != 0 && r.sequence != u64::MAX);
    }
    if data.len() >= 2 * BLOCK {
        let _ = select_journal(&data[..BLOCK], &data[BLOCK..2 * BLOCK]);
    }
});
