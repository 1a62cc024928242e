//! Structure-aware property tests of every parser in this crate: start from
//! a valid encoding, change one or two fields *inside* it (to values biased
//! to the field's edges and valid set), in 3 cases of 4 make the fields that
//! depend on them agree (as a writer would: table length with the count,
//! flags with the optional fields, blob offsets with the lengths), then
//! recompute what guards integrity (CRC-32, the bundle's AES-GCM tag), so
//! the case reaches the field checks instead of stopping at the checksum.
//! Each case is either refused with a field error naming the structure, or
//! parses, satisfies the documented rules (checked here independently of
//! the parser) and re-encodes to the same bytes.
//!
//! Each property counts how many cases reached its parser's deepest check
//! (a [`crate::reach`] probe, test builds only) and fails below half. With
//! `FUZZ_REACH=1` (set by `cargo xtask fuzz`) it prints
//! `fuzz-reach: <property> <reached> <cases>` for the fuzz table.

use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use crate::area::*;
use crate::bundle::*;
use crate::identity::*;
use crate::tests::config;
use crate::*;

/// [`test_support::fuzz_property`] with this crate's case count and reach
/// probes.
pub(crate) fn fuzz_property<S>(
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
        reach::take,
        test,
    );
}

/// One field change: which field (an index into the structure's field
/// table), which of its interesting values, and a random value.
#[derive(Clone, Copy, Debug)]
struct Edit {
    field: Index,
    pick: Index,
    random: u64,
    kind: u8,
}

fn edit() -> impl Strategy<Value = Edit> {
    (any::<Index>(), any::<Index>(), any::<u64>(), 0u8..8).prop_map(
        |(field, pick, random, kind)| Edit {
            field,
            pick,
            random,
            kind,
        },
    )
}

/// One edit (4 cases in 5) or up to `max`.
fn edits(max: usize) -> impl Strategy<Value = Vec<Edit>> {
    prop_oneof![
        4 => proptest::collection::vec(edit(), 1..=1),
        1 => proptest::collection::vec(edit(), 2..=max),
    ]
}

/// A field: byte offset, width (1, 2, 4 or 8 bytes, little-endian) and the
/// values worth trying (valid ones and their neighbours).
struct Field {
    at: usize,
    width: usize,
    values: Vec<u64>,
}

impl Field {
    fn new(at: usize, width: usize, values: &[u64]) -> Self {
        Self {
            at,
            width,
            values: values.to_vec(),
        }
    }
}

/// The value an edit writes: one of the field's listed values (6 in 8),
/// else an edge of its width or a random one.
fn value_for(f: &Field, e: &Edit) -> u64 {
    let max = if f.width == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * f.width)) - 1
    };
    match e.kind {
        0..=5 => f.values[e.pick.index(f.values.len())],
        6 => [0, 1, max, max - 1][e.pick.index(4)],
        _ => e.random & max,
    }
}

fn apply(b: &mut [u8], fields: &[Field], edits: &[Edit]) {
    for e in edits {
        let f = &fields[e.field.index(fields.len())];
        let v = value_for(f, e);
        b[f.at..f.at + f.width].copy_from_slice(&v.to_le_bytes()[..f.width]);
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// A field-level refusal (not an integrity one) naming a structure whose
/// name starts with one of `names`.
fn is_field_error(e: FormatError, names: &[&str]) -> bool {
    match e {
        FormatError::BadField { what } | FormatError::BadLength { what } => {
            names.iter().any(|n| what.starts_with(n))
        }
        FormatError::DuplicateName => true,
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Journal

fn journal_fields() -> Vec<Field> {
    vec![
        Field::new(6, 1, &[0, 1, 2, 3, 4]),
        Field::new(7, 1, &[0, 1, 0, 1, 0xff, 2]),
        Field::new(8, 8, &[1, 2, 9, MAX_SEQUENCE, u64::MAX, 0]),
        Field::new(16, 8, &[0, 7, 42]),
        Field::new(24, 2, &[0, 1, 2, 64, 65]),
        Field::new(26, 2, &[0, 1, 9, 10]),
        Field::new(
            28,
            4,
            &[
                0,
                table_len(1) as u64,
                table_len(2) as u64,
                table_len(64) as u64,
                15,
            ],
        ),
        Field::new(32, 4, &[0, 0xdead_beef]),
        Field::new(36, 4, &[0, 1, u64::from(u32::MAX)]),
        Field::new(40, 1, &[0, 1, 0, 1, 2, 0x80]),
        Field::new(50, 1, &[0, 0, 0, 0, 1]),
    ]
}

fn valid_journal() -> impl Strategy<Value = JournalRecord> {
    (
        0u8..=3,
        1u64..=MAX_SEQUENCE,
        0u8..=1,
        proptest::option::of(any::<u64>()),
        1u16..=64,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(st, sequence, slot, bundle_id, n, last_error, crc, boot)| {
                let state = ProvState::from_code(st).unwrap();
                let has = state >= ProvState::SecretsBlobbed;
                JournalRecord {
                    state,
                    id_slot: (state != ProvState::Blank).then_some(slot),
                    sequence,
                    bundle_id,
                    blob_count: if has { n } else { 0 },
                    last_error,
                    table_crc: if has { crc } else { 0 },
                    boot_counter: boot,
                }
            },
        )
}

/// The offsets of the fields `es` changed.
fn edited(fields: &[Field], es: &[Edit]) -> Vec<usize> {
    es.iter()
        .map(|e| fields[e.field.index(fields.len())].at)
        .collect()
}

/// Makes the fields no edit touched agree with the edited ones, as the
/// writer would have: slot, count and table CRC with the state, bundle id
/// with its flag, table length with the count. Fields an edit set stay as
/// set (so the disagreements the parser must catch still occur).
fn repair_journal(b: &mut [u8], ed: &[usize]) {
    let untouched = |at| !ed.contains(&at);
    let state = b[6];
    if ed.contains(&6) {
        if untouched(7) {
            b[7] = match (state, b[7]) {
                (0, _) => NO_SLOT,
                (_, NO_SLOT) => 0,
                (_, s) => s,
            };
        }
        if untouched(24) {
            let n = le16(b, 24);
            let n: u16 = if state >= 2 { n.max(1) } else { 0 };
            b[24..26].copy_from_slice(&n.to_le_bytes());
        }
        if untouched(32) && state < 2 {
            b[32..36].fill(0);
        }
    }
    if ed.contains(&40) && untouched(16) && b[40] & 1 == 0 {
        b[16..24].fill(0);
    }
    if ed.contains(&16) && untouched(40) && b[16..24] != [0; 8] {
        b[40] |= 1;
    }
    if untouched(28) {
        let n = usize::from(le16(b, 24));
        b[28..32].copy_from_slice(&(table_len(n) as u32).to_le_bytes());
    }
}

/// The documented journal rules (docs/formats.md 3.1), checked on what
/// the parser accepted, independently of the parser.
fn journal_rules(r: &JournalRecord) -> Result<(), TestCaseError> {
    prop_assert!((1..=MAX_SEQUENCE).contains(&r.sequence));
    prop_assert_eq!(r.id_slot.is_none(), r.state == ProvState::Blank);
    prop_assert!(r.id_slot.is_none_or(|s| s < 2));
    if r.state >= ProvState::SecretsBlobbed {
        prop_assert!((1..=64).contains(&r.blob_count));
    } else {
        prop_assert_eq!((r.blob_count, r.table_crc), (0, 0));
    }
    Ok(())
}

/// The documented blob table rules (docs/formats.md 3.2): unique valid
/// names, a key modifier of 1..=16 bytes (a short one given, its padding
/// zero), blob lengths 49..=65584, block-aligned offsets from block 32 on,
/// increasing without overlap, ending within the 8 MiB area.
fn table_rules(es: &[BlobEntry]) -> Result<(), TestCaseError> {
    prop_assert!((1..=MAX_SECRETS).contains(&es.len()));
    let mut prev_end = BLOB_DATA_LBA * 512;
    for (i, e) in es.iter().enumerate() {
        let name = e.name();
        prop_assert!(!name.is_empty() && name != "?" && name.bytes().all(is_name_byte));
        prop_assert!(
            es[..i].iter().all(|o| o.name() != name),
            "duplicate {}",
            name
        );
        key_modifier_rules(&e.key_modifier, e.key_modifier_given)?;
        prop_assert!((49..=65584).contains(&e.length), "length {}", e.length);
        let off = u64::from(e.offset);
        prop_assert!(
            off % 512 == 0 && off >= prev_end,
            "offset {} after {}",
            off,
            prev_end
        );
        prev_end = off + u64::from(e.length);
        prop_assert!(prev_end <= MFG_DATA_BYTES);
    }
    Ok(())
}

/// A key modifier as docs/formats.md 1.3 allows it: 1..=16 bytes, a short
/// one given and zero-padded in its field.
fn key_modifier_rules(km: &KeyModifier, given: bool) -> Result<(), TestCaseError> {
    let n = km.as_bytes().len();
    prop_assert!((1..=16).contains(&n));
    prop_assert!(n == 16 || given, "short and derived");
    prop_assert!(km.field()[n..].iter().all(|&b| b == 0), "padding {:?}", km);
    Ok(())
}

#[test]
fn prop_journal_fields() {
    let fields = journal_fields();
    fuzz_property(
        "prop_journal_fields",
        512,
        reach::JOURNAL,
        0.5,
        (valid_journal(), edits(2), 0u8..4),
        |(j, es, repair)| {
            let mut b = j.to_block();
            apply(&mut b, &fields, &es);
            if repair != 0 {
                repair_journal(&mut b, &edited(&fields, &es));
            }
            let crc = crc32(&b[..60]);
            b[60..64].copy_from_slice(&crc.to_le_bytes());
            reach::take();
            match JournalRecord::parse(&b) {
                Ok(r) => {
                    prop_assert_eq!(&r.to_block()[..], &b[..], "round trip");
                    journal_rules(&r)?;
                }
                Err(e) => prop_assert!(is_field_error(e, &["journal"]), "{:?}", e),
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// ID record (and the identity message inside it)

fn id_record_fields() -> Vec<Field> {
    // Offsets within the record: the message starts at byte 8 (layout in
    // docs/formats.md: soc 6, state 56, flags 57, reserved 58, boot
    // counter 60, loader version 64, product 80, bundle id 112, bundle
    // digest 120, nonce 152).
    let m = 8;
    let mut f = vec![
        Field::new(
            6,
            2,
            &[
                MESSAGE_LEN as u64,
                MESSAGE_LEN as u64,
                MESSAGE_LEN as u64,
                MESSAGE_LEN as u64 - 1,
            ],
        ),
        Field::new(
            m + 6,
            2,
            &[u64::from(SOC_IMX8MP), u64::from(SOC_IMX8MP), 0x8a51, 0],
        ),
        Field::new(m + 56, 1, &[1, 2, 3, 1, 2, 3, 0, 4]),
        Field::new(m + 57, 1, &[0, 1, 2, 3, 4, 0x80]),
        Field::new(m + 58, 2, &[0, 0, 1]),
        Field::new(m + 60, 4, &[0, 3, u64::from(u32::MAX)]),
        Field::new(m + 112, 8, &[0, 42, u64::MAX]),
    ];
    for k in [0, 1, 5, 15] {
        f.push(Field::new(
            m + 64 + k,
            1,
            &[
                u64::from(b'1'),
                u64::from(b'.'),
                u64::from(b'a'),
                u64::from(b'-'),
                0,
                0x20,
                0x7f,
            ],
        ));
    }
    for k in [0, 1, 10, 31] {
        f.push(Field::new(
            m + 80 + k,
            1,
            &[
                u64::from(b'x'),
                u64::from(b'-'),
                u64::from(b'_'),
                0,
                u64::from(b'/'),
                0x20,
                0xff,
            ],
        ));
    }
    for k in [0, 31] {
        f.push(Field::new(m + 120 + k, 1, &[0, 0x5a]));
    }
    for k in [0, 15, 31] {
        f.push(Field::new(m + 152 + k, 1, &[0, 0x11]));
    }
    f
}

/// Bundle id, bundle digest and station nonce follow an edited flags byte,
/// and the flags follow an edited bundle id, digest or nonce (each only
/// where no edit set it).
fn repair_identity(b: &mut [u8], ed: &[usize]) {
    let (flags, bid, digest, nonce) = (8 + 57, 8 + 112, 8 + 120, 8 + 152);
    let untouched = |lo: usize, hi: usize| !ed.iter().any(|&a| (lo..hi).contains(&a));
    if !untouched(flags, flags + 1) {
        if b[flags] & FLAG_BUNDLE_ID == 0 {
            if untouched(bid, bid + 8) {
                b[bid..bid + 8].fill(0);
            }
            if untouched(digest, digest + 32) {
                b[digest..digest + 32].fill(0);
            }
        }
        if untouched(nonce, nonce + 32) && b[flags] & FLAG_STATION_NONCE == 0 {
            b[nonce..nonce + 32].fill(0);
        }
    } else {
        if b[bid..bid + 8] != [0; 8] || b[digest..digest + 32] != [0; 32] {
            b[flags] |= FLAG_BUNDLE_ID;
        }
        if b[nonce..nonce + 32] != [0; 32] {
            b[flags] |= FLAG_STATION_NONCE;
        }
    }
}

fn valid_id_record() -> impl Strategy<Value = IdRecord> {
    (
        any::<[u8; 16]>(),
        1u8..=3,
        any::<u32>(),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<[u8; 32]>()),
        "[0-9][0-9.a-z+-]{0,15}",
        "[a-z0-9][a-z0-9._-]{0,31}",
        any::<[u8; 32]>(),
    )
        .prop_map(|(uid, st, ctr, bundle_id, nonce, ver, product, fill)| {
            let mut m = IdentityMessage {
                soc: SOC_IMX8MP,
                uid,
                srk_hash: fill,
                security_state: SecurityState::from_code(st).unwrap(),
                boot_counter: ctr,
                loader_version: [0; 16],
                product: [0; PRODUCT_LEN],
                bundle_id,
                bundle_digest: if bundle_id.is_some() { fill } else { [0; 32] },
                station_nonce: nonce,
            };
            m.set_loader_version(&ver);
            m.set_product(&product);
            IdRecord {
                message: m,
                mpmr: fill,
                mes_rep: fill,
                c: fill,
                d: fill,
            }
        })
}

#[test]
fn prop_id_record_fields() {
    let fields = id_record_fields();
    fuzz_property(
        "prop_id_record_fields",
        512,
        reach::IDENTITY,
        0.5,
        (valid_id_record(), edits(2), 0u8..4),
        |(r, es, repair)| {
            prop_assert_eq!(IdRecord::parse(&r.to_bytes()), Ok(r.clone()));
            let mut b = r.to_bytes();
            apply(&mut b, &fields, &es);
            if repair != 0 {
                repair_identity(&mut b, &edited(&fields, &es));
            }
            let crc = crc32(&b[..RECORD_LEN - 4]);
            b[RECORD_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
            reach::take();
            match IdRecord::parse(&b) {
                Ok(p) => {
                    prop_assert_eq!(&p.to_bytes()[..], &b[..], "round trip");
                    let m = &p.message;
                    prop_assert_eq!(m.soc, SOC_IMX8MP);
                    let v = m.loader_version_str();
                    prop_assert!(!v.is_empty() && v.bytes().all(|c| c.is_ascii_graphic()));
                    let pr = m.product_str();
                    prop_assert!(
                        !pr.is_empty()
                            && pr
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
                    );
                    if m.bundle_id.is_none() {
                        prop_assert_eq!(m.bundle_digest, [0; 32]);
                    }
                    prop_assert_eq!(m.bundle_id.is_some(), b[8 + 57] & FLAG_BUNDLE_ID != 0);
                    prop_assert_eq!(
                        m.station_nonce.is_some(),
                        b[8 + 57] & FLAG_STATION_NONCE != 0
                    );
                    prop_assert_eq!(b[8 + 57] & !(FLAG_BUNDLE_ID | FLAG_STATION_NONCE), 0);
                }
                Err(e) => prop_assert!(
                    is_field_error(e, &["identity", "ID record", "security state"]),
                    "{:?}",
                    e
                ),
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Blob table

fn valid_table() -> impl Strategy<Value = Vec<BlobEntry>> {
    proptest::collection::vec(
        (
            1usize..=MAX_SECRET_LEN,
            1u8..=4,
            any::<bool>(),
            any::<u32>(),
            prop_oneof![1 => 1usize..=15, 2 => Just(16usize)],
        ),
        1..=4,
    )
    .prop_map(|v| {
        let mut p = BlobPlanner::new();
        v.iter()
            .enumerate()
            .map(|(i, &(len, kind, given, crc, km_len))| {
                let (off, blen) = p.place(len).unwrap();
                // Non-zero bytes, so an edit of the padding shows. A short
                // key modifier is always given.
                let km = KeyModifier::new(&[i as u8 + 1; 16][..km_len]).unwrap();
                BlobEntry::new(
                    &std::format!("s{i}"),
                    SecretType::from_code(kind).unwrap(),
                    km,
                    given || km_len < 16,
                    off,
                    blen,
                    crc,
                )
                .unwrap()
            })
            .collect()
    })
}

fn table_fields(es: &[BlobEntry]) -> Vec<Field> {
    let n = es.len() as u64;
    let mut f = vec![
        Field::new(6, 2, &[n, n, n - 1, n + 1, 0, 65]),
        Field::new(8, 4, &[0, 0, 1]),
    ];
    for (k, e) in es.iter().enumerate() {
        let at = TABLE_HEADER_LEN + k * TABLE_ENTRY_LEN;
        f.push(Field::new(
            at,
            1,
            &[u64::from(b'a'), u64::from(b'-'), 0x20, 0, u64::from(b's')],
        ));
        f.push(Field::new(
            at + 1,
            1,
            &[u64::from(b'0'), u64::from(b'1'), u64::from(b'9')],
        ));
        f.push(Field::new(at + 2, 1, &[0, u64::from(b'x'), 0x7f]));
        f.push(Field::new(at + 32, 1, &[1, 2, 3, 4, 0, 5]));
        // Flags and the key modifier length (0 for 16 bytes): as written
        // (no change), the other flag bits, lengths at the edges.
        let kl = e.key_modifier.as_bytes().len() as u64;
        let (fl, kb) = if kl < 16 {
            (3, kl)
        } else {
            (u64::from(e.key_modifier_given), 0)
        };
        f.push(Field::new(at + 33, 1, &[fl, fl, fl ^ 1, fl ^ 2, 4]));
        f.push(Field::new(at + 34, 1, &[kb, kb, kb, 1, 15, 16]));
        f.push(Field::new(at + 35, 1, &[0, 0, 1]));
        f.push(Field::new(at + 36, 1, &[0, 0xff]));
        // Offsets: later ones are laid out again after an edited one
        // (`replace_offsets`), so a gap is valid; overlapping the previous
        // blob, misaligned, below block 32 or past the area are not.
        let off = u64::from(e.offset);
        let prev = if k > 0 {
            u64::from(es[k - 1].offset)
        } else {
            0
        };
        f.push(Field::new(
            at + 52,
            4,
            &[
                off + 512,
                off + 4096,
                off + 1,
                prev,
                BLOB_DATA_LBA * 512 - 512,
                MFG_DATA_BYTES - 512,
            ],
        ));
        let len = u64::from(e.length);
        f.push(Field::new(
            at + 56,
            4,
            &[len, len + 1, len - 1, 48, 49, 65584, 65585, 512],
        ));
        f.push(Field::new(at + 60, 4, &[0, 1]));
        // The key modifier (any value is valid; a short one's padding is
        // zero).
        f.push(Field::new(
            at + 40,
            8,
            &[0, u64::MAX, 0x0123_4567_89ab_cdef],
        ));
    }
    f
}

/// Makes each entry's key-modifier flag bit 1 and length byte agree with
/// what an edit set, as a writer would: a set length sets the flags
/// (`FLAG_KM_SHORT | FLAG_KM_GIVEN`, or neither for 0); set flags or key
/// modifier bytes make the length cover the bytes up to the last non-zero
/// one (a key modifier that reaches 16 bytes becomes a full one).
fn repair_key_modifiers(b: &mut [u8], n: usize, ed: &[usize]) {
    for k in 0..n {
        let at = TABLE_HEADER_LEN + k * TABLE_ENTRY_LEN;
        let (f, l) = (at + 33, at + 34);
        let km_ed = ed.contains(&(at + 36)) || ed.contains(&(at + 40));
        if ed.contains(&l) {
            if !ed.contains(&f) {
                b[f] = if b[l] == 0 { b[f] & !2 } else { b[f] | 3 };
            }
        } else if ed.contains(&f) || km_ed {
            let field = &b[at + 36..at + 52];
            let cover = field.iter().rposition(|&x| x != 0).map_or(1, |i| i + 1);
            if b[f] & 2 == 0 || cover == 16 {
                b[f] &= !2;
                b[l] = 0;
            } else {
                b[l] = cover as u8;
            }
        }
    }
}

/// Lays out again, by the layout rule, every blob whose offset no edit set,
/// after the (maybe changed) length of the one before it.
fn replace_offsets(b: &mut [u8], n: usize, ed: &[usize]) {
    let mut prev_end = None;
    for k in 0..n {
        let at = TABLE_HEADER_LEN + k * TABLE_ENTRY_LEN;
        if !ed.contains(&(at + 52)) {
            let off = next_blob_offset(prev_end).min(u64::from(u32::MAX)) as u32;
            b[at + 52..at + 56].copy_from_slice(&off.to_le_bytes());
        }
        let off = u64::from(u32::from_le_bytes(b[at + 52..at + 56].try_into().unwrap()));
        let len = u64::from(u32::from_le_bytes(b[at + 56..at + 60].try_into().unwrap()));
        prev_end = Some(off + len);
    }
}

#[test]
fn prop_blob_table_fields() {
    fuzz_property(
        "prop_blob_table_fields",
        512,
        reach::BLOB_TABLE,
        0.5,
        (valid_table(), edits(2), 0u8..4),
        |(es, eds, repair)| {
            let mut b = vec![0u8; TABLE_MAX_LEN];
            let (n, _) = write_blob_table(&mut b, &es).unwrap();
            b.truncate(n);
            let fields = table_fields(&es);
            apply(&mut b, &fields, &eds);
            if repair != 0 {
                let ed = edited(&fields, &eds);
                replace_offsets(&mut b, es.len(), &ed);
                repair_key_modifiers(&mut b, es.len(), &ed);
            }
            // Recompute the CRC over the header and the entries the (maybe
            // changed) count names, as far as they exist.
            let count = usize::from(le16(&b, 6));
            let end = (TABLE_HEADER_LEN + count * TABLE_ENTRY_LEN).min(b.len());
            let mut d = CRC32.digest();
            d.update(&b[..12]);
            d.update(&b[TABLE_HEADER_LEN..end]);
            let crc = d.finalize();
            b[12..16].copy_from_slice(&crc.to_le_bytes());
            reach::take();
            match BlobTable::parse(&b) {
                Ok(t) => {
                    let got: Vec<BlobEntry> = t.iter().collect();
                    table_rules(&got)?;
                    let mut again = vec![0u8; TABLE_MAX_LEN];
                    let (m, c) = write_blob_table(&mut again, &got).unwrap();
                    prop_assert_eq!(&again[..m], &b[..m], "round trip");
                    prop_assert_eq!(c, t.crc());
                }
                Err(FormatError::Truncated { what: "blob table" }) => {
                    prop_assert!(count > es.len(), "truncated with {} entries", count);
                }
                Err(e) => prop_assert!(is_field_error(e, &["blob", "secret type"]), "{:?}", e),
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Bundle partition header

#[test]
fn prop_bundle_partition_header_fields() {
    let hl = HEADER_LEN as u64;
    let fields = [
        Field::new(6, 2, &[0, 0, 0, 1]),
        Field::new(
            8,
            4,
            &[
                hl - 1,
                hl,
                hl + 16,
                MAX_BUNDLE_LEN as u64,
                MAX_BUNDLE_LEN as u64 + 1,
                MFG_BUNDLE_BYTES - BUNDLE_OFFSET,
                MFG_BUNDLE_BYTES - BUNDLE_OFFSET + 1,
            ],
        ),
        Field::new(12, 4, &[0, 1]),
    ];
    fuzz_property(
        "prop_bundle_partition_header_fields",
        512,
        reach::BUNDLE_PART,
        0.5,
        (hl as u32..=MAX_BUNDLE_LEN as u32, any::<u32>(), edits(2)),
        |(len, crc, es)| {
            let h = BundlePartitionHeader {
                bundle_len: len,
                bundle_crc: crc,
            };
            prop_assert_eq!(BundlePartitionHeader::parse(&h.to_block()), Ok(h));
            let mut b = h.to_block();
            apply(&mut b, &fields, &es);
            let c = crc32(&b[..16]);
            b[16..20].copy_from_slice(&c.to_le_bytes());
            reach::take();
            match BundlePartitionHeader::parse(&b) {
                Ok(p) => {
                    prop_assert_eq!(&p.to_block()[..], &b[..], "round trip");
                    let n = p.bundle_len as usize;
                    prop_assert!((HEADER_LEN..=MAX_BUNDLE_LEN).contains(&n), "length {}", n);
                    prop_assert!(n as u64 + BUNDLE_OFFSET <= MFG_BUNDLE_BYTES);
                }
                Err(e) => prop_assert!(is_field_error(e, &["bundle partition"]), "{:?}", e),
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------
// Sealed bundle: fields of the header and of the encrypted secret list,
// re-encrypted with a fresh tag so they reach the list checks.

const PK: [u8; 64] = [7u8; 64];

#[derive(Clone, Debug)]
struct BundleCase {
    secrets: Vec<(Vec<u8>, u8, Option<KeyModifier>)>,
    bundle_id: u64,
    nonce: [u8; 12],
}

fn bundle_case() -> impl Strategy<Value = BundleCase> {
    (
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 1..64),
                1u8..=4,
                proptest::option::of(prop_oneof![
                    2 => any::<[u8; 16]>().prop_map(KeyModifier::full),
                    1 => proptest::collection::vec(1u8..=255, 1..=15)
                        .prop_map(|b| KeyModifier::new(&b).unwrap()),
                ]),
            ),
            1..=3,
        ),
        any::<u64>(),
        any::<[u8; 12]>(),
    )
        .prop_map(|(secrets, bundle_id, nonce)| BundleCase {
            secrets,
            bundle_id,
            nonce,
        })
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| std::format!("secret-{i}")).collect()
}

fn specs<'a>(c: &'a BundleCase, names: &'a [String]) -> Vec<SecretSpec<'a>> {
    c.secrets
        .iter()
        .zip(names)
        .map(|((data, kind, km), name)| SecretSpec {
            name,
            kind: SecretType::from_code(*kind).unwrap(),
            key_modifier: *km,
            data,
        })
        .collect()
}

/// The secret list as fields, so an edit can keep what depends on it
/// consistent: a changed length resizes the data, a derived key modifier
/// follows a changed name (unless the edit was to the key modifier).
#[derive(Clone, Debug)]
struct RawEntry {
    name: [u8; MAX_NAME_LEN],
    kind: u8,
    flags: u8,
    km_len: u8,
    reserved: u8,
    len: u32,
    key_modifier: [u8; 16],
    km_edited: bool,
    data: Vec<u8>,
}

#[derive(Clone, Debug)]
struct RawList {
    version: u16,
    count: u16,
    entries: Vec<RawEntry>,
    trailing: usize,
}

impl RawList {
    fn from_specs(sp: &[SecretSpec<'_>]) -> Self {
        let entries = sp
            .iter()
            .map(|s| {
                let mut name = [0u8; MAX_NAME_LEN];
                name[..s.name.len()].copy_from_slice(s.name.as_bytes());
                // docs/formats.md 1.3: a short key modifier sets flag bit 1
                // and its length at byte 34, the field is zero-padded.
                let km = s.key_modifier.map_or_else(
                    || derive_key_modifier(s.name.as_bytes()).to_vec(),
                    |k| k.as_bytes().to_vec(),
                );
                let short = km.len() < 16;
                let mut field = [0u8; 16];
                field[..km.len()].copy_from_slice(&km);
                RawEntry {
                    name,
                    kind: s.kind.code(),
                    flags: u8::from(s.key_modifier.is_some()) | if short { 2 } else { 0 },
                    km_len: if short { km.len() as u8 } else { 0 },
                    reserved: 0,
                    len: s.data.len() as u32,
                    key_modifier: field,
                    km_edited: false,
                    data: s.data.to_vec(),
                }
            })
            .collect::<Vec<_>>();
        Self {
            version: crate::bundle::VERSION,
            count: entries.len() as u16,
            entries,
            trailing: 0,
        }
    }

    /// Applies one edit: a field of an entry, the list header, or the
    /// list's shape (an entry dropped or repeated, a trailing byte).
    fn edit(&mut self, e: &Edit) {
        let n = self.entries.len();
        let pick = |vals: &[u64]| -> u64 {
            match e.kind {
                0..=5 => vals[e.pick.index(vals.len())],
                6 => [0, 1, 0xff, u64::from(u32::MAX)][e.pick.index(4)],
                _ => e.random,
            }
        };
        // 14 kinds of edit; data bytes (the bulk of a list) weigh 4.
        let which = e.field.index(17);
        let k = (e.random >> 32) as usize % n.max(1);
        match which {
            0 => self.version = pick(&[1, 1, 1, 2, 0]) as u16,
            1 => {
                let c = u64::from(self.count);
                self.count = pick(&[c, c.saturating_sub(1), c + 1, 0, 65]) as u16;
            }
            2 => {
                if n > 1 {
                    self.entries.remove(k);
                    self.count = self.count.saturating_sub(1);
                }
            }
            3 => {
                let dup = self.entries[k].clone();
                self.entries.push(dup);
                self.count = self.count.saturating_add(1);
            }
            4 => self.trailing += 1,
            5 | 6 => {
                // A name byte: the first, the last of "secret-N", or one
                // after it (valid characters, NUL, space, '/').
                let at = [0, 7, 8][e.pick.index(3)];
                let v = pick(&[
                    u64::from(b'a'),
                    u64::from(b'Z'),
                    u64::from(b'9'),
                    u64::from(b'_'),
                    u64::from(b'.'),
                    0,
                    0x20,
                    u64::from(b'/'),
                ]);
                self.entries[k].name[at] = v as u8;
            }
            7 => self.entries[k].kind = pick(&[1, 2, 3, 4, 0, 5]) as u8,
            8 => self.entries[k].flags = pick(&[0, 1, 0, 1, 2, 3, 0x80]) as u8,
            9 => self.entries[k].reserved = pick(&[0, 0, 0, 1]) as u8,
            10 => {
                // A new length; the data follows it when it is small enough
                // to build (else the length and the data disagree).
                let old = u64::from(self.entries[k].len);
                let len = pick(&[old + 1, old.saturating_sub(1), 1, 4096, 0, 65537]) as u32;
                self.entries[k].len = len;
                if (1..=4096).contains(&len) && e.kind & 1 == 0 {
                    self.entries[k].data.resize(len as usize, 0xa5);
                }
            }
            11 => {
                let b = (e.random as usize) % 16;
                self.entries[k].key_modifier[b] ^= 1 << (e.random % 8);
                self.entries[k].km_edited = true;
            }
            12 => {
                let cur = u64::from(self.entries[k].km_len);
                self.entries[k].km_len = pick(&[cur, cur, 1, 15, 16, 0xff]) as u8;
            }
            _ => {
                let d = &mut self.entries[k].data;
                let at = (e.random as usize) % d.len().max(1);
                if let Some(x) = d.get_mut(at) {
                    *x = !*x;
                }
            }
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&LIST_MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        for e in &self.entries {
            let km = if e.flags & FLAG_KM_GIVEN == 0 && !e.km_edited {
                let n = e.name.iter().position(|&c| c == 0).unwrap_or(MAX_NAME_LEN);
                derive_key_modifier(&e.name[..n])
            } else {
                e.key_modifier
            };
            out.extend_from_slice(&e.name);
            out.push(e.kind);
            out.push(e.flags);
            out.push(e.km_len);
            out.push(e.reserved);
            out.extend_from_slice(&e.len.to_le_bytes());
            out.extend_from_slice(&km);
            out.extend_from_slice(&e.data);
        }
        out.resize(out.len() + self.trailing, 0);
        out
    }
}

/// Header fields (before encryption; the tag is recomputed over them).
fn header_fields() -> Vec<Field> {
    vec![
        Field::new(10, 2, &[HEADER_LEN as u64, 0]),
        Field::new(12, 4, &[0, 1]),
        Field::new(16, 1, &[u64::from(b'w'), 0, 0x20]),
        Field::new(20, 1, &[u64::from(b'-'), 0, 0xff]),
        Field::new(48, 8, &[0, 42, u64::MAX]),
        Field::new(88, 1, &[u64::from(b'm'), 0, u64::from(b'.')]),
    ]
}

#[test]
fn prop_bundle_fields() {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    fuzz_property(
        "prop_bundle_fields",
        512,
        reach::SECRET_LIST,
        0.5,
        (bundle_case(), edits(2), 0u8..8),
        |(c, es, header_edit)| {
            let in_header = header_edit == 0;
            let ns = names(c.secrets.len());
            let sp = specs(&c, &ns);
            let params = SealParams {
                product: "widget-9000",
                bundle_id: c.bundle_id,
                label: DEFAULT_LABEL,
                salt: [0x5a; 32],
                nonce: c.nonce,
            };
            let mut sealed = vec![0u8; sealed_len(&sp).unwrap()];
            seal(&mut sealed, &params, &sp, &PK).unwrap();
            // The plaintext list and the header, changed.
            let mut written = vec![0u8; plaintext_len(&sp).unwrap()];
            write_secret_list(&mut written, &sp).unwrap();
            let mut list = RawList::from_specs(&sp);
            prop_assert_eq!(&list.to_bytes(), &written);
            let mut header = sealed[..HEADER_LEN].to_vec();
            if in_header {
                apply(&mut header, &header_fields(), &es[..1]);
            }
            for e in &es[usize::from(in_header)..] {
                list.edit(e);
            }
            let pt = list.to_bytes();
            let ct_len = u32::try_from(pt.len()).unwrap();
            header[124..128].copy_from_slice(&ct_len.to_le_bytes());
            // Re-encrypt under the key the (changed) header derives.
            let mut buf = header.clone();
            let hdr = match BundleHeader::parse(&header) {
                Ok(h) => h,
                Err(e) => {
                    buf.extend_from_slice(&pt);
                    buf.extend_from_slice(&[0; TAG_LEN]);
                    reach::take();
                    prop_assert_eq!(open_in_place(&mut buf, &PK).err(), Some(e));
                    prop_assert!(is_field_error(e, &["bundle"]), "{:?}", e);
                    return Ok(());
                }
            };
            let key = derive_bundle_key(&PK, &hdr);
            let cipher = Aes256Gcm::new_from_slice(key.as_slice()).unwrap();
            let mut ct = pt.clone();
            let tag = cipher
                .encrypt_inout_detached(&Nonce::from(hdr.nonce), &header, ct.as_mut_slice().into())
                .unwrap();
            buf.extend_from_slice(&ct);
            buf.extend_from_slice(&tag);
            let want = check_secret_list(&pt);
            let expect_sealed = buf.clone();
            reach::take();
            let e = match open_in_place(&mut buf, &PK) {
                Ok(v) => {
                    let reached = reach::take();
                    prop_assert_eq!(want, Ok(v.len()));
                    // Round trip: sealing what was read gives the same bytes.
                    let got: Vec<Secret<'_>> = v.secrets().collect();
                    prop_assert_eq!(got.len(), v.len());
                    for (i, s) in got.iter().enumerate() {
                        prop_assert!((1..=MAX_SECRET_LEN).contains(&s.data.len()));
                        prop_assert!(!s.name.is_empty() && s.name.bytes().all(is_name_byte));
                        prop_assert!(got[..i].iter().all(|o| o.name != s.name), "duplicate");
                        if !s.key_modifier_given {
                            prop_assert_eq!(
                                s.key_modifier,
                                KeyModifier::derived(s.name.as_bytes())
                            );
                        }
                        key_modifier_rules(&s.key_modifier, s.key_modifier_given)?;
                    }
                    let again: Vec<SecretSpec<'_>> = got
                        .iter()
                        .map(|s| SecretSpec {
                            name: s.name,
                            kind: s.kind,
                            key_modifier: s.key_modifier_given.then_some(s.key_modifier),
                            data: s.data,
                        })
                        .collect();
                    let h = v.header();
                    let p = SealParams {
                        product: h.product(),
                        bundle_id: h.bundle_id,
                        label: h.label(),
                        salt: h.salt,
                        nonce: h.nonce,
                    };
                    let mut out = vec![0u8; sealed_len(&again).unwrap()];
                    seal(&mut out, &p, &again, &PK).unwrap();
                    prop_assert_eq!(out, expect_sealed, "round trip");
                    // Keep the probe of the open, not of the re-seal.
                    if reached & reach::SECRET_LIST != 0 {
                        reach::hit(reach::SECRET_LIST);
                    }
                    return Ok(());
                }
                Err(e) => e,
            };
            {
                {
                    prop_assert_ne!(e, FormatError::AuthenticationFailed);
                    prop_assert_eq!(Err(e), want, "open and the list check agree");
                    prop_assert!(
                        is_field_error(e, &["secret", "bundle secret", "derived key modifier"])
                            || matches!(
                                e,
                                FormatError::Truncated { .. }
                                    | FormatError::UnsupportedVersion { .. }
                            ),
                        "{:?}",
                        e
                    );
                    // The plaintext is wiped when refused.
                    prop_assert!(
                        buf[HEADER_LEN..HEADER_LEN + pt.len()]
                            .iter()
                            .all(|&x| x == 0)
                    );
                }
            }
            Ok(())
        },
    );
}
