//! Property tests of every command's argument parsing:
//!
//! 1. arbitrary argument lists never panic, and every refusal is one of
//!    the command's own messages (quoting what was typed);
//! 2. too few / too many arguments give `missing argument` /
//!    `too many arguments`, per command and subcommand;
//! 3. a random typed request, written out as tokens the way a user may
//!    type it (hex with or without `0x`, either case, leading zeros;
//!    decimal where the command documents it), parses back to exactly that
//!    request;
//! 4. the pure refusals (count, width, alignment, address-space and device
//!    ranges, value widths, length limits) agree with an independent
//!    oracle written here in 128-bit arithmetic.
//!
//! `PROPTEST_CASES=N` sets the case count of every property.

use super::boot::{BootargsRequest, BootiRequest, Initrd, MAX_BOOTARGS};
use super::mem::{MD_DEFAULT_COUNT, MdRequest, MwRequest};
use super::mmc::{Erase, MmcRequest, Transfer};
use super::provision::ProvisionRequest;
use super::security::{BlobRequest, FuseRead, MfgprotRequest};
use super::sys::HelpRequest;
use super::{CmdError, boot, mem, mmc, provision, security, sys};
use crate::console::props::config;
use proptest::prelude::*;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};
use usdhc::{HwPart, TransferMode};

/// The board's slot number the `mmc` parser is given here.
const DEV: u8 = 2;

/// Calls the parser the dispatcher would pick for `args[0]`, dropping the
/// request; `None` for a name no parser handles.
fn parse_any(args: &[&str]) -> Option<Result<(), CmdError>> {
    let name = args.first()?;
    let base = name.split('.').next().unwrap_or(name);
    let r = match base {
        "md" => mem::parse_md(args).map(drop),
        "mw" => mem::parse_mw(args).map(drop),
        "mmc" => mmc::parse(args, DEV).map(drop),
        "mfgprot" => security::parse_mfgprot(args).map(drop),
        "blob" => security::parse_blob(args).map(drop),
        "fuse" => security::parse_fuse(args).map(drop),
        "caam" => security::parse_caam(args),
        "booti" => boot::parse_booti(args).map(drop),
        "boot" => boot::parse_boot(args),
        "bootargs" => boot::parse_bootargs(args).map(drop),
        "provision" => provision::parse(args).map(drop),
        "help" => sys::parse_help(args).map(drop),
        "echo" => sys::parse_echo(args).map(drop),
        "version" | "bdinfo" | "reset" | "poweroff" => sys::parse_bare(args),
        _ => return None,
    };
    Some(r)
}

/// Every refusal message (as a prefix) each command may print.
fn messages(base: &str) -> &'static [&'static str] {
    match base {
        "md" | "mw" => &[
            "count must be at least 1",
            "count too large",
            "address 0x",
            "range past the end of the address space",
            "value 0x",
            "unknown size suffix in '",
        ],
        "mmc" => &[
            "no mmc device at slot ",
            "partition must be 0 (user), 1 (boot0) or 2 (boot1)",
            "unknown transfer mode '",
            "unknown block mode '",
            "unknown subcommand '",
        ],
        "mfgprot" => &["message size must be 1..4096 bytes", "unknown subcommand '"],
        "blob" => &[
            "LEN must be 1..0x10000",
            "KMLEN must be 1..0x10",
            "unknown subcommand '",
        ],
        "fuse" => &[
            "unknown subcommand '",
            "bank out of range",
            "word out of range",
            "count out of range",
            "words ",
        ],
        "caam" => &["unknown subcommand '"],
        "booti" => &["initrd must be ADDR:SIZE or '-'"],
        "bootargs" => &["command line longer than 511 bytes"],
        "provision" => &["unknown subcommand '"],
        _ => &[],
    }
}

const NAMES: &[&str] = &[
    "md",
    "md.b",
    "md.w",
    "md.l",
    "md.q",
    "mw",
    "mw.b",
    "mw.w",
    "mw.l",
    "mw.q",
    "mmc",
    "mfgprot",
    "blob",
    "fuse",
    "caam",
    "booti",
    "boot",
    "bootargs",
    "provision",
    "help",
    "echo",
    "version",
    "bdinfo",
    "reset",
    "poweroff",
];

/// Words the commands know, so that random lists reach past the
/// subcommand checks.
const WORDS: &[&str] = &[
    "list", "rescan", "dev", "info", "read", "write", "erase", "part", "mode", "adma2", "pio",
    "multi", "single", "pubk", "sign", "enc", "dec", "status", "verify", "-", "md", "nosuch",
];

/// `v` in hex as a user may type it: `style` picks the case and prefix,
/// `pad` adds leading zeros (at most 16 digits in all, the parser's limit).
fn hex_as_typed(v: u64, style: u8, pad: usize) -> String {
    let digits = if style & 1 == 0 {
        format!("{v:x}")
    } else {
        format!("{v:X}")
    };
    let zeros = "0".repeat(pad.min(16 - digits.len()));
    match style % 4 {
        0 | 1 => format!("{zeros}{digits}"),
        2 => format!("0x{zeros}{digits}"),
        _ => format!("0X{zeros}{digits}"),
    }
}

/// `v` as `mfgprot sign SIZE` / `fuse` numbers may be typed: decimal, or hex
/// with a prefix.
fn dec_as_typed(v: u64, style: u8, pad: usize) -> String {
    if style < 2 {
        format!("{v}")
    } else {
        hex_as_typed(v, style, pad)
    }
}

/// How a number is written: (style, padding).
fn typing() -> impl Strategy<Value = (u8, usize)> {
    (0u8..4, prop_oneof![3 => Just(0usize), 1 => 0usize..16])
}

/// Numbers biased towards the edges.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0u64..0x100,
        2 => any::<u64>(),
        1 => (0u64..0x100).prop_map(|v| u64::MAX - v),
        1 => (0u32..64).prop_map(|s| 1u64 << s),
        1 => 0x4000_0000u64..0x8000_0000,
    ]
}

/// Any token: numbers in every notation, huge numbers, signs, binary,
/// empty strings, known words, printable junk.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (number(), typing()).prop_map(|(v, (s, p))| hex_as_typed(v, s, p)),
        2 => number().prop_map(|v| v.to_string()),
        1 => "[0-9a-fA-F]{17,24}",
        1 => "(0[xX])?[+-]?[0-9a-fA-F]{0,4}",
        1 => "(0[bB])?[01]{1,12}",
        1 => Just(String::new()),
        1 => "[0-9a-f]{0,9}:[0-9a-f]{0,9}",
        3 => prop::sample::select(WORDS).prop_map(String::from),
        2 => "[ -~]{0,12}",
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn text(e: &CmdError) -> String {
    format!("{e}")
}

proptest! {
    #![proptest_config(config(1024))]

    /// (1) Nothing panics; refusals are the command's own.
    #[test]
    fn any_arguments_give_a_request_or_a_known_refusal(
        name in prop::sample::select(NAMES),
        rest in prop::collection::vec(token(), 0..18),
    ) {
        let mut words = vec![name.to_string()];
        words.extend(rest);
        let args = strs(&words);
        let r = parse_any(&args).expect("every name has a parser");
        let base = name.split('.').next().unwrap_or(name);
        match r {
            Ok(()) | Err(CmdError::MissingArgument | CmdError::TooManyArguments) => {}
            Err(CmdError::BadNumber(s)) => {
                // The word (or, for `booti`'s ADDR:SIZE, its part) as typed,
                // cut to the message's room.
                prop_assert!(args[1..].iter().any(|a| a.contains(s.as_str())), "{:?}", s);
            }
            Err(CmdError::Msg(m)) => {
                let p = messages(base).iter().find(|p| m.starts_with(*p));
                prop_assert!(p.is_some(), "{:?}: unexpected refusal {:?}", args, m);
                // What a refusal quotes is a word as typed.
                if let Some(p) = p.filter(|p| p.ends_with('\'') && m.len() > p.len()) {
                    let q = &m[p.len()..];
                    prop_assert!(
                        args.iter().any(|a| q.strip_prefix(a).is_some_and(|t| t.starts_with('\''))),
                        "{:?}: {:?}", args, m
                    );
                }
            }
        }
    }

    /// (2) Argument counts, per command and subcommand.
    #[test]
    fn argument_counts_are_checked_first((entry, rest) in arity_case()) {
        let (prefix, min, max, decides) = entry;
        let mut words: Vec<String> = prefix.split(' ').map(String::from).collect();
        words.extend(rest);
        let args = strs(&words);
        let n = args.len() - 1;
        let r = parse_any(&args).expect("every name has a parser");
        if n < min {
            prop_assert_eq!(r, Err(CmdError::MissingArgument), "{:?}", args);
        } else if n > max {
            prop_assert_eq!(r, Err(CmdError::TooManyArguments), "{:?}", args);
        } else if decides {
            prop_assert!(
                !matches!(r, Err(CmdError::MissingArgument | CmdError::TooManyArguments)),
                "{:?}: {:?}", args, r
            );
        }
    }

    /// (3, 4) `md`: round trip, and the pure refusals.
    #[test]
    fn md_round_trip(
        w in prop::sample::select(&[1usize, 2, 4, 8][..]),
        long_name in any::<bool>(),
        addr in number(),
        count in prop::option::of(number()),
        (ta, pa) in typing(), (tc, pc) in typing(),
    ) {
        let mut words = vec![sized_name("md", w, long_name), hex_as_typed(addr, ta, pa)];
        if let Some(c) = count {
            words.push(hex_as_typed(c, tc, pc));
        }
        let count = count.unwrap_or(MD_DEFAULT_COUNT);
        let want = mem_oracle(addr, w, count).map(|()| MdRequest { width: w, addr, count });
        let got = mem::parse_md(&strs(&words));
        prop_assert_eq!(got.map_err(|e| text(&e)), want, "{:?}", words);
    }

    /// (3, 4) `mw`: round trip, value widths, and the pure refusals.
    #[test]
    fn mw_round_trip(
        w in prop::sample::select(&[1usize, 2, 4, 8][..]),
        long_name in any::<bool>(),
        addr in number(),
        value in number(),
        count in prop::option::of(number()),
        (ta, pa) in typing(), (tv, pv) in typing(), (tc, pc) in typing(),
    ) {
        let mut words = vec![
            sized_name("mw", w, long_name),
            hex_as_typed(addr, ta, pa),
            hex_as_typed(value, tv, pv),
        ];
        if let Some(c) = count {
            words.push(hex_as_typed(c, tc, pc));
        }
        let count = count.unwrap_or(1);
        let want = if u128::from(value) >> (8 * w) != 0 {
            Err(format!("value 0x{value:x} does not fit in {w} byte(s)"))
        } else {
            mem_oracle(addr, w, count).map(|()| MwRequest { width: w, addr, value, count })
        };
        let got = mem::parse_mw(&strs(&words));
        if let Ok(r) = &got {
            prop_assert_eq!(u128::from(r.len()), u128::from(count) * w as u128);
        }
        prop_assert_eq!(got.map_err(|e| text(&e)), want, "{:?}", words);
    }

    /// (3, 4) `mmc`: every subcommand round trips; `dev` checks its slot
    /// and partition.
    #[test]
    fn mmc_round_trip(
        case in mmc_case(),
        t in prop::collection::vec(typing(), 3),
    ) {
        let (req, words) = mmc_words(&case, &t);
        let got = mmc::parse(&strs(&words), DEV);
        prop_assert_eq!(got.map_err(|e| text(&e)), req, "{:?}", words);
    }

    /// (4) `mmc read/write`: the device range and byte length.
    #[test]
    fn mmc_transfer_ranges(
        write in any::<bool>(), addr in number(), blk in number(), cnt in number(),
        device in prop_oneof![Just(0x8000u64), number()],
        edge in prop::option::of(-2i64..=2),
    ) {
        // Often right at the end of the device.
        let blk = edge.map_or(blk, |d| device.wrapping_sub(cnt).wrapping_add_signed(d));
        let t = Transfer { write, addr, blk, cnt };
        let end = u128::from(blk) + u128::from(cnt);
        let want = if cnt == 0 {
            Err("count must be at least 1".to_string())
        } else if end > u128::from(u64::MAX) {
            Err("block range overflows".to_string())
        } else if end > u128::from(device) {
            Err(format!(
                "blocks 0x{blk:x}..0x{end:x} are past the end of the device (0x{device:x} blocks)"
            ))
        } else if u128::from(cnt) * 512 > u128::from(u64::MAX) {
            Err("count too large".to_string())
        } else {
            Ok(cnt * 512)
        };
        prop_assert_eq!(t.check_blocks(device).map_err(|e| text(&e)), want);
        prop_assert_eq!(t.check_count().is_ok(), cnt != 0);
        prop_assert_eq!(Erase { blk, cnt }.check_count().is_ok(), cnt != 0);
    }

    /// (3, 4) `mfgprot sign ADDR SIZE`: ADDR hex, SIZE decimal or 0x-hex,
    /// 1..=4096.
    #[test]
    fn mfgprot_sign_round_trip(
        addr in number(),
        size in prop_oneof![2 => 0u64..=4097, 1 => number()],
        (ta, pa) in typing(), (ts, ps) in typing(),
    ) {
        let words = [
            "mfgprot".to_string(),
            "sign".to_string(),
            hex_as_typed(addr, ta, pa),
            dec_as_typed(size, ts, ps),
        ];
        let want = if size == 0 || size > 4096 {
            Err("message size must be 1..4096 bytes".to_string())
        } else {
            Ok(MfgprotRequest::Sign { addr, size })
        };
        let got = security::parse_mfgprot(&strs(&words));
        prop_assert_eq!(got.map_err(|e| text(&e)), want, "{:?}", words);
    }

    /// SIZE without `0x` is decimal: hex digits there are refused, and a
    /// decimal-looking word is never read as hex.
    #[test]
    fn mfgprot_sign_size_is_decimal_without_prefix(
        digits in "[0-9]{1,3}[a-fA-F][0-9a-fA-F]{0,3}",
        n in 1u64..=4096,
    ) {
        let bad = security::parse_mfgprot(&["mfgprot", "sign", "0", &digits]);
        prop_assert_eq!(bad, Err(CmdError::BadNumber(digits.as_str().try_into().unwrap())));
        let dec = n.to_string();
        let good = security::parse_mfgprot(&["mfgprot", "sign", "10", &dec]);
        prop_assert_eq!(good, Ok(MfgprotRequest::Sign { addr: 0x10, size: n }));
    }

    /// (3, 4) `blob enc|dec SRC DST LEN KM [KMLEN]` (hex), LEN 1..=0x10000,
    /// KMLEN 1..=0x10 (0x10 when omitted).
    #[test]
    fn blob_round_trip(
        encap in any::<bool>(),
        src in number(), dst in number(), km in number(),
        len in prop_oneof![2 => 0u64..=0x10001, 1 => number()],
        km_len in prop::option::of(prop_oneof![2 => 0u64..=0x11, 1 => number()]),
        t in prop::collection::vec(typing(), 5),
    ) {
        let mut words = vec![
            "blob".to_string(),
            (if encap { "enc" } else { "dec" }).to_string(),
            hex_as_typed(src, t[0].0, t[0].1),
            hex_as_typed(dst, t[1].0, t[1].1),
            hex_as_typed(len, t[2].0, t[2].1),
            hex_as_typed(km, t[3].0, t[3].1),
        ];
        if let Some(k) = km_len {
            words.push(hex_as_typed(k, t[4].0, t[4].1));
        }
        let kl = km_len.unwrap_or(16);
        let want = if len == 0 || len > 0x10000 {
            Err("LEN must be 1..0x10000".to_string())
        } else if kl == 0 || kl > 16 {
            Err("KMLEN must be 1..0x10".to_string())
        } else {
            Ok(BlobRequest { encap, src, dst, len, km, km_len: kl })
        };
        let got = security::parse_blob(&strs(&words));
        if let Ok(r) = &got {
            let (i, o) = if encap { (len, len + 48) } else { (len + 48, len) };
            prop_assert_eq!((r.src_len(), r.dst_len()), (i, o));
        }
        prop_assert_eq!(got.map_err(|e| text(&e)), want, "{:?}", words);
    }

    /// (3, 4) `fuse read BANK WORD [CNT]` (decimal or 0x-hex): 32-bit
    /// numbers, words inside the 4-word bank.
    #[test]
    fn fuse_round_trip(
        bank in prop_oneof![3 => 0u64..8, 1 => number()],
        word in prop_oneof![3 => 0u64..6, 1 => number()],
        count in prop::option::of(prop_oneof![3 => 0u64..6, 1 => number()]),
        t in prop::collection::vec(typing(), 3),
    ) {
        let mut words = vec![
            "fuse".to_string(),
            "read".to_string(),
            dec_as_typed(bank, t[0].0, t[0].1),
            dec_as_typed(word, t[1].0, t[1].1),
        ];
        if let Some(c) = count {
            words.push(dec_as_typed(c, t[2].0, t[2].1));
        }
        let c = count.unwrap_or(1);
        let big = |v: u64| v > u64::from(u32::MAX);
        let want = if big(bank) {
            Err("bank out of range".to_string())
        } else if big(word) {
            Err("word out of range".to_string())
        } else if big(c) {
            Err("count out of range".to_string())
        } else if c == 0 || word + c > 4 {
            let end = (word + c).min(u64::from(u32::MAX));
            Err(format!("words {word}..{end} outside the bank's 4 words"))
        } else {
            let n = |v: u64| u32::try_from(v).expect("checked above");
            Ok(FuseRead { bank: n(bank), word: n(word), count: n(c) })
        };
        let got = security::parse_fuse(&strs(&words));
        prop_assert_eq!(got.map_err(|e| text(&e)), want, "{:?}", words);
    }

    /// (3, 4) `booti KERNEL INITRD:SIZE|- FDT` (hex).
    #[test]
    fn booti_round_trip(
        kernel in number(), fdt in number(),
        initrd in prop::option::of((number(), number())),
        colonless in any::<bool>(),
        t in prop::collection::vec(typing(), 4),
    ) {
        let spec = match initrd {
            None => "-".to_string(),
            Some((a, s)) if colonless => {
                hex_as_typed(a, t[2].0 & 1, 0) + &hex_as_typed(s, t[3].0 & 1, 0)
            }
            Some((a, s)) => {
                format!("{}:{}", hex_as_typed(a, t[2].0, t[2].1), hex_as_typed(s, t[3].0, t[3].1))
            }
        };
        let words = [
            "booti".to_string(),
            hex_as_typed(kernel, t[0].0, t[0].1),
            spec,
            hex_as_typed(fdt, t[1].0, t[1].1),
        ];
        let want = if initrd.is_some() && colonless {
            Err("initrd must be ADDR:SIZE or '-'".to_string())
        } else {
            let initrd = initrd.map(|(addr, size)| Initrd { addr, size });
            Ok(BootiRequest { kernel, initrd, fdt })
        };
        let got = boot::parse_booti(&strs(&words));
        prop_assert_eq!(got.map_err(|e| text(&e)), want, "{:?}", words);
    }

    /// (3, 4) `bootargs [VALUE...]`: words joined by one space, at most
    /// 511 bytes.
    #[test]
    fn bootargs_round_trip(values in prop::collection::vec("[ -~]{0,60}", 0..15)) {
        let mut words = vec!["bootargs".to_string()];
        words.extend(values.iter().cloned());
        let got = boot::parse_bootargs(&strs(&words));
        let joined = values.join(" ");
        match got {
            Ok(BootargsRequest::Show) => prop_assert!(values.is_empty()),
            Ok(BootargsRequest::Set(s)) => {
                prop_assert!(!values.is_empty());
                prop_assert!(joined.len() <= MAX_BOOTARGS);
                prop_assert_eq!(s.as_str(), joined.as_str());
            }
            Err(e) => {
                prop_assert!(joined.len() > MAX_BOOTARGS, "refused {} bytes", joined.len());
                prop_assert_eq!(text(&e), "command line longer than 511 bytes");
            }
        }
    }

    /// (4) The 511-byte limit is exact, however the line is split into words.
    #[test]
    fn bootargs_limit_is_exact(n in prop_oneof![505usize..520, 400usize..600], k in 1usize..8) {
        let chars = n - (k - 1);
        let words: Vec<String> = (0..k)
            .map(|i| "x".repeat(chars / k + usize::from(i < chars % k)))
            .collect();
        let mut args = vec!["bootargs"];
        args.extend(words.iter().map(String::as_str));
        let got = boot::parse_bootargs(&args);
        prop_assert_eq!(got.is_ok(), n <= MAX_BOOTARGS, "{} bytes", n);
        if let Ok(BootargsRequest::Set(s)) = got {
            prop_assert_eq!(s.len(), n);
        }
    }

    /// (3) `provision`, `help`, `echo` and the argument-less commands.
    #[test]
    fn simple_commands_round_trip(
        sub in prop::option::of(prop_oneof![
            Just("status".to_string()), Just("verify".to_string()), token()
        ]),
        rest in prop::collection::vec(token(), 0..15),
        bare in prop::sample::select(&["version", "bdinfo", "reset", "poweroff", "boot"][..]),
    ) {
        let mut p = vec!["provision"];
        p.extend(sub.as_deref());
        let want = match sub.as_deref() {
            None => Ok(ProvisionRequest::Run),
            Some("status") => Ok(ProvisionRequest::Status),
            Some("verify") => Ok(ProvisionRequest::Verify),
            Some(other) => Err(format!("unknown subcommand '{other}'")),
        };
        prop_assert_eq!(provision::parse(&p).map_err(|e| text(&e)), want);

        let mut h = vec!["help".to_string()];
        h.extend(rest.iter().cloned());
        let h = strs(&h);
        let want = if rest.is_empty() { HelpRequest::All } else { HelpRequest::Commands(&h[1..]) };
        prop_assert_eq!(sys::parse_help(&h), Ok(want));

        let mut e = vec!["echo"];
        e.extend(rest.iter().map(String::as_str));
        prop_assert_eq!(sys::parse_echo(&e), Ok(&e[1..]));

        let mut b = vec![bare];
        b.extend(rest.iter().map(String::as_str));
        let want = if rest.is_empty() { Ok(()) } else { Err(CmdError::TooManyArguments) };
        let got = if bare == "boot" { boot::parse_boot(&b) } else { sys::parse_bare(&b) };
        prop_assert_eq!(got, want);
    }
}

/// `(words, min, max, decides)`: the operand count after the name that
/// the command (and subcommand) accepts; `decides` when a count in range
/// never gives a count error whatever the words (false where the first
/// random word is taken as a subcommand with its own count).
type Arity = (&'static str, usize, usize, bool);

const ARITY: &[Arity] = &[
    ("md", 1, 2, true),
    ("md.b", 1, 2, true),
    ("md.q", 1, 2, true),
    ("mw", 2, 3, true),
    ("mw.w", 2, 3, true),
    ("mmc", 1, 4, false),
    ("mmc list", 1, 1, true),
    ("mmc rescan", 1, 1, true),
    ("mmc info", 1, 1, true),
    ("mmc part", 1, 1, true),
    ("mmc dev", 1, 3, true),
    ("mmc read", 4, 4, true),
    ("mmc write", 4, 4, true),
    ("mmc erase", 3, 3, true),
    ("mmc mode", 2, 3, true),
    ("mfgprot", 1, 3, false),
    ("mfgprot sign", 3, 3, true),
    #[cfg(not(feature = "production"))]
    ("mfgprot pubk", 1, 1, true),
    #[cfg(feature = "production")]
    ("mfgprot pubk", 1, 3, true),
    ("blob", 5, 6, true),
    ("blob enc", 5, 6, true),
    ("blob dec", 5, 6, true),
    ("fuse", 3, 4, true),
    ("fuse read", 3, 4, true),
    ("caam", 1, 1, true),
    ("caam info", 1, 1, true),
    ("booti", 3, 3, true),
    ("boot", 0, 0, true),
    ("provision", 0, 1, true),
    ("version", 0, 0, true),
    ("bdinfo", 0, 0, true),
    ("reset", 0, 0, true),
    ("poweroff", 0, 0, true),
    ("help", 0, usize::MAX, true),
    ("echo", 0, usize::MAX, true),
    ("bootargs", 0, usize::MAX, true),
];

/// An [`ARITY`] entry and random words after its prefix, their count
/// mostly at the edges of the accepted range.
fn arity_case() -> impl Strategy<Value = (Arity, Vec<String>)> {
    prop::sample::select(ARITY).prop_flat_map(|entry| {
        let (prefix, min, max, _) = entry;
        let given = prefix.split(' ').count() - 1;
        let edges: Vec<usize> = [min.wrapping_sub(1), min, max, max.saturating_add(1)]
            .into_iter()
            .filter(|&n| n >= given && n <= given + 12)
            .map(|n| n - given)
            .collect();
        let len = prop_oneof![
            1 => 0usize..12,
            2 => prop::sample::select(if edges.is_empty() { vec![0] } else { edges }),
        ];
        (
            Just(entry),
            len.prop_flat_map(|n| prop::collection::vec(token(), n)),
        )
    })
}

/// `md.w` etc.; `long` also spells out the default `.l`.
fn sized_name(base: &str, w: usize, long: bool) -> String {
    match (w, long) {
        (1, _) => format!("{base}.b"),
        (2, _) => format!("{base}.w"),
        (4, false) => base.to_string(),
        (4, true) => format!("{base}.l"),
        _ => format!("{base}.q"),
    }
}

/// What `md`/`mw` must say about `count` units of `w` bytes at `addr`.
fn mem_oracle(addr: u64, w: usize, count: u64) -> Result<(), String> {
    let len = u128::from(count) * w as u128;
    if count == 0 {
        Err("count must be at least 1".to_string())
    } else if len > u128::from(u64::MAX) {
        Err("count too large".to_string())
    } else if !addr.is_multiple_of(w as u64) {
        Err(format!("address 0x{addr:x} is not aligned to {w} bytes"))
    } else if u128::from(addr) + len > u128::from(u64::MAX) {
        Err("range past the end of the address space".to_string())
    } else {
        Ok(())
    }
}

/// A typed `mmc` command, with what the user may also get wrong.
#[derive(Clone, Debug)]
enum MmcCase {
    Plain(&'static str),
    Dev {
        slot: Option<u64>,
        part: Option<u64>,
    },
    Transfer(Transfer),
    Erase(Erase),
    Mode {
        mode: &'static str,
        block: Option<&'static str>,
    },
}

fn mmc_case() -> impl Strategy<Value = MmcCase> {
    let slot = prop_oneof![3 => Just(u64::from(DEV)), 1 => number()];
    let part = prop_oneof![3 => 0u64..3, 1 => number()];
    prop_oneof![
        prop::sample::select(&["list", "rescan", "info", "part"][..]).prop_map(MmcCase::Plain),
        (prop::option::of(slot.clone())).prop_map(|slot| MmcCase::Dev { slot, part: None }),
        (slot, part).prop_map(|(s, p)| MmcCase::Dev {
            slot: Some(s),
            part: Some(p)
        }),
        (any::<bool>(), number(), number(), number()).prop_map(|(write, addr, blk, cnt)| {
            MmcCase::Transfer(Transfer {
                write,
                addr,
                blk,
                cnt,
            })
        }),
        (number(), number()).prop_map(|(blk, cnt)| MmcCase::Erase(Erase { blk, cnt })),
        (
            prop::sample::select(&["adma2", "pio", "dma", "ADMA2"][..]),
            prop::option::of(prop::sample::select(&["multi", "single", "one"][..]))
        )
            .prop_map(|(mode, block)| MmcCase::Mode { mode, block }),
    ]
}

/// The words for `case` and what parsing them must give.
fn mmc_words(case: &MmcCase, t: &[(u8, usize)]) -> (Result<MmcRequest, String>, Vec<String>) {
    let h = |v: u64, i: usize| hex_as_typed(v, t[i].0, t[i].1);
    let mut w = vec!["mmc".to_string()];
    let want = match *case {
        MmcCase::Plain(sub) => {
            w.push(sub.to_string());
            Ok(match sub {
                "list" => MmcRequest::List,
                "rescan" => MmcRequest::Rescan,
                "info" => MmcRequest::Info,
                _ => MmcRequest::Part,
            })
        }
        MmcCase::Dev { slot, part } => {
            w.push("dev".to_string());
            w.extend(slot.map(|s| h(s, 0)));
            w.extend(part.map(|p| h(p, 1)));
            match (slot, part) {
                (Some(s), _) if s != u64::from(DEV) => {
                    Err(format!("no mmc device at slot {s:x} (only {DEV})"))
                }
                (_, Some(p)) if p > 2 => {
                    Err("partition must be 0 (user), 1 (boot0) or 2 (boot1)".to_string())
                }
                (_, p) => Ok(MmcRequest::Dev {
                    part: p.map(|p| match p {
                        0 => HwPart::User,
                        1 => HwPart::Boot0,
                        _ => HwPart::Boot1,
                    }),
                }),
            }
        }
        MmcCase::Transfer(x) => {
            w.push((if x.write { "write" } else { "read" }).to_string());
            w.extend([h(x.addr, 0), h(x.blk, 1), h(x.cnt, 2)]);
            Ok(MmcRequest::Transfer(x))
        }
        MmcCase::Erase(x) => {
            w.push("erase".to_string());
            w.extend([h(x.blk, 0), h(x.cnt, 1)]);
            Ok(MmcRequest::Erase(x))
        }
        MmcCase::Mode { mode, block } => {
            w.push("mode".to_string());
            w.push(mode.to_string());
            w.extend(block.map(String::from));
            let m = match mode {
                "adma2" => Some(TransferMode::Adma2),
                "pio" => Some(TransferMode::Pio),
                _ => None,
            };
            match (m, block) {
                (None, _) => Err(format!("unknown transfer mode '{mode}' (adma2 or pio)")),
                (Some(mode), None | Some("multi")) => Ok(MmcRequest::Mode { mode, multi: true }),
                (Some(mode), Some("single")) => Ok(MmcRequest::Mode { mode, multi: false }),
                (Some(_), Some(b)) => Err(format!("unknown block mode '{b}' (multi or single)")),
            }
        }
    };
    (want, w)
}

#[test]
fn no_words_at_all_is_a_missing_argument() {
    for name in NAMES {
        let base = name.split('.').next().unwrap_or(name);
        // Each parser with an empty list (the dispatcher always passes the
        // name, but the parsers do not rely on it).
        let empty: [&str; 0] = [];
        let r = match base {
            "md" => mem::parse_md(&empty).map(drop),
            "mw" => mem::parse_mw(&empty).map(drop),
            "mmc" => mmc::parse(&empty, DEV).map(drop),
            "mfgprot" => security::parse_mfgprot(&empty).map(drop),
            "blob" => security::parse_blob(&empty).map(drop),
            "fuse" => security::parse_fuse(&empty).map(drop),
            "caam" => security::parse_caam(&empty),
            "booti" => boot::parse_booti(&empty).map(drop),
            "boot" => boot::parse_boot(&empty),
            "bootargs" => boot::parse_bootargs(&empty).map(drop),
            "provision" => provision::parse(&empty).map(drop),
            "help" => sys::parse_help(&empty).map(drop),
            "echo" => sys::parse_echo(&empty).map(drop),
            _ => sys::parse_bare(&empty),
        };
        assert_eq!(r, Err(CmdError::MissingArgument), "{name}");
    }
}

#[test]
fn mode_names_are_what_mmc_mode_takes() {
    for m in [TransferMode::Adma2, TransferMode::Pio] {
        let r = mmc::parse(&["mmc", "mode", mmc::mode_name(m)], DEV);
        assert_eq!(
            r,
            Ok(MmcRequest::Mode {
                mode: m,
                multi: true
            })
        );
    }
}
