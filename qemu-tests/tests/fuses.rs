//! The virtual chip's fuse file at boot: loaded, missing, corrupt. The
//! console must come up in every case; the fuse page must not stay readable.

use qemu_tests::{Qemu, QemuOpts, chip, loader_image, write_fuse_file};

fn boot_with(fuses: Option<std::path::PathBuf>) -> (Qemu, String) {
    let mut o = QemuOpts::new(loader_image());
    if let Some(f) = fuses {
        o = o.fuses(f);
    }
    let mut q = Qemu::boot(o).expect("QEMU starts");
    let banner = q.wait_prompt().expect("prompt");
    (q, banner)
}

fn fuses_line(banner: &str) -> Option<&str> {
    banner.lines().find(|l| l.starts_with("Fuses:"))
}

#[test]
fn a_good_fuse_file_is_accepted_and_its_page_unmapped() {
    let f = chip(*b"qemu-tests-chip1", [0x11; 32]);
    let path = write_fuse_file("good", &f.to_bytes()).expect("write");
    let (mut q, banner) = boot_with(Some(path));
    assert_eq!(fuses_line(&banner), None, "banner: {banner:?}");
    // The page held the OTPMK: it must not be readable from the console.
    let out = q.run("md.l 40100000 4").expect("md");
    assert!(
        out.contains("address 0x40100000 is not mapped"),
        "fuse page readable: {out:?}"
    );
}

#[test]
fn a_missing_fuse_file_is_reported_and_the_console_works() {
    let (mut q, banner) = boot_with(None);
    let line = fuses_line(&banner).unwrap_or_else(|| panic!("no Fuses: line in {banner:?}"));
    assert!(line.contains("no fuse file loaded"), "{line}");
    assert!(
        line.contains("CAAM and fuse commands are disabled"),
        "{line}"
    );
    assert!(
        q.run("version")
            .expect("version")
            .contains(env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_corrupt_fuse_file_is_reported_and_the_console_works() {
    let mut bytes = chip(*b"qemu-tests-chip2", [0x22; 32]).to_bytes();
    bytes[70] ^= 1; // one bit of the OTPMK
    let path = write_fuse_file("corrupt", &bytes).expect("write");
    let (mut q, banner) = boot_with(Some(path));
    let line = fuses_line(&banner).unwrap_or_else(|| panic!("no Fuses: line in {banner:?}"));
    assert!(line.contains("fuse file corrupt (CRC mismatch)"), "{line}");
    assert!(
        q.run("version")
            .expect("version")
            .contains(env!("CARGO_PKG_VERSION"))
    );
}
