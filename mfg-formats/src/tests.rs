//! Unit and property tests of every format.

use std::string::String;
use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use crate::area::*;
use crate::bundle::*;
use crate::identity::*;
use crate::*;

const PK: [u8; 64] = [7u8; 64];

fn specs<'a>(data: &'a [Vec<u8>]) -> Vec<SecretSpec<'a>> {
    data.iter()
        .enumerate()
        .map(|(i, d)| SecretSpec {
            name: ["wifi-key", "device.pem", "cloud_token", "x"][i % 4],
            kind: [
                SecretType::Raw,
                SecretType::Pem,
                SecretType::Opaque,
                SecretType::Der,
            ][i % 4],
            key_modifier: if i % 2 == 1 {
                Some([i as u8; 16].into())
            } else {
                None
            },
            data: d,
        })
        .collect()
}

fn params() -> SealParams<'static> {
    SealParams {
        product: "widget-9000",
        bundle_id: 42,
        label: DEFAULT_LABEL,
        salt: [0x5a; 32],
        nonce: [0xa5; 12],
    }
}

fn sealed(data: &[Vec<u8>]) -> Vec<u8> {
    let s = specs(data);
    let mut out = vec![0u8; sealed_len(&s).unwrap()];
    let n = seal(&mut out, &params(), &s, &PK).unwrap();
    assert_eq!(n, out.len());
    out
}

#[test]
fn bundle_round_trip() {
    let data = vec![
        vec![1u8; 32],
        b"-----BEGIN X-----".to_vec(),
        vec![9u8; 1000],
    ];
    let mut b = sealed(&data);
    // Ciphertext does not contain the plaintext.
    assert!(!b.windows(32).any(|w| w == [1u8; 32]));
    let v = open_in_place(&mut b, &PK).unwrap();
    assert_eq!(v.header().product(), "widget-9000");
    assert_eq!(v.header().bundle_id, 42);
    assert_eq!(v.len(), 3);
    let got: Vec<_> = v.secrets().collect();
    assert_eq!(got[0].name, "wifi-key");
    assert_eq!(got[0].data, &data[0][..]);
    assert_eq!(got[0].key_modifier, KeyModifier::derived(b"wifi-key"));
    assert!(!got[0].key_modifier_given);
    assert_eq!(got[1].key_modifier, [1u8; 16].into());
    assert_eq!(got[1].kind, SecretType::Pem);
    assert_eq!(got[2].data, &data[2][..]);
}

#[test]
fn view_drop_zeroizes_plaintext() {
    let data = vec![vec![0x42u8; 64]];
    let mut b = sealed(&data);
    {
        let v = open_in_place(&mut b, &PK).unwrap();
        assert_eq!(v.secrets().next().unwrap().data, &data[0][..]);
    }
    assert!(b[HEADER_LEN..b.len() - TAG_LEN].iter().all(|&x| x == 0));
}

#[test]
fn wrong_key_and_every_flipped_byte_fail_authentication() {
    let data = vec![vec![3u8; 20]];
    let good = sealed(&data);
    let mut b = good.clone();
    let mut other = PK;
    other[63] ^= 1;
    assert_eq!(
        open_in_place(&mut b, &other).unwrap_err(),
        FormatError::AuthenticationFailed
    );
    for i in 0..good.len() {
        let mut b = good.clone();
        b[i] ^= 0x01;
        let e = open_in_place(&mut b, &PK).unwrap_err();
        // A flipped header byte may first fail header validation; every
        // other byte must fail the tag.
        if i >= HEADER_LEN {
            assert_eq!(e, FormatError::AuthenticationFailed, "byte {i}");
        }
    }
}

#[test]
fn truncated_bundle_refused() {
    let good = sealed(&[vec![3u8; 20]]);
    for n in 0..good.len() {
        let mut b = good[..n].to_vec();
        assert!(open_in_place(&mut b, &PK).is_err(), "len {n}");
    }
}

#[test]
fn seal_refuses_bad_inputs() {
    let d = [1u8; 4];
    let mk = |name| SecretSpec {
        name,
        kind: SecretType::Raw,
        key_modifier: None,
        data: &d,
    };
    assert_eq!(
        plaintext_len(&[]).unwrap_err(),
        FormatError::BadLength {
            what: "secret count"
        }
    );
    assert!(plaintext_len(&[mk("")]).is_err());
    assert!(plaintext_len(&[mk("has space")]).is_err());
    assert!(plaintext_len(&[mk("a23456789012345678901234567890123")]).is_err());
    assert_eq!(
        plaintext_len(&[mk("a"), mk("a")]).unwrap_err(),
        FormatError::DuplicateName
    );
    let big = vec![0u8; MAX_SECRET_LEN + 1];
    assert!(
        plaintext_len(&[SecretSpec {
            data: &big,
            ..mk("a")
        }])
        .is_err()
    );
    let many: Vec<String> = (0..65).map(|i| std::format!("s{i}")).collect();
    let specs: Vec<_> = many.iter().map(|n| mk(n)).collect();
    assert!(plaintext_len(&specs).is_err());
    assert!(plaintext_len(&specs[..64]).is_ok());
    let mut out = vec![0u8; 10];
    assert_eq!(
        seal(&mut out, &params(), &[mk("a")], &PK).unwrap_err(),
        FormatError::BufferTooSmall
    );
}

#[test]
fn open_for_product_refuses_other_products_before_decrypting() {
    let mut b = sealed(&[vec![1u8; 8]]);
    let before = b.clone();
    assert_eq!(
        open_for_product(&mut b, &PK, "other").unwrap_err(),
        FormatError::WrongProduct
    );
    assert_eq!(b, before, "buffer touched");
    assert_eq!(
        open_for_product(&mut b, &PK, "widget-9000").unwrap().len(),
        1
    );
}

#[test]
fn journal_successor_and_id_block() {
    let j = journal(ProvState::IdSigned, 4);
    let mut n = j.successor();
    n.state = ProvState::SecretsBlobbed;
    n.blob_count = 1;
    n.table_crc = 5;
    assert_eq!(n.sequence, 5);
    assert_eq!(select_journal(&j.to_block(), &n.to_block()), Some((n, 1)));
    let sealed = record().seal(&OEM_RECORD_PUB, &[0x66; 32]).unwrap();
    let blk = identity::sealed_block(&sealed);
    assert_eq!(identity::sealed_from_block(&blk).unwrap(), sealed);
    assert_eq!(IdRecord::open(&blk, &OEM_RECORD_SECRET).unwrap(), record());
    assert!(blk[SEALED_LEN..].iter().all(|&x| x == 0));
    assert_eq!((RECORD_LEN, SEALED_LEN, CONSOLE_LINE_LEN), (324, 416, 568));
}

#[test]
fn derived_key_modifier_is_checked() {
    // A list whose derived key modifier is wrong is refused after decryption.
    let mut pt = vec![0u8; LIST_HEADER_LEN + ENTRY_HEADER_LEN + 1];
    pt[..4].copy_from_slice(&LIST_MAGIC);
    pt[4..6].copy_from_slice(&1u16.to_le_bytes());
    pt[6..8].copy_from_slice(&1u16.to_le_bytes());
    pt[8] = b'a';
    pt[40] = 1;
    pt[44..48].copy_from_slice(&1u32.to_le_bytes());
    assert_eq!(
        check_secret_list(&pt).unwrap_err(),
        FormatError::BadField {
            what: "derived key modifier"
        }
    );
    pt[48..64].copy_from_slice(&derive_key_modifier(b"a"));
    assert_eq!(check_secret_list(&pt), Ok(1));
}

#[test]
fn key_modifier_derivation_is_the_documented_one() {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(b"mfgprot key modifier v1\0wifi-key");
    assert_eq!(derive_key_modifier(b"wifi-key")[..], d[..16]);
}

fn message() -> IdentityMessage {
    let mut m = IdentityMessage {
        soc: SOC_IMX8MP,
        uid: [0x11; 16],
        srk_hash: [0x22; 32],
        security_state: SecurityState::Closed,
        boot_counter: 3,
        loader_version: [0; 16],
        product: [0; identity::PRODUCT_LEN],
        bundle_id: Some(42),
        bundle_digest: [0x77; 32],
        station_nonce: None,
    };
    m.set_loader_version("0.1.0");
    m.set_product("imx8mp-demo");
    m
}

/// The OEM record key pair of these tests.
const OEM_RECORD_SECRET: [u8; 32] = [0x5e; 32];
static OEM_RECORD_PUB: std::sync::LazyLock<[u8; 64]> = std::sync::LazyLock::new(record_pub);

fn record_pub() -> [u8; 64] {
    crate::sealed::public_key(&OEM_RECORD_SECRET).unwrap()
}

fn record_block() -> [u8; 512] {
    identity::sealed_block(&record().seal(&OEM_RECORD_PUB, &[0x68; 32]).unwrap())
}

fn record() -> IdRecord {
    let mut r = IdRecord {
        message: message(),
        mpmr: [0x33; 32],
        mes_rep: [0; 32],
        c: [0x44; 32],
        d: [0x55; 32],
    };
    r.mes_rep = r.digest();
    r
}

#[test]
fn id_record_round_trip_and_console_line() {
    let r = record();
    let b = r.to_bytes();
    assert_eq!(IdRecord::parse(&b).unwrap(), r);
    let sealed = r.seal(&OEM_RECORD_PUB, &[0x67; 32]).unwrap();
    let mut line = [0u8; 600];
    let n = identity::console_line(&sealed, &mut line).unwrap();
    assert_eq!(n, CONSOLE_PREFIX.len() + SEALED_BASE64_LEN);
    assert!(line[..n].starts_with(b"mfgprot-id: "));
    let back = identity::sealed_from_console_line(&line[..n]).unwrap();
    assert_eq!(IdRecord::open(&back, &OEM_RECORD_SECRET).unwrap(), r);
    for i in 0..RECORD_LEN {
        let mut c = b;
        c[i] ^= 0x80;
        assert!(IdRecord::parse(&c).is_err(), "flip {i}");
    }
    assert_eq!(
        IdRecord::parse(&b[..RECORD_LEN - 1]).unwrap_err(),
        FormatError::Truncated { what: "ID record" }
    );
    assert_eq!(r.message.loader_version_str(), "0.1.0");
}

#[test]
fn message_refuses_inconsistent_flags() {
    let mut b = message().to_bytes();
    assert!(IdentityMessage::parse(&b).is_ok());
    b[57] = 0; // bundle flag cleared but bundle id 42 stays
    assert_eq!(
        IdentityMessage::parse(&b).unwrap_err(),
        FormatError::BadField {
            what: "identity bundle id"
        }
    );
}

#[test]
fn base64_matches_known_vectors() {
    let cases: [(&[u8], &str); 4] = [
        (b"", ""),
        (b"f", "Zg=="),
        (b"fo", "Zm8="),
        (b"foobar", "Zm9vYmFy"),
    ];
    for (raw, enc) in cases {
        let mut o = [0u8; 16];
        let n = base64::encode(raw, &mut o).unwrap();
        assert_eq!(&o[..n], enc.as_bytes());
        let mut d = [0u8; 16];
        let m = base64::decode(enc.as_bytes(), &mut d).unwrap();
        assert_eq!(&d[..m], raw);
    }
    let mut d = [0u8; 16];
    assert!(
        base64::decode(b"Zh==", &mut d).is_err(),
        "non-zero pad bits"
    );
    assert!(base64::decode(b"Zg=a", &mut d).is_err());
    assert!(base64::decode(b"Z===", &mut d).is_err());
}

fn journal(state: ProvState, seq: u64) -> JournalRecord {
    let has = state >= ProvState::SecretsBlobbed;
    JournalRecord {
        state,
        id_slot: if state == ProvState::Blank {
            None
        } else {
            Some((seq % 2) as u8)
        },
        sequence: seq,
        bundle_id: Some(7),
        blob_count: if has { 2 } else { 0 },
        last_error: 0,
        table_crc: if has { 0xdead_beef } else { 0 },
        boot_counter: 1,
    }
}

#[test]
fn journal_round_trip_and_selection() {
    let a = journal(ProvState::IdSigned, 5);
    let b = journal(ProvState::SecretsBlobbed, 6);
    assert_eq!(JournalRecord::parse(&a.to_block()), Ok(a));
    assert_eq!(select_journal(&a.to_block(), &b.to_block()), Some((b, 1)));
    assert_eq!(select_journal(&b.to_block(), &a.to_block()), Some((b, 0)));
    // Torn write of the newer copy: the older one wins.
    let mut torn = b.to_block();
    torn[20] ^= 0xff;
    assert_eq!(select_journal(&a.to_block(), &torn), Some((a, 0)));
    assert_eq!(select_journal(&[0; 512], &[0xff; 512]), None);
    assert_eq!(next_journal_copy(Some(0)), 1);
    assert_eq!(next_journal_copy(Some(1)), 0);
    assert_eq!(next_journal_copy(None), 0);
    // Inconsistent records are refused.
    let mut bad = journal(ProvState::SecretsBlobbed, 2);
    bad.blob_count = 0;
    assert!(JournalRecord::parse(&bad.to_block()).is_err());
    let mut bad = journal(ProvState::IdSigned, 2);
    bad.id_slot = None;
    assert!(JournalRecord::parse(&bad.to_block()).is_err());
    assert!(JournalRecord::parse(&journal(ProvState::Done, 0).to_block()).is_err());
}

#[test]
fn journal_tie_goes_to_copy_0() {
    // Two valid copies with the same sequence but different content: the
    // documented rule picks copy 0, whichever order they are in.
    let a = journal(ProvState::IdSigned, 5);
    let mut b = journal(ProvState::SecretsBlobbed, 5);
    b.boot_counter = 99;
    assert_eq!(select_journal(&a.to_block(), &b.to_block()), Some((a, 0)));
    assert_eq!(select_journal(&b.to_block(), &a.to_block()), Some((b, 0)));
    // Exactly half the sequence space apart: neither is newer, copy 0 wins.
    let far = journal(ProvState::Done, 5 + (1 << 63));
    assert_eq!(select_journal(&a.to_block(), &far.to_block()), Some((a, 0)));
    assert_eq!(
        select_journal(&far.to_block(), &a.to_block()),
        Some((far, 0))
    );
}

/// A record with `sequence` written by hand (to_block writes any value, as
/// a CM with eMMC write access could).
fn journal_block(state: ProvState, sequence: u64) -> [u8; BLOCK] {
    let mut j = journal(state, 1);
    j.sequence = sequence;
    j.id_slot = j.id_slot.map(|_| 0);
    j.to_block()
}

/// One step of the loader's journal protocol (`loader/src/flow`): read the
/// current record, write its successor (state advanced) into the other
/// copy. Returns what the next read selects.
fn journal_step(copies: &mut [[u8; BLOCK]; 2]) -> (JournalRecord, JournalRecord, usize) {
    let cur = select_journal(&copies[0], &copies[1]);
    let rec = cur.map(|(r, _)| r).unwrap_or(JournalRecord::BLANK);
    let mut next = rec.successor();
    next.state = ProvState::IdSigned;
    next.id_slot = Some(0);
    next.blob_count = 0;
    next.table_crc = 0;
    let copy = next_journal_copy(cur.map(|(_, c)| c));
    copies[copy] = next.to_block();
    let (got, got_copy) = select_journal(&copies[0], &copies[1]).expect("a valid journal");
    (next, got, got_copy)
}

#[test]
fn journal_sequence_max_cannot_wedge_the_journal() {
    // u64::MAX is not a valid sequence.
    assert_eq!(
        JournalRecord::parse(&journal_block(ProvState::Done, u64::MAX)),
        Err(FormatError::BadField {
            what: "journal sequence"
        })
    );
    let max = journal_block(ProvState::Done, u64::MAX);
    let valid = journal_block(ProvState::Blank, 7);
    // Both copies at MAX (formerly: copy 0 won the tie for ever and every
    // boot rewrote copy 1 with MAX again), one copy at MAX (either one),
    // and MAX - 1 (whose successor used to saturate at MAX): in every case
    // the record the loader writes next is the one the next boot reads,
    // and so is the one after it.
    for start in [
        [max, max],
        [max, valid],
        [valid, max],
        [journal_block(ProvState::Done, MAX_SEQUENCE), valid],
        [valid, journal_block(ProvState::Done, MAX_SEQUENCE)],
        [
            journal_block(ProvState::Done, MAX_SEQUENCE),
            journal_block(ProvState::Done, MAX_SEQUENCE - 1),
        ],
    ] {
        let mut copies = start;
        for step in 0..3 {
            let (written, got, copy) = journal_step(&mut copies);
            assert_eq!(got, written, "step {step}: the new record is current");
            assert_ne!(written.sequence, u64::MAX);
            assert_eq!(
                JournalRecord::parse(&copies[copy]),
                Ok(written),
                "step {step}"
            );
        }
    }
    assert_eq!(
        journal(ProvState::Done, MAX_SEQUENCE).successor().sequence,
        1
    );
    assert!(sequence_newer(1, MAX_SEQUENCE));
    assert!(!sequence_newer(MAX_SEQUENCE, 1));
    assert!(sequence_newer(6, 5) && !sequence_newer(5, 6) && !sequence_newer(5, 5));
}

fn entries() -> Vec<BlobEntry> {
    let o1 = next_blob_offset(None);
    let e1 = BlobEntry::new(
        "wifi-key",
        SecretType::Raw,
        [1; 16].into(),
        false,
        o1 as u32,
        80,
        0x1234,
    )
    .unwrap();
    let o2 = next_blob_offset(Some(o1 + 80));
    let e2 = BlobEntry::new(
        "device.pem",
        SecretType::Pem,
        [2; 16].into(),
        true,
        o2 as u32,
        1048,
        0x5678,
    )
    .unwrap();
    vec![e1, e2]
}

#[test]
fn blob_table_round_trip_and_checks() {
    let es = entries();
    assert_eq!(es[1].offset, 32 * 512 + 512);
    let mut buf = [0u8; TABLE_MAX_LEN];
    let (n, crc) = write_blob_table(&mut buf, &es).unwrap();
    assert_eq!(n, 16 + 128);
    let t = BlobTable::parse(&buf[..n]).unwrap();
    assert_eq!(t.crc(), crc);
    assert_eq!(t.iter().collect::<Vec<_>>(), es);
    assert_eq!(t.get(1).unwrap().name(), "device.pem");
    assert_eq!(t.get(1).unwrap().secret_len(), 1000);
    // Overlap, misalignment, duplicates are refused by the writer too.
    let mut ov = es.clone();
    ov[1].offset = ov[0].offset;
    assert!(write_blob_table(&mut buf, &ov).is_err());
    let mut mis = es.clone();
    mis[1].offset += 1;
    assert!(write_blob_table(&mut buf, &mis).is_err());
    let mut second = es[0];
    second.offset = es[1].offset;
    let dup = vec![es[0], second];
    assert_eq!(
        write_blob_table(&mut buf, &dup).unwrap_err(),
        FormatError::DuplicateName
    );
    let mut low = es.clone();
    low[0].offset = 0;
    assert!(write_blob_table(&mut buf, &low).is_err());
    let (n, _) = write_blob_table(&mut buf, &es).unwrap();
    for i in 0..n {
        let mut c = buf;
        c[i] ^= 4;
        assert!(BlobTable::parse(&c[..n]).is_err(), "flip {i}");
    }
}

#[test]
fn blob_planner_follows_the_layout_rule_and_fits_64_max_secrets() {
    let mut p = BlobPlanner::new();
    assert_eq!(p.place(16).unwrap(), (16384, 64));
    assert_eq!(p.place(600).unwrap(), (16384 + 512, 648));
    assert_eq!(p.place(1).unwrap(), (16384 + 512 + 1024, 49));
    assert!(p.place(0).is_err());
    let mut p = BlobPlanner::new();
    let mut es = Vec::new();
    for i in 0..64 {
        let (off, len) = p.place(MAX_SECRET_LEN).unwrap();
        es.push(
            BlobEntry::new(
                &std::format!("s{i}"),
                SecretType::Raw,
                [0; 16].into(),
                true,
                off,
                len,
                0,
            )
            .unwrap(),
        );
    }
    let mut buf = [0u8; TABLE_MAX_LEN];
    assert!(write_blob_table(&mut buf, &es).is_ok());
    assert!(
        p.place(MAX_SECRET_LEN).is_ok(),
        "room left after 64 maximal blobs"
    );
    assert_eq!(
        error_code::for_format_error(FormatError::AuthenticationFailed),
        error_code::BUNDLE_AUTH
    );
    assert_eq!(
        error_code::name(error_code::WRONG_PRODUCT),
        "bundle for another product"
    );
}

#[test]
fn bundle_partition_header() {
    let b = sealed(&[vec![1u8; 10]]);
    let h = BundlePartitionHeader::for_bundle(&b).unwrap();
    let blk = h.to_block();
    assert_eq!(BundlePartitionHeader::parse(&blk), Ok(h));
    assert!(h.check(&b).is_ok());
    let mut c = b.clone();
    c[5] ^= 1;
    assert_eq!(
        h.check(&c).unwrap_err(),
        FormatError::BadCrc {
            what: "bundle partition"
        }
    );
    assert_eq!(
        BundlePartitionHeader::parse(&[0u8; 512]).unwrap_err(),
        FormatError::BadMagic {
            what: "bundle partition header"
        }
    );
}

#[test]
fn partition_guids_match_the_documented_table() {
    use crate::partitions::*;
    // docs/formats.md, section 5 "GPT partitions".
    let documented = [
        "BC126847-B355-4F88-A484-0C3B4CD5AAB0",
        "168B29FF-2236-4BFC-BC72-C58CDC82B3F7",
        "9B980737-E84A-4932-AB20-668F8353ADFF",
        "06548593-E8BE-4C97-BED6-35EDF49EA9E8",
        "150EF8C5-5BE2-418C-9CEE-3BC8CC17691A",
        "7C5E3A10-9D2B-4F61-8A3E-521F6BC490D7",
        "3B8F8425-20E0-4F3B-907F-1A25A76F98E8",
    ];
    for (p, text) in ALL.iter().zip(documented) {
        assert_eq!(block::Guid::parse(text), Ok(p.type_guid), "{}", p.name);
    }
    // Mixed endian on disk: the first field little-endian.
    assert_eq!(MFG_DATA.type_guid.0[..4], [0x47, 0x68, 0x12, 0xbc]);
}

#[test]
fn errors_display_specific_messages() {
    assert_eq!(
        std::format!("{}", FormatError::AuthenticationFailed),
        "bundle authentication failed"
    );
    assert_eq!(
        std::format!(
            "{}",
            FormatError::UnsupportedVersion {
                what: "bundle header",
                version: 9
            }
        ),
        "bundle header: unsupported format version 9"
    );
}

/// `PROPTEST_CASES=N` sets the case count (`cargo xtask fuzz`), else
/// `default`.
pub(crate) fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// Sequence numbers biased to the edges of the range.
fn any_sequence() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0),
        Just(1),
        Just(MAX_SEQUENCE),
        Just(u64::MAX),
        (0u64..4).prop_map(|d| (1 << 63) + d - 2),
        1u64..16,
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn prop_arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let _ = BundleHeader::parse(&b);
        let mut c = b.clone();
        let _ = open_in_place(&mut c, &PK);
        let _ = check_secret_list(&b);
        let _ = IdentityMessage::parse(&b);
        let _ = IdRecord::parse(&b);
        let _ = identity::sealed_from_console_line(&b);
        let _ = IdRecord::open(&b, &OEM_RECORD_SECRET);
        let _ = JournalRecord::parse(&b);
        let _ = BlobTable::parse(&b);
        let _ = BundlePartitionHeader::parse(&b);
        let mut o = [0u8; 2000];
        let _ = base64::decode(&b, &mut o);
        if b.len() >= 1024 {
            let _ = select_journal(&b[..512], &b[512..1024]);
        }
        // The same bytes behind each valid magic + version, so the parsers
        // get past their first check.
        let prefixes: [&[u8]; 7] = [
            b"MFGBUNDL\x01\x00\x80\x00", b"MFID\x02\x00\x50\x8a", b"MFIR\x02\x00\xb8\x00",
            b"MFJR\x01\x00", b"MFBT\x01\x00", b"MFBP\x01\x00", b"SECL\x01\x00",
        ];
        for pre in prefixes {
            let mut c = pre.to_vec();
            c.extend_from_slice(&b);
            let _ = BundleHeader::parse(&c);
            let _ = open_in_place(&mut c.clone(), &PK);
            let _ = check_secret_list(&c);
            let _ = IdentityMessage::parse(&c[..c.len().min(MESSAGE_LEN)]);
            let _ = IdRecord::parse(&c);
            let _ = JournalRecord::parse(&c);
            let _ = BlobTable::parse(&c);
            let _ = BundlePartitionHeader::parse(&c);
        }
    }

    #[test]
    fn prop_mutated_valid_structures_never_panic(i in 0usize..512, x in 1u8..=255) {
        // Start from valid encodings so the parsers get past their magics.
        // A changed journal byte is caught by the magic, the version or the
        // CRC (CRC-32 detects every single-byte change).
        let mut jb = journal(ProvState::Done, 9).to_block();
        let k = i % JOURNAL_LEN;
        jb[k] ^= x;
        let want = match k {
            0..=3 => FormatError::BadMagic { what: "journal" },
            4 | 5 => FormatError::UnsupportedVersion {
                what: "journal",
                version: u16::from_le_bytes([jb[4], jb[5]]),
            },
            _ => FormatError::BadCrc { what: "journal" },
        };
        prop_assert_eq!(JournalRecord::parse(&jb), Err(want));
        let mut rb = record().to_bytes();
        rb[i % RECORD_LEN] ^= x;
        prop_assert!(IdRecord::parse(&rb).is_err());
        let mut tb = [0u8; TABLE_MAX_LEN];
        let (n, _) = write_blob_table(&mut tb, &entries()).unwrap();
        tb[i % n] ^= x;
        prop_assert!(BlobTable::parse(&tb[..n]).is_err());
    }

    #[test]
    fn prop_secret_list_mutations_never_panic(i in 0usize..200, x in 1u8..=255) {
        // Parse plaintext lists directly (behind the AEAD they would be
        // unreachable, but the loader must not trust its own crypto either).
        let data = vec![vec![1u8; 16], vec![2u8; 40]];
        let s = specs(&data);
        let mut list = vec![0u8; plaintext_len(&s).unwrap()];
        write_secret_list(&mut list, &s).unwrap();
        prop_assert_eq!(check_secret_list(&list), Ok(2));
        let k = i % list.len();
        list[k] ^= x;
        let _ = check_secret_list(&list);
    }

    #[test]
    fn prop_bundle_round_trips(
        lens in proptest::collection::vec(1usize..300, 1..6),
        fill in any::<u8>(),
        bundle_id in any::<u64>(),
        salt in any::<[u8; 32]>(),
        nonce in any::<[u8; 12]>(),
    ) {
        let data: Vec<Vec<u8>> = lens.iter().map(|&n| vec![fill; n]).collect();
        let names: Vec<String> = (0..data.len()).map(|i| std::format!("s{i}")).collect();
        let s: Vec<_> = data.iter().zip(&names).map(|(d, n)| SecretSpec {
            name: n, kind: SecretType::Opaque, key_modifier: None, data: d,
        }).collect();
        let p = SealParams { product: "p", bundle_id, label: DEFAULT_LABEL, salt, nonce };
        let mut out = vec![0u8; sealed_len(&s).unwrap()];
        seal(&mut out, &p, &s, &PK).unwrap();
        let v = open_in_place(&mut out, &PK).unwrap();
        prop_assert_eq!(v.header().bundle_id, bundle_id);
        for (got, want) in v.secrets().zip(&s) {
            prop_assert_eq!(got.name, want.name);
            prop_assert_eq!(got.data, want.data);
        }
        prop_assert_eq!(v.secrets().count(), s.len());
    }

    #[test]
    fn prop_id_record_round_trips(
        uid in any::<[u8; 16]>(), srk in any::<[u8; 32]>(), ctr in any::<u32>(),
        bid in proptest::option::of(any::<u64>()), nonce in proptest::option::of(any::<[u8; 32]>()),
        c in any::<[u8; 32]>(), d in any::<[u8; 32]>(), st in 1u8..=3,
    ) {
        let mut m = message();
        m.uid = uid; m.srk_hash = srk; m.boot_counter = ctr; m.bundle_id = bid;
        m.bundle_digest = if bid.is_some() { c } else { [0; 32] };
        m.station_nonce = nonce; m.security_state = SecurityState::from_code(st).unwrap();
        let r = IdRecord { message: m, mpmr: srk, mes_rep: uid.repeat(2).try_into().unwrap(), c, d };
        prop_assert_eq!(IdRecord::parse(&r.to_bytes()).unwrap(), r.clone());
        let sealed = r.seal(&OEM_RECORD_PUB, &d).unwrap_or_else(|_| r.seal(&OEM_RECORD_PUB, &[1; 32]).unwrap());
        let mut line = [0u8; 600];
        let n = identity::console_line(&sealed, &mut line).unwrap();
        let back = identity::sealed_from_console_line(&line[..n]).unwrap();
        prop_assert_eq!(IdRecord::open(&back, &OEM_RECORD_SECRET).unwrap(), r);
    }

    #[test]
    fn prop_base64_round_trips(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut e = vec![0u8; base64::encoded_len(b.len())];
        base64::encode(&b, &mut e).unwrap();
        let mut d = vec![0u8; b.len()];
        let n = base64::decode(&e, &mut d).unwrap();
        prop_assert_eq!(&d[..n], &b[..]);
    }

    /// Whatever the two copies hold (valid records with any sequence, or
    /// junk), the record the loader writes next is the one read back, twice
    /// in a row: a planted journal cannot wedge the device.
    #[test]
    fn prop_journal_always_makes_progress(
        s0 in any_sequence(), s1 in any_sequence(), junk0 in any::<bool>(), junk1 in any::<bool>(),
    ) {
        let mut copies = [journal_block(ProvState::Done, s0), journal_block(ProvState::IdSigned, s1)];
        if junk0 { copies[0][60] ^= 1; }
        if junk1 { copies[1][60] ^= 1; }
        for _ in 0..2 {
            let (written, got, _) = journal_step(&mut copies);
            prop_assert_eq!(got, written);
        }
    }

    #[test]
    fn prop_journal_round_trips(st in 0u8..=3, seq in 1u64..=MAX_SEQUENCE, err in any::<u16>(), bc in any::<u32>(), n in 1u16..=64) {
        let state = ProvState::from_code(st).unwrap();
        let mut j = journal(state, seq);
        j.last_error = err;
        j.boot_counter = bc;
        if state >= ProvState::SecretsBlobbed { j.blob_count = n; }
        prop_assert_eq!(JournalRecord::parse(&j.to_block()), Ok(j));
    }
}

/// A model of the loader's write sequence over the documented layout: for
/// every power cut (after write k, or tearing write k in half), resuming
/// from the journal ends `done` with the right table, and the bundle is
/// never erased before a `secrets-blobbed` journal record is durable.
mod power_cut {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Default)]
    struct Disk {
        blocks: BTreeMap<u64, [u8; 512]>,
        bundle_present: bool,
        writes: usize,
        cut_at: Option<(usize, bool)>,
    }

    struct Cut;

    impl Disk {
        fn read(&self, lba: u64) -> [u8; 512] {
            self.blocks.get(&lba).copied().unwrap_or([0; 512])
        }
        fn write(&mut self, lba: u64, data: &[u8; 512]) -> Result<(), Cut> {
            self.writes += 1;
            if let Some((k, torn)) = self.cut_at
                && self.writes == k
            {
                if torn {
                    let mut b = self.read(lba);
                    b[..32].copy_from_slice(&data[..32]);
                    self.blocks.insert(lba, b);
                }
                return Err(Cut);
            }
            self.blocks.insert(lba, *data);
            Ok(())
        }
        fn erase_bundle(&mut self) -> Result<(), Cut> {
            let j = self.journal();
            assert!(
                j.is_some_and(|(r, _)| r.state >= ProvState::SecretsBlobbed),
                "bundle erased before blobs durable"
            );
            self.writes += 1;
            if self.cut_at.is_some_and(|(k, _)| k == self.writes) {
                return Err(Cut);
            }
            self.bundle_present = false;
            Ok(())
        }
        fn journal(&self) -> Option<(JournalRecord, usize)> {
            select_journal(&self.read(0), &self.read(1))
        }
        fn put_journal(&mut self, r: &JournalRecord) -> Result<(), Cut> {
            let copy = next_journal_copy(self.journal().map(|(_, c)| c));
            self.write(JOURNAL_LBA[copy], &r.to_block())
        }
    }

    const SECRETS: [usize; 3] = [16, 700, 40];

    /// The flow, resuming from whatever the journal says.
    fn flow(d: &mut Disk) -> Result<(), Cut> {
        let cur = d.journal().map(|(r, _)| r).unwrap_or(JournalRecord::BLANK);
        let mut j = cur;
        if j.state == ProvState::Blank {
            if !d.bundle_present {
                return Ok(());
            }
            let slot = match cur.id_slot {
                Some(0) => 1,
                _ => 0,
            };
            d.write(ID_SLOT_LBA[slot], &record_block())?;
            j = cur.successor();
            j.state = ProvState::IdSigned;
            j.id_slot = Some(slot as u8);
            j.bundle_id = Some(7);
            d.put_journal(&j)?;
        }
        if j.state == ProvState::IdSigned {
            let mut p = BlobPlanner::new();
            let mut es = Vec::new();
            for (i, &n) in SECRETS.iter().enumerate() {
                let (off, len) = p.place(n).unwrap();
                let blob = vec![i as u8 + 1; len as usize];
                for (k, chunk) in blob.chunks(512).enumerate() {
                    let mut b = [0u8; 512];
                    b[..chunk.len()].copy_from_slice(chunk);
                    d.write(u64::from(off) / 512 + k as u64, &b)?;
                }
                es.push(
                    BlobEntry::new(
                        &std::format!("s{i}"),
                        SecretType::Raw,
                        [0; 16].into(),
                        true,
                        off,
                        len,
                        crc32(&blob),
                    )
                    .unwrap(),
                );
            }
            let mut tb = [0u8; 16 * 512];
            let (n, crc) = write_blob_table(&mut tb, &es).unwrap();
            for k in 0..n.div_ceil(512) {
                d.write(
                    BLOB_TABLE_LBA + k as u64,
                    tb[k * 512..(k + 1) * 512].try_into().unwrap(),
                )?;
            }
            let mut next = j.successor();
            next.state = ProvState::SecretsBlobbed;
            next.blob_count = SECRETS.len() as u16;
            next.table_crc = crc;
            d.put_journal(&next)?;
            j = next;
        }
        if j.state == ProvState::SecretsBlobbed {
            if d.bundle_present {
                d.erase_bundle()?;
            }
            let mut next = j.successor();
            next.state = ProvState::Done;
            d.put_journal(&next)?;
        }
        Ok(())
    }

    fn check_done(d: &Disk) {
        let (j, _) = d.journal().expect("journal");
        assert_eq!(j.state, ProvState::Done);
        assert!(!d.bundle_present);
        let mut tb = std::vec::Vec::new();
        for k in 0..BLOB_TABLE_BLOCKS {
            tb.extend_from_slice(&d.read(BLOB_TABLE_LBA + k));
        }
        let t = BlobTable::parse(&tb).unwrap();
        assert_eq!(t.crc(), j.table_crc);
        for e in t.iter() {
            let mut blob = std::vec::Vec::new();
            for k in 0..(e.length as u64).div_ceil(512) {
                blob.extend_from_slice(&d.read(u64::from(e.offset) / 512 + k));
            }
            assert_eq!(crc32(&blob[..e.length as usize]), e.crc, "{}", e.name());
        }
        let slot = j.id_slot.unwrap();
        assert_eq!(
            IdRecord::open(&d.read(ID_SLOT_LBA[usize::from(slot)]), &OEM_RECORD_SECRET).unwrap(),
            record()
        );
    }

    #[test]
    fn every_cut_point_resumes_to_done_exactly_once() {
        let mut clean = Disk {
            bundle_present: true,
            ..Disk::default()
        };
        assert!(flow(&mut clean).is_ok());
        check_done(&clean);
        let total = clean.writes;
        assert!(total > 8);
        for k in 1..=total {
            for torn in [false, true] {
                let mut d = Disk {
                    bundle_present: true,
                    cut_at: Some((k, torn)),
                    ..Disk::default()
                };
                assert!(flow(&mut d).is_err(), "cut {k} not reached");
                d.cut_at = None;
                assert!(flow(&mut d).is_ok());
                check_done(&d);
                // A provisioned device boots straight through: no writes.
                let before = d.writes;
                assert!(flow(&mut d).is_ok());
                assert_eq!(
                    d.writes, before,
                    "writes on an already provisioned device (cut {k})"
                );
            }
        }
    }
}

/// `disk-key`, raw, 32 bytes of 0x42, key modifier `km` given.
fn one_entry(km: KeyModifier) -> SecretSpec<'static> {
    SecretSpec {
        name: "disk-key",
        kind: SecretType::Raw,
        key_modifier: Some(km),
        data: &[0x42; 32],
    }
}

/// A secret list of one entry: `disk-key`, raw, 32 bytes, key modifier
/// `km` given.
fn one_entry_list(km: KeyModifier) -> Vec<u8> {
    let s = [one_entry(km)];
    let mut pt = vec![0u8; plaintext_len(&s).unwrap()];
    write_secret_list(&mut pt, &s).unwrap();
    pt
}

#[test]
fn short_key_modifiers_are_written_as_documented_and_checked() {
    // Linux trusted keys' "SECURE_KEY": 10 bytes, not its padding to 16.
    let km = KeyModifier::LINUX_TRUSTED;
    assert_eq!(km.as_bytes(), b"SECURE_KEY");
    assert_eq!(KeyModifier::new(b"SECURE_KEY"), Ok(km));
    let mut padded = [0u8; 16];
    padded[..10].copy_from_slice(b"SECURE_KEY");
    assert_ne!(km, KeyModifier::full(padded));
    for bad in [&[][..], &[1u8; 17][..]] {
        assert_eq!(
            KeyModifier::new(bad),
            Err(FormatError::BadLength {
                what: "key modifier"
            })
        );
    }

    // Secret list entry (docs/formats.md 1.3): flags bits 0 and 1, the
    // length at byte 34, the field zero-padded.
    let pt = one_entry_list(km);
    let e = &pt[LIST_HEADER_LEN..];
    assert_eq!((e[33], e[34], e[35]), (3, 10, 0));
    assert_eq!(&e[40..56], &padded);
    assert_eq!(check_secret_list(&pt), Ok(1));
    assert_eq!(opened_key_modifier(km), (km, true));
    // A 16-byte modifier keeps the version 1 layout: bit 1 clear, byte 34
    // zero (existing bundles read as before).
    let full = one_entry_list(KeyModifier::full(padded));
    assert_eq!(
        (full[LIST_HEADER_LEN + 33], full[LIST_HEADER_LEN + 34]),
        (1, 0)
    );
    let full_km = KeyModifier::full(padded);
    assert_eq!(opened_key_modifier(full_km), (full_km, true));
    // Every inconsistent encoding is refused.
    let refused = |at: usize, v: u8| {
        let mut b = pt.clone();
        b[LIST_HEADER_LEN + at] = v;
        check_secret_list(&b).unwrap_err()
    };
    let km_err = FormatError::BadField {
        what: "secret key modifier",
    };
    assert_eq!(refused(33, 2), km_err, "short but derived");
    assert_eq!(refused(33, 1), km_err, "length without the flag");
    assert_eq!(refused(34, 0), km_err, "flag without a length");
    assert_eq!(refused(34, 16), km_err, "16 bytes marked short");
    assert_eq!(refused(50, 1), km_err, "padding not zero");
    assert_eq!(
        refused(33, 7),
        FormatError::BadField {
            what: "secret flags"
        }
    );
    assert_eq!(
        refused(35, 1),
        FormatError::BadField {
            what: "secret flags"
        }
    );
    // A longer length over the zero padding is another (valid) modifier.
    let mut longer = pt.clone();
    longer[LIST_HEADER_LEN + 34] = 12;
    assert_eq!(check_secret_list(&longer), Ok(1));

    // Blob table entry (docs/formats.md 3.2): the same bits and bytes.
    let mut es = entries();
    es[1].key_modifier = km;
    let mut buf = [0u8; TABLE_MAX_LEN];
    let (n, _) = write_blob_table(&mut buf, &es).unwrap();
    let at = TABLE_HEADER_LEN + TABLE_ENTRY_LEN;
    assert_eq!((buf[at + 33], buf[at + 34], buf[at + 35]), (3, 10, 0));
    assert_eq!(&buf[at + 36..at + 52], &padded);
    let t = BlobTable::parse(&buf[..n]).unwrap();
    assert_eq!(t.get(1).unwrap().key_modifier.as_bytes(), b"SECURE_KEY");
    assert_eq!(t.get(0).unwrap().key_modifier, es[0].key_modifier);
    let refused = |off: usize, v: u8| {
        let mut b = buf;
        b[at + off] = v;
        let crc = {
            let mut d = CRC32.digest();
            d.update(&b[..12]);
            d.update(&b[TABLE_HEADER_LEN..n]);
            d.finalize()
        };
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        BlobTable::parse(&b[..n]).unwrap_err()
    };
    let km_err = FormatError::BadField {
        what: "blob key modifier",
    };
    assert_eq!(refused(33, 2), km_err);
    assert_eq!(refused(34, 0), km_err);
    assert_eq!(refused(34, 16), km_err);
    assert_eq!(refused(47, 0x20), km_err);
    assert_eq!(refused(33, 5), FormatError::BadField { what: "blob flags" });
    // The writer refuses a short modifier not marked given (as derived).
    es[1].key_modifier_given = false;
    assert_eq!(write_blob_table(&mut buf, &es).unwrap_err(), km_err);
}

/// The key modifier (and whether given) of a one-secret bundle sealed with
/// `km`, as opening it reads it back.
fn opened_key_modifier(km: KeyModifier) -> (KeyModifier, bool) {
    let s = [one_entry(km)];
    let mut b = vec![0u8; sealed_len(&s).unwrap()];
    seal(&mut b, &params(), &s, &PK).unwrap();
    let v = open_in_place(&mut b, &PK).unwrap();
    let got = v.secrets().next().unwrap();
    (got.key_modifier, got.key_modifier_given)
}
