//! The FIT verifier: never panics; a FIT not signed by the fuzz key (the
//! P-256 base point G, whose private scalar 1 signs no FIT here) is
//! always refused, whatever else it holds. The engine cannot forge a
//! signature, so the image checks behind it are the properties' work
//! (`fit/src/props.rs`); this target reaches the tree, configuration and
//! signature-node checks.
#![no_main]
use fit::{BootKey, Fit, Keyring, Memory};
use libfuzzer_sys::fuzz_target;

const GX: [u8; 32] = [
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
    0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98,
    0xc2, 0x96,
];
const GY: [u8; 32] = [
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
    0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf,
    0x51, 0xf5,
];
/// The QEMU board's DRAM and the loader image, as the loader passes them.
const MEM: Memory<'static> = Memory {
    dram: &[(0x4000_0000, 0x4000_0000)],
    reserved: &[(0x4020_0000, 0x20_0000)],
};

fuzz_target!(|data: &[u8]| {
    let ring = Keyring::one(BootKey::from_xy("fuzz", &GX, &GY).expect("G is on the curve"));
    if let Ok(f) = Fit::open(data, data.len()) {
        let _ = f.config_name();
        let _ = f.config_digest("signature-1");
    }
    assert!(
        fit::verify(data, data.len(), &ring, &MEM).is_err(),
        "a FIT nobody signed with the fuzz key verified"
    );
});
