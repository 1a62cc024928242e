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
