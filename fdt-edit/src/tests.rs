use super::*;
use std::format;
use std::process::Command;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// Compiles DTS source with `dtc` (an independent implementation).
fn dtc(src: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!(
        "fdt-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let dts = dir.join("t.dts");
    std::fs::write(&dts, src).unwrap();
    let out = Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb"])
        .arg(&dts)
        .output()
        .expect("dtc (device-tree-compiler) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Decompiles a blob with `dtc`, which also validates it.
fn decompile(blob: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!(
        "fdt-dec-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("t.dtb");
    std::fs::write(&p, blob).unwrap();
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dtc rejected our blob: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const BASE: &str = "/dts-v1/;\n/memreserve/ 0x48000000 0x1000;\n/ { model = \"test\"; #address-cells = <2>; #size-cells = <2>;\n chosen { stdout-path = \"serial1:115200n8\"; };\n soc@0 { mmc@30b60000 { status = \"okay\"; }; };\n};\n";

#[test]
fn finds_nodes_and_properties() {
    let blob = dtc(BASE);
    let mut buf = vec![0u8; blob.len() + 512];
    let fdt = Fdt::open_into(&blob, &mut buf).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    assert_eq!(
        fdt.get_prop(chosen, "stdout-path").unwrap(),
        Some(&b"serial1:115200n8\0"[..])
    );
    let mmc = fdt.find_node("/soc/mmc@30b60000").unwrap();
    assert_eq!(fdt.get_prop(mmc, "status").unwrap(), Some(&b"okay\0"[..]));
    assert_eq!(fdt.find_node("/nope"), Err(FdtError::NotFound));
    assert_eq!(fdt.get_prop(chosen, "bootargs").unwrap(), None);
}

#[test]
fn edits_are_valid_for_dtc() {
    let blob = dtc(BASE);
    let mut buf = vec![0u8; blob.len() + 1024];
    let mut fdt = Fdt::open_into(&blob, &mut buf).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    fdt.set_prop_str(chosen, "bootargs", "console=ttymxc1,115200 quiet")
        .unwrap();
    fdt.set_prop_u64(chosen, "linux,initrd-start", 0x4800_0000)
        .unwrap();
    fdt.set_prop_str(chosen, "stdout-path", "serial1").unwrap();
    let root = fdt.find_node("/").unwrap();
    let mem = fdt.ensure_subnode(root, "memory@40000000").unwrap();
    fdt.set_prop_str(mem, "device_type", "memory").unwrap();
    fdt.set_prop_u32s(mem, "reg", &[0, 0x4000_0000, 0, 0x4000_0000])
        .unwrap();
    let mfg = fdt.ensure_subnode(chosen, "mfg").unwrap();
    fdt.set_prop_str(mfg, "state", "done").unwrap();
    assert_eq!(
        fdt.ensure_subnode(chosen, "mfg").unwrap(),
        mfg,
        "ensure is idempotent"
    );
    let text = decompile(fdt.as_bytes());
    assert!(
        text.contains("bootargs = \"console=ttymxc1,115200 quiet\";"),
        "{text}"
    );
    assert!(
        text.contains("linux,initrd-start = <0x00 0x48000000>;"),
        "{text}"
    );
    assert!(text.contains("stdout-path = \"serial1\";"), "{text}");
    assert!(text.contains("memory@40000000 {"), "{text}");
    assert!(
        text.contains("reg = <0x00 0x40000000 0x00 0x40000000>;"),
        "{text}"
    );
    assert!(
        text.contains("mfg {") && text.contains("state = \"done\";"),
        "{text}"
    );
    assert!(
        text.contains("/memreserve/\t0x0000000048000000 0x0000000000001000;"),
        "{text}"
    );
    assert!(
        text.contains("status = \"okay\";"),
        "untouched nodes survive: {text}"
    );
}

#[test]
fn refuses_when_full_without_damage() {
    let blob = dtc(BASE);
    let mut buf = vec![0u8; blob.len() + 8];
    let mut fdt = Fdt::open_into(&blob, &mut buf).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    let before = fdt.as_bytes().to_vec();
    assert_eq!(
        fdt.set_prop(chosen, "x", &[0u8; 64]),
        Err(FdtError::NoSpace)
    );
    // A failed set may have added the name to the strings block, but the
    // tree stays valid and unchanged in content.
    let text = decompile(fdt.as_bytes());
    assert_eq!(text, decompile(&before));
}

#[test]
fn refuses_malformed_blobs() {
    let blob = dtc(BASE);
    let mut buf = vec![0u8; blob.len() + 64];
    assert_eq!(
        Fdt::open_into(&blob[..20], &mut buf).err(),
        Some(FdtError::Truncated)
    );
    let mut bad = blob.clone();
    bad[0] = 0;
    assert_eq!(
        Fdt::open_into(&bad, &mut buf).err(),
        Some(FdtError::BadMagic)
    );
    let mut bad = blob.clone();
    bad[4..8].copy_from_slice(&(blob.len() as u32 + 1).to_be_bytes());
    assert_eq!(
        Fdt::open_into(&bad, &mut buf).err(),
        Some(FdtError::Truncated)
    );
    // Every single-byte corruption of the structure block is either refused
    // or still parses; none panics.
    let h = Header::read(&blob).unwrap();
    for i in h.off_struct..h.off_struct + h.size_struct {
        for v in [0x00, 0x01, 0x03, 0x09, 0xff] {
            let mut b = blob.clone();
            b[i] = v;
            let mut out = vec![0u8; blob.len() + 64];
            if let Ok(mut f) = Fdt::open_into(&b, &mut out)
                && let Ok(c) = f.find_node("/chosen")
            {
                let _ = f.set_prop_str(c, "bootargs", "x");
            }
        }
    }
}

#[test]
fn rejects_bad_names() {
    let blob = dtc(BASE);
    let mut buf = vec![0u8; blob.len() + 256];
    let mut fdt = Fdt::open_into(&blob, &mut buf).unwrap();
    let c = fdt.find_node("/chosen").unwrap();
    assert_eq!(fdt.set_prop(c, "", b""), Err(FdtError::BadName));
    assert_eq!(fdt.set_prop(c, "a b", b""), Err(FdtError::BadName));
    assert_eq!(fdt.ensure_subnode(c, "x/y"), Err(FdtError::BadName));
}

#[test]
fn read_only_view_matches_names_exactly() {
    let blob = dtc(
        "/dts-v1/;\n/ { model = \"m\"; images { kernel@0 { data = <1>; }; \
                    kernel-1 { data = [ab cd]; description = \"k\"; }; }; };",
    );
    let r = FdtRef::new(&blob).unwrap();
    assert_eq!(r.path("/images/kernel"), None, "no unit-address matching");
    let k = r.path("/images/kernel-1").unwrap();
    assert_eq!(r.name(k), b"kernel-1");
    assert_eq!(r.prop(k, "data"), Some(&[0xab, 0xcd][..]));
    assert_eq!(r.prop_str(k, "description"), Some("k"));
    assert_eq!(r.prop_str(k, "data"), None, "not a string");
    let names: Vec<&[u8]> = r
        .subnodes(r.path("/images").unwrap())
        .map(|(_, n)| n)
        .collect();
    assert_eq!(names, [&b"kernel@0"[..], &b"kernel-1"[..]]);
    assert_eq!(r.prop_str(r.root(), "model"), Some("m"));
}

#[test]
fn read_only_view_refuses_trailing_tokens_and_two_roots() {
    let blob = dtc("/dts-v1/;\n/ { a { }; };");
    let h = Header::read(&blob).unwrap();
    // Append a second root after the first: BEGIN_NODE "" END_NODE before FDT_END.
    let mut two = blob.clone();
    let end_tok = h.off_struct + h.size_struct - 4;
    let extra = [
        BEGIN_NODE.to_be_bytes(),
        0u32.to_be_bytes(),
        END_NODE.to_be_bytes(),
    ]
    .concat();
    two.splice(end_tok..end_tok, extra.iter().copied());
    let grow = extra.len() as u32;
    for (field, v) in [(1, h.totalsize), (3, h.off_strings), (9, h.size_struct)] {
        two[field * 4..field * 4 + 4].copy_from_slice(&(v as u32 + grow).to_be_bytes());
    }
    assert_eq!(FdtRef::new(&two).unwrap_err(), FdtError::BadStructure);
    // A structure block that claims more bytes after FDT_END.
    let mut long = blob.clone();
    long.splice(h.off_strings..h.off_strings, [0u8; 4]);
    for (field, v) in [(1, h.totalsize), (3, h.off_strings), (9, h.size_struct)] {
        long[field * 4..field * 4 + 4].copy_from_slice(&(v as u32 + 4).to_be_bytes());
    }
    assert_eq!(FdtRef::new(&long).unwrap_err(), FdtError::BadStructure);
    assert!(FdtRef::new(&blob).is_ok());
}

/// Sets header word `i` (big-endian u32 at byte 4 * i) of a copy of `blob`.
fn with_header_word(blob: &[u8], i: usize, v: u32) -> Vec<u8> {
    let mut b = blob.to_vec();
    put32(&mut b, 4 * i, v);
    b
}

#[test]
fn refuses_unsupported_versions() {
    let blob = dtc(BASE);
    let mut buf = vec![0u8; blob.len() + 64];
    // Header word 5 is the version, word 6 the last compatible version.
    for v in [0, 1, 15] {
        let b = with_header_word(&blob, 5, v);
        assert_eq!(
            Header::read(&b),
            Err(FdtError::BadVersion(v)),
            "version {v}"
        );
        assert_eq!(
            Fdt::open_into(&b, &mut buf).err(),
            Some(FdtError::BadVersion(v))
        );
    }
    // A tree that says it is readable only by version 18+ readers.
    for last_comp in [18, 0xffff_ffff] {
        let b = with_header_word(&blob, 6, last_comp);
        assert_eq!(Header::read(&b), Err(FdtError::BadVersion(17)));
    }
    // 16 and 17 (with last compatible 16 or 17) are accepted.
    for (v, lc) in [(16, 16), (17, 16), (17, 17), (16, 2)] {
        let b = with_header_word(&with_header_word(&blob, 5, v), 6, lc);
        assert!(Header::read(&b).is_ok(), "version {v}/{lc}");
    }
    assert_eq!(
        std::format!("{}", FdtError::BadVersion(15)),
        "device tree version 15 not supported"
    );
}

#[test]
fn refuses_bad_layouts() {
    let blob = dtc(BASE);
    let h = Header::read(&blob).unwrap();
    let total = u32::try_from(h.totalsize).unwrap();
    let mut buf = vec![0u8; blob.len() + 64];
    // (header word, value): every block must lie after the 40-byte header
    // and inside totalsize, and be aligned.
    let cases: [(usize, u32, &str); 12] = [
        (2, 0, "structure block over the header"),
        (2, 36, "structure block inside the header"),
        (3, 0, "strings block over the header"),
        (3, 39, "strings block inside the header"),
        (4, 0, "reservation map over the header"),
        (4, 32, "reservation map inside the header"),
        (2, total, "structure block past the end"),
        (3, total, "strings block past the end"),
        (4, total - 8, "reservation map past the end"),
        (
            2,
            u32::try_from(h.off_struct).unwrap() + 2,
            "misaligned structure block",
        ),
        (
            4,
            u32::try_from(h.off_rsvmap).unwrap() + 4,
            "misaligned reservation map",
        ),
        (
            9,
            u32::try_from(h.size_struct).unwrap() - 2,
            "structure size not a multiple of 4",
        ),
    ];
    for (word, v, what) in cases {
        let b = with_header_word(&blob, word, v);
        assert_eq!(Header::read(&b), Err(FdtError::BadLayout), "{what}");
        assert_eq!(
            Fdt::open_into(&b, &mut buf).err(),
            Some(FdtError::BadLayout),
            "{what}"
        );
    }
    // Sizes that overflow or run past totalsize.
    for (word, v) in [(8, u32::MAX), (9, u32::MAX - 3), (8, total), (9, total)] {
        let b = with_header_word(&blob, word, v);
        assert_eq!(
            Header::read(&b),
            Err(FdtError::BadLayout),
            "word {word} = {v:#x}"
        );
    }
    assert!(Header::read(&blob).is_ok());
}

/// Found by `structure_fields_are_checked` (`cargo xtask fuzz`, 100,000
/// cases): a structure block of a NOP and FDT_END (no node at all) passed
/// validation, because the walk only required FDT_END not to be the first
/// token; every lookup then failed. Two root nodes passed too. Both are
/// refused now.
#[test]
fn regression_tree_without_exactly_one_root_is_refused() {
    let blob = dtc(BASE);
    let h = Header::read(&blob).unwrap();
    let mut buf = vec![0u8; blob.len() + 64];
    let with_struct = |words: &[u32]| {
        let mut b = blob.clone();
        let st = h.off_struct;
        for (i, w) in words.iter().enumerate() {
            put32(&mut b, st + 4 * i, *w);
        }
        // Pad the rest of the old structure block with NOPs after END.
        for i in words.len()..h.size_struct / 4 {
            put32(&mut b, st + 4 * i, NOP);
        }
        b
    };
    for words in [
        &[NOP, END][..],
        &[NOP, NOP, END],
        &[BEGIN_NODE, 0, END_NODE, BEGIN_NODE, 0, END_NODE, END],
    ] {
        assert_eq!(
            Fdt::open_into(&with_struct(words), &mut buf).err(),
            Some(FdtError::BadStructure),
            "{words:x?}"
        );
    }
    // One (empty) root after a NOP is fine.
    let ok = with_struct(&[NOP, BEGIN_NODE, 0, END_NODE, END]);
    let f = Fdt::open_into(&ok, &mut buf).unwrap();
    assert!(f.find_node("/").is_ok());
}
