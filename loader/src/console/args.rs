//! Splitting a command line into arguments and parsing numbers the way
//! U-Boot does (hex by default).

use heapless::Vec;

/// Most arguments in one command line (command name included).
pub const MAX_ARGS: usize = 16;

/// Why a line or an argument was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgError<'a> {
    /// More than [`MAX_ARGS`] words.
    TooManyWords,
    /// A `"` without its closing partner.
    UnbalancedQuote,
    /// Not a number in the expected base.
    BadNumber(&'a str),
}

impl core::fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooManyWords => write!(f, "too many arguments (max {})", MAX_ARGS - 1),
            Self::UnbalancedQuote => write!(f, "unbalanced quote"),
            Self::BadNumber(s) => write!(f, "bad number '{s}'"),
        }
    }
}

/// Splits on spaces; `"..."` keeps spaces inside one argument.
pub fn split(line: &str) -> Result<Vec<&str, MAX_ARGS>, ArgError<'static>> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let (word, after) = if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').ok_or(ArgError::UnbalancedQuote)?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        out.push(word).map_err(|_| ArgError::TooManyWords)?;
        rest = after.trim_start();
    }
    Ok(out)
}

/// A hex number, with or without `0x` (U-Boot's default for addresses,
/// values and counts).
pub fn hex(s: &str) -> Result<u64, ArgError<'_>> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    // `from_str_radix` alone would take a leading `+`.
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(ArgError::BadNumber(s));
    }
    u64::from_str_radix(digits, 16).map_err(|_| ArgError::BadNumber(s))
}

/// A decimal number, or hex with a `0x` prefix.
pub fn dec_or_hex(s: &str) -> Result<u64, ArgError<'_>> {
    if s.starts_with("0x") || s.starts_with("0X") {
        return hex(s);
    }
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ArgError::BadNumber(s));
    }
    s.parse::<u64>().map_err(|_| ArgError::BadNumber(s))
}

/// Splits `md.w` into (`md`, 2). No suffix means `.l` (4), as in U-Boot.
pub fn width_suffix(cmd: &str) -> Option<(&str, usize)> {
    match cmd.split_once('.') {
        None => Some((cmd, 4)),
        Some((base, "b")) => Some((base, 1)),
        Some((base, "w")) => Some((base, 2)),
        Some((base, "l")) => Some((base, 4)),
        Some((base, "q")) => Some((base, 8)),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_and_quotes() {
        assert_eq!(
            split("  md.l  40200000 10 ").unwrap().as_slice(),
            ["md.l", "40200000", "10"]
        );
        assert_eq!(
            split("echo \"a  b\" c").unwrap().as_slice(),
            ["echo", "a  b", "c"]
        );
        assert!(split("").unwrap().is_empty());
        assert_eq!(split("echo \"x"), Err(ArgError::UnbalancedQuote));
        let many = "a ".repeat(MAX_ARGS + 1);
        assert_eq!(split(&many), Err(ArgError::TooManyWords));
    }

    #[test]
    fn numbers_parse_like_u_boot() {
        assert_eq!(hex("40200000"), Ok(0x4020_0000));
        assert_eq!(hex("0x10"), Ok(16));
        assert_eq!(hex("ffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(
            hex("1ffffffffffffffff"),
            Err(ArgError::BadNumber("1ffffffffffffffff"))
        );
        assert_eq!(hex("zz"), Err(ArgError::BadNumber("zz")));
        assert_eq!(hex("0x"), Err(ArgError::BadNumber("0x")));
        assert_eq!(hex("-1"), Err(ArgError::BadNumber("-1")));
        assert_eq!(dec_or_hex("10"), Ok(10));
        assert_eq!(dec_or_hex("0x10"), Ok(16));
        assert_eq!(dec_or_hex("1a"), Err(ArgError::BadNumber("1a")));
    }

    /// Found by the property tests: `from_str_radix` takes a leading `+`.
    #[test]
    fn regression_plus_sign_is_not_a_number() {
        assert_eq!(hex("+0"), Err(ArgError::BadNumber("+0")));
        assert_eq!(hex("0x+f"), Err(ArgError::BadNumber("0x+f")));
        assert_eq!(dec_or_hex("+1"), Err(ArgError::BadNumber("+1")));
    }

    #[test]
    fn width_suffixes() {
        assert_eq!(width_suffix("md"), Some(("md", 4)));
        assert_eq!(width_suffix("md.b"), Some(("md", 1)));
        assert_eq!(width_suffix("mw.q"), Some(("mw", 8)));
        assert_eq!(width_suffix("md.x"), None);
    }
}
