//! Property tests of the line editor and the argument parser: arbitrary
//! input never panics, and what is accepted has the documented shape.
//!
//! The case count defaults to a bounded number for `cargo test`; set
//! `PROPTEST_CASES=1000000` for a long run.

use super::args::{self, ArgError, MAX_ARGS};
use super::line::{Event, LineEditor, MAX_LINE};
use proptest::prelude::*;
use std::string::String;
use std::vec::Vec;

pub(crate) fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// Feeds `input` and returns every non-pending event with the line it left.
fn feed_all(input: &[u8]) -> Vec<(Event, String)> {
    let mut ed = LineEditor::new();
    let mut out = Vec::new();
    for &b in input {
        let mut echoed = 0usize;
        let e = ed.feed(b, |x| echoed += x.len());
        // One byte never echoes more than the longest single echo
        // (Ctrl-U erasing a full line).
        assert!(echoed <= 3 * MAX_LINE + 13);
        if e != Event::Pending {
            out.push((e, String::from(ed.line())));
        }
    }
    out
}

/// Bytes biased towards the editor's control characters.
fn console_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => any::<u8>(),
        4 => 0x20u8..0x7f,
        1 => prop::sample::select(&[b'\r', b'\n', 0x03, 0x15, 0x08, 0x7f, b'\t', b'"', 0x1b][..]),
    ]
}

/// Console input as keys: bytes, or whole escape sequences a terminal sends.
fn console_keys() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            6 => console_byte().prop_map(|b| vec![b]),
            1 => terminal_key(),
        ],
        0..600,
    )
    .prop_map(|keys| keys.concat())
}

/// One key's escape sequence: CSI (arrows, Home/End/Delete/function keys,
/// with parameters), SS3 (with parameters), the Linux console's F1-F5 or
/// rxvt's modified keys.
fn terminal_key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // `ESC [ [` is the Linux console's function-key prefix, not a key.
        (
            "[0-9;]{0,6}",
            (0x40u8..=0x7e).prop_filter("not '['", |f| *f != b'[')
        )
            .prop_map(|(p, f)| {
                let mut k = b"\x1b[".to_vec();
                k.extend_from_slice(p.as_bytes());
                k.push(f);
                k
            }),
        ("[0-9;]{0,3}", 0x40u8..=0x7e).prop_map(|(p, f)| {
            let mut k = b"\x1bO".to_vec();
            k.extend_from_slice(p.as_bytes());
            k.push(f);
            k
        }),
        (0x41u8..=0x45).prop_map(|f| vec![0x1b, b'[', b'[', f]),
        ("[0-9]{1,2}", prop::sample::select(&[b'$', b'^', b'@'][..])).prop_map(|(p, f)| {
            let mut k = b"\x1b[".to_vec();
            k.extend_from_slice(p.as_bytes());
            k.push(f);
            k
        }),
    ]
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn editor_never_panics_and_lines_are_printable(input in console_keys()) {
        for (e, line) in feed_all(&input) {
            if e == Event::Line {
                prop_assert!(line.len() <= MAX_LINE);
                prop_assert!(line.bytes().all(|c| (0x20..0x7f).contains(&c)));
            }
        }
    }

    #[test]
    fn terminal_keys_typed_inside_a_line_leave_it_unchanged(
        line in "[ -~]{0,200}",
        keys in prop::collection::vec((any::<prop::sample::Index>(), terminal_key()), 0..8),
    ) {
        let mut input = line.as_bytes().to_vec();
        // Insert from the back so the earlier positions stay valid.
        let mut at: Vec<(usize, Vec<u8>)> =
            keys.into_iter().map(|(i, k)| (i.index(line.len() + 1), k)).collect();
        at.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        for (i, k) in at {
            input.splice(i..i, k);
        }
        input.push(b'\r');
        prop_assert_eq!(feed_all(&input), vec![(Event::Line, line)]);
    }

    #[test]
    fn printable_line_round_trips(line in "[ -~]{0,256}") {
        let mut input = line.clone().into_bytes();
        input.push(b'\r');
        let ev = feed_all(&input);
        prop_assert_eq!(ev, [(Event::Line, line)]);
    }

    #[test]
    fn over_long_line_is_refused_and_next_line_is_clean(
        extra in 1usize..2000, next in "[ -~]{0,64}"
    ) {
        let mut input = std::vec![b'x'; MAX_LINE + extra];
        input.push(b'\n');
        input.extend_from_slice(next.as_bytes());
        input.push(b'\n');
        let ev = feed_all(&input);
        prop_assert_eq!(ev.len(), 2);
        prop_assert_eq!(ev[0].0, Event::TooLong);
        prop_assert_eq!(&ev[1], &(Event::Line, next));
    }

    #[test]
    fn split_never_panics_and_words_come_from_the_line(line in "[ -~]{0,300}") {
        match args::split(&line) {
            Ok(words) => {
                prop_assert!(words.len() <= MAX_ARGS);
                for w in &words {
                    prop_assert!(line.contains(w));
                }
            }
            Err(ArgError::TooManyWords) => {
                prop_assert!(line.split(' ').filter(|w| !w.is_empty()).count() > MAX_ARGS
                    || line.contains('"'));
            }
            Err(ArgError::UnbalancedQuote) => prop_assert!(line.contains('"')),
            Err(ArgError::BadNumber(_)) => prop_assert!(false, "split parses no numbers"),
        }
    }

    #[test]
    fn split_of_joined_words_gives_them_back(
        words in prop::collection::vec("[!#-~]{1,12}", 0..MAX_ARGS)
    ) {
        let line = words.join("  ");
        let got = args::split(&line).unwrap();
        prop_assert_eq!(got.as_slice(), words.as_slice());
    }

    #[test]
    fn numbers_accept_exactly_hex_and_decimal(s in "(0[xX])?[0-9a-fA-F+ -]{0,20}") {
        let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(&s);
        let hex_ok = !digits.is_empty()
            && digits.len() <= 16
            && digits.bytes().all(|c| c.is_ascii_hexdigit());
        match args::hex(&s) {
            Ok(v) => {
                prop_assert!(hex_ok, "accepted {:?}", s);
                prop_assert_eq!(v, u64::from_str_radix(digits, 16).unwrap());
            }
            Err(e) => {
                prop_assert!(!hex_ok, "refused {:?}", s);
                prop_assert_eq!(e, ArgError::BadNumber(&s));
            }
        }
        if let Ok(v) = args::dec_or_hex(&s)
            && digits.len() == s.len()
        {
            prop_assert!(s.bytes().all(|c| c.is_ascii_digit()), "accepted {:?}", s);
            prop_assert_eq!(v, s.parse::<u64>().unwrap());
        }
    }

    #[test]
    fn hex_and_decimal_round_trip(v in any::<u64>()) {
        let (a, b, c) = (std::format!("{v:x}"), std::format!("0x{v:X}"), std::format!("{v}"));
        prop_assert_eq!(args::hex(&a), Ok(v));
        prop_assert_eq!(args::hex(&b), Ok(v));
        prop_assert_eq!(args::dec_or_hex(&c), Ok(v));
    }

    #[test]
    fn width_suffix_never_panics(s in "[ -~]{0,16}") {
        if let Some((base, w)) = args::width_suffix(&s) {
            prop_assert!([1, 2, 4, 8].contains(&w));
            prop_assert!(s.starts_with(base));
        }
    }
}
