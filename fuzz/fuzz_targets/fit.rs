//! The FIT verifier: never panics; a FIT not signed by the fuzz key (the
//! P-256 base point G, whose private scalar 1 signs no FIT here) is
//! always refused, whatever else it holds. The engine cannot forge a
//! signature, so the image checks behind it are the properties' work
//! (`fit/src/props.rs`); this target reaches the tree, configuration and
//! signature-node checks.
#![no_main]
use fit::{BootKey, Fit, Keyring, Memory};
use imx_mfg_fuzz::{G_X, G_Y};
use libfuzzer_sys::fuzz_target;

/// The QEMU board's DRAM and the loader image, as the loader passes them.
const MEM: Memory<'static> = Memory {
    dram: &[(0x4000_0000, 0x4000_0000)],
    reserved: &[(0x4020_0000, 0x20_0000)],
};

fuzz_target!(|data: &[u8]| {
    let ring = Keyring::one(BootKey::from_xy("fuzz", &G_X, &G_Y).expect("G is on the curve"));
    if let Ok(f) = Fit::open(data, data.len()) {
        let _ = f.config_name();
        let _ = f.config_digest("signature-1");
    }
    assert!(
        fit::verify(data, data.len(), &ring, &MEM).is_err(),
        "a FIT nobody signed with the fuzz key verified"
    );
});
