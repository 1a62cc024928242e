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

/// Probe: [`Fdt::validate_structure`] started (header and layout passed).
pub(crate) const REACH_STRUCTURE: u32 = 1 << 0;
/// Probe: the structure walk reached `FDT_END`, its last check.
pub(crate) const REACH_END: u32 = 1 << 1;

std::thread_local! {
    static REACH: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

/// Records a probe (test builds only; called from the parser).
pub(crate) fn reach_hit(bit: u32) {
    REACH.with(|h| h.set(h.get() | bit));
}

fn reach_take() -> u32 {
    REACH.with(|h| h.replace(0))
}

/// [`test_support::fuzz_property`] with this crate's case count and reach
/// probes.
fn fuzz_property<S>(
    name: &str,
    default_cases: u32,
    probe: u32,
    min_share: f64,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: core::fmt::Debug,
{
    test_support::fuzz_property(
        name,
        config(default_cases),
        file!(),
        probe,
        min_share,
        strategy,
        reach_take,
        test,
    );
}

/// A valid blob, built with the editor itself from a minimal tree (no
/// external tool, so property runs stay fast): header, an empty memory
/// reservation map, `/` with `model` and `/chosen`.
pub(crate) fn base_blob() -> Vec<u8> {
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

/// Arbitrary bytes never panic. Mode 0: raw bytes; 1: valid magic and
/// size; 2 to 5: a whole valid header (version 17, blocks in bounds) over
/// arbitrary blocks, so most cases get past the header and layout checks
/// into the structure walk (`REACH_STRUCTURE`, which is what this
/// property's reach counts; before, 0 of 4,096 cases passed the version
/// check).
#[test]
fn arbitrary_bytes_never_panic() {
    fuzz_property(
        "arbitrary_bytes_never_panic",
        4096,
        REACH_STRUCTURE,
        0.5,
        (
            prop::collection::vec(any::<u8>(), 0..600),
            0u8..6,
            any::<prop::sample::Index>(),
        ),
        |(mut b, mode, split)| {
            if mode >= 1 && b.len() >= 8 {
                b[..4].copy_from_slice(&MAGIC.to_be_bytes());
                let len = u32::try_from(b.len()).unwrap();
                b[4..8].copy_from_slice(&len.to_be_bytes());
            }
            if mode >= 2 && b.len() >= HEADER_LEN + 16 {
                // Reservation map right after the header, then the
                // structure block (a multiple of 4) and the strings.
                let room = b.len() - HEADER_LEN - 16;
                let size_struct = split.index(room + 1) & !3;
                let off_struct = HEADER_LEN + 16;
                let words = [
                    off_struct,
                    off_struct + size_struct,
                    HEADER_LEN,
                    17,
                    16,
                    0,
                    room - size_struct,
                    size_struct,
                ];
                for (i, v) in words.iter().enumerate() {
                    put32(&mut b, 8 + 4 * i, u32::try_from(*v).unwrap());
                }
                // An empty reservation map.
                b[HEADER_LEN..HEADER_LEN + 16].fill(0);
            }
            let _ = total_size(&b);
            exercise_ref(&b);
            let mut buf = vec![0u8; 2048];
            if let Ok(mut fdt) = Fdt::open_into(&b, &mut buf) {
                exercise(&mut fdt);
            }
            Ok(())
        },
    );
}

proptest! {
    #![proptest_config(config(4096))]

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

/// The token offsets of a structure block (as far as it walks).
fn token_offsets(s: &[u8]) -> Vec<(usize, u32)> {
    let rd = |o: usize| {
        s.get(o..o + 4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    let mut out = Vec::new();
    let mut o = 0;
    while let Some(t) = rd(o) {
        out.push((o, t));
        o = match t {
            BEGIN_NODE => {
                let rest = s.get(o + 4..).unwrap_or(&[]);
                let n = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
                o + 4 + align4(n + 1)
            }
            PROP => o + 12 + align4(rd(o + 4).unwrap_or(0) as usize),
            _ => o + 4,
        };
    }
    out
}

/// A field change in a valid blob, or a valid structural insertion with
/// the header's sizes recomputed.
#[derive(Clone, Debug)]
enum FdtEdit {
    /// Header word (1..=9) := one of the values worth trying.
    Header(usize, prop::sample::Index, u32),
    /// The token at a token boundary := another token code.
    Token(prop::sample::Index, prop::sample::Index),
    /// A property's length or name offset := another value.
    PropField(prop::sample::Index, bool, prop::sample::Index),
    /// A node name byte := another byte.
    NameByte(prop::sample::Index, prop::sample::Index),
    /// Insert NOP, a `BEGIN_NODE x` / `END_NODE` pair, or a property at a
    /// token boundary; sizes and offsets recomputed (stays valid except for
    /// a property outside every node).
    Insert(prop::sample::Index, u8),
}

fn fdt_edit() -> impl Strategy<Value = FdtEdit> {
    use prop::sample::Index;
    prop_oneof![
        3 => (1usize..=9, any::<Index>(), any::<u32>()).prop_map(|(w, i, r)| FdtEdit::Header(w, i, r)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| FdtEdit::Token(a, b)),
        1 => (any::<Index>(), any::<bool>(), any::<Index>()).prop_map(|(a, l, b)| FdtEdit::PropField(a, l, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| FdtEdit::NameByte(a, b)),
        5 => (any::<Index>(), 0u8..3).prop_map(|(a, k)| FdtEdit::Insert(a, k)),
    ]
}

fn get32(b: &[u8], i: usize) -> usize {
    u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]) as usize
}

/// Applies `e` to the canonical blob `b` (header, rsvmap, struct, strings).
/// Returns whether the header was changed.
fn apply_fdt_edit(b: &mut Vec<u8>, e: &FdtEdit) -> bool {
    let (st, ss) = (get32(b, 2), get32(b, 9));
    let toks = token_offsets(&b[st..st + ss]);
    match e {
        FdtEdit::Header(w, pick, random) => {
            let cur = get32(b, *w) as u64;
            let vals: Vec<u64> = match w {
                5 => vec![16, 17, 15, 1, 18],
                6 => vec![16, 17, 2, 18],
                7 => vec![0, 1, u64::from(u32::MAX)],
                _ => vec![cur, cur, cur + 4, cur.saturating_sub(4), cur + 1, 0, 36, 40],
            };
            let v = if pick.index(8) == 7 {
                u64::from(*random)
            } else {
                vals[pick.index(vals.len())]
            };
            put32(b, 4 * w, v as u32);
            true
        }
        FdtEdit::Token(at, code) => {
            if let Some(&(o, _)) = toks.get(at.index(toks.len().max(1))) {
                let c = [BEGIN_NODE, END_NODE, PROP, NOP, END, 0, 5, u32::MAX][code.index(8)];
                put32(b, st + o, c);
            }
            false
        }
        FdtEdit::PropField(at, len, pick) => {
            let props: Vec<usize> = toks.iter().filter(|t| t.1 == PROP).map(|t| t.0).collect();
            // (A changed token may leave a PROP without room for its fields.)
            if let Some(&o) = props.get(at.index(props.len().max(1)))
                && let f = st + o + if *len { 4 } else { 8 }
                && f + 4 <= st + ss
            {
                let cur = u32::from_be_bytes([b[f], b[f + 1], b[f + 2], b[f + 3]]) as usize;
                let strs = get32(b, 8);
                let vals = [
                    cur + 1,
                    cur + 4,
                    cur.saturating_sub(1),
                    0,
                    strs,
                    strs.saturating_sub(1),
                    usize::MAX >> 33,
                ];
                put32(b, f, vals[pick.index(vals.len())] as u32);
            }
            false
        }
        FdtEdit::NameByte(at, pick) => {
            let nodes: Vec<usize> = toks
                .iter()
                .filter(|t| t.1 == BEGIN_NODE)
                .map(|t| t.0)
                .collect();
            if let Some(&o) = nodes.get(at.index(nodes.len().max(1))) {
                b[st + o + 4] = [0, b'a', b'@', 0xff][pick.index(4)];
            }
            false
        }
        FdtEdit::Insert(at, kind) => {
            // Before any token: mostly inside the root node (valid), at
            // the ends outside it (a property there is malformed).
            if toks.is_empty() {
                return false;
            }
            let o = st + toks[at.index(toks.len())].0;
            let ins: Vec<u8> = match kind {
                0 => NOP.to_be_bytes().to_vec(),
                1 => [BEGIN_NODE, u32::from_be_bytes(*b"x\0\0\0"), END_NODE]
                    .iter()
                    .flat_map(|w| w.to_be_bytes())
                    .collect(),
                _ => [PROP, 4, 0, 0x1234_5678]
                    .iter()
                    .flat_map(|w| w.to_be_bytes())
                    .collect(),
            };
            let n = ins.len();
            b.splice(o..o, ins);
            for (w, v) in [(1, get32(b, 1) + n), (3, get32(b, 3) + n), (9, ss + n)] {
                put32(b, 4 * w, v as u32);
            }
            false
        }
    }
}

/// What the header checks must say about `b` (devicetree specification
/// v0.4, 5.2: version 17 with last compatible version 16 is what Linux
/// writes; this editor takes versions 16 and 17; blocks after the 40-byte
/// header, inside `totalsize`, aligned; a terminated reservation map).
fn expected_header(b: &[u8]) -> Result<(), FdtError> {
    let w = |i| get32(b, i);
    if w(5) < 16 || w(6) > 17 {
        return Err(FdtError::BadVersion(w(5) as u32));
    }
    if w(1) > b.len() {
        return Err(FdtError::Truncated);
    }
    let inside = |off: usize, len: usize| off >= HEADER_LEN && off + len <= w(1);
    if !inside(w(2), w(9))
        || !inside(w(3), w(8))
        || !inside(w(4), 16)
        || w(2) % 4 != 0
        || w(4) % 8 != 0
        || w(9) % 4 != 0
    {
        return Err(FdtError::BadLayout);
    }
    // The memory reservation map ends with an all-zero entry inside the
    // blob.
    let mut p = w(4);
    loop {
        if p + 16 > w(1) {
            return Err(FdtError::BadLayout);
        }
        if b[p..p + 16].iter().all(|&x| x == 0) {
            return Ok(());
        }
        p += 16;
    }
}

/// Whether the structure block of `b` (whose header passed) is well formed
/// per the devicetree specification v0.4, 5.4: tokens BEGIN_NODE (with a
/// NUL-terminated name), END_NODE, PROP (value inside the block, name
/// offset to a NUL-terminated string in the strings block), NOP; nodes
/// nest (at most 32 deep here) and properties sit inside a node; exactly
/// one root node; FDT_END after it closes. Written apart from the parser,
/// as its oracle.
fn structure_ok(b: &[u8]) -> bool {
    let (st, ss, strs, sl) = (get32(b, 2), get32(b, 9), get32(b, 3), get32(b, 8));
    let s = &b[st..st + ss];
    let strings = &b[strs..strs + sl];
    let word = |o: usize| {
        s.get(o..o + 4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    let (mut o, mut depth, mut roots) = (0usize, 0usize, 0usize);
    loop {
        let Some(t) = word(o) else { return false };
        match t {
            BEGIN_NODE => {
                if depth == 0 {
                    roots += 1;
                }
                let Some(n) = s[o + 4..].iter().position(|&c| c == 0) else {
                    return false;
                };
                depth += 1;
                if depth > MAX_DEPTH {
                    return false;
                }
                o += 4 + align4(n + 1);
                if o > ss {
                    return false;
                }
            }
            END_NODE => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                o += 4;
            }
            PROP => {
                let (Some(len), Some(name)) = (word(o + 4), word(o + 8)) else {
                    return false;
                };
                let end = (o + 12).checked_add(align4(len as usize));
                let named = strings.get(name as usize..).is_some_and(|r| r.contains(&0));
                if depth == 0 || !named || end.is_none_or(|e| e > ss) {
                    return false;
                }
                o = end.unwrap_or(ss);
            }
            NOP => o += 4,
            END => return depth == 0 && roots == 1,
            _ => return false,
        }
    }
}

/// Structure-aware: a valid tree (built with random edits), one or two
/// field changes or valid insertions with the sizes recomputed. Each case
/// is refused with the error the header rules predict (`BadVersion`,
/// `Truncated`, `BadLayout`), or, with a valid header, `BadStructure`
/// exactly when the structure oracle ([`structure_ok`]) finds it
/// malformed; or it opens, keeps its structure and strings blocks byte for
/// byte, and re-opens to the same bytes. Reach: the structure walk gets to `FDT_END`.
#[test]
fn structure_fields_are_checked() {
    fuzz_property(
        "structure_fields_are_checked",
        2048,
        REACH_END,
        0.5,
        (
            prop::collection::vec(edit(), 0..6),
            prop::collection::vec(fdt_edit(), 1..=2),
        ),
        |(tree, changes)| {
            let base = base_blob();
            let mut buf = vec![0u8; 8192];
            let mut fdt = Fdt::open_into(&base, &mut buf).unwrap();
            for e in &tree {
                match e {
                    Edit::Prop(p, n, v) => {
                        let at = fdt.find_node(p).unwrap();
                        fdt.set_prop(at, n, v).unwrap();
                    }
                    Edit::Node(p, n) => {
                        let at = fdt.find_node(p).unwrap();
                        fdt.ensure_subnode(at, n).unwrap();
                    }
                }
            }
            let mut b = fdt.as_bytes().to_vec();
            let mut header_changed = false;
            for c in &changes {
                if Header::read(&b).is_err() {
                    break;
                }
                header_changed |= apply_fdt_edit(&mut b, c);
            }
            let mut out = vec![0u8; b.len() + 64];
            let want = expected_header(&b);
            reach_take();
            match Fdt::open_into(&b, &mut out) {
                Ok(f) => {
                    prop_assert_eq!(want, Ok(()));
                    let h = Header::read(&b).unwrap();
                    let g = f.as_bytes().to_vec();
                    let hg = Header::read(&g).unwrap();
                    prop_assert_eq!(
                        &g[hg.off_struct..hg.off_struct + hg.size_struct],
                        &b[h.off_struct..h.off_struct + h.size_struct]
                    );
                    prop_assert_eq!(
                        &g[hg.off_strings..hg.off_strings + hg.size_strings],
                        &b[h.off_strings..h.off_strings + h.size_strings]
                    );
                    prop_assert!(structure_ok(&b), "accepted a malformed structure");
                    let mut again = vec![0u8; g.len()];
                    let reopened = Fdt::open_into(&g, &mut again).unwrap();
                    prop_assert_eq!(reopened.as_bytes(), &g[..]);
                    prop_assert!(reopened.find_node("/").is_ok());
                }
                Err(e) => match want {
                    Err(w) => prop_assert_eq!(e, w),
                    Ok(()) => {
                        prop_assert_eq!(
                            e,
                            FdtError::BadStructure,
                            "header ok (changed: {})",
                            header_changed
                        );
                        prop_assert!(!structure_ok(&b), "refused a well-formed structure");
                    }
                },
            }
            Ok(())
        },
    );
}
