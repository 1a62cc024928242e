//! The GPT reader on a disk of 512-byte blocks: never panics; whatever it
//! accepts lies inside the disk.
#![no_main]
use block::MemDisk;
use block::gpt::Gpt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let n = data.len() / 512;
    let mut img = data[..n * 512].to_vec();
    if let Ok(g) = Gpt::read(&mut MemDisk::new(&mut img, 512)) {
        let blocks = n as u64;
        assert!(g.first_usable <= g.last_usable && g.last_usable < blocks);
        for p in g.partitions() {
            assert!(p.first_lba >= g.first_usable && p.last_lba <= g.last_usable);
        }
    }
});
