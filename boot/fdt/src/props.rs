//! Property tests of the FDT editor: arbitrary or damaged blobs never
//! panic, and edits of valid blobs keep them valid per our own parser.
//!
//! The case count defaults to a bounded number for `cargo test`; set
//! `PROPTEST_CASES=1000000` for a long run.

use super::*;
use proptest::prelude::*;
use std::string::String;
use std::vec;
use std::vec::Vec;

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// A valid blob, built with the editor itself from a minimal tree (no
/// external tool, so property runs stay fast): header, an empty memory
/// reservation map, `/` with `model` and `/chosen`.
fn base_blob() -> Vec<u8> {
    let mut s = Vec::new();
    let w = |s: &mut Vec<u8>, v: u32| s.extend_from_slice(&v.to_be_bytes());
    // Structure: BEGIN_NODE "" ; PROP model "t\0" ; BEGIN_NODE "chosen" ; END ; END ; END_FDT
    w(&mut s, BEGIN_NODE);
    w(&mut s, 0);
    w(&mut s, PROP);
    w(&mut s, 2);
    w(&mut s, 0);
    s.extend_from_slice(b"t\0\0\0");
    w(&mut s, BEGIN_NODE);
    s.extend_from_slice(b"chosen\0\0");
    w(&mut s, END_NODE);
    w(&mut s, END_NODE);
    w(&mut s, END);
    let strings = b"model\0";
    let rsv = [0u8; 16];
    let off_rsv = HEADER_LEN;
    let off_struct = off_rsv + rsv.len();
    let off_strings = off_struct + s.len();
    let total = off_strings + strings.len();
    let mut blob = Vec::new();
    for v in [
        MAGIC as usize,
        total,
        off_struct,
        off_strings,
        off_rsv,
        17,
        16,
        0,
        strings.len(),
        s.len(),
    ] {
        blob.extend_from_slice(&u32::try_from(v).unwrap().to_be_bytes());
    }
    blob.extend_from_slice(&rsv);
    blob.extend_from_slice(&s);
    blob.extend_from_slice(strings);
    blob
}

/// Runs every read-only query and a few edits; none may panic.
fn exercise(fdt: &mut Fdt<'_>) {
    for path in ["/", "/chosen", "/soc@0/mmc", "/x/y/z", "", "chosen", "//"] {
        if let Ok(n) = fdt.find_node(path) {
            let _ = fdt.get_prop(n, "model");
            let _ = fdt.get_prop(n, "bootargs");
            let _ = fdt.set_prop_str(n, "bootargs", "console=ttymxc1");
            let _ = fdt.ensure_subnode(n, "reserved-memory");
        }
    }
    let _ = fdt.as_bytes();
}

/// Runs every query of the read-only view; none may panic.
fn exercise_ref(blob: &[u8]) {
    if let Ok(r) = FdtRef::new(blob) {
        let mut off = 0;
        while let Ok((tag, next)) = r.tag(off) {
            if tag == Tag::Finish {
                break;
            }
            off = next;
        }
        for path in ["/", "/chosen", "/x/y", ""] {
            if let Some(n) = r.path(path) {
                let _ = r.props(n).count();
                let _ = r.prop_str(n, "model");
                for (c, _) in r.subnodes(n) {
                    let _ = r.name(c);
                    let _ = r.node_end(c);
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Edit {
    Prop(String, String, Vec<u8>),
    Node(String, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let parent = prop::sample::select(&["/", "/chosen"][..]).prop_map(String::from);
    prop_oneof![
        (
            parent.clone(),
            "[a-z][a-z0-9,_+-]{0,20}",
            prop::collection::vec(any::<u8>(), 0..80)
        )
            .prop_map(|(p, n, v)| Edit::Prop(p, n, v)),
        (parent, "[a-z][a-z0-9-]{0,12}(@[0-9a-f]{1,8})?").prop_map(|(p, n)| Edit::Node(p, n)),
    ]
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        std::format!("/{name}")
    } else {
        std::format!("{parent}/{name}")
    }
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn arbitrary_bytes_never_panic(mut b in prop::collection::vec(any::<u8>(), 0..600),
                                   valid_magic in any::<bool>()) {
        if valid_magic && b.len() >= 8 {
            b[..4].copy_from_slice(&MAGIC.to_be_bytes());
            let len = u32::try_from(b.len()).unwrap();
            b[4..8].copy_from_slice(&len.to_be_bytes());
        }
        let _ = total_size(&b);
        exercise_ref(&b);
        let mut buf = vec![0u8; 2048];
        if let Ok(mut fdt) = Fdt::open_into(&b, &mut buf) {
            exercise(&mut fdt);
        }
    }

    #[test]
    fn damaged_valid_blob_never_panics(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        room in 0usize..256
    ) {
        let mut b = base_blob();
        for (i, v) in flips {
            let at = i.index(b.len());
            b[at] = v;
        }
        exercise_ref(&b);
        let mut buf = vec![0u8; b.len() + room];
        if let Ok(mut fdt) = Fdt::open_into(&b, &mut buf) {
            exercise(&mut fdt);
        }
    }

    /// After any sequence of edits the blob still opens, every property set
    /// reads back with its last value, and every node added is found.
    #[test]
    fn edits_keep_the_blob_valid(edits in prop::collection::vec(edit(), 0..24)) {
        let base = base_blob();
        let mut buf = vec![0u8; 8192];
        let mut fdt = Fdt::open_into(&base, &mut buf).unwrap();
        let mut props: Vec<(String, String, Vec<u8>)> = Vec::new();
        let mut nodes: Vec<String> = Vec::new();
        let mut added: Vec<(String, String)> = Vec::new();
        for e in &edits {
            match e {
                Edit::Prop(parent, name, value) => {
                    let n = fdt.find_node(parent).unwrap();
                    fdt.set_prop(n, name, value).unwrap();
                    props.retain(|(p, k, _)| !(p == parent && k == name));
                    props.push((parent.clone(), name.clone(), value.clone()));
                }
                Edit::Node(parent, name) => {
                    let n = fdt.find_node(parent).unwrap();
                    fdt.ensure_subnode(n, name).unwrap();
                    nodes.push(join(parent, name));
                    added.push((parent.clone(), name.clone()));
                }
            }
        }
        let bytes = fdt.as_bytes().to_vec();
        prop_assert_eq!(total_size(&bytes), Ok(bytes.len()));
        let mut again = vec![0u8; bytes.len()];
        let reopened = Fdt::open_into(&bytes, &mut again).unwrap();
        prop_assert_eq!(reopened.as_bytes(), &bytes[..], "re-opening is idempotent");
        for (parent, name, value) in &props {
            let n = reopened.find_node(parent).unwrap();
            prop_assert_eq!(reopened.get_prop(n, name).unwrap(), Some(&value[..]));
        }
        let root = reopened.find_node("/").unwrap();
        prop_assert_eq!(reopened.get_prop(root, "model").unwrap(), Some(&b"t\0"[..]));
        for path in &nodes {
            prop_assert!(reopened.find_node(path).is_ok(), "lost node {}", path);
        }
        // The read-only view agrees with the editor on every value.
        let view = FdtRef::new(&bytes).unwrap();
        for (parent, name, value) in &props {
            let n = view.path(parent).unwrap();
            prop_assert_eq!(view.prop(n, name), Some(&value[..]));
        }
        for (parent, name) in &added {
            // The editor reuses `e@0` for `e`; the view matches exactly.
            let at = std::format!("{name}@");
            let p = view.path(parent).unwrap();
            let found = view.subnodes(p).any(|(_, n)| {
                n == name.as_bytes() || (!name.contains('@') && n.starts_with(at.as_bytes()))
            });
            prop_assert!(found, "view lost node {}", join(parent, name));
        }
    }
}
