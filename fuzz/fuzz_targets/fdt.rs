//! The FDT editor: never panics on any blob; an accepted blob re-opens to
//! the same bytes and takes an edit.
#![no_main]
use fdt_edit::Fdt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = vec![0u8; data.len() + 256];
    if let Ok(mut f) = Fdt::open_into(data, &mut buf) {
        let out = f.as_bytes().to_vec();
        let mut again = vec![0u8; out.len()];
        let g = Fdt::open_into(&out, &mut again).expect("re-opens");
        assert_eq!(g.as_bytes(), &out[..]);
        if let Ok(c) = f.find_node("/chosen") {
            let _ = f.set_prop_str(c, "bootargs", "console=ttymxc1");
        }
    }
});
